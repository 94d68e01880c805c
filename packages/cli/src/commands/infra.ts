import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { Defaults, HourglassError, checkPrefix, closedNoticeTopic, resourceNames } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';

/**
 * `hourglass infra generate|check`: the bridge from `schemas/` to Terraform. Terraform never
 * lists event types or builds Pub/Sub names itself; it reads them, verbatim, from
 * `infra/event_types.auto.tfvars.json`, whose names come from `resourceNames`. BigQuery
 * needs an Avro file to learn a table's schema before any hour is closed, so each type also
 * gets a schema-only Avro container under `infra/reference_schemas/`.
 */
export const EVENT_TYPES_FILE = 'event_types.auto.tfvars.json';
export const REFERENCE_DIR = 'reference_schemas';

/** One event type as Terraform's `var.event_types` sees it. */
export interface TerraformEventType {
  topic: string;
  subscription: string;
  dead_letter_topic: string;
  dead_letter_subscription: string;
  schema_version: number;
  schema_fingerprint: string;
  /** Newest .avsc, compact JSON: the Pub/Sub topic schema definition. */
  avro_schema: string;
  /** Schema-only Avro file, relative to infra/, that BigQuery reads the table schema from. */
  reference_avro: string;
}

export interface TerraformEventTypesFile {
  prefix: string;
  event_types: Record<string, TerraformEventType>;
  /** closedNoticeTopic(prefix): the closed-window notice topic. */
  closed_notices_topic: string;
}

export function terraformEventTypes(registry: SchemaRegistry, prefix: string): TerraformEventTypesFile {
  const bad = checkPrefix(prefix);
  if (bad) throw new HourglassError('CONFIG_INVALID', bad, { path: 'HOURGLASS_PREFIX' });
  const eventTypes: Record<string, TerraformEventType> = {};
  for (const eventType of [...registry.eventTypes()].sort()) {
    const latest = registry.get(eventType).latest;
    const names = resourceNames(prefix, eventType);
    eventTypes[eventType] = {
      topic: names.topic,
      subscription: names.subscription,
      dead_letter_topic: names.deadLetterTopic,
      dead_letter_subscription: names.deadLetterSubscription,
      schema_version: latest.version,
      schema_fingerprint: latest.fingerprint,
      avro_schema: JSON.stringify(JSON.parse(readFileSync(latest.file, 'utf8'))),
      reference_avro: `${REFERENCE_DIR}/${eventType}.avro`,
    };
  }
  return { prefix, event_types: eventTypes, closed_notices_topic: closedNoticeTopic(prefix) };
}

/** Every generated file, path relative to the infra directory → exact bytes. */
export function renderInfraFiles(registry: SchemaRegistry, prefix: string): Map<string, Buffer> {
  const doc = terraformEventTypes(registry, prefix);
  const files = new Map<string, Buffer>();
  // Two-space JSON without arrays is already in the shape prettier keeps.
  files.set(EVENT_TYPES_FILE, Buffer.from(`${JSON.stringify(doc, null, 2)}\n`));
  for (const t of Object.values(doc.event_types)) {
    files.set(t.reference_avro, schemaOnlyAvroFile(t.avro_schema, t.schema_fingerprint));
  }
  return files;
}

/**
 * An Avro object container file with a header and no blocks (valid per the Avro spec).
 * The 16-byte sync marker comes from the schema fingerprint so the bytes are reproducible.
 */
export function schemaOnlyAvroFile(schemaJson: string, fingerprintHex: string): Buffer {
  const magic = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // "Obj" 1
  const metadata = avroMapOfBytes([
    ['avro.schema', Buffer.from(schemaJson, 'utf8')],
    ['avro.codec', Buffer.from('null', 'utf8')],
  ]);
  const sync = Buffer.from(fingerprintHex.slice(0, 32), 'hex');
  if (sync.length !== 16) throw new RangeError('fingerprint must be at least 32 hex digits');
  return Buffer.concat([magic, metadata, sync]);
}

/** Avro binary of map<bytes>: one block of entries, then the zero-count end block. */
function avroMapOfBytes(entries: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  const parts: Buffer[] = [avroLong(entries.length)];
  for (const [key, value] of entries) {
    const k = Buffer.from(key, 'utf8');
    parts.push(avroLong(k.length), k, avroLong(value.length), value);
  }
  parts.push(avroLong(0));
  return Buffer.concat(parts);
}

