import { spawnSync } from 'node:child_process';
import { consumerSettings } from '@hourglass/consumer/config';
import { gatewaySettings } from '@hourglass/gateway/config';
import { Defaults, PREFIX_PATTERN } from '@hourglass/common';
import { loadSchema } from '../../tools/infra-validate/src/schema';
import {
  INFRA_DIR,
  block,
  blocks,
  dynamicBlock,
  loadTerraform,
  resource,
  resourcesOfType,
  stringLiterals,
  type Hcl,
  type TerraformConfig,
} from './terraform-config';

/** Structure of infra/: what Terraform would create, read from the HCL itself. */
let tf: TerraformConfig;
beforeAll(async () => {
  tf = await loadTerraform();
});

const EACH_TYPE = '${var.event_types}';

test('terraform fmt finds nothing to change', () => {
  const fmt = spawnSync('terraform', ['fmt', '-check', '-recursive', '-diff', INFRA_DIR], { encoding: 'utf8' });
  if (fmt.error) throw new Error(`terraform must be installed to check infra/: ${fmt.error.message}`);
  expect({ status: fmt.status, diff: fmt.stdout }).toEqual({ status: 0, diff: '' });
});

test('the google provider is pinned to the version tools/infra-validate checks against', () => {
  const versions = tf.text.get('versions.tf') ?? '';
  expect(versions).toMatch(/source\s*=\s*"hashicorp\/google"/);
  expect(versions).toMatch(new RegExp(`version\\s*=\\s*"${loadSchema().version.replace(/\./g, '\\.')}"`));
});

describe('naming', () => {
  test('the prefix rule is the one in naming.ts', () => {
    const condition = String(block(tf.variables.get('prefix') ?? {}, 'validation').condition);
    const regex = /regex\("([^"]+)"/.exec(condition)?.[1];
    expect(regex).toBe(PREFIX_PATTERN.source);
    expect(condition).toContain('!startswith(var.prefix, "goog")');
  });

  test('every Pub/Sub resource takes its name verbatim from the generated event_types', () => {
    const pubsub = [
      ...resourcesOfType(tf, 'google_pubsub_topic'),
      ...resourcesOfType(tf, 'google_pubsub_subscription'),
      ...resourcesOfType(tf, 'google_pubsub_schema'),
    ];
    expect(pubsub.length).toBeGreaterThanOrEqual(5);
    for (const [address, body] of pubsub) {
      // the closed-window notice topic and its example subscription: the generated closed_notices_topic
      const name = /^\$\{each\.value\.[a-z_]+\}$|^\$\{var\.closed_notices_topic\}(-downstream-example)?$/;
      expect([address, body.name]).toEqual([address, expect.stringMatching(name)]);
    }
  });

  test('Cloud Run services are not created under a name a Pub/Sub resource could take', () => {
    for (const [, body] of resourcesOfType(tf, 'google_cloud_run_v2_service')) {
      expect(body.name).toMatch(/^\$\{var\.prefix\}-(gateway|consumer)$/);
    }
  });
});

