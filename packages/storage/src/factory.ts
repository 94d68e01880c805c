import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HourglassError } from '@hourglass/common';
import { GcsStore, type GcsStoreOptions } from './gcs.js';
import { LocalDirectoryStore } from './local.js';
import { loadStoreSettings } from './settings.js';
import type { ObjectStore } from './store.js';

export interface CreateStoreOptions {
  /** Tuning for a `gs://` store (client options, thresholds); bucket and prefix come from the URL. */
  gcs?: Omit<GcsStoreOptions, 'bucket' | 'prefix'>;
  /** Where HOURGLASS_STORE_TIMEOUT and HOURGLASS_STORE_DELETE_PARALLELISM are read (default process.env). */
  env?: Record<string, string | undefined>;
}

/**
 * The store a URL names: `gs://bucket/prefix` → GcsStore (the client honours
 * STORAGE_EMULATOR_HOST, so tests reach the GCS fake); `file:///path` or a plain path →
 * LocalDirectoryStore. Store settings (storeSettings) are read and checked here.
 */
export function createStore(url: string, options: CreateStoreOptions = {}): ObjectStore {
  const settings = loadStoreSettings(options.env);
  if (url.startsWith('gs://')) {
    const [bucket = '', ...rest] = url.slice('gs://'.length).split('/');
    if (!/^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$/.test(bucket)) {
      throw new HourglassError('CONFIG_INVALID', `store URL ${JSON.stringify(url)} has no valid bucket name`);
    }
    return new GcsStore({ ...settings, ...options.gcs, bucket, prefix: rest.join('/') });
  }
  if (url.startsWith('file:')) {
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (e) {
      throw new HourglassError('CONFIG_INVALID', `store URL ${JSON.stringify(url)} is not a valid file URL`, {
        cause: e,
      });
    }
    return new LocalDirectoryStore(path, settings);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new HourglassError('CONFIG_INVALID', `store URL ${JSON.stringify(url)}: only gs://, file:// or a path`);
  }
  if (url.trim() === '') throw new HourglassError('CONFIG_INVALID', 'store URL is empty');
  return new LocalDirectoryStore(resolve(url), settings);
}
