import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { SchemaRegistry, WasmBodyReader, buildWasmProgram, ReadStop } from '@hourglass/schemas';
import { TranscodedBatch, readEventsBody, type BodyReader } from '../../../services/gateway/src/transcoded-body';
import { EventGenerator } from '@hourglass/client';
import { eventSchema, writeSchemaDir } from '../schemas/schema-dirs';
import { eventArb, plainSchemaArb, registryOf, schemaArb } from './random-schemas';
import { aligned, defaultSetting, fastRoute, referenceRoute, registry } from './transcode-support';

/**
 * The WebAssembly body reader (packages/schemas/native/json-avro.c) against the TypeScript one:
 * for any body, the route's batch is the same whichever reads the plain events — each event's
 * columns, payload datum and JSON.parse value, or the same refusal. The WebAssembly reader may
 * decline more (the TypeScript reader then takes the event); the counts below show that it
 * takes the plain events itself, so the comparison is not between two runs of the same code.
 */
const SEED = 20261205;
const ROOM = 60;

interface EventSnapshot {
  type: string | null;
  idAt: number;
  clientTs: number;
  datum: string;
  text: [number, number];
  value: unknown;
}

/** What the route gets from the body: every column of every event, or what JSON.parse gave, or the refusal. */
function readWith(schemas: SchemaRegistry, raw: Buffer, reader: BodyReader): unknown {
  let body: unknown;
  try {
    body = readEventsBody(schemas, raw, ROOM, reader);
  } catch (e) {
    return { refused: (e as Error).name };
  }
  if (!(body instanceof TranscodedBatch)) return { parsed: body };
  const events: EventSnapshot[] = [];
  for (let i = 0; i < body.count; i++) {
    events.push({
      type: body.versions[i]?.eventType ?? null,
      idAt: body.idAt[i]!,
      clientTs: body.clientTs[i]!,
      datum: body.payloads.buf.toString('hex', body.starts[i], body.ends[i]),
      text: [body.textStarts[i]!, body.textEnds[i]!],
      value: body.values[i],
    });
  }
  return { events };
}

/** Events the WebAssembly reader takes itself from a body whose events start at `from`, read to the end. */
function takenByWasm(schemas: SchemaRegistry, raw: Buffer): number {
  const names = schemas.eventTypes();
  const reader = new WasmBodyReader(
    buildWasmProgram(names.map((name) => ({ name, type: schemas.get(name).latest.type }))),
  );
  const from = raw.indexOf('[') + 1;
  if (!reader.load(raw, ROOM)) throw new Error('no memory');
  const taken = reader.read(from, ROOM);
  return reader.stop === ReadStop.End ? taken : -taken;
}

function expectSame(schemas: SchemaRegistry, raw: Buffer): void {
  expect(readWith(schemas, raw, 'wasm')).toEqual(readWith(schemas, raw, 'typescript'));
}

const uuid = fc.uuid();
const body = (events: unknown[], space?: number): Buffer => Buffer.from(JSON.stringify({ events }, null, space));