describe('Pub/Sub: one topology per event type', () => {
  test('event topics and dead-letter topics iterate over the generated types', () => {
    const events = resource(tf, 'google_pubsub_topic.events');
    expect(events.for_each).toBe(EACH_TYPE);
    expect(events.name).toBe('${each.value.topic}');

    const deadLetter = resource(tf, 'google_pubsub_topic.dead_letter');
    expect(deadLetter.for_each).toBe(EACH_TYPE);
    expect(deadLetter.name).toBe('${each.value.dead_letter_topic}');
    expect(deadLetter.message_retention_duration).toBe('${var.dead_letter_topic_retention}');
  });

  test('the consumer subscription has ack deadline, retention, retry and dead-letter policy', () => {
    const sub = resource(tf, 'google_pubsub_subscription.consumer');
    expect(sub.for_each).toBe(EACH_TYPE);
    expect(sub.name).toBe('${each.value.subscription}');
    expect(sub.topic).toBe('${google_pubsub_topic.events[each.key].id}');
    expect(sub.ack_deadline_seconds).toBe('${var.ack_deadline_seconds}');
    expect(sub.message_retention_duration).toBe('${local.type_settings[each.key].retention_seconds}s');
    expect(block(sub, 'expiration_policy').ttl).toBe('');
    expect(block(sub, 'retry_policy')).toEqual({
      minimum_backoff: '${var.retry_minimum_backoff}',
      maximum_backoff: '${var.retry_maximum_backoff}',
    });
    expect(block(sub, 'dead_letter_policy')).toEqual({
      dead_letter_topic: '${google_pubsub_topic.dead_letter[each.key].id}',
      max_delivery_attempts: '${local.type_settings[each.key].max_delivery_attempts}',
    });
  });

  test('dead letters are kept by a subscription that never expires', () => {
    const keep = resource(tf, 'google_pubsub_subscription.dead_letter');
    expect(keep.for_each).toBe(EACH_TYPE);
    expect(keep.name).toBe('${each.value.dead_letter_subscription}');
    expect(keep.topic).toBe('${google_pubsub_topic.dead_letter[each.key].id}');
    expect(block(keep, 'expiration_policy').ttl).toBe('');
    expect(keep.message_retention_duration).toBe('604800s');
  });

  test('a topic schema is attached only to one-event-per-message types', () => {
    const schema = resource(tf, 'google_pubsub_schema.events');
    expect(schema.for_each).toBe('${local.schema_types}');
    expect(schema.definition).toBe('${each.value.avro_schema}');
    expect(schema.type).toBe('AVRO');
    expect(String(tf.locals.schema_types)).toMatch(
      /var\.event_types.*if local\.type_settings\[name\]\.one_event_per_message/,
    );
    const settings = dynamicBlock(resource(tf, 'google_pubsub_topic.events'), 'schema_settings');
    expect(settings.forEach).toBe('${local.type_settings[each.key].one_event_per_message ? [each.key] : []}');
    expect(settings.content).toEqual({
      schema: '${google_pubsub_schema.events[schema_settings.value].id}',
      encoding: 'BINARY',
    });
  });

  test('Terraform defaults are the defaults of the local pipeline (defaults.ts)', () => {
    const def = (name: string) => tf.variables.get(name)?.default;
    expect(def('ack_deadline_seconds')).toBe(Defaults.ackDeadline / 1000);
    expect(def('max_delivery_attempts')).toBe(Defaults.maxDeliveryAttempts);
    expect(def('retention_seconds')).toBe(Defaults.retention / 1000);
    expect(def('grace_seconds')).toBe(Defaults.grace / 1000);
  });

  test('per-type overrides cover grace, bundling and retention', () => {
    const declared = String(tf.variables.get('type_overrides')?.type);
    for (const field of ['grace_seconds', 'one_event_per_message', 'retention_seconds']) {
      expect(declared).toContain(field);
      expect(String(tf.locals.type_settings)).toContain(field);
    }
  });
});

