import {
  Ledger,
  Pipeline,
  deliveries,
  expectAllAccepted,
  expectNothingLost,
  heldMessages,
  lastLoggedAt,
  runTraffic,
  settle,
  FULL,
} from './pipeline';

/**
 * A redelivery storm: one of two replicas is frozen (SIGSTOP) for longer than the ack
 * deadline while it holds messages, so Pub/Sub redelivers them to the other replica; then
 * it wakes up and stages its stale copies too. Duplicates must be dropped at finalize and
 * a zombie's late writes must never change a closed window.
 * The replica to freeze stages every 5 s (the other every 500 ms), so it holds unacked messages
 * most of the time, and it is frozen only at a moment its log shows some held: frozen with none
 * (as happened when it was frozen at a fixed time) Pub/Sub has nothing to redeliver, and not
 * within a second of a staged write, whose messages are being acked.
 * Counted: every event sent was accepted and stored once, and messages really were delivered twice.
 */
jest.setTimeout(420_000);

test('ack deadlines expire while a replica is frozen: redelivered > 0, stored = accepted = sent, lost 0, duplicated 0', async () => {
  const p = await Pipeline.start({ consumers: 1, store: 'local' });
  const ledger = new Ledger();
  try {
    const slow = await p.addConsumer({ HOURGLASS_STAGE_MAX_AGE: '5s' });
    let frozenAt: number | undefined;
    let heldWhenFrozen = 0;
    let thawed = false;
    await runTraffic(p, ledger, {
      durationMs: FULL ? 90_000 : 40_000,
      ratePerSec: FULL ? 4000 : 2000,
      during: (elapsed) => {
        if (frozenAt === undefined && elapsed > 5_000) {
          // Not while a staged file is written and its messages acked: frozen then, the messages
          // its log still shows held were acked a moment later (held 9, redelivered 0 in one CI
          // run). A second after a write, what it holds waits for the next write, seconds away.
          const written = lastLoggedAt(p, slow, 'staged file written');
          if (written === undefined || Date.now() - written < 1_000) return;
          heldWhenFrozen = heldMessages(p, slow);
          if (heldWhenFrozen === 0) return;
          frozenAt = elapsed;
          slow.signal('SIGSTOP');
        } else if (frozenAt !== undefined && !thawed && elapsed - frozenAt >= 20_000) {
          thawed = true;
          slow.signal('SIGCONT');
        }
      },
    });
    expect(thawed).toBe(true);
    expectAllAccepted(ledger); // the gateway is not under fault: every event sent is accepted
    const t = await settle(p, ledger);
    const { received, redelivered } = deliveries(p);
    expectNothingLost(
      'redelivery-storm',
      t,
      `, held when frozen ${heldWhenFrozen}, messages received ${received}, of which redeliveries ${redelivered}`,
    );
    expect(t.stored).toBe(t.accepted);
    expect(redelivered).toBeGreaterThan(0); // the frozen replica's messages went to the other one
    expect(t.duplicatesDropped).toBeGreaterThan(0); // and both staged them: finalize dropped the copies
  } finally {
    await p.stop();
  }
});
