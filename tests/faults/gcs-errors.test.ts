import { Ledger, Pipeline, expectNothingLost, runTraffic, settle, FULL } from './pipeline';

/**
 * The consumer writes to GCS (the real client against our JSON-API fake) while the fake
 * answers 10% of requests with 503 and delays every answer: staging retries or nacks,
 * finalize retries, and nothing is lost or doubled.
 */
jest.setTimeout(420_000);

test('GCS store with injected 503s and slow answers: lost 0, duplicated 0', async () => {
  const p = await Pipeline.start({ consumers: 1, store: 'gcs' });
  const ledger = new Ledger();
  try {
    const fake = p.gcsFake!;
    fake.faults.failRate(0.1, { seed: 7 });
    fake.faults.delay(50);
    await runTraffic(p, ledger, { durationMs: FULL ? 90_000 : 25_000, ratePerSec: FULL ? 3000 : 1500 });
    const t = await settle(p, ledger);
    expect(fake.faults.fired.failed).toBeGreaterThan(0);
    expectNothingLost('gcs-503s', t, `, 503s injected ${fake.faults.fired.failed}`);
  } finally {
    await p.stop();
  }
});