describe('IAM: least privilege', () => {
  /** Every grant infra/ may make: resource type, role, member, target. Nothing else is allowed. */
  const ALLOWED: Array<{ type: string; role: string; member: string; target: string; forEach: string }> = [
    {
      type: 'google_pubsub_topic_iam_member',
      role: 'roles/pubsub.publisher',
      member: '${google_service_account.gateway.member}',
      target: '${google_pubsub_topic.events[each.key].name}',
      forEach: EACH_TYPE,
    },
    {
      type: 'google_pubsub_topic_iam_member',
      role: 'roles/pubsub.viewer',
      member: '${google_service_account.gateway.member}',
      target: '${google_pubsub_topic.events[each.key].name}',
      forEach: EACH_TYPE,
    },
    {
      type: 'google_pubsub_subscription_iam_member',
      role: 'roles/pubsub.subscriber',
      member: '${google_service_account.consumer.member}',
      target: '${google_pubsub_subscription.consumer[each.key].name}',
      forEach: EACH_TYPE,
    },
    {
      type: 'google_secret_manager_secret_iam_member',
      role: 'roles/secretmanager.secretAccessor',
      member: '${google_service_account.gateway.member}',
      target: '${google_secret_manager_secret.api_keys.id}',
      forEach: '',
    },
    {
      type: 'google_storage_bucket_iam_member',
      role: 'roles/storage.objectUser',
      member: '${google_service_account.consumer.member}',
      target: '${google_storage_bucket.store.name}',
      forEach: '',
    },
    {
      type: 'google_pubsub_topic_iam_member',
      role: 'roles/pubsub.publisher',
      member: '${local.pubsub_service_agent}',
      target: '${google_pubsub_topic.dead_letter[each.key].name}',
      forEach: EACH_TYPE,
    },
    {
      type: 'google_pubsub_subscription_iam_member',
      role: 'roles/pubsub.subscriber',
      member: '${local.pubsub_service_agent}',
      target: '${google_pubsub_subscription.consumer[each.key].name}',
      forEach: EACH_TYPE,
    },
    ...['gateway', 'consumer'].flatMap((sa) =>
      ['roles/monitoring.metricWriter', 'roles/logging.logWriter'].map((role) => ({
        type: 'google_project_iam_member',
        role,
        member: `\${google_service_account.${sa}.member}`,
        target: '${var.project_id}',
        forEach: 'literal roles',
      })),
    ),
    {
      type: 'google_storage_bucket_iam_member',
      role: 'roles/storage.objectViewer',
      member: '${each.value}',
      target: '${google_storage_bucket.store.name}',
      forEach: '${toset(var.analyst_members)}',
    },
    {
      type: 'google_project_iam_member',
      role: 'roles/bigquery.jobUser',
      member: '${each.value}',
      target: '${var.project_id}',
      forEach: '${toset(var.analyst_members)}',
    },
    {
      type: 'google_bigquery_dataset_iam_member',
      role: 'roles/bigquery.dataViewer',
      member: '${each.value}',
      target: '${google_bigquery_dataset.events.dataset_id}',
      forEach: '${toset(var.analyst_members)}',
    },
    {
      type: 'google_kms_crypto_key_iam_member',
      role: 'roles/cloudkms.cryptoKeyEncrypterDecrypter',
      member: 'serviceAccount:${data.google_storage_project_service_account.gcs[0].email_address}',
      target: '${var.kms_key_name}',
      forEach: '',
    },
    {
      type: 'google_pubsub_topic_iam_member',
      role: 'roles/pubsub.publisher',
      member: '${google_service_account.consumer.member}',
      target: '${google_pubsub_topic.closed_notices.name}',
      forEach: '',
    },
  ];
  const TARGET_ATTRIBUTE: Record<string, string> = {
    google_pubsub_topic_iam_member: 'topic',
    google_pubsub_subscription_iam_member: 'subscription',
    google_storage_bucket_iam_member: 'bucket',
    google_project_iam_member: 'project',
    google_bigquery_dataset_iam_member: 'dataset_id',
    google_kms_crypto_key_iam_member: 'crypto_key_id',
    google_secret_manager_secret_iam_member: 'secret_id',
  };

  /** Each grant a resource makes: one per literal role when the role comes from a literal for_each. */
  function grantsOf(address: string, body: Hcl) {
    const type = address.split('.')[0] ?? '';
    const target = String(body[TARGET_ATTRIBUTE[type] ?? 'unknown']);
    const member = String(body.member);
    const forEach = body.for_each === undefined ? '' : String(body.for_each);
    if (body.role === '${each.value}') {
      expect(forEach).toMatch(/^\$\{toset\(\[("roles\/[\w.]+",?\s*)+\]\)\}$/);
      return stringLiterals(forEach).map((role) => ({ type, role, member, target, forEach: 'literal roles' }));
    }
    return [{ type, role: String(body.role), member, target, forEach }];
  }

  const iamResources = () => [...tf.resources].filter(([address]) => /_iam_[a-z_]+\./.test(address));

  test('only additive *_iam_member grants: no authoritative binding or policy', () => {
    expect(iamResources().length).toBeGreaterThan(0);
    for (const [address] of iamResources()) expect(address).toMatch(/^google_[a-z_]+_iam_member\./);
  });

  test('every grant is one of the allowed ones, and every required one is made', () => {
    const made = iamResources().flatMap(([address, body]) => grantsOf(address, body));
    for (const grant of made) expect(ALLOWED).toContainEqual(grant);
    for (const grant of ALLOWED) expect(made).toContainEqual(grant);
  });

  test('no broad role and no public member anywhere', () => {
    const everything = JSON.stringify([...tf.resources]);
    for (const role of [
      'roles/owner',
      'roles/editor',
      'roles/viewer',
      'roles/pubsub.admin',
      'roles/pubsub.editor',
      'roles/storage.admin',
      'roles/storage.objectAdmin',
      'roles/cloudtrace.agent',
      'roles/iam.serviceAccountUser',
      'roles/run.admin',
      'roles/bigquery.admin',
    ]) {
      expect(everything).not.toContain(`"${role}"`);
    }
    expect(everything).not.toMatch(/allUsers|allAuthenticatedUsers/);
    expect(String(block(tf.variables.get('analyst_members') ?? {}, 'validation').condition)).toContain(
      '"allUsers", "allAuthenticatedUsers"',
    );
  });

  test('the gateway is public by disabling the invoker check, not by an allUsers binding', () => {
    const gateway = resource(tf, 'google_cloud_run_v2_service.gateway');
    expect(gateway.invoker_iam_disabled).toBe('${var.gateway_public}');
    expect(resourcesOfType(tf, 'google_cloud_run_v2_service_iam_member')).toEqual([]);
  });
});

