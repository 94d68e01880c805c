import { gzipSync } from 'node:zlib';
import { esc, manifestHref, renderStatusPage } from '@hourglass/consumer/status/render';
import { problemsOf, unclosedWindowState, type WindowState } from '@hourglass/consumer/status/snapshot';
import { MINUTE, NOW, snapshotOf, typeView, windowsOf } from './status-fixtures';

/** The status page's renderer and the pure rules behind it, on fixed input. */

const ALLOWED_TAGS = new Set(
  'html head meta title style body h1 p b span form input label button main details summary div ul li a table tr th td'.split(
    ' ',
  ),
);

/** Every tag in the page is one the renderer writes, and no attribute is an event handler. */
function tagsOf(html: string): Set<string> {
  return new Set([...html.matchAll(/<\/?([a-zA-Z][a-zA-Z0-9]*)/g)].map((m) => m[1]!.toLowerCase()));
}

describe('status page renderer', () => {
  test('hostile type names, replica ids, reasons, store URL and filter are escaped', () => {
    const hostile = `<script>alert(1)</script>"'&x`;
    const reason = `"><img src=x onerror=alert(2)>`;
    const snapshot = {
      ...snapshotOf([
        typeView(hostile, {
          leases: [
            { identity: `<b onclick=alert(3)>r`, state: 'stale', watermark: NOW - 9_000, renewedAt: NOW - 40_000 },
          ],
          deadLetters: {
            count: 1,
            days: ['2026-01-01'],
            read: 1,
            reasons: [{ code: `<i>CODE`, message: reason, count: 1, latestAt: NOW - 1000 }],
          },
          problems: [`replica <b onclick=alert(3)>r stale: holds the watermark`],
        }),
      ]),
      store: 'file:///<svg onload=alert(4)>',
      replicaId: '"><iframe src=//evil>',
    };
    const html = renderStatusPage(snapshot);
    const filtered = renderStatusPage(snapshot, { q: `"><script>alert(5)</script>` });
    for (const page of [html, filtered]) {
      expect([...tagsOf(page)].filter((t) => !ALLOWED_TAGS.has(t))).toEqual([]);
      for (const tag of page.match(/<[a-zA-Z][^>]*>/g)!) expect(tag).not.toMatch(/\son[a-z]+=/i);
      expect(page).not.toContain('<script');
    }
    // what a person reads is the text itself
    expect(html).toContain(esc(hostile));
    expect(html).toContain(esc(reason));
    expect(html).toContain(`href="${esc(manifestHref(hostile, windowsOf(['closed'])[0]!.start - 11 * MINUTE))}"`);
    expect(manifestHref(hostile, 0)).toBe(`/status/manifest/${encodeURIComponent(hostile)}/0`);
    // a filter with no match says so (it is matched against the name, not its escaped text)
    expect(filtered).toContain('showing 0 of 1 types');
    expect(renderStatusPage(snapshot, { q: '<script>' })).toContain('showing 1 of 1 types');
  });

  test('each window state has its cell; closed and empty link to their manifest; late and dead letters are marked', () => {
    const states: WindowState[] = ['none', 'empty', 'closed', 'closed', 'finalizing', 'open'];
    const windows = windowsOf(states);
    windows[2] = { ...windows[2]!, late: 4 };
    windows[3] = { ...windows[3]!, deadLetters: 2 };
    const html = renderStatusPage(snapshotOf([typeView('page_viewed', { windows })]));
    const grid = html.slice(html.indexOf('<span class="grid">'));
    const cells = [...grid.matchAll(/<(a|span) class="([a-z])"([^>]*)>([^<]*)</g)];
    expect(cells.map((c) => c[2])).toEqual(['n', 'e', 'c', 'c', 'f', 'o']);
    expect(cells.map((c) => c[1])).toEqual(['span', 'a', 'a', 'a', 'span', 'span']);
    expect(cells.map((c) => c[4])).toEqual(['', '', 'L', '!', '', '']);
    expect(cells[2]![3]).toContain('102 records · 4 late');
    expect(cells[3]![3]).toContain('2 dead letters');
    expect(cells[1]![3]).toContain(`href="/status/manifest/page_viewed/${windows[1]!.start}"`);
  });

  test('100 types: summary first, problems first and open, the rest one line each; filter and size', () => {
    const types = Array.from({ length: 100 }, (_, i) => typeView(`type_${String(i).padStart(3, '0')}`));
    types[42] = typeView('type_042', { problems: ['no live replica: the watermark cannot move'], leases: [] });
    types[77] = typeView('type_077', {
      problems: ['3 dead letter(s)'],
      deadLetters: {
        count: 3,
        days: ['2026-01-01'],
        read: 3,
        reasons: [{ code: 'SCHEMA_UNKNOWN', message: 'v9', count: 3, latestAt: NOW }],
      },
    });
    const snapshot = snapshotOf(types);
    const html = renderStatusPage(snapshot);
    const order = [...html.matchAll(/<details class="type( problem)?" data-type="([^"]+)"( open)?>/g)];
    expect(order).toHaveLength(100);
    expect(order.slice(0, 2).map((m) => [m[2], m[1], m[3]])).toEqual([
      ['type_042', ' problem', ' open'],
      ['type_077', ' problem', ' open'],
    ]);
    expect(order.slice(2).every((m) => m[3] === undefined)).toBe(true); // the healthy 98 start closed
    expect(html.indexOf('id="summary"')).toBeLessThan(html.indexOf('<details'));
    expect(html).toMatch(/<b>100<\/b> types · <b class="bad">2 with problems<\/b>/);
    expect(html).toContain('dead letters: 3 in 1 type(s)');

    const filtered = renderStatusPage(snapshot, { q: 'TYPE_01' });
    expect(filtered).toContain('showing 10 of 100 types');
    expect([...filtered.matchAll(/<details[^>]* open>/g)]).toHaveLength(10); // ten or fewer shown: all open
    const problems = renderStatusPage(snapshot, { problemsOnly: true });
    expect(problems).toContain('showing 2 of 100 types');

    const bytes = Buffer.byteLength(html);
    const gzipped = gzipSync(html).length;
    process.stdout.write(`status page, 100 types x 12 windows: ${bytes} bytes, ${gzipped} gzipped\n`);
    expect(bytes).toBeLessThan(200_000);
    expect(gzipped).toBeLessThan(20_000);
  });

  test('the same snapshot renders the same bytes', () => {
    const s = snapshotOf([typeView('a'), typeView('b')]);
    expect(renderStatusPage(s)).toBe(renderStatusPage(s));
  });
});

