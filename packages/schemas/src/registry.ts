import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { HourglassError, checkEventTypeName, type ErrorCode } from '@hourglass/common';
import { META_FIELD, META_RECORD_NAME, META_SCHEMA, metaType } from './meta.js';

/** One `schemas/<type>/v<N>.avsc`. */
export interface SchemaVersion {
  readonly eventType: string;
  readonly version: number;
  readonly file: string;
  readonly type: avro.Type;
  /** Hex SHA-256 of the schema's Parsing Canonical Form. */
  readonly fingerprint: string;
}

/** All versions of one event type, newest last; `resolverFor` turns any writer into the newest reader. */
export interface EventTypeSchemas {
  readonly eventType: string;
  readonly versions: readonly SchemaVersion[];
  readonly latest: SchemaVersion;
  /** Resolver from a writer version to `latest`; undefined for `latest` itself (no resolution needed). */
  resolverFor(writer: SchemaVersion): avro.Resolver | undefined;
}

export interface SchemaProblem {
  code: ErrorCode;
  eventType: string;
  version?: number;
  file?: string;
  message: string;
}

export function problemLine(p: SchemaProblem): string {
  const where = p.version === undefined ? p.eventType : `${p.eventType} v${p.version}`;
  return `${p.code}: ${where}: ${p.message}`;
}

const VERSION_FILE = /^v([1-9][0-9]*)\.avsc$/;

export function fingerprintOf(type: avro.Type): string {
  return createHash('sha256').update(JSON.stringify(type.schema())).digest('hex');
}

export class SchemaRegistry {
  private readonly byType = new Map<string, EventTypeSchemas>();
  private readonly byPrint = new Map<string, SchemaVersion>();

  private constructor(types: EventTypeSchemas[]) {
    for (const t of types) {
      this.byType.set(t.eventType, t);
      for (const v of t.versions) this.byPrint.set(v.fingerprint, v);
    }
  }

  /** Loads and checks `dir`; throws one HourglassError naming the first problem. */
  static load(dir: string): SchemaRegistry {
    const { registry, problems } = SchemaRegistry.inspect(dir);
    const first = problems[0];
    if (first) throw new HourglassError(first.code, problemLine(first).slice(first.code.length + 2));
    return registry;
  }

  /** Loads `dir` and reports every problem instead of stopping at the first. */
  static inspect(dir: string): { registry: SchemaRegistry; problems: SchemaProblem[] } {
    const problems: SchemaProblem[] = [];
    const types: EventTypeSchemas[] = [];
    let entries: string[];
    try {
      entries = readdirSync(dir).sort();
    } catch (e) {
      problems.push({
        code: 'SCHEMA_MALFORMED',
        eventType: dir,
        message: `cannot read schema directory (${(e as Error).message})`,
      });
      return { registry: new SchemaRegistry([]), problems };
    }
    for (const eventType of entries) {
      if (eventType.startsWith('.')) continue; // .git, editor and OS files
      const typeDir = join(dir, eventType);
      if (!isDirectory(typeDir)) continue;
      const loaded = loadType(eventType, typeDir, problems);
      if (loaded) types.push(loaded);
    }
    checkDistinctFingerprints(types, problems);
    if (types.length === 0 && problems.length === 0) {
      problems.push({ code: 'SCHEMA_MALFORMED', eventType: dir, message: 'no event types found' });
    }
    const failed = new Set(problems.map((p) => p.eventType));
    return { registry: new SchemaRegistry(types.filter((t) => !failed.has(t.eventType))), problems };
  }

  eventTypes(): string[] {
    return [...this.byType.keys()];
  }

  has(eventType: string): boolean {
    return this.byType.has(eventType);
  }

  get(eventType: string): EventTypeSchemas {
    const t = this.byType.get(eventType);
    if (!t) throw new HourglassError('SCHEMA_UNKNOWN_TYPE', `unknown event type "${eventType}"`);
    return t;
  }

