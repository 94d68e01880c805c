/**
 * A cursor over JSON text in UTF-8 bytes for the transcoder: reads one token at a time and
 * says `false` for anything it does not take on its own (an escape in a string, a control
 * character, bad syntax, the end of the text). The caller then hands that text (an event, or
 * the whole body) to JSON.parse, which decides. It never builds objects; strings are byte spans of the input.
 *
 * The body is checked to be valid UTF-8 before it gets here, so the bytes between two quotes
 * with no backslash are the UTF-8 of exactly the string JSON.parse would return.
 */
import {
  BACKSLASH,
  CARRIAGE_RETURN,
  CLOSE_ARRAY,
  CLOSE_OBJECT,
  COMMA,
  DOT,
  LINE_FEED,
  LOWER_E,
  LOWER_U,
  MINUS,
  NINE,
  OPEN_ARRAY,
  OPEN_OBJECT,
  PLUS,
  QUOTE,
  SPACE,
  TAB,
  UPPER_E,
  ZERO,
} from './json-bytes.js';

const EMPTY = Buffer.alloc(0);

/** Integers of up to this many digits are exact when accumulated digit by digit in a double. */
const EXACT_DIGITS = 15;

export class JsonReader {
  pos = 0;
  /** The number read by the last number() call. */
  number = 0;
  /** The bytes of the string read by the last string() call: [textStart, textEnd). */
  textStart = 0;
  textEnd = 0;
  /** The UTF-8 of the string read by the last escapedString() call: [0, textLength). */
  text: Buffer = EMPTY;
  textLength = 0;

  constructor(readonly buf: Buffer) {}

  /** Skips JSON whitespace; the byte found after it, or −1 at the end. */
  peek(): number {
    const buf = this.buf;
    let pos = this.pos;
    let c = buf[pos];
    while (c === SPACE || c === LINE_FEED || c === CARRIAGE_RETURN || c === TAB) c = buf[++pos];
    this.pos = pos;
    return c === undefined ? -1 : c;
  }

  /** Skips whitespace and consumes `byte`; false when the next byte is another. */
  expect(byte: number): boolean {
    if (this.peek() !== byte) return false;
    this.pos++;
    return true;
  }

  /** After whitespace, true and the end of the text, or false. */
  atEnd(): boolean {
    return this.peek() === -1;
  }

  /** A string without escapes or control characters (after whitespace); its bytes in textStart/textEnd. */
  string(): boolean {
    if (this.peek() !== QUOTE) return false;
    const buf = this.buf;
    let pos = this.pos + 1;
    this.textStart = pos;
    let c = buf[pos];
    // one comparison for most bytes: everything above the quote but the backslash is text
    while (c !== undefined && (c > QUOTE ? c !== BACKSLASH : c >= SPACE && c !== QUOTE)) c = buf[++pos];
    if (c !== QUOTE) return false;
    this.textEnd = pos;
    this.pos = pos + 1;
    return true;
  }

  /**
   * A string with escapes (after whitespace), decoded to UTF-8 in `text` [0, textLength) as
   * JSON.parse would read it; false for a control character, an unknown escape or a lone
   * surrogate (the reference refuses that: it has no UTF-8 form).
   */
  escapedString(): boolean {
    if (this.peek() !== QUOTE) return false;
    const buf = this.buf;
    let pos = this.pos + 1;
    // the closing quote first: the UTF-8 is no longer than the escaped text
    let end = pos;
    while (end < buf.length && buf[end] !== QUOTE) end += buf[end] === BACKSLASH ? 2 : 1;
    const out = (this.text = Buffer.allocUnsafe(end - pos));
    let n = 0;
    for (;;) {
      const c = buf[pos];
      if (c === undefined || c < SPACE) return false;
      if (c === QUOTE) break;
      if (c !== BACKSLASH) {
        out[n++] = c;
        pos++;
        continue;
      }
      const e = buf[pos + 1];
      const simple = e === undefined ? 0 : SIMPLE_ESCAPES[e]!;
      if (simple !== 0) {
        out[n++] = simple;
        pos += 2;
        continue;
      }
      if (e !== LOWER_U) return false;
      let unit = this.hex4(pos + 2);
      if (unit < 0) return false;
      pos += 6;
      if (unit >= 0xd800 && unit <= 0xdfff) {
        const low = buf[pos] === BACKSLASH && buf[pos + 1] === LOWER_U ? this.hex4(pos + 2) : -1;
        if (unit > 0xdbff || low < 0xdc00 || low > 0xdfff) return false;
        unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
        pos += 6;
      }
      n = writeUtf8(out, n, unit);
    }
    this.textLength = n;
    this.pos = pos + 1;
    return true;
  }

