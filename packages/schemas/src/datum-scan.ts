import { isUtf8 } from 'node:buffer';
import type avro from 'avsc';
import { isCanonicalVarint, readVarint, varintValue } from './varint.js';

/**
 * Finds where an Avro binary datum ends without decoding it, for copying datums as bytes. A
 * skipper accepts a datum only when avsc would decode it and encode the value back to the very
 * same bytes (canonical varints, booleans 0 or 1, valid UTF-8, indexes in range, single-block
 * arrays); anything else returns −1, and the caller takes the decoding path, which also decides
 * whether the datum is corrupt. So copying an accepted datum stores what decode + encode would.
 * The fuzz test in tests/unit checks that property against avsc.
 */
export type Skipper = (buf: Buffer, pos: number) => number;

/**
 * Longs the fast path accepts: their zigzag form (twice the magnitude) stays below 2^53, so this
 * reading and avsc's are exact and encode back to the same bytes. Timestamps are far below it.
 */
const MAX_EXACT_LONG = 2 ** 52 - 1;

/** A canonical varint of at most `maxBytes` at `pos`: the position after it, or −1. */
function readCanonical(buf: Buffer, pos: number, maxBytes: number): number {
  const next = readVarint(buf, pos, maxBytes);
  return next >= 0 && isCanonicalVarint(buf, pos, next) ? next : -1;
}

function readLong(buf: Buffer, pos: number): number {
  const next = readCanonical(buf, pos, 10);
  const v = varintValue();
  return next >= 0 && v >= -MAX_EXACT_LONG && v <= MAX_EXACT_LONG ? next : -1;
}

function readInt(buf: Buffer, pos: number): number {
  const next = readCanonical(buf, pos, 5);
  const v = varintValue();
  return next >= 0 && v === (v | 0) ? next : -1;
}

/** A length varint (of a string or bytes) followed by that many bytes. */
function skipSized(buf: Buffer, pos: number): number {
  const next = readLong(buf, pos);
  const length = varintValue();
  if (next < 0 || length < 0 || next + length > buf.length) return -1;
  return next + length;
}

function skipString(buf: Buffer, pos: number): number {
  const start = readLong(buf, pos);
  const length = varintValue();
  if (start < 0 || length < 0) return -1;
  const end = start + length;
  if (end > buf.length) return -1;
  // ASCII is valid UTF-8: the common case needs no native call
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return isUtf8(buf.subarray(start, end)) ? end : -1;
  return end;
}

const skipNull: Skipper = (_buf, pos) => pos;
const skipBoolean: Skipper = (buf, pos) => (buf[pos] === 0 || buf[pos] === 1 ? pos + 1 : -1);
const skipFloatSized =
  (size: 4 | 8): Skipper =>
  (buf, pos) => {
    if (pos + size > buf.length) return -1;
    // a NaN's payload does not survive decode + encode
    const value = size === 4 ? buf.readFloatLE(pos) : buf.readDoubleLE(pos);
    return Number.isNaN(value) ? -1 : pos + size;
  };

/** The skipper of `type`, or undefined when no skipper is faithful to it (the decoding path). */
export function compileSkipper(type: avro.Type): Skipper | undefined {
  const t = type as avro.Type & {
    typeName: string;
    underlyingType?: avro.Type;
    fields?: { type: avro.Type }[];
    symbols?: string[];
    types?: avro.Type[];
    itemsType?: avro.Type;
    size?: number;
  };
  if (t.underlyingType) return compileSkipper(t.underlyingType); // logical types: their bytes
  switch (t.typeName) {
    case 'null':
      return skipNull;
    case 'boolean':
      return skipBoolean;
    case 'int':
      return readInt;
    case 'long':
      return readLong;
    case 'float':
      return skipFloatSized(4);
    case 'double':
      return skipFloatSized(8);
    case 'string':
      return skipString;
    case 'bytes':
      return skipSized;
    case 'fixed': {
      const size = t.size ?? 0;
      return (buf, pos) => (pos + size <= buf.length ? pos + size : -1);
    }
    case 'enum': {
      const symbols = t.symbols?.length ?? 0;
      return (buf, pos) => {
        const next = readInt(buf, pos);
        const index = varintValue();
        return next >= 0 && index >= 0 && index < symbols ? next : -1;
      };
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      const branches = (t.types ?? []).map(compileSkipper);
      if (branches.some((b) => b === undefined)) return undefined;
      const skippers = branches as Skipper[];
      return (buf, pos) => {
        const next = readInt(buf, pos);
        const branch = varintValue();
        if (next < 0 || branch < 0 || branch >= skippers.length) return -1;
        return skippers[branch]!(buf, next);
      };
    }
    case 'array': {
      const items = t.itemsType && compileSkipper(t.itemsType);
      if (!items) return undefined;
      // avsc writes one block of n items then 0: other shapes take the decoding path
      return (buf, pos) => {
        let next = readLong(buf, pos);
        const n = varintValue();
        if (next < 0 || n < 0) return -1;
        for (let i = 0; i < n && next >= 0; i++) next = items(buf, next);
        if (next < 0 || n === 0) return next;
        return buf[next] === 0 ? next + 1 : -1;
      };
    }
    case 'record':
    case 'error': {
      const fields = (t.fields ?? []).map((f) => compileSkipper(f.type));
      if (fields.some((f) => f === undefined)) return undefined;
      const skippers = fields as Skipper[];
      return (buf, pos) => {
        let next = pos;
        for (let i = 0; i < skippers.length && next >= 0; i++) next = skippers[i]!(buf, next);
        return next;
      };
    }
    default:
      // maps (an object's key order is not the datum's), and anything unknown
      return undefined;
  }
}

/** Where each datum of a bundle ends, and its `meta.gateway_ts`. */
export interface ScannedEvents {
  ends: number[];
  gatewayTs: number[];
}

/**
 * Skips `count` event datums laid back to back in `raw`, reading each one's `gateway_ts` by hand
 * (`meta` is every event schema's first field: the event id, a string, then `gateway_ts`). All or
 * nothing: undefined when any datum is not accepted or bytes are left over (the decoding path).
 */
export function scanEvents(raw: Buffer, count: number, skip: Skipper): ScannedEvents | undefined {
  const ends: number[] = new Array<number>(count);
  const gatewayTs: number[] = new Array<number>(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const end = skip(raw, pos);
    if (end < 0) return undefined;
    // the skipper accepted the datum, so its leading string and long read cleanly
    const idStart = readVarint(raw, pos);
    readVarint(raw, idStart + varintValue());
    gatewayTs[i] = varintValue();
    ends[i] = end;
    pos = end;
  }
  return pos === raw.length ? { ends, gatewayTs } : undefined;
}
