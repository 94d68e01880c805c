import type { Bucket } from '@google-cloud/storage';
import { HourglassError } from '@hourglass/common';
import { withDeadline } from './deadline.js';
import { httpStatusOf, toStoreError } from './gcs-errors.js';
import { bucketJson, type BucketRequest } from './gcs-json.js';
import type { RenameFolderResult } from './store.js';

/** A long-running operation of the JSON API (`storage#operation`), as far as we read it. */
interface Operation {
  name?: string;
  done?: boolean;
  error?: { code?: number; message?: string };
}

/** First and longest pause between two polls of a folder-rename operation. */
const FIRST_POLL_MS = 50;
const MAX_POLL_MS = 1000;

/** Renames retried when the destination was an empty folder we removed first. */
const MAX_RENAME_ATTEMPTS = 3;

/** gRPC codes an operation's error may carry (google.rpc.Status), next to the HTTP ones. */
const GRPC_NOT_FOUND = 5;
const GRPC_ALREADY_EXISTS = 6;

/**
 * The folder calls of a hierarchical-namespace bucket (folders.insert/get/delete/rename and
 * operations.get). The client library has none, so they go through the bucket's own
 * authenticated request path: same credentials, retries, timeout and STORAGE_EMULATOR_HOST
 * handling as object calls. `key`s are full folder names in the bucket, ending with '/'.
 */
export class GcsFolders {
  constructor(
    private readonly bucket: Bucket,
    private readonly timeoutMs: number,
  ) {}

  /**
   * folders.rename, then polls its operation. The POST itself is not retried by the client:
   * a retry after a lost answer would meet our own rename and say "source missing". We check
   * instead: source gone and destination there means the lost attempt renamed it.
   */
  async rename(from: string, to: string): Promise<RenameFolderResult> {
    await this.ensure(parentOf(to));
    for (let attempt = 1; ; attempt++) {
      let operation: Operation;
      try {
        operation = await this.call<Operation>('renameFolder', from, {
          method: 'POST',
          uri: `/folders/${encodeURIComponent(from)}/renameTo/folders/${encodeURIComponent(to)}`,
          maxRetries: 0,
        });
      } catch (e) {
        const status = httpStatusOf(e);
        if (status === 409 && attempt < MAX_RENAME_ATTEMPTS && (await this.removeIfEmpty(to))) {
          continue; // an empty destination folder is free to take, as a directory is for rename(2)
        }
        const settled = outcomeOf(status);
        if (settled !== undefined) return settled;
        if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
          throw toStoreError(e, 'renameFolder', from);
        }
        if (!(await this.exists(from)) && (await this.exists(to))) return 'renamed';
        throw toStoreError(e, 'renameFolder', from);
      }
      return this.await(operation, from);
    }
  }

  /** Creates folder `key` and its missing parents; an existing one is fine. */
  async ensure(key: string): Promise<void> {
    if (key === '') return;
    try {
      await this.call('createFolder', key, {
        method: 'POST',
        uri: '/folders',
        qs: { recursive: true },
        json: { name: key },
      });
    } catch (e) {
      if (httpStatusOf(e) !== 409) throw toStoreError(e, 'createFolder', key);
    }
  }

  /** Deletes folder `key` when it is empty: true when it is gone now. */
  async delete(key: string): Promise<boolean> {
    try {
      await this.call('deleteFolder', key, { method: 'DELETE', uri: `/folders/${encodeURIComponent(key)}` });
      return true;
    } catch (e) {
      const status = httpStatusOf(e);
      if (status === 404) return true;
      if (status === 409 || status === 412) return false; // not empty
      throw toStoreError(e, 'deleteFolder', key);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.call('getFolder', key, { method: 'GET', uri: `/folders/${encodeURIComponent(key)}` });
      return true;
    } catch (e) {
      if (httpStatusOf(e) === 404) return false;
      throw toStoreError(e, 'getFolder', key);
    }
  }

  private async removeIfEmpty(key: string): Promise<boolean> {
    const page = await this.call<{ items?: unknown[] }>('list', key, {
      uri: '/o',
      qs: { prefix: key, maxResults: 1, fields: 'items(name)' },
    });
    return (page.items ?? []).length === 0 && (await this.delete(key));
  }

  /** Polls the operation with a doubling pause until done, within the store timeout. */
  private async await(first: Operation, from: string): Promise<RenameFolderResult> {
    const id = first.name?.slice(first.name.lastIndexOf('/') + 1) ?? '';
    const giveUpAt = Date.now() + this.timeoutMs;
    return withDeadline(this.timeoutMs, `GCS renameFolder ${JSON.stringify(from)}`, from, async () => {
      let operation = first;
      for (let pause = FIRST_POLL_MS; operation.done !== true; pause = Math.min(pause * 2, MAX_POLL_MS)) {
        await new Promise((r) => setTimeout(r, pause));
        if (Date.now() >= giveUpAt) {
          // Past the bound (the caller already has its answer): stop polling.
          throw new HourglassError('STORAGE_UNAVAILABLE', `GCS renameFolder ${JSON.stringify(from)}: still running`, {
            path: from,
          });
        }
        try {
          operation = await this.call<Operation>('renameFolder', from, {
            method: 'GET',
            uri: `/operations/${encodeURIComponent(id)}`,
          });
        } catch (e) {
          // The client turns a finished operation's `error` (in a 200 answer) into an exception.
          const failed = operationErrorOf(e);
          if (failed === undefined) throw toStoreError(e, 'renameFolder', from);
          operation = { done: true, error: failed };
        }
      }
      const code = operation.error?.code;
      if (code === undefined) return 'renamed';
      const settled = outcomeOf(code);
      if (settled !== undefined) return settled;
      throw new HourglassError(
        'STORAGE_UNAVAILABLE',
        `GCS renameFolder ${JSON.stringify(from)} failed: ${operation.error?.message ?? `code ${code}`}`,
        { path: from },
      );
    });
  }

  /** One JSON-API call on the bucket, bounded by the store timeout. */
  private async call<T>(op: string, key: string, options: BucketRequest): Promise<T> {
    return withDeadline(this.timeoutMs, `GCS ${op} ${JSON.stringify(key)}`, key, () =>
      bucketJson<T>(this.bucket, options),
    );
  }
}

/** The answer a refused rename gives: HTTP status of the call, or (gRPC or HTTP) code of its operation. */
function outcomeOf(code: number | undefined): RenameFolderResult | undefined {
  if (code === 409 || code === GRPC_ALREADY_EXISTS) return 'target-exists';
  if (code === 404 || code === GRPC_NOT_FOUND) return 'source-missing';
  return undefined;
}

/** The error of a finished operation, when `e` is the client's exception for a 200 answer carrying one. */
function operationErrorOf(e: unknown): { code: number; message: string } | undefined {
  const err = e as { code?: unknown; message?: unknown; response?: { statusCode?: unknown } } | null;
  if (err?.response?.statusCode !== 200 || typeof err.code !== 'number') return undefined;
  return { code: err.code, message: String(err.message) };
}

/** `a/b/c/` → `a/b/`; a top-level folder has no parent (''). */
function parentOf(folder: string): string {
  const inner = folder.slice(0, -1);
  return inner.slice(0, inner.lastIndexOf('/') + 1);
}
