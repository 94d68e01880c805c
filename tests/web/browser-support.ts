import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * A real browser for the web suites: Debian's chromium driven by playwright-core (never a
 * downloaded browser), and a page server on its own loopback port, so the page's origin
 * differs from the gateway's and every request is cross-origin (CORS, beacons).
 */
export const CHROMIUM = process.env.HOURGLASS_CHROMIUM ?? '/usr/bin/chromium';
const CLIENT_DIST = join(__dirname, '../../packages/client-web/dist');

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/check-prereqs.sh --install`);
  if (!existsSync(join(CLIENT_DIST, 'index.js')))
    throw new Error('packages/client-web/dist is missing: run npx tsc -b');
  const profile = mkdtempSync(join(tmpdir(), 'hourglass-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  // A persistent context ends with its last page: this blank one keeps it open while tests close theirs.
  await context.newPage();
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The test page: loads the client from /client/ and exposes `window.hg` configured from the query string. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>hourglass web test</title>
<script type="module">
  import { HourglassWeb } from '/client/index.js';
  const q = new URLSearchParams(location.search);
  window.hg = new HourglassWeb({
    url: q.get('gateway'),
    key: q.get('key'),
    storageKey: q.get('storage'),
    batchSize: Number(q.get('batch')),
    flushIntervalMs: Number(q.get('interval')),
    initialBackoffMs: 200,
    maxBackoffMs: 1000,
  });
  window.ready = true;
</script>`;

/** Serves the page and the client's built files on 127.0.0.1; returns its origin. */
export async function startPageServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      return;
    }
    const file = normalize(join(CLIENT_DIST, path.replace(/^\/client\//, '')));
    if (path.startsWith('/client/') && file.startsWith(CLIENT_DIST) && file.endsWith('.js') && existsSync(file)) {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(file));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
