/**
 * The bytes of JSON's syntax, as the transcoder (json-reader.ts, payload-transcoder.ts) and the
 * gateway's body reader compare them: one list for every reader of JSON bytes.
 */
export const QUOTE = 0x22; // "
export const BACKSLASH = 0x5c; // \
export const OPEN_OBJECT = 0x7b; // {
export const CLOSE_OBJECT = 0x7d; // }
export const OPEN_ARRAY = 0x5b; // [
export const CLOSE_ARRAY = 0x5d; // ]
export const COLON = 0x3a; // :
export const COMMA = 0x2c; // ,
export const MINUS = 0x2d; // -
export const PLUS = 0x2b; // +
export const DOT = 0x2e; // .
export const ZERO = 0x30; // 0
export const NINE = 0x39; // 9
export const SPACE = 0x20; // also the lowest byte a string may hold as it is
export const LINE_FEED = 0x0a;
export const CARRIAGE_RETURN = 0x0d;
export const TAB = 0x09;
export const LOWER_E = 0x65; // e, of an exponent
export const UPPER_E = 0x45; // E
export const LOWER_U = 0x75; // u, of a \u escape
/** The first bytes of the literals: n(ull), t(rue), f(alse). */
export const LOWER_N = 0x6e;
export const LOWER_T = 0x74;
export const LOWER_F = 0x66;
