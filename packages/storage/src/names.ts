import { HourglassError } from '@hourglass/common';

/** Segment prefix of LocalDirectoryStore's temp files; reserved so a temp file can never pass for an object. */
export const TEMP_PREFIX = '.tmp-';

/** GCS's limit on an object name (UTF-8 bytes); applied to every store so names stay portable. */
const MAX_NAME_BYTES = 1024;

/**
 * Both stores accept the same names, so data can move between them: '/'-separated
 * segments, none empty, '.', '..' or a temp-file name, no control characters.
 */
export function checkObjectName(name: string): string {
  const bad = (why: string): HourglassError =>
    new HourglassError('STORAGE_INVALID_NAME', `invalid object name ${JSON.stringify(name)}: ${why}`, { path: name });
  if (name.length === 0) throw bad('empty');
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) throw bad(`longer than ${MAX_NAME_BYTES} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw bad('control character');
  for (const segment of name.split('/')) {
    if (segment === '') throw bad('empty segment (leading, trailing or double "/")');
    if (segment === '.' || segment === '..') throw bad(`"${segment}" segment`);
    if (segment.startsWith(TEMP_PREFIX)) throw bad(`"${TEMP_PREFIX}" segments are reserved`);
  }
  return name;
}

/** Names sort by code unit, the same order in every store. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A folder name: a valid object name followed by '/'. */
export function checkFolderName(folder: string): string {
  if (!folder.endsWith('/')) {
    throw new HourglassError(
      'STORAGE_INVALID_NAME',
      `invalid folder name ${JSON.stringify(folder)}: must end with "/"`,
      {
        path: folder,
      },
    );
  }
  checkObjectName(folder.slice(0, -1));
  return folder;
}

/**
 * The whole segments of a list prefix (all but a last partial one), checked: `a/b/c` → ['a', 'b'].
 * Listing never walks outside the root, so '..' and empty segments are refused.
 */
export function prefixSegments(prefix: string): string[] {
  const slash = prefix.lastIndexOf('/');
  const segments = slash < 0 ? [] : prefix.slice(0, slash).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new HourglassError('STORAGE_INVALID_NAME', `invalid list prefix ${JSON.stringify(prefix)}`, {
      path: prefix,
    });
  }
  return segments;
}