describe('window states and problems', () => {
  const base = { start: NOW - 2 * MINUTE, end: NOW - MINUTE, graceMs: 10_000, planned: false, stagedFiles: 0 };

  test.each([
    ['watermark before end + grace', { watermark: NOW - MINUTE + 9_999, lastClosed: NOW - 3 * MINUTE }, 'open'],
    ['no watermark yet', { watermark: undefined, lastClosed: undefined }, 'open'],
    ['a committed plan', { watermark: NOW - MINUTE, lastClosed: NOW - 3 * MINUTE, planned: true }, 'finalizing'],
    ['closable after the cursor', { watermark: NOW - MINUTE + 10_000, lastClosed: NOW - 3 * MINUTE }, 'finalizing'],
    ['closable, no cursor, staged files', { watermark: NOW, lastClosed: undefined, stagedFiles: 2 }, 'finalizing'],
    ['closable, no cursor, nothing staged', { watermark: NOW, lastClosed: undefined }, 'none'],
  ] as const)('%s', (_label, facts, state) => {
    expect(unclosedWindowState({ ...base, ...facts })).toBe(state);
  });

  test('problems: no live lease, a stale lease, lag past the grace, dead letters; none when healthy', () => {
    const healthy = typeView('t');
    expect(problemsOf(healthy, NOW)).toEqual([]);
    const sick = typeView('t', {
      leases: [
        { identity: 'a.1', state: 'stale', watermark: NOW - 60_000, renewedAt: NOW - 40_000 },
        { identity: 'b.1', state: 'expired', watermark: null, renewedAt: NOW - 400_000 },
      ],
      watermark: NOW - 60_000,
      deadLetters: { count: 2, days: [], reasons: [], read: 0 },
    });
    expect(problemsOf(sick, NOW, 'STORAGE_UNAVAILABLE')).toEqual([
      'store read failed: STORAGE_UNAVAILABLE',
      'no live replica: the watermark cannot move',
      'replica a.1 stale: holds the watermark',
      'watermark 60 s behind, past the grace: windows close late',
      '2 dead letter(s)',
    ]);
  });
});
