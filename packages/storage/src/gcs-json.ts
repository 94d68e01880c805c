import type { Bucket } from '@google-cloud/storage';

export type BucketRequest = Parameters<Bucket['request']>[0];

/**
 * One JSON-API call under the bucket (`uri` relative to `/b/<bucket>`), through the client's
 * own authenticated request path: its credentials, retries, timeout and STORAGE_EMULATOR_HOST
 * handling, for calls the library has no method for (folders) or answers we read raw (lists
 * with `fields`, whose items the library hands back untyped).
 */
export async function bucketJson<T>(bucket: Bucket, options: BucketRequest): Promise<T> {
  const [body] = await bucket.request(options);
  return body as T;
}