/** Avro long: zig-zag, then little-endian base-128 varint. */
function avroLong(n: number): Buffer {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  const bytes: number[] = [];
  while (z >= 0x80) {
    bytes.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  bytes.push(z);
  return Buffer.from(bytes);
}

/** What differs between `expected` and the files under `infraDir`; empty when current. */
export function staleInfraFiles(infraDir: string, expected: Map<string, Buffer>): string[] {
  const problems: string[] = [];
  for (const [rel, bytes] of expected) {
    const path = join(infraDir, rel);
    if (!existsSync(path)) problems.push(`${rel} is missing`);
    else if (!readFileSync(path).equals(bytes)) problems.push(`${rel} is out of date`);
  }
  for (const rel of leftoverReferenceFiles(infraDir, expected)) {
    problems.push(`${rel} belongs to no event type in schemas/`);
  }
  return problems;
}

/** Writes what changed and removes reference files of types that no longer exist. */
export function writeInfraFiles(infraDir: string, expected: Map<string, Buffer>): string[] {
  const changed: string[] = [];
  for (const rel of leftoverReferenceFiles(infraDir, expected)) {
    rmSync(join(infraDir, rel));
    changed.push(`removed ${rel}`);
  }
  for (const [rel, bytes] of expected) {
    const path = join(infraDir, rel);
    if (existsSync(path) && readFileSync(path).equals(bytes)) continue;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
    changed.push(`wrote ${rel}`);
  }
  return changed;
}

function leftoverReferenceFiles(infraDir: string, expected: Map<string, Buffer>): string[] {
  const dir = join(infraDir, REFERENCE_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => `${REFERENCE_DIR}/${f}`)
    .filter((rel) => !expected.has(rel))
    .sort();
}

/** The prefix recorded by the last `generate`, so a custom prefix survives regeneration. */
export function recordedPrefix(infraDir: string): string | undefined {
  const path = join(infraDir, EVENT_TYPES_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const prefix = (JSON.parse(readFileSync(path, 'utf8')) as Partial<TerraformEventTypesFile>).prefix;
    return typeof prefix === 'string' && checkPrefix(prefix) === undefined ? prefix : undefined;
  } catch {
    return undefined;
  }
}

interface InfraOptions {
  dir: string;
  infra: string;
  prefix?: string;
}

function expectedFiles(opts: InfraOptions): Map<string, Buffer> {
  // An empty HOURGLASS_PREFIX counts as unset, as in loadConfig.
  const prefix = opts.prefix || recordedPrefix(opts.infra) || Defaults.prefix;
  return renderInfraFiles(SchemaRegistry.load(opts.dir), prefix);
}

export function registerInfraCommands(program: Command): void {
  const infra = program.command('infra').description('Terraform inputs generated from schemas/');
  const common = (cmd: Command): Command =>
    cmd
      .option('-d, --dir <dir>', 'schema directory', process.env.HOURGLASS_SCHEMAS_DIR ?? Defaults.schemasDir)
      .option('--infra <dir>', 'Terraform directory', 'infra')
      .option(
        '--prefix <prefix>',
        'resource name prefix (default: HOURGLASS_PREFIX, else the prefix already in the generated file, else "hourglass")',
        process.env.HOURGLASS_PREFIX,
      );
  common(infra.command('generate'))
    .description(`write ${EVENT_TYPES_FILE} and ${REFERENCE_DIR}/ from schemas/`)
    .action((opts: InfraOptions) => {
      const changed = writeInfraFiles(opts.infra, expectedFiles(opts));
      for (const line of changed) process.stdout.write(`${line}\n`);
      if (changed.length === 0) process.stdout.write('infra inputs already current\n');
    });
  common(infra.command('check'))
    .description('exit 1 when the generated Terraform inputs do not match schemas/')
    .action((opts: InfraOptions) => {
      const problems = staleInfraFiles(opts.infra, expectedFiles(opts));
      for (const p of problems) process.stderr.write(`${p}\n`);
      if (problems.length > 0) {
        process.stderr.write('run: npx hourglass infra generate\n');
        process.exit(1);
      }
      process.stdout.write('infra inputs are current\n');
    });
}