  /** Four hex digits at `pos` as a number; −1 when they are not. */
  private hex4(pos: number): number {
    let v = 0;
    for (let i = pos; i < pos + 4; i++) {
      const d = HEX_VALUE[this.buf[i] ?? 0]!;
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    return v;
  }

  /**
   * Consumes `quoted` (a key with its quotes, such as `"user_id"`) when the text holds exactly
   * those bytes next; the common case of a record's keys, checked without a string() call.
   */
  quoted(quoted: Uint8Array): boolean {
    const buf = this.buf;
    const pos = this.pos;
    const n = quoted.length;
    for (let i = 0; i < n; i++) if (buf[pos + i] !== quoted[i]) return false;
    this.textStart = pos + 1;
    this.textEnd = pos + n - 1;
    this.pos = pos + n;
    return true;
  }

  /** Is the last string read exactly these (ASCII) bytes? */
  textIs(bytes: Uint8Array): boolean {
    const start = this.textStart;
    const n = bytes.length;
    if (this.textEnd - start !== n) return false;
    const buf = this.buf;
    for (let i = 0; i < n; i++) if (buf[start + i] !== bytes[i]) return false;
    return true;
  }

  /** A number in JSON's grammar (after whitespace), its value as JSON.parse reads it in `number`. */
  readNumber(): boolean {
    const buf = this.buf;
    this.peek();
    const start = this.pos;
    let pos = start;
    const negative = buf[pos] === MINUS;
    if (negative) pos++;
    let c = buf[pos];
    let value = 0;
    let digits = 0;
    if (c === ZERO) {
      c = buf[++pos];
      digits = 1;
    } else if (c !== undefined && c > ZERO && c <= NINE) {
      do {
        value = value * 10 + (c - ZERO);
        digits++;
        c = buf[++pos];
      } while (c !== undefined && c >= ZERO && c <= NINE);
    } else {
      return false;
    }
    let plain = digits <= EXACT_DIGITS;
    if (c === DOT) {
      plain = false;
      if (!this.digitsFrom(++pos)) return false;
      pos = this.pos;
      c = buf[pos];
    }
    if (c === LOWER_E || c === UPPER_E) {
      plain = false;
      c = buf[++pos];
      if (c === PLUS || c === MINUS) pos++;
      if (!this.digitsFrom(pos)) return false;
      pos = this.pos;
    }
    this.pos = pos;
    // JSON's number grammar is a subset of Number()'s, and both round correctly.
    this.number = plain ? (negative ? -value : value) : Number(buf.toString('latin1', start, pos));
    return true;
  }

  /** One or more digits from `pos`; leaves `this.pos` after them. */
  private digitsFrom(pos: number): boolean {
    const buf = this.buf;
    const first = pos;
    let c = buf[pos];
    while (c !== undefined && c >= ZERO && c <= NINE) c = buf[++pos];
    this.pos = pos;
    return pos > first;
  }

  /**
   * Moves past one value by its brackets and strings alone, to the first comma or closing
   * bracket outside it (or the end of the text: false). It checks nothing else: the caller
   * hands the bytes passed to JSON.parse, which judges them.
   */
  skipValue(): boolean {
    const buf = this.buf;
    const n = buf.length;
    let depth = 0;
    for (let pos = this.pos; pos < n; pos++) {
      const c = buf[pos];
      if (c === QUOTE) {
        for (pos++; pos < n && buf[pos] !== QUOTE; pos++) if (buf[pos] === BACKSLASH) pos++;
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        depth++;
      } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY || (c === COMMA && depth === 0)) {
        if (depth === 0) {
          this.pos = pos;
          return true;
        }
        depth--;
      }
    }
    return false;
  }

  /** Consumes the literal (true, false, null) whose bytes are `word`, after whitespace. */
  literal(word: Uint8Array): boolean {
    const buf = this.buf;
    this.peek();
    const pos = this.pos;
    for (let i = 0; i < word.length; i++) if (buf[pos + i] !== word[i]) return false;
    this.pos = pos + word.length;
    return true;
  }
}

/** The byte each one-letter escape stands for (\" \\ \/ \b \f \n \r \t); 0 for the others. */
const SIMPLE_ESCAPES = new Uint8Array(256);
for (const [letter, byte] of [
  ['"', 0x22],
  ['\\', 0x5c],
  ['/', 0x2f],
  ['b', 0x08],
  ['f', 0x0c],
  ['n', 0x0a],
  ['r', 0x0d],
  ['t', 0x09],
] as const) {
  SIMPLE_ESCAPES[letter.charCodeAt(0)] = byte;
}

/** Each byte's value as a hex digit, or −1. */
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let d = 0; d < 16; d++) {
  HEX_VALUE['0123456789abcdef'.charCodeAt(d)] = d;
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(d)] = d;
}

/** A code point (not a surrogate) as UTF-8 at `n`; returns the end. */
function writeUtf8(out: Buffer, n: number, cp: number): number {
  if (cp < 0x80) {
    out[n++] = cp;
  } else if (cp < 0x800) {
    out[n++] = 0xc0 | (cp >> 6);
    out[n++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    out[n++] = 0xe0 | (cp >> 12);
    out[n++] = 0x80 | ((cp >> 6) & 0x3f);
    out[n++] = 0x80 | (cp & 0x3f);
  } else {
    out[n++] = 0xf0 | (cp >> 18);
    out[n++] = 0x80 | ((cp >> 12) & 0x3f);
    out[n++] = 0x80 | ((cp >> 6) & 0x3f);
    out[n++] = 0x80 | (cp & 0x3f);
  }
  return n;
}

export const TRUE = Buffer.from('true');
export const FALSE = Buffer.from('false');
export const NULL = Buffer.from('null');
