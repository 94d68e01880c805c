import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, FULL } from './pipeline';

/**
 * Two consumer replicas share each subscription; one is SIGKILLed for good mid-load.
 * Its unacked messages come back to the survivor after their ack deadline, its lease
 * holds the global watermark until it expires, and then the survivor closes every window.
 *
 * It passes on the emulator only with unary short polls (see consumer-crash.test.ts).
 */
jest.setTimeout(420_000);

test('two replicas, one killed for good: the other closes every window, lost 0, duplicated 0', async () => {
  const p = await Pipeline.start({ consumers: 2, store: 'local' });
  const ledger = new Ledger();
  try {
    const doomed = p.consumers[1]!;
    await runTraffic(p, ledger, {
      durationMs: FULL ? 90_000 : 25_000,
      ratePerSec: FULL ? 4000 : 2000,
      during: (elapsed) => {
        if (elapsed > 10_000 && doomed.running) doomed.signal('SIGKILL');
      },
    });
    expect(doomed.running).toBe(false);
    const t = await settle(p, ledger);
    expect(t.accepted).toBeGreaterThan(10_000);
    expectNothingLost('two-replicas-one-killed', t);
  } finally {
    await p.stop();
  }
});