describe('bucket', () => {
  test('is never public and uses uniform access', () => {
    const bucket = resource(tf, 'google_storage_bucket.store');
    expect(bucket.public_access_prevention).toBe('enforced');
    expect(bucket.uniform_bucket_level_access).toBe(true);
    expect(resourcesOfType(tf, 'google_storage_bucket_acl')).toEqual([]);
    expect(resourcesOfType(tf, 'google_storage_default_object_acl')).toEqual([]);
    expect(resourcesOfType(tf, 'google_storage_object_acl')).toEqual([]);
  });

  test('deletes leftovers under _staging/ only, after the subscription backlog has expired', () => {
    const rules = blocks(resource(tf, 'google_storage_bucket.store'), 'lifecycle_rule');
    expect(rules).toEqual([
      {
        condition: [{ age: '${var.staging_max_age_days}', matches_prefix: ['_staging/'] }],
        action: [{ type: 'Delete' }],
      },
    ]);
    expect(String(block(tf.variables.get('staging_max_age_days') ?? {}, 'validation').condition)).toContain('>= 8');
  });

  test('optional CMEK', () => {
    const encryption = dynamicBlock(resource(tf, 'google_storage_bucket.store'), 'encryption');
    expect(encryption.forEach).toBe('${var.kms_key_name == null ? [] : [var.kms_key_name]}');
    expect(encryption.content).toEqual({ default_kms_key_name: '${encryption.value}' });
  });
});

