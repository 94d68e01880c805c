import { Ledger, Pipeline, expectAllAccepted, expectNothingLost, runTraffic, settle, FULL } from './pipeline';

/**
 * Two consumer replicas write to GCS (the real client against our JSON-API fake) while the
 * fake answers 10% of requests with 503, delays every answer, and answers 503 to some writes
 * it did store: staging retries or nacks, finalize retries, and nothing is lost or doubled.
 * Counted: every event sent was accepted, and closed windows hold exactly the accepted ones.
 */
jest.setTimeout(420_000);

test('GCS store with injected 503s, 503s after the write and slow answers, two replicas: stored = accepted = sent, lost 0, duplicated 0', async () => {
  const p = await Pipeline.start({ consumers: 2, store: 'gcs' });
  const ledger = new Ledger();
  const durationMs = FULL ? 90_000 : 25_000;
  const ratePerSec = FULL ? 3000 : 1500;
  try {
    const fake = p.gcsFake!;
    fake.faults.failRate(0.1, { seed: 7 });
    fake.faults.delay(50);
    fake.faults.failAfterCommit(20, 503, { routes: ['upload.multipart'] });
    await runTraffic(p, ledger, { durationMs, ratePerSec });
    expectAllAccepted(ledger); // the gateway is not under fault: every event sent is accepted
    const t = await settle(p, ledger);
    expect(fake.faults.fired.failed).toBeGreaterThan(0);
    expect(fake.faults.fired.failedAfterCommit).toBe(20);
    expectNothingLost(
      'gcs-503s-two-replicas',
      t,
      `, 503s injected ${fake.faults.fired.failed}, after the write ${fake.faults.fired.failedAfterCommit}, ` +
        `store requests ${JSON.stringify(fake.requests.byOperation())}`,
    );
    expect(t.stored).toBe(t.accepted);
    // the load was real: at least half of what was offered was sent (and so accepted)
    expect(t.accepted).toBeGreaterThan((durationMs / 1000) * ratePerSec * 0.5);
  } finally {
    await p.stop();
  }
});
