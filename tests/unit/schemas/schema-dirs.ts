import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ErrorCode } from '@hourglass/common';
import { META_SCHEMA } from '@hourglass/schemas';

/**
 * Temporary schema directories, each broken in one way, shared by the registry unit
 * test (which checks the problem found) and the `schemas check` CLI test (which checks
 * the one line, the exit code and the absence of a stack trace).
 */
export type SchemaFiles = Record<string, object | string>;

export function writeSchemaDir(files: SchemaFiles): string {
  const root = mkdtempSync(join(tmpdir(), 'hourglass-schemas-'));
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return root;
}

type Field = { name: string; type: unknown; default?: unknown; aliases?: string[] };

export function eventSchema(name: string, fields: Field[], meta: unknown = META_SCHEMA): object {
  return { type: 'record', name, namespace: 'hourglass.events', fields: [{ name: 'meta', type: meta }, ...fields] };
}

const thing = (fields: Field[]): object => eventSchema('Thing', fields);
const enumOf = (symbols: string[], def?: string): object => ({
  type: 'enum',
  name: 'Kind',
  symbols,
  ...(def ? { default: def } : {}),
});
const metaWith = (change: (fields: Record<string, unknown>[]) => Record<string, unknown>[], name = 'EventMeta') => ({
  ...META_SCHEMA,
  name,
  fields: change(META_SCHEMA.fields.map((f) => ({ ...f }))),
});
const validThing = { 'thing/v1.avsc': thing([{ name: 'a', type: 'string' }]) };

export interface BrokenCase {
  name: string;
  files: SchemaFiles;
  code: ErrorCode;
  /** What the one line must say besides the code: type, version and field where there is one. */
  line: RegExp;
  /** Also run through the built CLI (each run costs a Node start-up, so not every case). */
  cli?: boolean;
}