describe('Cloud Run services', () => {
  const container = (service: string) => block(block(resource(tf, service), 'template'), 'containers');

  test('the consumer keeps CPU allocated, is internal, runs as its own service account', () => {
    const consumer = resource(tf, 'google_cloud_run_v2_service.consumer');
    expect(consumer.ingress).toBe('INGRESS_TRAFFIC_INTERNAL_ONLY');
    expect(consumer.invoker_iam_disabled).toBeUndefined();
    const template = block(consumer, 'template');
    expect(template.service_account).toBe('${google_service_account.consumer.email}');
    expect(block(container('google_cloud_run_v2_service.consumer'), 'resources').cpu_idle).toBe(false);
    expect(dynamicBlock(container('google_cloud_run_v2_service.consumer'), 'env').forEach).toBe(
      '${local.consumer_env}',
    );
  });

  test('the gateway scales between its bounds as its own service account', () => {
    const template = block(resource(tf, 'google_cloud_run_v2_service.gateway'), 'template');
    expect(template.service_account).toBe('${google_service_account.gateway.email}');
    expect(block(template, 'scaling')).toEqual({
      min_instance_count: '${var.gateway_min_instances}',
      max_instance_count: '${var.gateway_max_instances}',
    });
    expect(dynamicBlock(container('google_cloud_run_v2_service.gateway'), 'env').forEach).toBe('${local.gateway_env}');
  });

  test('every variable set on a service is a setting that service reads', () => {
    const names = (expression: unknown) =>
      [...String(expression).matchAll(/\b(HOURGLASS_[A-Z_]+)\s*=/g)].map((m) => m[1]);
    const common = names(tf.locals.common_env);
    const gatewayEnv = [...common, ...names(tf.locals.gateway_env)];
    const consumerEnv = [...common, ...names(tf.locals.consumer_env)];
    expect(gatewayEnv.length).toBeGreaterThan(3);
    expect(consumerEnv.length).toBeGreaterThan(3);
    const gatewayReads = Object.values(gatewaySettings).map((s) => s.env);
    const consumerReads = Object.values(consumerSettings).map((s) => s.env);
    for (const name of gatewayEnv) expect([name, gatewayReads.includes(name ?? '')]).toEqual([name, true]);
    for (const name of consumerEnv) expect([name, consumerReads.includes(name ?? '')]).toEqual([name, true]);
  });

  test('the gateway reads its API keys from the mounted secret', () => {
    const template = block(resource(tf, 'google_cloud_run_v2_service.gateway'), 'template');
    const volume = block(template, 'volumes');
    expect(volume.name).toBe('api-keys');
    expect(block(block(volume, 'secret'), 'items').path).toBe('api-keys.json');
    expect(block(container('google_cloud_run_v2_service.gateway'), 'volume_mounts')).toEqual({
      name: 'api-keys',
      mount_path: '${local.api_keys_dir}',
    });
    expect(String(tf.locals.gateway_env)).toContain('HOURGLASS_API_KEYS_FILE = "${local.api_keys_dir}/api-keys.json"');
  });

  test('env wires project, prefix and bucket into the services', () => {
    const common = String(tf.locals.common_env);
    expect(common).toMatch(/HOURGLASS_PROJECT_ID\s*=\s*var\.project_id/);
    expect(common).toMatch(/HOURGLASS_PREFIX\s*=\s*var\.prefix/);
    expect(String(tf.locals.consumer_env)).toMatch(
      /HOURGLASS_STORE\s*=\s*"gs:\/\/\$\{google_storage_bucket\.store\.name\}"/,
    );
    expect(String(tf.locals.gateway_env)).toContain('local.common_env');
    expect(String(tf.locals.consumer_env)).toContain('local.common_env');
  });

  test('both listen on 8080, where the Prometheus sidecar scrapes /metrics', () => {
    for (const service of ['gateway', 'consumer']) {
      const address = `google_cloud_run_v2_service.${service}`;
      expect(block(container(address), 'ports').container_port).toBe(8080);
      const sidecar = dynamicBlock(block(resource(tf, address), 'template'), 'containers');
      expect(sidecar.forEach).toBe('${local.sidecars}');
      expect(sidecar.content.depends_on).toEqual([service]);
    }
  });
});

test('outputs give a user what they need', () => {
  for (const name of [
    'gateway_url',
    'bucket',
    'image_repository',
    'topics',
    'subscriptions',
    'dead_letter_subscriptions',
    'service_accounts',
    'bigquery_tables',
  ]) {
    expect(tf.outputs.get(name)?.description).toEqual(expect.any(String));
  }
});
