import { start, type GcsFakeOptions, type RunningGcsFake } from '@hourglass/gcs-fake';
import { GcsStore, type GcsStoreOptions } from '@hourglass/storage';
import { uniquePrefix } from '../support/fixtures';

// The client must never look for a GCE metadata server in tests.
process.env.METADATA_SERVER_DETECTION = 'none';

export async function startFake(options: GcsFakeOptions = {}): Promise<RunningGcsFake> {
  return start(options);
}

/**
 * One fake for the whole test file, started before its tests and stopped after them, with
 * faults, counters and the write limit cleared before each test. Returns its accessor.
 */
export function fakePerFile(options: GcsFakeOptions = {}): () => RunningGcsFake {
  let fake: RunningGcsFake | undefined;
  beforeAll(async () => {
    fake = await start(options);
  });
  afterAll(async () => {
    await fake?.stop();
  });
  beforeEach(() => {
    fake?.faults.reset();
    fake?.requests.reset();
    fake?.writeRateLimit.disable();
  });
  return () => {
    if (!fake) throw new Error('the GCS fake is not started yet');
    return fake;
  };
}

/** A unique prefix per test, so tests sharing a fake never see each other's objects. */
export { uniquePrefix };

/**
 * A GcsStore on the fake through the real client over HTTP (apiEndpoint), with retries
 * tuned for tests: backoff capped at the client's 1 s minimum, a few attempts.
 * `timeoutMs` is the store's bound (HOURGLASS_STORE_TIMEOUT); `requestTimeoutMs` sets only the
 * client's per-request timeout, below that bound, so the client's own retries can be seen.
 */
export function storeOn(
  fake: RunningGcsFake,
  options: Partial<GcsStoreOptions> & { maxRetries?: number; requestTimeoutMs?: number } = {},
): GcsStore {
  const { maxRetries = 3, requestTimeoutMs, storage, ...rest } = options;
  return new GcsStore({
    bucket: 'hourglass-test',
    prefix: uniquePrefix(),
    ...rest,
    storage: {
      apiEndpoint: fake.url,
      projectId: 'hourglass-local',
      ...(requestTimeoutMs === undefined ? {} : { timeout: requestTimeoutMs }),
      ...storage,
      retryOptions: { maxRetries, maxRetryDelay: 1, totalTimeout: 30, ...storage?.retryOptions },
    },
  });
}
