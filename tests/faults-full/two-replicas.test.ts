import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, FULL } from '../faults/pipeline';

/**
 * Two consumer replicas share each subscription; one is SIGKILLed for good mid-load.
 * Its unacked messages come back to the survivor after their ack deadline, its lease
 * holds the global watermark until it expires, and then the survivor closes every window.
 *
 * Not in CI's `make test` (only `make test-faults`), for the reason given in
 * consumer-crash.test.ts: in 1 of 6 runs the emulator had not handed 757 of the killed
 * replica's messages to the survivor after 150 s. Open question for the next session: prove
 * with a synchronous pull after the settle that such events are still unacked in Pub/Sub.
 * In CI the same kill runs in tests/consumer/crash.test.ts (published before the kill).
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
