import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, sleep, FULL } from '../faults/pipeline';

/**
 * A consumer SIGKILLed mid-window (holding messages not yet in a durable staged file),
 * restarted with a crash hook that kills it again right after it writes its first final
 * file (mid-finalize), then restarted for good. Every acked event must be in a closed
 * window exactly once, and the crashed finalize must be completed by the rerun.
 *
 * The killed process held messages it had received and not acked: they must come back to the
 * restarted one. With streaming pull this emulator never redelivered them (3 of 4 runs lost
 * 48–762 events). With the consumer's unary pull, 6 of 7 runs lost 0; in the 7th (a CI run on a
 * loaded machine) 239 events in 3 messages received by the killed incarnation never came back,
 * and no Pull returned them after the consumers stopped. On this emulator a Pull left pending by
 * a killed process keeps taking redelivered messages (200 of 200 held ones came back only 9.5–19.5 s
 * after the kill, instead of at the 10 s deadline). Cloud Pub/Sub ends a dead client's calls.
 * So this runs in `make test-faults` only (HOURGLASS_FAULTS=full), not in CI's `make test`.
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
