import { Ledger, Pipeline, describeTally, runTraffic, settle, FULL } from './pipeline';

/**
 * Two consumer replicas share each subscription; one is SIGKILLed for good mid-load.
 * Its unacked messages come back to the survivor after their ack deadline, its lease
 * holds the global watermark until it expires, and then the survivor closes every window.
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
    process.stdout.write(`${describeTally('two-replicas-one-killed', t)}\n`);
    expect(t.accepted).toBeGreaterThan(10_000);
    expect(t.manifestMismatches).toEqual([]);
    expect(t.lost).toBe(0);
    expect(t.duplicated).toBe(0);
    expect(t.unexpected).toBe(0);
  } finally {
    await p.stop();
  }
});
