import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, sleep, FULL } from './pipeline';

/**
 * A consumer SIGKILLed mid-window (holding messages not yet in a durable staged file),
 * restarted with a crash hook that kills it again right after it writes its first final
 * file (mid-finalize), then restarted for good. Every acked event must be in a closed
 * window exactly once, and the crashed finalize must be completed by the rerun.
 *
 * The killed process held messages it had received and not acked: they must come back to the
 * restarted one. On this emulator that needs unary pull without long polls: with streaming pull
 * 3 of 4 runs lost 48–762 events (never redelivered); with long-polling unary pull 1 of 7 lost 239
 * (a Pull left pending by the killed process kept taking their redeliveries); with short polls
 * (HOURGLASS_LONG_POLL=auto on the emulator) 5 of 5 runs lost 0 before this joined CI.
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
