import fc from 'fast-check';
import { SchemaRegistry } from '@hourglass/schemas';
import { eventSchema, writeSchemaDir } from '../schemas/schema-dirs';

/**
 * Random event schemas for the body readers' tests (wasm-reader.test.ts): records of primitives,
 * enums, nested records and unions of one branch per JSON kind, with values for them that are
 * plain, at the edges of their type, or invalid, and the envelope around them.
 */
const uuid = fc.uuid();

export type Shape =
  | { kind: 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'string' }
  | { kind: 'enum'; symbols: string[] }
  | { kind: 'record'; fields: { name: string; shape: Shape }[] }
  | { kind: 'union'; branches: Shape[] }
  | { kind: 'logical' };

const fieldName = fc.constantFrom('a', 'b', 'user_id', 'x1', '_y', 'Zed', 'n', 'valueOf');
const symbolsArb = fc.uniqueArray(fc.constantFrom('A', 'B', 'CLICK_ROW', 'x', 'S001', 'S002', '_z'), {
  minLength: 1,
  maxLength: 5,
});
const primitive = fc
  .constantFrom('null', 'boolean', 'int', 'long', 'float', 'double', 'string')
  .map((kind) => ({ kind }) as Shape);

const { shape: shapeArb } = fc.letrec<{ shape: Shape; record: Shape; union: Shape }>((tie) => ({
  shape: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    primitive,
    symbolsArb.map((symbols) => ({ kind: 'enum', symbols }) as Shape),
    fc.constant({ kind: 'logical' } as Shape),
    tie('record'),
    tie('union'),
  ),
  record: fc
    .uniqueArray(fc.record({ name: fieldName, shape: tie('shape') }), {
      minLength: 1,
      maxLength: 4,
      selector: (f) => f.name,
    })
    .map((fields) => ({ kind: 'record', fields }) as Shape),
  // one branch per JSON kind (null, boolean, number, text, object): avsc unwraps such unions
  union: fc
    .shuffledSubarray(['null', 'boolean', 'number', 'text', 'object'], { minLength: 2, maxLength: 3 })
    .chain((kinds) =>
      fc.tuple(
        ...kinds.map((k): fc.Arbitrary<Shape> => {
          if (k === 'null' || k === 'boolean') return fc.constant({ kind: k });
          if (k === 'number')
            return fc.constantFrom('int', 'long', 'float', 'double').map((kind) => ({ kind }) as Shape);
          if (k === 'text')
            return fc.oneof(
              fc.constant({ kind: 'string' } as Shape),
              symbolsArb.map((symbols) => ({ kind: 'enum', symbols }) as Shape),
            );
          return tie('record');
        }),
      ),
    )
    .map((branches) => ({ kind: 'union', branches }) as Shape),
}));

/** The payload: a record of one to four fields. */
export const schemaArb = fc
  .uniqueArray(fc.record({ name: fieldName, shape: shapeArb }), {
    minLength: 1,
    maxLength: 4,
    selector: (f) => f.name,
  })
  .map((fields) => ({ kind: 'record', fields }) as Shape);

/** Schemas without what the TypeScript reader declines too (an inherited field name, a logical type). */
export const plainSchemaArb = schemaArb.filter((shape) => !/valueOf|logical/.test(JSON.stringify(shape)));

let named = 0;
function avroOf(shape: Shape): unknown {
  switch (shape.kind) {
    case 'enum':
      return { type: 'enum', name: `E${named++}`, symbols: shape.symbols };
    case 'record':
      return {
        type: 'record',
        name: `R${named++}`,
        fields: shape.fields.map((f) => ({ name: f.name, type: avroOf(f.shape) })),
      };
    case 'union':
      return shape.branches.map(avroOf);
    case 'logical':
      return { type: 'long', logicalType: 'timestamp-millis' };
    default:
      return shape.kind;
  }
}

export function registryOf(shape: Shape): SchemaRegistry {
  const fields = (shape as { fields: { name: string; shape: Shape }[] }).fields.map((f) => ({
    name: f.name,
    type: avroOf(f.shape),
  }));
  return SchemaRegistry.load(writeSchemaDir({ 'random_event/v1.avsc': eventSchema('RandomEvent', fields) }));
}

const float32 = fc.float({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x));

/** A JSON value for `shape`: valid mostly (or, with `plainOnly`, always plain), with the edges of each kind. */
function valueArb(shape: Shape, plainOnly: boolean): fc.Arbitrary<unknown> {
  switch (shape.kind) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'int':
      return plainOnly ? fc.integer() : fc.oneof(fc.integer(), fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 1.5, -0, 'x'));
    case 'long':
    case 'logical':
      return plainOnly
        ? fc.integer({ min: -(10 ** 15) + 1, max: 10 ** 15 - 1 })
        : fc.oneof(fc.maxSafeInteger(), fc.constantFrom(2 ** 52, 2 ** 53, -(2 ** 53), 0.5, 1e21));
    case 'float':
    case 'double':
      return plainOnly
        ? fc.oneof(
            fc.integer(),
            fc.integer().map((n) => n / 100),
          )
        : fc.oneof(
            fc.double({ noNaN: true, noDefaultInfinity: true }),
            float32,
            fc.integer().map((n) => n / 1000),
          );
    case 'string':
      return plainOnly
        ? fc.string({ unit: 'grapheme-ascii' }).filter((s) => JSON.stringify(s) === `"${s}"`)
        : fc.string({ unit: 'binary' });
    case 'enum':
      return plainOnly ? fc.constantFrom(...shape.symbols) : fc.constantFrom(...shape.symbols, 'NOPE', '');
    case 'record':
      return fc
        .tuple(...shape.fields.map((f) => valueArb(f.shape, plainOnly)))
        .map((values) => Object.fromEntries(shape.fields.map((f, i) => [f.name, values[i]])));
    case 'union':
      return fc.oneof(...shape.branches.map((b) => valueArb(b, plainOnly)));
  }
}

/** An event of the random type (now and then of another), its keys shuffled when `shuffle`. */
export function eventArb(shape: Shape, shuffle: boolean, plainOnly = false): fc.Arbitrary<Record<string, unknown>> {
  const envelope = fc.record({
    type: plainOnly ? fc.constant('random_event') : fc.constantFrom('random_event', 'random_event', 'other'),
    id: plainOnly
      ? fc.option(uuid)
      : fc.oneof(
          fc.option(uuid),
          uuid.map((u) => u.toUpperCase()),
          fc.constantFrom('x', 1),
        ),
    client_ts: plainOnly
      ? fc.option(fc.nat({ max: 2 ** 52 }))
      : fc.oneof(fc.option(fc.nat({ max: 2 ** 52 })), fc.constantFrom(-1, 2 ** 53, '2026-01-01T00:00:00Z', 1.5)),
    payload: valueArb(shape, plainOnly),
  });
  return envelope.chain((e) => {
    const entries = Object.entries(e);
    if (!shuffle) return fc.constant(Object.fromEntries(entries));
    return fc.shuffledSubarray(entries, { minLength: entries.length }).map((list) => Object.fromEntries(list));
  });
}
