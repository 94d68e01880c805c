import type { BucketRecord, StoredObject } from './state.js';

/** JSON-API resources as GCS renders them (numbers that can exceed 2^53 are strings). */
export function objectResource(obj: StoredObject, origin: string): Record<string, unknown> {
  const encoded = encodeURIComponent(obj.name);
  return {
    kind: 'storage#object',
    id: `${obj.bucket}/${obj.name}/${obj.generation}`,
    selfLink: `${origin}/storage/v1/b/${obj.bucket}/o/${encoded}`,
    mediaLink: `${origin}/download/storage/v1/b/${obj.bucket}/o/${encoded}?generation=${obj.generation}&alt=media`,
    name: obj.name,
    bucket: obj.bucket,
    generation: obj.generation,
    metageneration: String(obj.metageneration),
    contentType: obj.contentType,
    storageClass: 'STANDARD',
    size: String(obj.data.length),
    ...(obj.md5Hash === undefined ? {} : { md5Hash: obj.md5Hash }),
    crc32c: obj.crc32c,
    ...(obj.componentCount === undefined ? {} : { componentCount: obj.componentCount }),
    etag: Buffer.from(`${obj.generation}/${obj.metageneration}`).toString('base64'),
    timeCreated: obj.timeCreated,
    updated: obj.updated,
    timeStorageClassUpdated: obj.timeCreated,
    ...(obj.metadata === undefined ? {} : { metadata: obj.metadata }),
  };
}

export function bucketResource(bucket: BucketRecord, origin: string): Record<string, unknown> {
  return {
    kind: 'storage#bucket',
    id: bucket.name,
    selfLink: `${origin}/storage/v1/b/${bucket.name}`,
    name: bucket.name,
    projectNumber: '0',
    metageneration: '1',
    location: 'US',
    storageClass: 'STANDARD',
    etag: 'CAE=',
    timeCreated: bucket.timeCreated,
    updated: bucket.timeCreated,
  };
}

export function errorResource(status: number, reason: string, message: string): Record<string, unknown> {
  return { error: { code: status, message, errors: [{ domain: 'global', reason, message }] } };
}
