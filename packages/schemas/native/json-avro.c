/*
 * The gateway's JSON body reader for plain events, compiled to WebAssembly (wasm32, no libc;
 * `make wasm` rebuilds json-avro.wasm from this file). It reads the events of a
 * `{"events":[...]}` body and writes each payload's Avro datum, as the TypeScript reader
 * (services/gateway/src/transcoded-body.ts and packages/schemas/src/transcode/) does, but only
 * for the plainest events: keys of the event in any order, the payload's fields all present and
 * in schema order, strings without escapes, integers up to 2^53, other numbers that one correctly
 * rounded operation gives exactly. It declines anything else, and the TypeScript
 * reader takes that event, so it never needs to be complete, only exact: for every event it
 * takes, the same bytes and columns as the TypeScript reader's (tests/unit/gateway/wasm-reader.test.ts).
 *
 * The program (setProgram) is built from the schemas by packages/schemas/src/transcode/wasm-program.ts.
 */
typedef unsigned char u8;
typedef unsigned int u32;
typedef int i32;
typedef long long i64;
typedef unsigned long long u64;

enum { OP_NULL = 0, OP_BOOL, OP_INT, OP_LONG, OP_FLOAT, OP_DOUBLE, OP_STRING, OP_ENUM, OP_UNION, OP_RECORD, OP_DECLINE };
enum { KIND_NULL = 0, KIND_BOOLEAN, KIND_NUMBER, KIND_TEXT, KIND_OBJECT, KINDS };
#define NONE 0xffffffffu
enum { STOP_DECLINED = 0, STOP_END = 1, STOP_FRAME = 2 };

/* The program, set by setProgram: node words, and the types' name table. */
static const u32 *prog;
static const u32 *typeTable; /* entries of 3 words: namePtr, nameLen (0: empty), type index */
static const u32 *payloadNodes; /* by type index: the payload record's node, or NONE */
static u32 typeMask;

/* The call's input and output. */
static const u8 *buf;
static const u8 *bufEnd;
static const u8 *p;
static u8 *out;
static u8 *outEnd;

/* Results of the last events() call. */
static u32 stopPos;
static u32 stopReason;

static void weighUuidBytes(void);

__attribute__((export_name("setProgram"))) void setProgram(const u32 *program, const u32 *types, u32 mask, const u32 *payloads) {
  prog = program;
  payloadNodes = payloads;
  weighUuidBytes();
  typeTable = types;
  typeMask = mask;
}

__attribute__((export_name("stopPos"))) u32 getStopPos(void) { return stopPos; }
__attribute__((export_name("stopReason"))) u32 getStopReason(void) { return stopReason; }

static inline int at(const u8 *q) { return q < bufEnd ? *q : -1; }

