import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, untilWindowPhase, FULL, WINDOW_MS } from './pipeline';

/**
 * Pub/Sub unreachable for ten seconds under load. The emulator keeps messages only in
 * memory, so killing it would lose what Cloud Pub/Sub would have kept durably; instead we
 * freeze its JVM (SIGSTOP/SIGCONT): publishes time out, the gateway answers `retry`,
 * the consumer's pulls stall. Clients retry with the same ids; nothing accepted is lost.
 * The freeze spans a window's end, and the clients of two rounds sent just before it "lose"
 * their answers and send the same events again 10 s later: stamped anew, those copies land
 * in the next window, so finalize must drop them across windows (the dedup horizon) or
 * store them twice. (A publish that reached Pub/Sub just as the JVM stopped does the same
 * on its own, but only when the freeze hits it in flight.)
 * (tests/gateway covers a real emulator stop and restart for the gateway alone.)
 */
jest.setTimeout(420_000);

test('Pub/Sub frozen for 10 s under load: clients retry, lost 0, duplicated 0', async () => {
  const p = await Pipeline.start({ consumers: 1, store: 'local' });
  const ledger = new Ledger();
  try {
    let frozenAt: number | undefined;
    let thawed = false;
    const freezeAfter = 5_000;
    // the freeze starts 5 s before a window's end and lasts 10 s
    await untilWindowPhase(WINDOW_MS - 5_000 - freezeAfter);
    await runTraffic(p, ledger, {
      durationMs: FULL ? 90_000 : 30_000,
      ratePerSec: FULL ? 4000 : 2000,
      loseAnswer: (elapsed) => elapsed >= freezeAfter - 1_000 && elapsed < freezeAfter - 500,
      resendAfterMs: 10_000,
      during: (elapsed) => {
        if (frozenAt === undefined && elapsed >= freezeAfter) {
          frozenAt = elapsed;
          process.kill(p.emulator.pid, 'SIGSTOP');
        } else if (frozenAt !== undefined && !thawed && elapsed - frozenAt >= 10_000) {
          thawed = true;
          process.kill(p.emulator.pid, 'SIGCONT');
        }
      },
    });
    expect(thawed).toBe(true);
    const t = await settle(p, ledger);
    expect(ledger.retried).toBeGreaterThan(0);
    expect(ledger.resentAfterLostAnswer).toBeGreaterThan(0);
    expect(t.failedAtDeadline).toBe(0);
    expectNothingLost(
      'pubsub-frozen-10s',
      t,
      `, client re-sends ${ledger.retried}, re-sent after a lost answer ${ledger.resentAfterLostAnswer}`,
    );
  } finally {
    process.kill(p.emulator.pid, 'SIGCONT');
    await p.stop();
  }
});
