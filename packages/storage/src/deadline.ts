import { HourglassError } from '@hourglass/common';

/**
 * Runs `work`, but fails STORAGE_UNAVAILABLE (transient) if it has not settled within `ms`:
 * a store call never hangs on a request that is never answered. The work itself goes on in
 * the background (its late result is ignored); every write the stores make is safe to land late.
 */
export async function withDeadline<T>(ms: number, what: string, path: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const running = work();
  running.catch(() => undefined); // a late failure after the deadline is nobody's to handle
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new HourglassError('STORAGE_UNAVAILABLE', `${what}: no answer within ${ms} ms (HOURGLASS_STORE_TIMEOUT)`, {
            path,
          }),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}