static inline int peek(void) {
  while (p < bufEnd && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p < bufEnd ? *p : -1;
}

static inline int expect(u8 c) {
  if (peek() != c) return 0;
  p++;
  return 1;
}

static inline int room(u32 n) { return (u32)(outEnd - out) >= n; }

static inline void writeVarint(u64 zz) {
  while (zz > 0x7f) {
    *out++ = (u8)((zz & 0x7f) | 0x80);
    zz >>= 7;
  }
  *out++ = (u8)zz;
}

static inline void writeLong(i64 n) { writeVarint(((u64)n << 1) ^ (u64)(n >> 63)); }

static inline u64 load64(const u8 *q) {
  u64 x;
  __builtin_memcpy(&x, q, 8);
  return x;
}

/* Are the n bytes at p those of `want`? (the caller checked that n bytes remain) */
static inline int sameBytes(const u8 *q, const u8 *want, u32 n) {
  u32 k = 0;
  for (; k + 8 <= n; k += 8)
    if (load64(q + k) != load64(want + k)) return 0;
  for (; k < n; k++)
    if (q[k] != want[k]) return 0;
  return 1;
}

static int literal(const char *word, u32 n) {
  peek();
  if ((u32)(bufEnd - p) < n) return 0;
  for (u32 i = 0; i < n; i++)
    if (p[i] != (u8)word[i]) return 0;
  p += n;
  return 1;
}

/* A string without escapes or control characters: its bytes [*start, *end). */
static inline int string(const u8 **start, const u8 **end) {
  if (peek() != '"') return 0;
  const u8 *q = p + 1;
  *start = q;
  /* 8 bytes at a time while none is a quote, a backslash or a control character (SWAR: a
     byte's high bit is set in `special` where it is one of them; never missed, and the byte
     loop below decides) */
  while (bufEnd - q >= 8) {
    u64 x = load64(q);
    u64 quote = x ^ 0x2222222222222222ULL;
    u64 slash = x ^ 0x5c5c5c5c5c5c5c5cULL;
    u64 special = ((quote - 0x0101010101010101ULL) & ~quote) | ((slash - 0x0101010101010101ULL) & ~slash) |
                  ((x - 0x2020202020202020ULL) & ~x);
    if (special & 0x8080808080808080ULL) break;
    q += 8;
  }
  for (;;) {
    if (q >= bufEnd) return 0;
    u8 c = *q;
    if (c > '"' ? c == '\\' : (c < ' ' || c == '"')) break;
    q++;
  }
  if (*q != '"') return 0;
  *end = q;
  p = q + 1;
  return 1;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * A number in JSON's grammar. *integer: it has no fraction or exponent and is at most 2^53, and
 * *value and *real hold it exactly (JSON.parse's value). Otherwise *real is JSON.parse's value
 * only when *exact (Clinger's fast path: at most 15 significant digits and a power of ten up
 * to 22, so one correctly rounded operation on exact doubles).
 */
static int number(i64 *value, double *real, int *integer, int *exact) {
  peek();
  const u8 *q = p;
  int negative = at(q) == '-';
  if (negative) q++;
  int c = at(q);
  u64 m = 0;
  int digits = 0; /* of the integer part; m holds the first 19 digits of the whole */
  if (c == '0') {
    c = at(++q);
    digits = 1;
  } else if (c >= '1' && c <= '9') {
    do {
      if (digits < 19) m = m * 10 + (u64)(c - '0');
      digits++;
      c = at(++q);
    } while (c >= '0' && c <= '9');
  } else {
    return 0;
  }
  int significant = digits; /* leading zeros of the fraction included: a bound, not a count */
  int scale = 0;
  int plain = 1;
  if (c == '.') {
    plain = 0;
    const u8 *first = ++q;
    c = at(q);
    while (c >= '0' && c <= '9') {
      if (significant < 19) m = m * 10 + (u64)(c - '0');
      significant++;
      scale--;
      c = at(++q);
    }
    if (q == first) return 0;
  }
  int exponent = 0;
  if (c == 'e' || c == 'E') {
    plain = 0;
    c = at(++q);
    int sign = 1;
    if (c == '+' || c == '-') {
      sign = c == '-' ? -1 : 1;
      c = at(++q);
    }
    const u8 *first = q;
    while (c >= '0' && c <= '9') {
      if (exponent < 10000) exponent = exponent * 10 + (c - '0');
      c = at(++q);
    }
    if (q == first) return 0;
    exponent *= sign;
  }
  p = q;
  *integer = plain && digits <= 19 && m <= (1ULL << 53);
  if (*integer) {
    *value = negative ? -(i64)m : (i64)m;
    *real = negative ? -(double)m : (double)m;
    *exact = 1;
    return 1;
  }
  int e = scale + exponent;
  *exact = significant <= 15 && e >= -22 && e <= 22;
  if (*exact) {
    double d = (double)m;
    d = e < 0 ? d / POW10[-e] : d * POW10[e];
    *real = negative ? -d : d;
  }
  return 1;
}

static u32 fnv(const u8 *s, const u8 *e) {
  u32 h = 0x811c9dc5u;
  while (s < e) h = (h ^ *s++) * 0x01000193u;
  return h;
}

/* Entries of 3 words (namePtr, nameLen, value); nameLen 0 marks an empty slot. */
static int lookup(const u32 *table, u32 mask, const u8 *s, const u8 *e, u32 *value) {
  u32 n = (u32)(e - s);
  for (u32 i = fnv(s, e) & mask;; i = (i + 1) & mask) {
    const u32 *entry = table + 3 * i;
    u32 len = entry[1];
    if (len == 0) return 0;
    if (len == n) {
      const u8 *name = (const u8 *)entry[0];
      u32 k = 0;
      while (k < n && name[k] == s[k]) k++;
      if (k == n) {
        *value = entry[2];
        return 1;
      }
    }
  }
}

static int kindOf(int c) {
  if (c == 'n') return KIND_NULL;
  if (c == 't' || c == 'f') return KIND_BOOLEAN;
  if (c == '-' || (c >= '0' && c <= '9')) return KIND_NUMBER;
  if (c == '"') return KIND_TEXT;
  if (c == '{') return KIND_OBJECT;
  return -1;
}

static int value(u32 node);

/*
 * A record whose fields all come in schema order: each key compared with the byte before it and
 * its colon, `{"a":` then `,"b":`, in one comparison when compact, else token by token with
 * whitespace between (`{ "a" : 1, "b": 2 }`, as Python's json.dumps and indenting encoders write).
 */
static int record(const u32 *r) {
  u32 n = r[1];
  if (n == 0) return 0;
  peek();
  for (u32 i = 0; i < n; i++) {
    const u32 *field = r + 2 + 3 * i;
    const u8 *key = (const u8 *)field[0];
    u32 len = field[1];
    if ((u32)(bufEnd - p) >= len && sameBytes(p, key, len)) {
      p += len;
    } else {
      if (!expect(key[0]) || peek() != '"' || (u32)(bufEnd - p) < len - 2 || !sameBytes(p, key + 1, len - 2)) return 0;
      p += len - 2;
      if (!expect(':')) return 0;
    }
    if (!value(field[2])) return 0;
  }
  return expect('}');
}

static int value(u32 node) {
  const u32 *n = prog + node;
  switch (n[0]) {
    case OP_NULL:
      return literal("null", 4);
    case OP_BOOL:
      if (!room(1)) return 0;
      if (literal("true", 4)) *out++ = 1;
      else if (literal("false", 5)) *out++ = 0;
      else return 0;
      return 1;
    case OP_INT:
    case OP_LONG: {
      i64 v;
      double d;
      int integer, exact;
      if (!number(&v, &d, &integer, &exact) || !integer || !room(10)) return 0;
      /* the TypeScript reader's bounds: an int's, and ±2^52 for a long (MAX_EXACT_LONG) */
      if (n[0] == OP_INT ? (v < -2147483648LL || v > 2147483647LL) : (v < -(1LL << 52) || v > (1LL << 52))) return 0;
      writeLong(v);
      return 1;
    }
    case OP_FLOAT:
    case OP_DOUBLE: {
      i64 v;
      double d;
      int integer, exact;
      if (!number(&v, &d, &integer, &exact) || !exact || !room(8)) return 0;
      if (n[0] == OP_FLOAT) {
        float f = (float)d;
        __builtin_memcpy(out, &f, 4);
        out += 4;
      } else {
        __builtin_memcpy(out, &d, 8);
        out += 8;
      }
      return 1;
    }
    case OP_STRING: {
      const u8 *s, *e;
      if (!string(&s, &e)) return 0;
      u32 len = (u32)(e - s);
      if (!room(len + 5)) return 0;
      writeVarint((u64)len << 1);
      __builtin_memcpy(out, s, len);
      out += len;
      return 1;
    }
    case OP_ENUM: {
      const u8 *s, *e;
      u32 index;
      if (!string(&s, &e) || !lookup((const u32 *)n[2], n[1], s, e, &index) || !room(5)) return 0;
      writeVarint((u64)index << 1);
      return 1;
    }
    case OP_UNION: {
      int kind = kindOf(peek());
      if (kind < 0) return 0;
      i32 branch = (i32)n[1 + 2 * kind];
      if (branch < 0 || !room(5)) return 0;
      writeVarint((u64)branch << 1);
      return value(n[2 + 2 * kind]);
    }
    case OP_RECORD:
      return record(n);
    default:
      return 0;
  }
}

enum { SEEN_TYPE = 1, SEEN_PAYLOAD = 2, SEEN_ID = 4, SEEN_CLIENT_TS = 8 };

static int keyIs(const char *quoted, u32 n) {
  if ((u32)(bufEnd - p) < n || !sameBytes(p, (const u8 *)quoted, n)) return 0;
  p += n;
  return 1;
}

/* The event key at p and its colon, as its SEEN_ bit; 0 for any other. Its first letter picks the one to compare. */
static int keyOf(void) {
  if (peek() != '"') return 0;
  const char *key;
  u32 n;
  int bit;
  switch (at(p + 1)) {
    case 't': key = "\"type\":"; n = 6; bit = SEEN_TYPE; break;
    case 'p': key = "\"payload\":"; n = 9; bit = SEEN_PAYLOAD; break;
    case 'i': key = "\"id\":"; n = 4; bit = SEEN_ID; break;
    case 'c': key = "\"client_ts\":"; n = 11; bit = SEEN_CLIENT_TS; break;
    default: return 0;
  }
  /* compact (`"type":`) in one comparison; else the name, whitespace, the colon */
  if (keyIs(key, n + 1)) return bit;
  return keyIs(key, n) && expect(':') ? bit : 0;
}

/* Each byte's weight in a UUID: a hex digit of either case 0, the dash 1, anything else 64 (uuid-bytes.ts). */
static u8 uuidWeight[256];

static void weighUuidBytes(void) {
  for (int c = 0; c < 256; c++)
    uuidWeight[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ? 0 : c == '-' ? 1 : 64;
}

static int uuidAt(const u8 *s) {
  if (bufEnd - s < 37 || s[36] != '"') return 0;
  u32 weight = 0;
  for (int i = 0; i < 36; i++) weight += uuidWeight[s[i]];
  return weight == 4 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-';
}

/* Columns written per event: type, idAt, start, end, textStart, textEnd; client_ts in a double column. */
enum { COLUMNS = 6 };

/*
 * Reads events from `from` (the start of an event, in the body [body, body + length)), each
 * with `roomBytes` left free before its payload, until an event it does not take (stopReason
 * STOP_DECLINED, stopPos at that event), the events' closing bracket (STOP_END, stopPos after
 * it), or a byte that is neither a comma nor the bracket after an event (STOP_FRAME). Returns
 * how many events it took. Positions are offsets in the body; payload offsets are in the output.
 */
__attribute__((export_name("events"))) u32 events(const u8 *body, u32 length, u32 from, u8 *output, u32 capacity,
                                                 u32 roomBytes, i32 *columns, double *clientTs, u32 maxEvents) {
  buf = body;
  bufEnd = body + length;
  p = body + from;
  out = output;
  outEnd = output + capacity;
  u32 count = 0;
  for (;;) {
    const u8 *eventStart = p;
    u8 *outStart = out;
    stopReason = STOP_DECLINED;
    stopPos = (u32)(eventStart - body);
    if (count == maxEvents || !expect('{')) return count;
    int seen = 0;
    u32 type = 0;
    i32 idAt = -1;
    double ts = -1;
    i32 start = -1;
    int ok = 1;
    for (;;) {
      int bit = keyOf();
      if (bit == 0) { ok = 0; break; }
      if (seen & bit) { ok = 0; break; }
      seen |= bit;
      if (bit == SEEN_TYPE) {
        const u8 *s, *e;
        if (!string(&s, &e) || !lookup(typeTable, typeMask, s, e, &type)) { ok = 0; break; }
      } else if (bit == SEEN_PAYLOAD) {
        /* a payload before its type: the JavaScript reader takes it */
        u32 node = (seen & SEEN_TYPE) ? payloadNodes[type] : NONE;
        if (node == NONE || !room(roomBytes)) { ok = 0; break; }
        out += roomBytes;
        start = (i32)(out - output);
        if (!value(node)) { ok = 0; break; }
      } else if (bit == SEEN_ID) {
        if (!literal("null", 4)) {
          if (peek() != '"' || !uuidAt(p + 1)) { ok = 0; break; }
          idAt = (i32)(p + 1 - body);
          p += 38;
        }
      } else {
        if (literal("null", 4)) {
          ts = -1;
        } else {
          i64 v;
          double d;
          int integer, exact;
          /* a time as text (Date.parse) and "-0" (the reader keeps −0) are the TypeScript reader's */
          int c = peek();
          if (c == '"' || c == '-' || !number(&v, &d, &integer, &exact) || !integer || v > (1LL << 52)) { ok = 0; break; }
          ts = (double)v;
        }
      }
      int c = peek();
      p++;
      if (c == '}') break;
      if (c != ',') { ok = 0; break; }
    }
    if (!ok || (seen & (SEEN_TYPE | SEEN_PAYLOAD)) != (SEEN_TYPE | SEEN_PAYLOAD)) {
      p = eventStart;
      out = outStart;
      return count;
    }
    i32 *col = columns + COLUMNS * count;
    col[0] = (i32)type;
    col[1] = idAt;
    col[2] = start;
    col[3] = (i32)(out - output);
    col[4] = (i32)(eventStart - body);
    col[5] = (i32)(p - body);
    clientTs[count] = ts;
    count++;
    int c = peek();
    if (c == ',') {
      p++;
      continue;
    }
    if (c == ']') {
      p++;
      stopReason = STOP_END;
    } else {
      stopReason = STOP_FRAME;
    }
    stopPos = (u32)(p - body);
    return count;
  }
}