  tryGet(eventType: string): EventTypeSchemas | undefined {
    return this.byType.get(eventType);
  }

  byFingerprint(fingerprint: string): SchemaVersion | undefined {
    return this.byPrint.get(fingerprint);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // a dangling link or a file removed while we read: not a type folder
  }
}

/**
 * A message names its writer only by fingerprint, so two types sharing one (a folder
 * copied without renaming its record) would decode as each other.
 */
function checkDistinctFingerprints(types: readonly EventTypeSchemas[], problems: SchemaProblem[]): void {
  const owner = new Map<string, SchemaVersion>();
  for (const t of types) {
    for (const v of t.versions) {
      const other = owner.get(v.fingerprint);
      if (other && other.eventType !== v.eventType) {
        problems.push({
          code: 'SCHEMA_NAMING',
          eventType: v.eventType,
          version: v.version,
          file: v.file,
          message: `has the same canonical schema as ${other.eventType} v${other.version}; give its record its own name`,
        });
      } else if (!other) owner.set(v.fingerprint, v);
    }
  }
}

function loadType(eventType: string, typeDir: string, problems: SchemaProblem[]): EventTypeSchemas | undefined {
  const nameProblem = checkEventTypeName(eventType);
  if (nameProblem) {
    problems.push({ code: 'SCHEMA_NAMING', eventType, message: nameProblem });
    return undefined;
  }
  const files = readdirSync(typeDir).filter((f) => f.endsWith('.avsc'));
  const versions: SchemaVersion[] = [];
  let ok = true;
  for (const file of files) {
    const m = VERSION_FILE.exec(file);
    if (!m) {
      problems.push({ code: 'SCHEMA_NAMING', eventType, file, message: `file "${file}" must be named v<N>.avsc` });
      ok = false;
      continue;
    }
    const version = Number(m[1]);
    const v = loadVersion(eventType, version, join(typeDir, file), problems);
    if (v) versions.push(v);
    else ok = false;
  }
  if (!ok) return undefined;
  versions.sort((a, b) => a.version - b.version);
  if (versions.length === 0) {
    problems.push({ code: 'SCHEMA_VERSION_GAP', eventType, message: 'no v<N>.avsc files' });
    return undefined;
  }
  const missing = firstMissingVersion(versions);
  if (missing !== undefined) {
    problems.push({
      code: 'SCHEMA_VERSION_GAP',
      eventType,
      message: `v${missing}.avsc is missing: versions must be numbered v1, v2, ... without gaps; found ${versions.map((v) => `v${v.version}`).join(', ')}`,
    });
    return undefined;
  }
  const latest = versions[versions.length - 1]!;
  const resolvers = new Map<string, avro.Resolver>();
  for (const writer of versions.slice(0, -1)) {
    try {
      resolvers.set(writer.fingerprint, latest.type.createResolver(writer.type));
    } catch (e) {
      problems.push({
        code: 'SCHEMA_INCOMPATIBLE',
        eventType,
        version: writer.version,
        message: `v${writer.version} cannot be read by newest v${latest.version}: ${incompatibility(writer.type, latest.type) ?? (e as Error).message}`,
      });
      ok = false;
    }
  }
  if (!ok) return undefined;
  return {
    eventType,
    versions,
    latest,
    resolverFor: (writer) =>
      writer.fingerprint === latest.fingerprint ? undefined : resolvers.get(writer.fingerprint),
  };
}

function firstMissingVersion(sorted: readonly SchemaVersion[]): number | undefined {
  for (let i = 0; i < sorted.length; i++) if (sorted[i]!.version !== i + 1) return i + 1;
  return undefined;
}

