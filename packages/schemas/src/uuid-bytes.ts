/**
 * The byte-level check of an event id's shape, for the paths that read ids as bytes without
 * building strings (the gateway's body reader, the consumer's message checks): 36 bytes, hex
 * digits and dashes where a UUID has them: in lower case as ids are stored (the dedup key), or
 * in either case as clients may send them (the gateway lowers them). The gateway's canonicalUuid
 * is the same rule on a string.
 */
const DASH = 0x2d;

/**
 * Each byte's weight: a hex digit 0, the dash 1, anything else 64 (more than 36 dashes weigh).
 * 36 bytes weigh exactly 4 only as 32 hex digits and 4 dashes; the dashes' places are checked apart.
 */
function weights(digits: string): Uint8Array {
  const table = new Uint8Array(256).fill(64);
  for (const c of Buffer.from(digits, 'latin1')) table[c] = 0;
  table[DASH] = 1;
  return table;
}
const LOWER_CASE = weights('0123456789abcdef');
const ANY_CASE = weights('0123456789abcdefABCDEF');

/** Are the 36 bytes of `buf` from `at` a lower-case UUID's text (an id as stored)? */
export function isUuidBytesAt(buf: Uint8Array, at: number): boolean {
  return uuidWeighed(buf, at, LOWER_CASE);
}

/** As isUuidBytesAt, letters of either case (an id as a client may send it). */
export function isAnyCaseUuidBytesAt(buf: Uint8Array, at: number): boolean {
  return uuidWeighed(buf, at, ANY_CASE);
}

function uuidWeighed(buf: Uint8Array, at: number, table: Uint8Array): boolean {
  if (at + 36 > buf.length) return false;
  let weight = 0;
  for (let c = 0; c < 36; c++) weight += table[buf[at + c]!]!;
  return (
    weight === 4 && buf[at + 8] === DASH && buf[at + 13] === DASH && buf[at + 18] === DASH && buf[at + 23] === DASH
  );
}