export const brokenCases: BrokenCase[] = [
  {
    name: 'a field added without a default',
    cli: true,
    files: {
      'thing/v1.avsc': thing([{ name: 'a', type: 'string' }]),
      'thing/v2.avsc': thing([
        { name: 'a', type: 'string' },
        { name: 'b', type: 'int' },
      ]),
    },
    code: 'SCHEMA_INCOMPATIBLE',
    line: /^SCHEMA_INCOMPATIBLE: thing v1: .*field "b" was added without a default/,
  },
  {
    name: 'a type narrowed from long to int',
    cli: true,
    files: {
      'thing/v1.avsc': thing([{ name: 'n', type: 'long' }]),
      'thing/v2.avsc': thing([{ name: 'n', type: 'int' }]),
    },
    code: 'SCHEMA_INCOMPATIBLE',
    line: /^SCHEMA_INCOMPATIBLE: thing v1: .*field "n" changed from "long" to "int"/,
  },
  {
    name: 'an enum symbol removed from an enum without a default',
    cli: true,
    files: {
      'thing/v1.avsc': thing([{ name: 'kind', type: enumOf(['A', 'B', 'C']) }]),
      'thing/v2.avsc': thing([{ name: 'kind', type: enumOf(['A', 'B']) }]),
      'thing/v3.avsc': thing([{ name: 'kind', type: enumOf(['A', 'B']) }]),
    },
    code: 'SCHEMA_INCOMPATIBLE',
    line: /^SCHEMA_INCOMPATIBLE: thing v1: v1 cannot be read by newest v3: field "kind" lost enum symbol\(s\) C and its enum has no default$/,
  },
  {
    name: 'a record renamed without an alias',
    files: {
      'thing/v1.avsc': thing([{ name: 'a', type: 'string' }]),
      'thing/v2.avsc': eventSchema('Other', [{ name: 'a', type: 'string' }]),
    },
    code: 'SCHEMA_INCOMPATIBLE',
    line: /^SCHEMA_INCOMPATIBLE: thing v1: .*renamed from hourglass\.events\.Thing to hourglass\.events\.Other/,
  },
  {
    name: 'a file that is not JSON',
    cli: true,
    files: { 'thing/v1.avsc': '{ "type": "record", ' },
    code: 'SCHEMA_MALFORMED',
    line: /^SCHEMA_MALFORMED: thing v1: .*v1\.avsc is not valid JSON/,
  },
  {
    name: 'a file that is JSON but not Avro',
    cli: true,
    files: { 'thing/v1.avsc': thing([{ name: 'a', type: 'strnig' }]) },
    code: 'SCHEMA_MALFORMED',
    line: /^SCHEMA_MALFORMED: thing v1: .*is not a valid Avro schema .*strnig/,
  },
  {
    name: 'a top level that is not a record',
    files: { 'thing/v1.avsc': '"string"' },
    code: 'SCHEMA_MALFORMED',
    line: /^SCHEMA_MALFORMED: thing v1: .*top level must be a record/,
  },
  {
    name: 'meta not the first field',
    cli: true,
    files: {
      'thing/v1.avsc': {
        type: 'record',
        name: 'Thing',
        fields: [
          { name: 'a', type: 'string' },
          { name: 'meta', type: META_SCHEMA },
        ],
      },
    },
    code: 'SCHEMA_META_MISSING',
    line: /^SCHEMA_META_MISSING: thing v1: field "meta" must be the first field/,
  },
  {
    name: 'no meta field at all',
    files: { 'thing/v1.avsc': { type: 'record', name: 'Thing', fields: [{ name: 'a', type: 'string' }] } },
    code: 'SCHEMA_META_MISSING',
    line: /^SCHEMA_META_MISSING: thing v1: field "meta" must be the first field/,
  },
  {
    name: 'a meta record missing gateway_id',
    cli: true,
    files: {
      'thing/v1.avsc': eventSchema(
        'Thing',
        [],
        metaWith((f) => f.slice(0, 3)),
      ),
    },
    code: 'SCHEMA_META_MISSING',
    line: /^SCHEMA_META_MISSING: thing v1: field "meta" must be the shared record hourglass\.EventMeta/,
  },
  {
    name: 'a meta record without the timestamp-millis logical type',
    files: {
      'thing/v1.avsc': eventSchema(
        'Thing',
        [],
        metaWith((f) => f.map((x) => (x.name === 'gateway_ts' ? { ...x, type: 'long' } : x))),
      ),
    },
    code: 'SCHEMA_META_MISSING',
    line: /^SCHEMA_META_MISSING: thing v1: field "meta" must be the shared record/,
  },
  {
    name: 'a meta record without the client_ts default',
    files: {
      'thing/v1.avsc': eventSchema(
        'Thing',
        [],
        metaWith((f) => f.map((x) => (x.name === 'client_ts' ? { name: x.name, type: x.type } : x))),
      ),
    },
    code: 'SCHEMA_META_MISSING',
    line: /^SCHEMA_META_MISSING: thing v1: field "meta" must be the shared record/,
  },
  {
    name: 'a meta record with another name',
    files: {
      'thing/v1.avsc': eventSchema(
        'Thing',
        [],
        metaWith((f) => f, 'Meta'),
      ),
    },
    code: 'SCHEMA_META_MISSING',
    line: /^SCHEMA_META_MISSING: thing v1: field "meta" must be the shared record/,
  },
  {
    name: 'a version gap (v1, v3)',
    cli: true,
    files: { ...validThing, 'thing/v3.avsc': thing([{ name: 'a', type: 'string' }]) },
    code: 'SCHEMA_VERSION_GAP',
    line: /^SCHEMA_VERSION_GAP: thing: v2\.avsc is missing: .*found v1, v3/,
  },
  {
    name: 'versions not starting at v1',
    files: { 'thing/v2.avsc': thing([{ name: 'a', type: 'string' }]) },
    code: 'SCHEMA_VERSION_GAP',
    line: /^SCHEMA_VERSION_GAP: thing: v1\.avsc is missing/,
  },
  {
    name: 'a type folder without schema files',
    files: { ...validThing, 'empty/README.md': 'nothing here' },
    code: 'SCHEMA_VERSION_GAP',
    line: /^SCHEMA_VERSION_GAP: empty: no v<N>\.avsc files/,
  },
  ...[
    ['CamelCase', 'TrackPlayed'],
    ['dashes', 'track-played'],
    ['a goog prefix', 'goog_events'],
    ['a leading digit', '1track'],
    ['a double underscore', 'track__played'],
    ['a trailing underscore', 'track_'],
    ['more than 64 characters', `t${'x'.repeat(64)}`],
  ].map(([what, type]): BrokenCase => ({
    name: `a type name with ${what}`,
    files: { [`${type}/v1.avsc`]: thing([{ name: 'a', type: 'string' }]) },
    code: 'SCHEMA_NAMING',
    line: new RegExp(`^SCHEMA_NAMING: ${type}: event type "${type}" (must|is longer)`),
    cli: ['CamelCase', 'dashes', 'a goog prefix'].includes(what!),
  })),
  ...['V1.avsc', 'v01.avsc', 'v0.avsc', 'thing.avsc', 'v1.0.avsc', 'v1-new.avsc'].map((file): BrokenCase => ({
    name: `a file named ${file}`,
    files: { [`thing/${file}`]: thing([{ name: 'a', type: 'string' }]) },
    code: 'SCHEMA_NAMING',
    line: new RegExp(`^SCHEMA_NAMING: thing: file "${file.replace(/\./g, '\\.')}" must be named v<N>\\.avsc`),
    cli: file === 'V1.avsc',
  })),
  {
    name: 'two types with the same canonical schema',
    cli: true,
    files: { ...validThing, 'thing_copy/v1.avsc': thing([{ name: 'a', type: 'string' }]) },
    code: 'SCHEMA_NAMING',
    line: /^SCHEMA_NAMING: thing_copy v1: has the same canonical schema as thing v1/,
  },
  {
    name: 'a directory without event types',
    files: { 'README.md': 'no types' },
    code: 'SCHEMA_MALFORMED',
    line: /^SCHEMA_MALFORMED: .*: no event types found/,
  },
];

/** Directories that must pass: the compatible changes Avro allows. */
export const validCases: { name: string; files: SchemaFiles; versions: Record<string, number> }[] = [
  {
    name: 'a field added with a default, a type widened int -> long, an enum symbol dropped with a default',
    files: {
      'thing/v1.avsc': thing([
        { name: 'n', type: 'int' },
        { name: 'kind', type: enumOf(['A', 'B', 'C'], 'A') },
      ]),
      'thing/v2.avsc': thing([
        { name: 'n', type: 'long' },
        { name: 'kind', type: enumOf(['A', 'B'], 'A') },
        { name: 'note', type: ['null', 'string'], default: null },
      ]),
    },
    versions: { thing: 2 },
  },
  {
    name: 'a field renamed with an alias; hidden folders and stray files ignored',
    files: {
      'thing/v1.avsc': thing([{ name: 'old_name', type: 'string' }]),
      'thing/v2.avsc': thing([{ name: 'new_name', type: 'string', aliases: ['old_name'] }]),
      'thing/notes.txt': 'not a schema',
      '.git/config': '[core]',
      'README.md': 'schemas',
    },
    versions: { thing: 2 },
  },
];
