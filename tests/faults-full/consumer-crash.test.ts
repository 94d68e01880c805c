import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, sleep, FULL } from '../faults/pipeline';

/**
 * A consumer SIGKILLed mid-window (holding messages not yet in a durable staged file),
 * restarted with a crash hook that kills it again right after it writes its first final
 * file (mid-finalize), then restarted for good. Every acked event must be in a closed
 * window exactly once, and the crashed finalize must be completed by the rerun.
 *
 * Not in CI's `make test` (only `make test-faults`): this emulator logs NoSuchMethodError in
 * onRstStreamRead when a subscriber's connection is reset, and then sometimes never hands the
 * dead subscriber's unacked messages to the restarted one within minutes (2 of 4 runs in the
 * CI form left 45 and 500 acked events undelivered by Pub/Sub after 150 s; 3 local runs
 * passed). Cloud Pub/Sub redelivers after the ack deadline. The same kill is covered in CI by
 * tests/consumer/crash.test.ts (published before the kill) and tests/faults/two-replicas.test.ts.
 */
jest.setTimeout(420_000);

test('consumer SIGKILL mid-window and mid-finalize: lost 0, duplicated 0', async () => {
  const p = await Pipeline.start({ consumers: 1, store: 'local' });
  const ledger = new Ledger();
  try {
    const consumer = p.consumers[0]!;
    await runTraffic(p, ledger, { durationMs: FULL ? 90_000 : 25_000, ratePerSec: FULL ? 4000 : 2000 });
    // Mid-window: the window is open and the consumer still holds the last part files' messages.
    consumer.signal('SIGKILL');
    await consumer.exited();
    // Mid-finalize: the restarted replica kills itself after its first final file.
    consumer.restart({ HOURGLASS_TEST_CRASH_AFTER: 'part-written' });
    await consumer.exited(180_000);
    expect(p.log('consumer-0')).toContain('HOURGLASS_TEST_CRASH_AFTER');
    consumer.restart({ HOURGLASS_TEST_CRASH_AFTER: '' });
    await sleep(1000);
    const t = await settle(p, ledger);
    expect(t.accepted).toBeGreaterThan(10_000);
    expectNothingLost('consumer-crash', t);
  } finally {
    await p.stop();
  }
});
