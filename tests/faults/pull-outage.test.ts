import { TcpProxy } from '../support/tcp-proxy';
import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, untilWindowPhase, FULL, WINDOW_MS } from './pipeline';

/**
 * The consumer cannot reach Pub/Sub (a TCP proxy between it and the emulator is cut: Pulls
 * fail) while the gateway keeps publishing, for longer than the grace, across a window's end.
 * An empty or failed Pull is no proof that nothing is waiting: the replica must not count as
 * idle (its watermark holds) until Pulls succeed again, so the window stays open for the events
 * waiting in Pub/Sub. Counted: late 0 (before: the replica's idle watermark passed the window's
 * end + grace during the cut, the window closed, and its waiting events came back late).
 */
jest.setTimeout(420_000);

test('Pulls fail across a window end for longer than the grace: late 0, lost 0', async () => {
  const p = await Pipeline.start({ consumers: 0, store: 'local' });
  const proxy = await TcpProxy.start(p.emulator.host);
  const ledger = new Ledger();
  try {
    await p.addConsumer({ PUBSUB_EMULATOR_HOST: proxy.host });
    const cutAfter = 5_000;
    const cutMs = FULL ? 30_000 : 12_000; // grace 3 s, idle after 1 s
    let cutAt: number | undefined;
    let restored = false;
    // the cut starts 5 s before a window's end
    await untilWindowPhase(WINDOW_MS - 5_000 - cutAfter);
    await runTraffic(p, ledger, {
      durationMs: FULL ? 60_000 : 25_000,
      ratePerSec: FULL ? 3000 : 1500,
      during: async (elapsed) => {
        if (cutAt === undefined && elapsed >= cutAfter) {
          cutAt = elapsed;
          await proxy.cut();
        } else if (cutAt !== undefined && !restored && elapsed - cutAt >= cutMs) {
          restored = true;
          await proxy.restore();
        }
      },
    });
    expect(restored).toBe(true);
    const t = await settle(p, ledger);
    const failedPulls = p.log('consumer-0').split('"msg":"pull failed; retrying"').length - 1;
    expectNothingLost('pull-outage', t, `, Pulls cut for ${cutMs / 1000} s, failed Pulls ${failedPulls}`);
    expect(failedPulls).toBeGreaterThan(0);
    expect(t.late).toBe(0);
  } finally {
    await p.stop();
    await proxy.stop();
  }
});
