import { Defaults, loadConfig, setting, type ConfigOf } from '@hourglass/common';

/**
 * The store's own settings, read by createStore for any process that opens a store (consumer,
 * CLI), from the environment or the HOURGLASS_CONFIG file; a bad value fails CONFIG_INVALID
 * when the store is created, at start-up.
 */
export const storeSettings = {
  /** Bound on one GCS request with its retries (ms). */
  timeoutMs: setting.duration('HOURGLASS_STORE_TIMEOUT', Defaults.storeTimeout, 1),
  /** Deletes in flight at once in deleteMany. */
  deleteParallelism: setting.int('HOURGLASS_STORE_DELETE_PARALLELISM', Defaults.storeDeleteParallelism, 1, 1000),
};

export type StoreSettings = ConfigOf<typeof storeSettings>;

export function loadStoreSettings(env: Record<string, string | undefined> = process.env): StoreSettings {
  return loadConfig(storeSettings, env);
}
