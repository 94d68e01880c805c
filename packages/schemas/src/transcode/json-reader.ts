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

/** Integers of up to this many digits are exact when accumulated digit by digit in a double. */
const EXACT_DIGITS = 15;

export class JsonReader {
  pos = 0;
  /** The number read by the last number() call. */
  number = 0;
  /** The bytes of the string read by the last string() call: [textStart, textEnd). */
  textStart = 0;
  textEnd = 0;

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

export const TRUE = Buffer.from('true');
export const FALSE = Buffer.from('false');
export const NULL = Buffer.from('null');
