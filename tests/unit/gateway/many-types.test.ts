import { SchemaRegistry } from '@hourglass/schemas';
import { eventSchema, writeSchemaDir } from '../schemas/schema-dirs';
import { aligned, defaultSetting, fastRoute, referenceRoute, type FastStats, type Setting } from './transcode-support';

/**
 * A registry at the original system's scale (250+ event types), each with an enum of 300
 * symbols: the body reader finds every type and symbol by name (NameTable, hashed past a few)
 * and stores what the reference stores, and a type or symbol one character off goes to the
 * reference, which names it.
 */
const TYPES = 300;
const symbols = Array.from({ length: 300 }, (_, i) => `S${String(i).padStart(3, '0')}`);
const typeName = (i: number): string => `t_${String(i).padStart(4, '0')}_viewed`;

const files: Record<string, object> = {};
for (let i = 0; i < TYPES; i++) {
  files[`${typeName(i)}/v1.avsc`] = eventSchema(`T${i}Viewed`, [
    { name: 'n', type: 'int' },
    { name: 'kind', type: { type: 'enum', name: `Kind${i}`, symbols } },
  ]);
}
const registry = SchemaRegistry.load(writeSchemaDir(files));
const setting: Setting = { ...defaultSetting, registry };

function body(events: unknown[]): Buffer {
  return Buffer.from(JSON.stringify({ events }));
}

test('every one of 300 types and 300 enum symbols is transcoded, byte for byte as the reference', () => {
  expect(registry.eventTypes()).toHaveLength(TYPES);
  const events = Array.from({ length: TYPES }, (_, i) => ({
    type: typeName((i * 7) % TYPES),
    payload: { n: i, kind: symbols[(i * 13) % symbols.length] },
  }));
  for (let from = 0; from < events.length; from += 100) {
    const raw = body(events.slice(from, from + 100));
    const stats: FastStats = { transcoded: 0 };
    const reference = referenceRoute(raw, setting);
    expect(aligned(raw, fastRoute(raw, setting, stats), reference)).toEqual(reference);
    expect(stats).toMatchObject({ transcoded: 1, transcodedEvents: 100, parsedEvents: 0 });
    expect('answer' in reference && reference.status).toBe(200);
  }
});

test('a type or a symbol one character off is handed to the reference, which rejects it', () => {
  const raw = body([
    { type: typeName(5), payload: { n: 1, kind: 'S005' } },
    { type: 't_0300_viewed', payload: { n: 2, kind: 'S005' } },
    { type: 't_0005_viewex', payload: { n: 3, kind: 'S005' } },
    { type: typeName(6), payload: { n: 4, kind: 'S300' } },
    { type: typeName(7), payload: { n: 5, kind: 'S00' } },
  ]);
  const stats: FastStats = { transcoded: 0 };
  const reference = referenceRoute(raw, setting);
  expect(aligned(raw, fastRoute(raw, setting, stats), reference)).toEqual(reference);
  expect(stats).toMatchObject({ transcodedEvents: 1, parsedEvents: 4 });
  expect('answer' in reference && JSON.parse(reference.answer)).toMatchObject({ accepted: 1, rejected: 4 });
});
