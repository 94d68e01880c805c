import { join } from 'node:path';
import { evaluate, type HclScope } from '../../deployed/hcl-evaluate';
import { parseTemplate, UnsupportedHcl } from '../../deployed/hcl-parse';
import { evaluateTerraform } from '../../deployed/terraform-env';

/** The evaluator the deployed-config suite starts the services with (deployed.test.ts). */
const INFRA = join(__dirname, '..', '..', '..', 'infra');
const REQUIRED = { project_id: 'p', bucket_name: 'b' };

const scope: HclScope = {
  variable: (name) => ({ n: 5, m: { a: 1 } })[name] ?? null,
  local: () => null,
  resourceAttribute: () => null,
};
const value = (template: string) => evaluate(parseTemplate(template), scope, new Map());

test("infra/'s environment: the bucket's name in HOURGLASS_STORE, variables in their settings, no replica id", async () => {
  const tf = await evaluateTerraform(INFRA, REQUIRED);
  expect(tf.consumer).toMatchObject({
    HOURGLASS_PROJECT_ID: 'p',
    HOURGLASS_STORE: 'gs://b',
    HOURGLASS_GRACE: '300s',
    HOURGLASS_ACK_DEADLINE: '60s',
  });
  expect(tf.gateway.HOURGLASS_API_KEYS_FILE).toMatch(/^\/.*\/api-keys\.json$/);
  // contracts §5: the replica id is the process's own; Terraform must not set one.
  expect(tf.consumer).not.toHaveProperty('HOURGLASS_REPLICA_ID');
});

test('a value set as an operator would (tfvars) reaches the services; type_overrides fill optional fields', async () => {
  const tf = await evaluateTerraform(INFRA, {
    ...REQUIRED,
    service_env: { HOURGLASS_WINDOW: '1m' },
    type_overrides: { track_played: { grace_seconds: 600, one_event_per_message: true } },
  });
  expect(tf.consumer.HOURGLASS_WINDOW).toBe('1m');
  expect(tf.gateway.HOURGLASS_WINDOW).toBe('1m');
  expect(tf.consumer.HOURGLASS_GRACE_BY_TYPE).toBe('track_played=600s');
  expect(tf.gateway.HOURGLASS_UNBUNDLED_TYPES).toBe('track_played');
});

test('undeclared, missing and invalid variables fail as Terraform fails', async () => {
  await expect(evaluateTerraform(INFRA, { ...REQUIRED, no_such: 1 })).rejects.toThrow('no variable "no_such"');
  await expect(evaluateTerraform(INFRA, { project_id: 'p' })).rejects.toThrow('bucket_name');
  await expect(evaluateTerraform(INFRA, { ...REQUIRED, ack_deadline_seconds: 5 })).rejects.toThrow('10..600');
});

test('expressions: templates, for, conditionals, try', () => {
  expect(value('${var.n}s')).toBe('5s');
  expect(value('${join(",", [for k, v in var.m : "${k}=${v * 2}" if v != 0])}')).toBe('a=2');
  expect(value('${var.n > 3 ? "big" : "small"}')).toBe('big');
  expect(value('${try(var.m.nope, "fallback")}')).toBe('fallback');
  expect(value('${merge({ a = 1 }, { b = "x" # comment\n })}')).toEqual({ a: 1, b: 'x' });
});

test('what the evaluator does not know fails loudly, even inside try()', () => {
  for (const source of ['${frobnicate(1)}', '${var.m[*].a}', '${try(frobnicate(1), 0)}', '%{ if true }x%{ endif }']) {
    expect(() => value(source)).toThrow(UnsupportedHcl);
  }
  expect(() => value('${data.google_project.this.number}')).toThrow(UnsupportedHcl);
});
