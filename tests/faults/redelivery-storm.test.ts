import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, FULL } from './pipeline';

/**
 * A redelivery storm: one of two replicas is frozen (SIGSTOP) for longer than the ack
 * deadline while it holds messages, so Pub/Sub redelivers them to the other replica; then
 * it wakes up and stages its stale copies too. Duplicates must be dropped at finalize and
 * a zombie's late writes must never change a closed window.
 */
jest.setTimeout(420_000);

test('ack deadlines expire while a replica is frozen: lost 0, duplicated 0', async () => {
  const p = await Pipeline.start({ consumers: 2, store: 'local' });
  const ledger = new Ledger();
  try {
    const slow = p.consumers[1]!;
    let frozenAt: number | undefined;
    let thawed = false;
    await runTraffic(p, ledger, {
      durationMs: FULL ? 90_000 : 35_000,
      ratePerSec: FULL ? 4000 : 2000,
      during: (elapsed) => {
        if (frozenAt === undefined && elapsed > 5_000) {
          frozenAt = elapsed;
          slow.signal('SIGSTOP');
        } else if (frozenAt !== undefined && !thawed && elapsed - frozenAt >= 20_000) {
          thawed = true;
          slow.signal('SIGCONT');
        }
      },
    });
    expect(thawed).toBe(true);
    const t = await settle(p, ledger);
    expectNothingLost('redelivery-storm', t);
  } finally {
    await p.stop();
  }
});
