import { deadLetterName } from '@hourglass/bucket-format';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '@hourglass/common';
import { StatusCollector } from '@hourglass/consumer/status/collector';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import { GRACE, MINUTE, NOW, win, writeType } from './status-store';

/**
 * The status page's collector against a real directory store written with the consumer's own
 * layout: what it reports for each window, lease and dead letter, and how many store reads a view
 * costs (counted by a wrapper around the store, not by the collector's own figure).
 */
function countingStore(store: ObjectStore): { store: ObjectStore; reads: () => number } {
  let reads = 0;
  const counted = (name: 'get' | 'list' | 'listChildren' | 'exists') =>
    ((...args: [string]) => {
      reads++;
      return (store[name] as (a: string) => Promise<unknown>)(...args);
    }) as never;
  return {
    store: Object.assign(Object.create(store) as ObjectStore, {
      get: counted('get'),
      list: counted('list'),
      listChildren: counted('listChildren'),
      exists: counted('exists'),
    }),
    reads: () => reads,
  };
}

function collectorFor(store: ObjectStore, clock: ManualClock, eventTypes: string[]): StatusCollector {
  return new StatusCollector({
    store,
    clock,
    eventTypes,
    windowMs: MINUTE,
    graceFor: () => GRACE,
    replicaId: 'me',
    ttlMs: 5_000,
  });
}

describe('status collector on a directory store', () => {
  test('window states, manifest counts, leases and dead letters with their reasons and windows', async () => {
    const dir = new LocalDirectoryStore(mkdtempSync(join(tmpdir(), 'hourglass-status-')));
    await writeType(dir, 'page_viewed', 2);
    const deadLetter = (id: string, code: string, message: string, gatewayTs: number, receivedAt: number) =>
      dir.createIfAbsent(
        deadLetterName('page_viewed', '2026-01-01', id),
        Buffer.from(
          JSON.stringify({
            messageId: id,
            receivedAt: new Date(receivedAt).toISOString(),
            reason: { code, message },
            attributes: { gateway_ts: String(gatewayTs) },
            dataBase64: '',
          }),
        ),
      );
    await deadLetter('m1', 'SCHEMA_UNKNOWN', 'fingerprint abc is not a known version', win(5).start + 5, NOW - 3000);
    await deadLetter('m2', 'SCHEMA_UNKNOWN', 'fingerprint abc is not a known version', win(5).start + 9, NOW - 2000);
    await deadLetter('m3', 'DECODE_FAILED', '<b>truncated</b>', win(7).start + 1, NOW - 1000);

    const clock = new ManualClock(NOW);
    const s = await collectorFor(dir, clock, ['page_viewed']).snapshot();
    const t = s.types[0]!;
    expect(t.windows.map((w) => [new Date(w.start).toISOString().slice(11, 16), w.state])).toEqual([
      ['12:01', 'closed'],
      ['12:02', 'closed'],
      ['12:03', 'empty'],
      ['12:04', 'closed'],
      ['12:05', 'closed'],
      ['12:06', 'closed'],
      ['12:07', 'closed'],
      ['12:08', 'closed'],
      ['12:09', 'finalizing'], // plan committed
      ['12:10', 'finalizing'], // closable, staged, no plan yet
      ['12:11', 'open'],
      ['12:12', 'open'],
    ]);
    expect(t.windows[4]).toMatchObject({ records: 15, late: 2, deadLetters: 2 });
    expect(t.windows[6]).toMatchObject({ deadLetters: 1 });
    expect(t.windows[9]).toMatchObject({ stagedFiles: 1 });
    expect(t.lastClosed).toBe(win(8).start);
    expect(t.watermark).toBe(win(10).end + GRACE + 1);
    expect(t.leases.map((l) => [l.identity, l.state])).toEqual([
      ['r0.inc', 'live'],
      ['r1.inc', 'stale'],
    ]);
    expect(t.deadLetters).toMatchObject({ count: 3, read: 3, days: ['2026-01-01'] });
    expect(t.deadLetters.reasons.map((r) => [r.code, r.count])).toEqual([
      ['DECODE_FAILED', 1],
      ['SCHEMA_UNKNOWN', 2],
    ]);
    expect(t.problems).toEqual([
      'replica r1.inc stale: holds the watermark',
      'watermark 70 s behind, past the grace: windows close late',
      '3 dead letter(s)',
    ]);
  });

  test('store reads: none for a view within the ttl; per refresh one lease listing and its gets, whatever the types', async () => {
    const dir = new LocalDirectoryStore(mkdtempSync(join(tmpdir(), 'hourglass-status-')));
    const types = Array.from({ length: 100 }, (_, i) => `type_${i}`);
    for (const type of types) await writeType(dir, type, 1); // one replica lease gains each type in turn
    const { store, reads } = countingStore(dir);
    const clock = new ManualClock(NOW);
    const collector = collectorFor(store, clock, types);

    const first = await collector.snapshot();
    // one listing of _watermarks/ and the one replica lease in it; then per type: cursor,
    // 8 manifests (12:01..12:08; cached for good), 12:09 and 12:10 (no manifest yet: a get and a
    // staging folder listing each), dead letters of the day
    const firstReads = 2 + 100 * (1 + 8 + 2 * 2 + 1);
    expect(reads()).toBe(firstReads);
    expect(first.storeReads).toBe(reads());
    expect(first.types.every((t) => t.leases.length === 1)).toBe(true);

    clock.advance(4_999);
    const again = await collector.snapshot();
    expect(again).toBe(first);
    expect(reads()).toBe(firstReads); // within the ttl: no read

    const [a, b] = await Promise.all([(clock.advance(1), collector.snapshot()), collector.snapshot()]);
    expect(a).toBe(b); // concurrent views share one refresh
    // manifests are not read again; the dead-letter listing waits 30 s
    expect(reads() - firstReads).toBe(2 + 100 * (1 + 2 * 2));
    process.stdout.write(
      `status page, 100 types: first refresh ${firstReads} store reads, then ${reads() - firstReads} per refresh\n`,
    );
  });

  test('the manifest of a served type and closed window, nothing else', async () => {
    const dir = new LocalDirectoryStore(mkdtempSync(join(tmpdir(), 'hourglass-status-')));
    await writeType(dir, 'page_viewed', 1);
    const collector = collectorFor(dir, new ManualClock(NOW), ['page_viewed']);
    const bytes = await collector.manifest('page_viewed', win(2).start);
    expect(JSON.parse(bytes!.toString())).toMatchObject({ eventType: 'page_viewed', counts: { records: 12 } });
    expect(await collector.manifest('page_viewed', win(9).start)).toBeUndefined(); // not closed
    expect(await collector.manifest('page_viewed', win(2).start + 1)).toBeUndefined(); // not a window
    expect(await collector.manifest('track_played', win(2).start)).toBeUndefined(); // not served
    expect(await collector.manifest('../_watermarks/page_viewed', win(2).start)).toBeUndefined();
  });
});
