import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { Defaults, checkPrefix, resourceNames } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import {
  EVENT_TYPES_FILE,
  REFERENCE_DIR,
  renderInfraFiles,
  staleInfraFiles,
  writeInfraFiles,
  type TerraformEventTypesFile,
} from '@hourglass/cli/commands/infra';
import { INFRA_DIR, loadTerraform } from './terraform-config';

/** infra/event_types.auto.tfvars.json is how Terraform learns the event types: it must be current. */
const registry = SchemaRegistry.load(Defaults.schemasDir);
const committed = JSON.parse(readFileSync(join(INFRA_DIR, EVENT_TYPES_FILE), 'utf8')) as TerraformEventTypesFile;

test('the generated file and reference schemas are byte-for-byte what generate writes from schemas/', () => {
  const expected = renderInfraFiles(registry, committed.prefix);
  expect(staleInfraFiles(INFRA_DIR, expected)).toEqual([]);
});

test('the generated file lists every event type in schemas/ and nothing else', () => {
  expect(Object.keys(committed.event_types).sort()).toEqual(registry.eventTypes().sort());
});

test('its Pub/Sub names are exactly resourceNames(prefix, type)', () => {
  expect(checkPrefix(committed.prefix)).toBeUndefined();
  for (const [eventType, t] of Object.entries(committed.event_types)) {
    const names = resourceNames(committed.prefix, eventType);
    expect({
      topic: t.topic,
      subscription: t.subscription,
      deadLetterTopic: t.dead_letter_topic,
      deadLetterSubscription: t.dead_letter_subscription,
    }).toEqual(names);
  }
});

test('each type carries its newest schema, version and fingerprint', () => {
  for (const [eventType, t] of Object.entries(committed.event_types)) {
    const latest = registry.get(eventType).latest;
    expect(t.schema_version).toBe(latest.version);
    expect(t.schema_fingerprint).toBe(latest.fingerprint);
    expect(JSON.parse(t.avro_schema)).toEqual(JSON.parse(readFileSync(latest.file, 'utf8')));
  }
});

test('each reference schema is a valid Avro container of the newest schema with no records', async () => {
  for (const [eventType, t] of Object.entries(committed.event_types)) {
    const latest = registry.get(eventType).latest;
    const { schema, records } = await readAvroFile(join(INFRA_DIR, t.reference_avro));
    expect(schema.equals(latest.type)).toBe(true);
    expect(records).toBe(0);
  }
});

test('Terraform declares event_types with exactly the fields the generator writes', async () => {
  const config = await loadTerraform();
  const declared = String(config.variables.get('event_types')?.type);
  const fields = [...declared.matchAll(/(\w+)\s*=\s*(?:string|number)/g)].map((m) => m[1]).sort();
  const generated = Object.keys(Object.values(committed.event_types)[0] ?? {}).sort();
  expect(fields).toEqual(generated);
  expect(config.variables.get('prefix')).toBeDefined();
});

describe('staleness is detected', () => {
  let work: string;
  let schemas: string;
  let infra: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'hourglass-infra-'));
    schemas = join(work, 'schemas');
    infra = join(work, 'infra');
    cpSync(Defaults.schemasDir, schemas, { recursive: true });
    mkdirSync(infra);
    writeInfraFiles(infra, renderInfraFiles(SchemaRegistry.load(schemas), 'acme'));
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  const current = (): string[] => staleInfraFiles(infra, renderInfraFiles(SchemaRegistry.load(schemas), 'acme'));

  test('a freshly generated directory is current', () => {
    expect(current()).toEqual([]);
  });

  test('a new schema version makes the file and its reference schema stale', () => {
    const v1 = JSON.parse(readFileSync(join(schemas, 'page_viewed', 'v1.avsc'), 'utf8')) as {
      fields: unknown[];
    };
    v1.fields.push({ name: 'added_in_v2', type: ['null', 'string'], default: null });
    writeFileSync(join(schemas, 'page_viewed', 'v2.avsc'), JSON.stringify(v1));
    expect(current()).toEqual([
      `${EVENT_TYPES_FILE} is out of date`,
      `${REFERENCE_DIR}/page_viewed.avro is out of date`,
    ]);
  });

  test('a new event type is missing, a removed one is left over', () => {
    const opened = JSON.parse(readFileSync(join(schemas, 'page_viewed', 'v1.avsc'), 'utf8')) as { name: string };
    opened.name = 'PageOpened';
    mkdirSync(join(schemas, 'page_opened'));
    writeFileSync(join(schemas, 'page_opened', 'v1.avsc'), JSON.stringify(opened));
    rmSync(join(schemas, 'ab_exposure'), { recursive: true });
    expect(current()).toEqual([
      `${EVENT_TYPES_FILE} is out of date`,
      `${REFERENCE_DIR}/page_opened.avro is missing`,
      `${REFERENCE_DIR}/ab_exposure.avro belongs to no event type in schemas/`,
    ]);
    writeInfraFiles(infra, renderInfraFiles(SchemaRegistry.load(schemas), 'acme'));
    expect(current()).toEqual([]);
    expect(existsSync(join(infra, REFERENCE_DIR, 'ab_exposure.avro'))).toBe(false);
  });

  test('`hourglass infra check` exits 0 when current and 1 when stale; generate keeps the recorded prefix', () => {
    const cli = (...args: string[]) =>
      spawnSync(
        process.execPath,
        ['packages/cli/bin/hourglass.js', 'infra', ...args, '--dir', schemas, '--infra', infra],
        {
          encoding: 'utf8',
          env: { ...process.env, HOURGLASS_PREFIX: undefined },
        },
      );
    expect(cli('check').status).toBe(0);
    rmSync(join(schemas, 'ab_exposure'), { recursive: true });
    const stale = cli('check');
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain('ab_exposure.avro belongs to no event type');
    expect(cli('generate').status).toBe(0);
    expect(cli('check').status).toBe(0);
    const regenerated = JSON.parse(readFileSync(join(infra, EVENT_TYPES_FILE), 'utf8')) as TerraformEventTypesFile;
    expect(regenerated.prefix).toBe('acme');
    expect(Object.keys(regenerated.event_types)).not.toContain('ab_exposure');
  });
});

function readAvroFile(path: string): Promise<{ schema: avro.Type; records: number }> {
  return new Promise((resolve, reject) => {
    let schema: avro.Type | undefined;
    let records = 0;
    avro
      .createFileDecoder(path)
      .on('metadata', (type: avro.Type) => (schema = type))
      .on('data', () => records++)
      .on('error', reject)
      .on('end', () => (schema ? resolve({ schema, records }) : reject(new Error(`${path}: no header`))));
  });
}
