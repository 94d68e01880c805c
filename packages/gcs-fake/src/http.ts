import type { IncomingMessage, ServerResponse } from 'node:http';
import { crc32cBase64, md5Base64 } from './hashes.js';
import { ApiError, type Preconditions, type StoredObject, type WritableMetadata } from './state.js';
import { header } from './target.js';

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | Record<string, unknown>;
  /** True when the request changed stored state (a drop-after-commit fault may then fire). */
  committed?: boolean;
}

export function download(obj: StoredObject, req: IncomingMessage): Answer {
  const hashes = [`crc32c=${obj.crc32c}`, ...(obj.md5Hash === undefined ? [] : [`md5=${obj.md5Hash}`])].join(',');
  const headers: Record<string, string> = {
    'content-type': obj.contentType,
    'x-goog-hash': hashes,
    'x-goog-generation': obj.generation,
    'x-goog-metageneration': String(obj.metageneration),
    'x-goog-stored-content-encoding': 'identity',
    'x-goog-stored-content-length': String(obj.data.length),
  };
  const range = /^bytes=(\d*)-(\d*)$/.exec(header(req, 'range') ?? '');
  if (range && (range[1] !== '' || range[2] !== '') && obj.data.length > 0) {
    const size = obj.data.length;
    let start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
    let end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
    start = Math.max(0, start);
    end = Math.max(start, end);
    if (start >= size) throw new ApiError(416, 'requestedRangeNotSatisfiable', 'range not satisfiable');
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
    return { status: 206, headers, body: obj.data.subarray(start, end + 1) };
  }
  return { status: 200, headers, body: obj.data };
}

export function send(res: ServerResponse, answer: Answer): void {
  const headers: Record<string, string> = { ...answer.headers };
  let payload: Buffer;
  if (answer.body === undefined) payload = Buffer.alloc(0);
  else if (Buffer.isBuffer(answer.body)) payload = answer.body;
  else {
    payload = Buffer.from(JSON.stringify(answer.body));
    headers['content-type'] = 'application/json; charset=UTF-8';
  }
  if (answer.status !== 204) headers['content-length'] = String(payload.length);
  res.writeHead(answer.status, answer.status === 308 ? 'Resume Incomplete' : undefined, headers);
  res.end(answer.status === 204 ? undefined : payload);
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Content-Range of a resumable PUT: `bytes a-b/T`, or `*` for the range (a status query) or for the end or total (not known yet). */
export function parseContentRange(
  text: string | undefined,
): { start?: number; end?: number; total: number | undefined } | undefined {
  const m = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(text?.trim() ?? '');
  if (!m) return undefined;
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    end: m[2] === undefined || m[2] === '*' ? undefined : Number(m[2]),
    total: m[3] === '*' || m[3] === undefined ? undefined : Number(m[3]),
  };
}

/** GCS refuses an upload whose client-declared checksum does not match the bytes received. */
export function checkClientHashes(data: Buffer, declared: { crc32c?: string; md5?: string }): void {
  if (declared.crc32c !== undefined && declared.crc32c !== crc32cBase64(data)) {
    throw new ApiError(400, 'invalid', `Provided CRC32C "${declared.crc32c}" doesn't match calculated CRC32C`);
  }
  if (declared.md5 !== undefined && declared.md5 !== md5Base64(data)) {
    throw new ApiError(400, 'invalid', `Provided MD5 hash "${declared.md5}" doesn't match calculated MD5 hash`);
  }
}

export function corrupt(body: Buffer): Buffer {
  if (body.length === 0) return Buffer.from([0]);
  const copy = Buffer.from(body);
  copy[0] = (copy[0] ?? 0) ^ 0xff;
  return copy;
}

export function preconditions(q: URLSearchParams): Preconditions {
  const pick = (k: string): string | undefined => q.get(k) ?? undefined;
  return {
    ifGenerationMatch: pick('ifGenerationMatch'),
    ifGenerationNotMatch: pick('ifGenerationNotMatch'),
    ifMetagenerationMatch: pick('ifMetagenerationMatch'),
    ifMetagenerationNotMatch: pick('ifMetagenerationNotMatch'),
  };
}

export function ifGenerationMatchOf(p: unknown): string | undefined {
  return isRecord(p) && p.ifGenerationMatch !== undefined ? String(p.ifGenerationMatch) : undefined;
}

export function writableMetadata(json: Record<string, unknown>): WritableMetadata {
  const meta: WritableMetadata = {};
  if (typeof json.contentType === 'string') meta.contentType = json.contentType;
  if (isRecord(json.metadata)) {
    meta.metadata = Object.fromEntries(Object.entries(json.metadata).map(([k, v]) => [k, String(v)]));
  }
  return meta;
}

export function parseJson(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(400, 'parseError', 'body is not valid JSON');
  }
  if (!isRecord(value)) throw new ApiError(400, 'invalid', 'body is not a JSON object');
  return value;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function requiredName(name: string | null): string {
  if (name === null || name === '') throw new ApiError(400, 'required', 'object name required');
  return name;
}

export function originOf(req: IncomingMessage): string {
  return `http://${req.headers.host ?? '127.0.0.1'}`;
}

/**
 * A partial response, as GCS gives for `fields=items(name,size),...`: only the named keys of
 * each item. Without an `items(...)` selection the item is whole.
 */
export function itemFields(item: Record<string, unknown>, fields: string | null): Record<string, unknown> {
  const selection = /(?:^|,)items\(([^)]*)\)/.exec(fields ?? '')?.[1];
  if (selection === undefined) return item;
  const keep = new Set(selection.split(',').map((k) => k.trim()));
  return Object.fromEntries(Object.entries(item).filter(([k]) => keep.has(k)));
}
