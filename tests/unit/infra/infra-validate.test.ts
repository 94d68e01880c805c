import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSchema } from '../../../tools/infra-validate/src/schema';
import { usedTypes, validateDirectory, type Problem } from '../../../tools/infra-validate/src/validate';
import { INFRA_DIR } from '../../infra/terraform-config';

/**
 * tools/infra-validate, the offline `terraform validate`: the real infra/ passes, and each
 * kind of mistake Terraform would refuse, made in a copy of infra/, is caught. The schema is
 * the committed extract of hashicorp/google 6.50.0 (`make infra-validate` checks that it is
 * what the provider package says).
 */
const schema = loadSchema();
let work: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'hourglass-infra-validate-'));
  cpSync(INFRA_DIR, work, { recursive: true });
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/** Replaces exactly one occurrence of `from` in `file` of the copy. */
function mutate(file: string, from: string | RegExp, to: string): void {
  const path = join(work, file);
  const text = readFileSync(path, 'utf8');
  const matches = text.match(typeof from === 'string' ? new RegExp(escape(from), 'g') : new RegExp(from, 'g'));
  if (matches?.length !== 1) throw new Error(`${file}: expected one ${String(from)}, found ${matches?.length ?? 0}`);
  writeFileSync(path, text.replace(from, to));
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const messages = (problems: Problem[]) => problems.map((p) => `${p.file}:${p.line}: ${p.where}: ${p.message}`);

test('the real infra/ passes, and the extract covers every type it uses', async () => {
  expect(messages(await validateDirectory(INFRA_DIR, schema))).toEqual([]);
  const used = usedTypes(INFRA_DIR);
  expect(Object.keys(schema.resources)).toEqual(used.resources);
  expect(Object.keys(schema.dataSources)).toEqual(used.dataSources);
  expect(schema.version).toBe('6.50.0');
  expect(schema.resourceTypes.length).toBeGreaterThan(1000);
});

test.each([
  {
    what: 'a misspelt argument (period_seconds → period_secondz)',
    file: 'run.tf',
    from: /period_seconds(\s+)= 2\n(\s+)failure_threshold = 15/,
    to: 'period_secondz$1= 2\n$2failure_threshold = 15',
    expected:
      /google_cloud_run_v2_service\.gateway template\.containers\.startup_probe: unknown argument "period_secondz" \(did you mean "period_seconds"\?\)/,
  },
  {
    what: 'a misspelt nested block',
    file: 'pubsub.tf',
    from: 'dead_letter_policy {',
    to: 'dead_leter_policy {',
    expected:
      /google_pubsub_subscription\.consumer: unknown block "dead_leter_policy" \(did you mean "dead_letter_policy"\?\)/,
  },
  {
    what: 'a required argument removed',
    file: 'pubsub.tf',
    from: '  topic = google_pubsub_topic.events[each.key].id\n',
    to: '',
    expected: /google_pubsub_subscription\.consumer: missing required argument "topic"/,
  },
  {
    what: 'a list where a string belongs',
    file: 'bigquery.tf',
    from: 'source_format = "AVRO"',
    to: 'source_format = ["AVRO"]',
    expected: /google_bigquery_table\.events external_data_configuration: source_format: a list where string belongs/,
  },
  {
    what: 'a string where a list belongs',
    file: 'storage.tf',
    from: 'matches_prefix = ["_staging/"]',
    to: 'matches_prefix = "_staging/"',
    expected: /lifecycle_rule\.condition: matches_prefix: the string "_staging\/" where list\(string\) belongs/,
  },
  {
    what: 'a word where a number belongs',
    file: 'pubsub.tf',
    from: 'ack_deadline_seconds       = 600',
    to: 'ack_deadline_seconds       = "ten minutes"',
    expected:
      /google_pubsub_subscription\.dead_letter: ack_deadline_seconds: the string "ten minutes" where number belongs/,
  },
  {
    what: 'a value the provider does not document (Pub/Sub schema type)',
    file: 'pubsub.tf',
    from: 'type       = "AVRO"',
    to: 'type       = "AVRO_JSON"',
    expected: /google_pubsub_schema\.events: type: "AVRO_JSON" is not a value the provider documents/,
  },
  {
    what: 'a bad value in either branch of a choice (Cloud Run ingress)',
    file: 'run.tf',
    from: '"INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"',
    to: '"INGRESS_INTERNAL_LOAD_BALANCER"',
    expected:
      /google_cloud_run_v2_service\.gateway: ingress: "INGRESS_INTERNAL_LOAD_BALANCER" is not a value the provider documents/,
  },
  {
    what: 'an argument written as a block',
    file: 'storage.tf',
    from: 'public_access_prevention    = "enforced"',
    to: 'public_access_prevention {\n  }',
    expected:
      /google_storage_bucket\.store: "public_access_prevention" is an argument: write public_access_prevention = \.\.\./,
  },
  {
    what: 'a block written as an argument',
    file: 'pubsub.tf',
    from: /expiration_policy \{\n\s+ttl = ""\n\s+\}\n\n\s+retry_policy/,
    to: 'expiration_policy = [{ ttl = "" }]\n\n  retry_policy',
    expected:
      /google_pubsub_subscription\.consumer: "expiration_policy" is a block: write expiration_policy \{ \.\.\. \}/,
  },
  {
    what: 'an unknown resource type',
    file: 'storage.tf',
    from: 'resource "google_storage_bucket" "store"',
    to: 'resource "google_storage_bukket" "store"',
    expected: /unknown resource type "google_storage_bukket" \(did you mean "google_storage_bucket"\?\)/,
  },
  {
    what: 'an unknown data source type',
    file: 'main.tf',
    from: 'data "google_project" "this"',
    to: 'data "google_projects_of_org" "this"',
    expected: /unknown data source type "google_projects_of_org"/,
  },
  {
    what: 'a provider version other than the one the check knows',
    file: 'versions.tf',
    from: 'version = "6.50.0"',
    to: 'version = "~> 6.14"',
    expected: /google must be pinned to exactly "6\.50\.0"/,
  },
])('refuses $what', async ({ file, from, to, expected }) => {
  mutate(file, from, to);
  expect(messages(await validateDirectory(work, schema))).toEqual([expect.stringMatching(expected)]);
});

test('a syntax error is reported with its file, not thrown', async () => {
  mutate('outputs.tf', 'output "bucket" {', 'output "bucket" {{');
  const found = messages(await validateDirectory(work, schema));
  expect(found).toEqual([expect.stringMatching(/^outputs\.tf:0: outputs\.tf: .*outputs\.tf/)]);
});

test('a missing required block is reported', async () => {
  writeFileSync(
    join(work, 'extra.tf'),
    'resource "google_cloud_run_v2_service" "bare" {\n  name     = "x"\n  location = "europe-west1"\n}\n',
  );
  expect(messages(await validateDirectory(work, schema))).toEqual([
    expect.stringMatching(/^extra\.tf:2: google_cloud_run_v2_service\.bare: missing required block "template"$/),
  ]);
});
