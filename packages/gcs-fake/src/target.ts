import type { IncomingMessage } from 'node:http';
import type { Route } from './routes.js';

export interface Target {
  route: Route;
  bucket?: string;
  /** The object, or the folder of a folder route, or the operation id. */
  object?: string;
  /** A folder rename's destination. */
  destination?: string;
}

/** Maps a request to its route. Accepts `/storage/v1/b/...` and, as the client uses with STORAGE_EMULATOR_HOST, `/b/...`. */
export function resolveTarget(method: string, url: URL, req: IncomingMessage): Target {
  let path = url.pathname;
  let upload = false;
  for (const [prefix, isUpload] of [
    ['/upload/storage/v1/', true],
    ['/upload/', true],
    ['/download/storage/v1/', false],
    ['/storage/v1/', false],
  ] as const) {
    if (path.startsWith(prefix)) {
      path = path.slice(prefix.length - 1);
      upload = isUpload;
      break;
    }
  }
  const segments = path.split('/').slice(1).map(decodeSegment);
  if (segments[0] !== 'b') return { route: 'unknown' };
  const bucket = segments[1];
  if (bucket === undefined || bucket === '') return { route: method === 'POST' ? 'bucket.insert' : 'unknown' };
  if (segments.length === 2) {
    if (method === 'GET') return { route: 'bucket.get', bucket };
    if (method === 'DELETE') return { route: 'bucket.delete', bucket };
    return { route: 'unknown' };
  }
  if (segments[2] === 'folders' || segments[2] === 'operations') return folderTarget(method, bucket, segments);
  if (segments[2] !== 'o') return { route: 'unknown' };
  const q = url.searchParams;
  if (segments.length === 3 || (segments.length === 4 && segments[3] === '')) {
    if (upload && method === 'POST') {
      const type = q.get('uploadType');
      if (type === 'resumable') return { route: 'upload.resumable.start', bucket };
      if (type === 'media') return { route: 'upload.media', bucket };
      return { route: 'upload.multipart', bucket };
    }
    if (upload && method === 'PUT' && q.has('upload_id')) {
      const status = /^bytes \*\//.test(header(req, 'content-range') ?? '');
      return { route: status ? 'upload.resumable.status' : 'upload.resumable.chunk', bucket };
    }
    if (method === 'GET') return { route: 'object.list', bucket };
    return { route: 'unknown' };
  }
  const rest = segments.slice(3);
  if (method === 'POST' && rest.length > 1 && rest[rest.length - 1] === 'compose') {
    return { route: 'object.compose', bucket, object: rest.slice(0, -1).join('/') };
  }
  const object = rest.join('/');
  if (method === 'GET') return { route: q.get('alt') === 'media' ? 'object.download' : 'object.get', bucket, object };
  if (method === 'DELETE') return { route: 'object.delete', bucket, object };
  if (method === 'PATCH' || method === 'PUT') return { route: 'object.patch', bucket, object };
  return { route: 'unknown' };
}

/** `/b/B/folders[/F[/renameTo/folders/D]]` and `/b/B/operations/ID`; folder names come URL-encoded (`a%2Fb%2F`). */
export function folderTarget(method: string, bucket: string, segments: string[]): Target {
  const [, , kind, name, verb, kind2, destination] = segments;
  if (kind === 'operations') {
    return segments.length === 4 && method === 'GET'
      ? { route: 'operation.get', bucket, object: name }
      : { route: 'unknown' };
  }
  if (segments.length === 3 && method === 'POST') return { route: 'folder.insert', bucket };
  if (segments.length === 4 && method === 'GET') return { route: 'folder.get', bucket, object: name };
  if (segments.length === 4 && method === 'DELETE') return { route: 'folder.delete', bucket, object: name };
  if (segments.length === 7 && method === 'POST' && verb === 'renameTo' && kind2 === 'folders') {
    return { route: 'folder.rename', bucket, object: name, destination };
  }
  return { route: 'unknown' };
}

export function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}
