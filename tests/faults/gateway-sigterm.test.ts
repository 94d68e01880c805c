import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, FULL } from './pipeline';

/**
 * The gateway gets SIGTERM under load: it stops accepting, finishes in-flight publishes,
 * answers them and exits. A new gateway takes its port; the clients' retries land there.
 * Every event any gateway answered `accepted` must be in a closed window.
 */
jest.setTimeout(420_000);

test('gateway SIGTERM under load: every accepted event is stored once', async () => {
  const p = await Pipeline.start({ consumers: 1, store: 'local' });
  const ledger = new Ledger();
  try {
    let restarted = false;
    await runTraffic(p, ledger, {
      durationMs: FULL ? 90_000 : 25_000,
      ratePerSec: FULL ? 4000 : 2000,
      during: async (elapsed) => {
        if (!restarted && elapsed > 8_000) {
          restarted = true;
          p.gateway.signal('SIGTERM');
          await p.gateway.exited();
          await p.startGateway();
        }
      },
    });
    expect(p.log('gateway')).toContain('finishing in-flight publishes');
    const t = await settle(p, ledger);
    expect(t.accepted).toBeGreaterThan(10_000);
    expect(t.failedAtDeadline).toBe(0);
    expectNothingLost('gateway-sigterm', t);
  } finally {
    await p.stop();
  }
});