function loadVersion(
  eventType: string,
  version: number,
  file: string,
  problems: SchemaProblem[],
): SchemaVersion | undefined {
  const fail = (code: ErrorCode, message: string): undefined => {
    problems.push({ code, eventType, version, file, message });
    return undefined;
  };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    return fail('SCHEMA_MALFORMED', `${file} is not valid JSON (${(e as Error).message})`);
  }
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(json as avro.Schema);
  } catch (e) {
    return fail('SCHEMA_MALFORMED', `${file} is not a valid Avro schema (${(e as Error).message})`);
  }
  if (!(type instanceof avro.types.RecordType)) return fail('SCHEMA_MALFORMED', `${file}: top level must be a record`);
  const first = type.fields[0];
  if (!first || first.name !== META_FIELD) {
    return fail('SCHEMA_META_MISSING', `field "${META_FIELD}" must be the first field`);
  }
  const firstJson = (json as { fields: { type: unknown }[] }).fields[0]?.type;
  if (first.type.name !== META_RECORD_NAME || !first.type.equals(metaType) || !sameSchemaJson(firstJson, META_SCHEMA)) {
    return fail(
      'SCHEMA_META_MISSING',
      `field "${META_FIELD}" must be the shared record ${META_RECORD_NAME} (see packages/schemas/src/meta.ts)`,
    );
  }
  return { eventType, version, file, type, fingerprint: fingerprintOf(type) };
}

/**
 * Compares schema JSON with defaults and logical types included: avsc's `equals` uses
 * the canonical form, which drops both, and avsc forgets logical types it does not
 * implement, so this works on the file's JSON. Docs, key order, spelt-out default
 * attributes and namespace style are ignored.
 */
function sameSchemaJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(normalizeSchemaJson(a)) === JSON.stringify(normalizeSchemaJson(b));
}

function normalizeSchemaJson(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(normalizeSchemaJson);
  if (node === null || typeof node !== 'object') return node;
  const src = { ...(node as Record<string, unknown>) };
  delete src.doc;
  if (src.order === 'ascending') delete src.order;
  if (typeof src.name === 'string' && typeof src.namespace === 'string' && !src.name.includes('.')) {
    src.name = `${src.namespace}.${src.name}`;
  }
  delete src.namespace;
  const keys = Object.keys(src).sort();
  if (keys.length === 1 && keys[0] === 'type' && typeof src.type === 'string') return src.type; // {"type":"long"}
  return Object.fromEntries(keys.map((k) => [k, k === 'default' ? src[k] : normalizeSchemaJson(src[k])]));
}

/** Names the first field that makes `writer` unreadable by `reader`, for a precise error line. */
function incompatibility(writer: avro.Type, reader: avro.Type): string | undefined {
  if (!(writer instanceof avro.types.RecordType) || !(reader instanceof avro.types.RecordType)) return undefined;
  if (writer.name !== reader.name && !(reader.aliases ?? []).includes(writer.name ?? '')) {
    return `record renamed from ${writer.name ?? '?'} to ${reader.name ?? '?'} without an alias`;
  }
  const writerFields = new Map(writer.fields.map((f) => [f.name, f]));
  for (const rf of reader.fields) {
    const wf = writerFields.get(rf.name) ?? rf.aliases.map((a) => writerFields.get(a)).find((f) => f !== undefined);
    if (!wf) {
      if (rf.defaultValue() === undefined) return `field "${rf.name}" was added without a default`;
      continue;
    }
    try {
      rf.type.createResolver(wf.type);
    } catch {
      if (wf.type instanceof avro.types.EnumType && rf.type instanceof avro.types.EnumType) {
        const removed = wf.type.symbols.filter((sym) => !(rf.type as avro.types.EnumType).symbols.includes(sym));
        if (removed.length > 0) {
          return `field "${rf.name}" lost enum symbol(s) ${removed.join(', ')} and its enum has no default`;
        }
      }
      return `field "${rf.name}" changed from ${JSON.stringify(wf.type.schema())} to ${JSON.stringify(rf.type.schema())}, which cannot be resolved`;
    }
  }
  return undefined;
}
