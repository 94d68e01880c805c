import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, sleep, FULL } from './pipeline';

/**
 * A consumer SIGKILLed mid-window (held messages unacked, staged files half written), then
 * restarted with a crash hook that kills it again right after it writes its first final
 * file (mid-finalize), then restarted for good. Every acked event must be in a closed
 * window exactly once.
 */
jest.setTimeout(420_000);

test('consumer SIGKILL mid-window and mid-finalize: lost 0, duplicated 0', async () => {
  const p = await Pipeline.start({ consumers: 1, store: 'local' });
  const ledger = new Ledger();
  try {
    const consumer = p.consumers[0]!;
    let killedMidWindow = false;
    await runTraffic(p, ledger, {
      durationMs: FULL ? 90_000 : 25_000,
      ratePerSec: FULL ? 4000 : 2000,
      during: async (elapsed) => {
        if (!killedMidWindow && elapsed > 8_000) {
          killedMidWindow = true;
          consumer.signal('SIGKILL');
          await consumer.exited();
          // Mid-finalize: the restarted replica kills itself after its first final file.
          consumer.restart({ HOURGLASS_TEST_CRASH_AFTER: 'part-written' });
        }
      },
    });
    // Wait for the hook to fire (it fires at the first finalize), then restart without it.
    await consumer.exited(150_000);
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