describe('the WebAssembly body reader', () => {
  it('was built from the json-avro.c in the repository (make wasm rebuilds it)', () => {
    const dir = path.join(__dirname, '../../../packages/schemas/native');
    const recorded = readFileSync(path.join(dir, 'json-avro.c.sha256'), 'utf8').split(/\s+/)[0];
    const actual = createHash('sha256')
      .update(readFileSync(path.join(dir, 'json-avro.c')))
      .digest('hex');
    expect(actual).toBe(recorded);
  });

  it('takes every plain event of the repository schemas itself, with the bytes the TypeScript reader writes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.option(uuid), ts: fc.option(fc.nat({ max: 2 ** 52 })) }), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.integer({ min: 1, max: 1_000_000 }),
        (specs, seed) => {
          const made = generated(specs.length, seed);
          const events = specs.map((s, i) => ({
            ...made[i]!,
            ...(s.id === null ? {} : { id: s.id }),
            client_ts: s.ts,
          }));
          const raw = body(events);
          expect(takenByWasm(registry, raw)).toBe(events.length);
          expectSame(registry, raw);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('reads numbers as JSON.parse does: integers, fractions, exponents, -0, limits', () => {
    const schemas = numberRegistry();
    const ints = ['0', '-0', '7', '-7', '2147483647', '-2147483648'];
    const longs = [...ints, '2147483648', '-2147483649', '123456789012345', '1234567890123456', '4503599627370496'];
    // what one division or multiplication of exact doubles gives: JSON.parse's value exactly
    const reals = [
      ...longs,
      '4503599627370497',
      '1.5',
      '-1.25',
      '0.1',
      '1E2',
      '1e+2',
      '1e-2',
      '1e22',
      '0.000001',
      '100.000',
      '12345678901234.5',
    ];
    const others = [
      '9007199254740993',
      '0.30000000000000004',
      '3.4028235e38',
      '3.5e38',
      '1e23',
      '5e-324',
      '1e400',
      '-1e400',
      '1.00000000000000000001',
      '01',
      '1.',
      '.5',
      '-',
      '1e',
      '1e+',
      '--1',
      '+1',
      '0x10',
      'NaN',
      'Infinity',
      '1_000',
    ];
    const expected: Record<string, string[]> = { i: ints, l: longs, f: reals, d: reals, u: reals };
    for (const field of ['i', 'l', 'f', 'd', 'u']) {
      const taken: string[] = [];
      for (const text of [...reals, ...others]) {
        const values = { i: '0', l: '0', f: '0', d: '0', u: 'null', [field]: text };
        const payload = `{"i":${values.i},"l":${values.l},"f":${values.f},"d":${values.d},"u":${values.u}}`;
        const raw = Buffer.from(`{"events":[{"type":"numbers","payload":${payload}}]}`);
        expectSame(schemas, raw);
        if (takenByWasm(schemas, raw) === 1) taken.push(text);
      }
      expect({ field, taken: taken.sort() }).toEqual({ field, taken: [...expected[field]!].sort() });
    }
  });

  it('gives the same batch for random schemas and values, spaced or compact, keys in any order', () => {
    fc.assert(
      fc.property(
        schemaArb,
        fc.integer({ min: 0, max: 2 }),
        fc.boolean(),
        fc.context(),
        (shape, space, shuffle, ctx) => {
          const schemas = registryOf(shape);
          return fc.assert(
            fc.property(fc.array(eventArb(shape, shuffle), { minLength: 1, maxLength: 6 }), (events) => {
              const raw = body(events, space);
              ctx.log(raw.toString());
              expectSame(schemas, raw);
            }),
            { seed: SEED, numRuns: 15 },
          );
        },
      ),
      { seed: SEED, numRuns: 80 },
    );
  });

  it('takes every event of random schemas itself when its values are plain: compact, indented or spaced as Python writes', () => {
    let taken = 0;
    let events = 0;
    fc.assert(
      fc.property(plainSchemaArb, (shape) => {
        const schemas = registryOf(shape);
        const batch = fc.sample(fc.array(eventArb(shape, false, true), { minLength: 1, maxLength: 6 }), {
          seed: SEED,
          numRuns: 5,
        });
        for (const list of batch) {
          for (const raw of [body(list), body(list, 2), Buffer.from(pythonJson({ events: list }))]) {
            expectSame(schemas, raw);
            events += list.length;
            taken += takenByWasm(schemas, raw);
          }
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
    expect(taken).toBe(events);
  });

  it('gives the same batch or the same refusal for bodies with bytes deleted, inserted or replaced', () => {
    const alphabet = [...'{}[]",:0123456789-.eE+ \n\\tnulrfase'].map((c) => c.charCodeAt(0));
    const edit = fc.record({
      at: fc.nat(),
      kind: fc.constantFrom('delete', 'insert', 'replace'),
      byte: fc.constantFrom(...alphabet),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(edit, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        (n, edits, seed) => {
          const events = generated(n, seed).map((e) => ({ ...e, id: null, client_ts: 1_767_225_600_000 }));
          const bytes = [...body(events)];
          for (const e of edits) {
            const at = e.at % (bytes.length + 1);
            if (e.kind === 'delete') bytes.splice(at, 1);
            else if (e.kind === 'insert') bytes.splice(at, 0, e.byte);
            else bytes[Math.min(at, bytes.length - 1)] = e.byte;
          }
          const raw = Buffer.from(bytes);
          if (isUtf8(raw)) expectSame(registry, raw);
        },
      ),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('reads a schema that holds itself (a linked list, 1 to 6 deep) as the reference does', () => {
    const node = {
      type: 'record',
      name: 'Node',
      fields: [
        { name: 'v', type: 'int' },
        { name: 'next', type: ['null', 'Node'] },
      ],
    };
    const schemas = SchemaRegistry.load(
      writeSchemaDir({ 'linked/v1.avsc': eventSchema('Linked', [{ name: 'head', type: node }]) }),
    );
    const setting = { ...defaultSetting, registry: schemas };
    let list: unknown = null;
    for (let depth = 0; depth < 6; depth++) {
      list = { v: depth, next: list };
      const raw = body([
        { type: 'linked', payload: { head: list } },
        { type: 'linked', payload: { head: { v: 1, next: null } } },
      ]);
      expectSame(schemas, raw);
      const reference = referenceRoute(raw, setting);
      expect(aligned(raw, fastRoute(raw, setting), reference)).toEqual(reference);
      expect('answer' in reference && JSON.parse(reference.answer)).toMatchObject({ accepted: 2 });
    }
  });

  it('hands the rest of the body to the TypeScript reader if the WebAssembly reader ever traps', () => {
    const raw = body(generated(5, 7));
    const expected = readWith(registry, raw, 'typescript');
    const read = jest.spyOn(WasmBodyReader.prototype, 'read').mockImplementationOnce(() => {
      throw new Error('RuntimeError: unreachable');
    });
    try {
      expect(readWith(registry, raw, 'wasm')).toEqual(expected);
      expect(read).toHaveBeenCalledTimes(1);
    } finally {
      read.mockRestore();
    }
  });

  it('leaves an event to the TypeScript reader where it declines, mid-body, and takes the next one again', () => {
    const plain = {
      type: 'ab_exposure',
      payload: { user_id: 'u', experiment_id: 'e', variant: 'v', first_exposure: true },
    };
    const escaped = { ...plain, payload: { ...plain.payload, variant: 'line\nbreak' } };
    const sorted = { id: null, payload: plain.payload, type: 'ab_exposure' };
    const isoTime = { ...plain, client_ts: '2026-01-01T00:00:00Z' };
    const raw = body([plain, escaped, plain, sorted, isoTime, plain]);
    expect(takenByWasm(registry, raw)).toBe(-1);
    expectSame(registry, raw);
    const batch = readEventsBody(registry, raw, ROOM, 'wasm') as TranscodedBatch;
    expect(batch.count).toBe(6);
    expect(batch.versions.every((v) => v?.eventType === 'ab_exposure')).toBe(true);
  });
});

/** JSON as Python's json.dumps writes it by default: `, ` between items, `: ` after keys. */
function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(value);
}

/** Events as the client library's generator makes them (packages/client), seeded. */
function generated(n: number, seed: number): { type: string; payload: unknown }[] {
  return new EventGenerator(registry, { seed }).batch(n);
}

function numberRegistry(): SchemaRegistry {
  const fields = [
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'f', type: 'float' },
    { name: 'd', type: 'double' },
    { name: 'u', type: ['null', 'double'] },
  ];
  return SchemaRegistry.load(writeSchemaDir({ 'numbers/v1.avsc': eventSchema('Numbers', fields) }));
}
