import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { folderCall } from './folders.js';
import { parseGoogHash } from './hashes.js';
import {
  type Answer,
  checkClientHashes,
  corrupt,
  download,
  ifGenerationMatchOf,
  isRecord,
  itemFields,
  parseContentRange,
  parseJson,
  preconditions,
  requiredName,
  writableMetadata,
} from './http.js';
import { boundaryOf, parseMultipartRelated } from './multipart.js';
import { bucketResource, objectResource } from './resource.js';
import { ApiError, type FakeState } from './state.js';
import { header, type Target } from './target.js';

/**
 * The JSON-API operations on the fake's state: one request's answer, by route. Faults,
 * the write limit and the HTTP exchange around it are server.ts's; API errors are thrown
 * as ApiError and become their JSON answer there.
 */
export class JsonApi {
  constructor(
    private readonly state: FakeState,
    /** How long a folder rename's operation runs before its one swap. */
    private readonly renameOperationMs: number,
  ) {}

  /**
   * One request's answer, by its route; `corruptMedia` flips a byte of uploaded data (an injected fault).
   * Longer than 80 lines on purpose: it is the route table, one short case per JSON-API route, read
   * side by side with GCS's reference; the longer cases already live in their own methods.
   */
  dispatch(
    t: Target,
    method: string,
    url: URL,
    req: IncomingMessage,
    body: Buffer,
    origin: string,
    corruptMedia: boolean,
  ): Answer {
    const media = (data: Buffer): Buffer => (corruptMedia ? corrupt(data) : data);
    const q = url.searchParams;
    const bucket = t.bucket ?? '';
    const object = t.object ?? '';
    switch (t.route) {
      case 'bucket.insert': {
        const name = parseJson(body).name;
        if (typeof name !== 'string' || name === '') throw new ApiError(400, 'required', 'bucket name required');
        return { status: 200, body: bucketResource(this.state.insertBucket(name), origin), committed: true };
      }
      case 'bucket.get':
        return { status: 200, body: bucketResource(this.state.bucket(bucket), origin) };
      case 'bucket.delete':
        this.state.deleteBucket(bucket);
        return { status: 204, committed: true };
      case 'object.list': {
        const page = this.state.list(bucket, {
          prefix: q.get('prefix') ?? undefined,
          delimiter: q.get('delimiter') ?? undefined,
          maxResults: q.has('maxResults') ? Number(q.get('maxResults')) : undefined,
          pageToken: q.get('pageToken') ?? undefined,
          startOffset: q.get('startOffset') ?? undefined,
          endOffset: q.get('endOffset') ?? undefined,
        });
        return {
          status: 200,
          body: {
            kind: 'storage#objects',
            ...(page.items.length > 0
              ? { items: page.items.map((o) => itemFields(objectResource(o, origin), q.get('fields'))) }
              : {}),
            ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
            ...(page.nextPageToken === undefined ? {} : { nextPageToken: page.nextPageToken }),
          },
        };
      }
      case 'object.get':
        return {
          status: 200,
          body: objectResource(
            this.state.getObject(bucket, object, preconditions(q), q.get('generation') ?? undefined),
            origin,
          ),
        };
      case 'object.download':
        return download(this.state.getObject(bucket, object, preconditions(q), q.get('generation') ?? undefined), req);
      case 'object.patch': {
        const obj = this.state.patchObject(bucket, object, writableMetadata(parseJson(body)), preconditions(q));
        return { status: 200, body: objectResource(obj, origin), committed: true };
      }
      case 'object.delete':
        this.state.deleteObject(bucket, object, preconditions(q));
        return { status: 204, committed: true };
      case 'object.compose': {
        const json = parseJson(body);
        const sources = Array.isArray(json.sourceObjects) ? (json.sourceObjects as Record<string, unknown>[]) : [];
        const obj = this.state.compose(
          bucket,
          object,
          sources.map((s) => ({
            name: String(s.name),
            generation: s.generation === undefined ? undefined : String(s.generation),
            ifGenerationMatch: ifGenerationMatchOf(s.objectPreconditions),
          })),
          writableMetadata(isRecord(json.destination) ? json.destination : {}),
          preconditions(q),
        );
        return { status: 200, body: objectResource(obj, origin), committed: true };
      }
      case 'upload.multipart':
        return this.uploadMultipart(bucket, url, req, body, origin, media);
      case 'upload.media': {
        const name = requiredName(q.get('name'));
        const data = media(body);
        checkClientHashes(data, parseGoogHash(header(req, 'x-goog-hash')));
        const meta = { contentType: header(req, 'content-type') };
        return {
          status: 200,
          body: objectResource(this.state.putObject(bucket, name, data, meta, preconditions(q)), origin),
          committed: true,
        };
      }
      case 'upload.resumable.start': {
        const json = body.length > 0 ? parseJson(body) : {};
        const name = requiredName(q.get('name') ?? (typeof json.name === 'string' ? json.name : null));
        const meta = writableMetadata(json);
        meta.contentType = header(req, 'x-upload-content-type') ?? meta.contentType;
        const id = randomUUID();
        this.state.startSession(id, bucket, name, meta, preconditions(q));
        const location = `${origin}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
        return { status: 200, headers: { location }, body: Buffer.alloc(0) };
      }
      case 'upload.resumable.chunk':
      case 'upload.resumable.status':
        return this.resumableChunk(q.get('upload_id') ?? '', req, media(body), origin);
      case 'folder.insert':
      case 'folder.get':
      case 'folder.delete':
      case 'folder.rename':
      case 'operation.get':
        return folderCall(this.state, t, q, body, origin, this.renameOperationMs);
      case 'unknown':
        throw new ApiError(404, 'notFound', `no such route: ${method} ${url.pathname}`);
    }
  }

  private uploadMultipart(
    bucket: string,
    url: URL,
    req: IncomingMessage,
    body: Buffer,
    origin: string,
    media: (data: Buffer) => Buffer,
  ): Answer {
    const boundary = boundaryOf(header(req, 'content-type'));
    if (!boundary) throw new ApiError(400, 'invalid', 'multipart upload without a boundary');
    let parts;
    try {
      parts = parseMultipartRelated(body, boundary);
    } catch (e) {
      throw new ApiError(400, 'invalid', `bad multipart body: ${String(e)}`);
    }
    const [metaPart, mediaPart] = parts;
    if (!metaPart || !mediaPart)
      throw new ApiError(400, 'invalid', 'multipart upload needs a metadata and a media part');
    const json = parseJson(metaPart.body);
    const data = media(mediaPart.body);
    const name = requiredName(url.searchParams.get('name') ?? (typeof json.name === 'string' ? json.name : null));
    checkClientHashes(data, {
      crc32c: typeof json.crc32c === 'string' ? json.crc32c : undefined,
      md5: typeof json.md5Hash === 'string' ? json.md5Hash : undefined,
    });
    const meta = writableMetadata(json);
    meta.contentType = meta.contentType ?? mediaPart.headers['content-type'];
    const obj = this.state.putObject(bucket, name, data, meta, preconditions(url.searchParams));
    return { status: 200, body: objectResource(obj, origin), committed: true };
  }

  private resumableChunk(id: string, req: IncomingMessage, body: Buffer, origin: string): Answer {
    const session = this.state.sessions.get(id);
    if (!session) throw new ApiError(404, 'notFound', `no upload session ${id}`);
    if (session.result) return { status: 200, body: objectResource(session.result, origin) };
    const range = parseContentRange(header(req, 'content-range'));
    if (!range) throw new ApiError(400, 'invalid', `bad Content-Range: ${header(req, 'content-range')}`);
    if (range.start !== undefined) session.append(range.start, body);
    const complete =
      typeof range.total === 'number'
        ? session.received >= range.total
        : range.start !== undefined && range.end === undefined; // `bytes N-*/*`: this request carries the rest
    if (typeof range.total === 'number' && session.received > range.total) {
      throw new ApiError(400, 'invalid', 'more bytes than the declared total');
    }
    if (!complete) {
      const headers: Record<string, string> = session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {};
      return { status: 308, headers, body: Buffer.alloc(0) };
    }
    const data = session.bytes();
    try {
      checkClientHashes(data, parseGoogHash(header(req, 'x-goog-hash')));
      session.result = this.state.putObject(session.bucket, session.name, data, session.meta, session.pre);
    } catch (e) {
      this.state.sessions.delete(id); // a failed final request ends the session, as on GCS
      throw e;
    }
    return { status: 200, body: objectResource(session.result, origin), committed: true };
  }
}
