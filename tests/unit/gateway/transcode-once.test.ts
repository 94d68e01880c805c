import { randomUUID } from 'node:crypto';
import { EventGenerator } from '@hourglass/client';
import { aligned, defaultSetting, fastRoute, referenceRoute, registry, type FastStats } from './transcode-support';

/**
 * A body is read once: the events the transcoder declines (or the fast path hands back: a type
 * the key does not cover) go alone to JSON.parse and the reference, the rest stay transcoded.
 * Counted here by the text JSON.parse is given, with the answers and stored bytes still the
 * reference's.
 */
function bodyOf(texts: string[]): Buffer {
  return Buffer.from(`{"events":[${texts.join(',')}]}`);
}

const generator = new EventGenerator(registry, { seed: 18 });
const plain = generator.batch(100).map((e) => JSON.stringify({ type: e.type, id: randomUUID(), payload: e.payload }));

/** `value` with the keys of every object in sorted order, as many JSON encoders write them. */
function sortedKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
  return Object.fromEntries(entries.map(([k, v]) => [k, sortedKeys(v)]));
}

/** The fast route's outcome, and every text it handed to JSON.parse. */
function parsedBy(raw: Buffer, setting = defaultSetting): { parsed: string[]; stats: FastStats; same: boolean } {
  const reference = referenceRoute(raw, setting);
  const stats: FastStats = { transcoded: 0 };
  const spy = jest.spyOn(JSON, 'parse');
  try {
    const fast = fastRoute(raw, setting, stats);
    const parsed = spy.mock.calls.map((c) => String(c[0]));
    return { parsed, stats, same: JSON.stringify(aligned(raw, fast, reference)) === JSON.stringify(reference) };
  } finally {
    spy.mockRestore();
  }
}

describe('the JSON route reads a body once', () => {
  it('parses nothing for a body of plain events', () => {
    const { parsed, stats, same } = parsedBy(bodyOf(plain));
    expect(same).toBe(true);
    expect(parsed).toEqual([]);
    expect(stats.transcodedEvents).toBe(100);
  });

  it('hands JSON.parse only the events the transcoder declines, each alone', () => {
    const texts = [...plain];
    const unusual = new Map<number, string>([
      [30, plain[30]!.replace(/("payload":\{"[a-z_]+":")/, '$1\\ud800')], // a lone surrogate: no UTF-8 form
      [40, 'null'], // not an object: the reference rejects it
      [50, plain[50]!.replace('"payload":{', '"extra":1,"payload":{')], // a key that is not an event field
    ]);
    for (const [i, text] of unusual) texts[i] = text;
    const raw = bodyOf(texts);
    const { parsed, stats, same } = parsedBy(raw);
    expect(same).toBe(true);
    expect(parsed.sort()).toEqual([...unusual.values()].sort());
    expect(stats.parsedEvents).toBe(unusual.size);
    expect(stats.transcodedEvents).toBe(100 - unusual.size);
  });

  it('transcodes sorted keys (payload before type, fields by name), upper-case ids and escaped strings', () => {
    const texts = plain.map((t, i) => {
      const e = JSON.parse(t) as { type: string; id: string; payload: unknown };
      if (i % 3 === 0) return JSON.stringify(sortedKeys({ id: e.id, payload: e.payload, type: e.type }));
      if (i % 3 === 1) return t.replace(e.id, e.id.toUpperCase());
      // strings with escapes: a quote, a new line, é and 😀 as \u escapes (Python's ensure_ascii)
      return t.replace(/("payload":\{"[a-z_]+":")/, '$1say \\"hi\\"\\n\\u00e9\\ud83d\\ude00 ');
    });
    const { parsed, stats, same } = parsedBy(bodyOf(texts));
    expect(same).toBe(true);
    expect(parsed).toEqual([]);
    expect(stats.transcodedEvents).toBe(100);
  });

  it('hands back alone the events of a type the key does not cover', () => {
    const denied = JSON.parse(plain[0]!).type as string;
    const key = { ...defaultSetting.key, types: new Set(registry.eventTypes().filter((t) => t !== denied)) };
    const { parsed, same } = parsedBy(bodyOf(plain), { ...defaultSetting, key });
    expect(same).toBe(true);
    const ofDenied = plain.filter((t) => JSON.parse(t).type === denied);
    expect(ofDenied.length).toBeGreaterThan(5);
    expect(parsed.sort()).toEqual(ofDenied.sort());
  });

  it('leaves a body JSON.parse refuses to JSON.parse whole, which names it', () => {
    const texts = [...plain];
    texts[60] = texts[60]!.replace('"payload":{', '"payload":{,'); // bad JSON inside one event
    const raw = bodyOf(texts);
    const { parsed, same } = parsedBy(raw);
    expect(same).toBe(true);
    expect(parsed.at(-1)).toBe(raw.toString('utf8'));
    // a payload read before its type, with bytes after its value that are not JSON
    const e = JSON.parse(plain[5]!) as { type: string; payload: unknown };
    texts[60] = `{"payload":${JSON.stringify(e.payload)} x,"type":${JSON.stringify(e.type)}}`;
    expect(parsedBy(bodyOf(texts)).same).toBe(true);
    texts[60] = `{"payload":${JSON.stringify(e.payload)} ,"type":${JSON.stringify(e.type)}}`;
    expect(parsedBy(bodyOf(texts)).parsed).toEqual([]);
  });
});
