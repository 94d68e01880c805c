import { readFileSync } from 'node:fs';
import { Defaults } from '@hourglass/common';
import {
  block,
  blocks,
  loadTerraform,
  resource,
  resourcesOfType,
  type Hcl,
  type TerraformConfig,
} from '../../infra/terraform-config';

/**
 * How infra/ runs the pipeline: the consumer's runtime, health and memory, the bucket's
 * namespace and soft delete, what analysts may read and query, every alert, and the
 * Pub/Sub bounds every default is held to.
 */
const EACH_TYPE = '${var.event_types}';
let tf: TerraformConfig;
beforeAll(async () => {
  tf = await loadTerraform();
});

const variable = (name: string): Hcl => {
  const v = tf.variables.get(name);
  if (!v) throw new Error(`infra/ has no variable ${name}`);
  return v;
};
const validations = (name: string) => blocks(variable(name), 'validation').map((v) => String(v.condition));
const consumer = () => resource(tf, 'google_cloud_run_v2_service.consumer');
const consumerContainer = () => block(block(consumer(), 'template'), 'containers');

describe('consumer runtime', () => {
  test('a fixed number of instances (manual scaling), never scaled on requests or CPU', () => {
    expect(block(consumer(), 'scaling')).toEqual({
      scaling_mode: 'MANUAL',
      manual_instance_count: '${var.consumer_instances}',
    });
    expect(block(consumer(), 'template').scaling).toBeUndefined();
    expect(validations('consumer_instances')).toEqual(['${var.consumer_instances >= 1}']);
    expect(block(consumerContainer(), 'resources').cpu_idle).toBe(false);
  });

  test('a liveness probe on /healthz restarts a wedged consumer after a minute, not at the first miss', () => {
    const probe = block(consumerContainer(), 'liveness_probe');
    expect(block(probe, 'http_get').path).toBe('/healthz');
    const periodSeconds = Number(probe.period_seconds);
    const failureThreshold = Number(probe.failure_threshold);
    expect(periodSeconds * failureThreshold).toBeGreaterThanOrEqual(60);
    expect(Number(probe.timeout_seconds)).toBeLessThan(periodSeconds);
    expect(block(block(consumerContainer(), 'startup_probe'), 'http_get').path).toBe('/healthz');
  });

  test('never sets HOURGLASS_REPLICA_ID: every process picks its own', () => {
    for (const env of [tf.locals.common_env, tf.locals.consumer_env]) {
      expect(String(env)).not.toContain('HOURGLASS_REPLICA_ID =');
    }
    expect(validations('service_env')).toEqual(['${!contains(keys(var.service_env), "HOURGLASS_REPLICA_ID")}']);
  });
});

describe('consumer memory', () => {
  /** Mi or Gi, as Cloud Run takes them. */
  const mebibytes = (quantity: string): number => {
    const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
    if (!m) throw new Error(`unexpected memory ${quantity}`);
    return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
  };

  test('the env passes the process-wide flow budgets, whose defaults are the consumer defaults', () => {
    const env = String(tf.locals.consumer_env);
    expect(env).toMatch(/HOURGLASS_FLOW_MAX_BYTES\s*=\s*tostring\(var\.consumer_flow_max_bytes\)/);
    expect(env).toMatch(/HOURGLASS_FLOW_MAX_MESSAGES\s*=\s*tostring\(var\.consumer_flow_max_messages\)/);
    expect(variable('consumer_flow_max_bytes').default).toBe(Defaults.flowMaxBytes);
    expect(variable('consumer_flow_max_messages').default).toBe(Defaults.flowMaxMessages);
  });

  test('the memory limit holds the flow budget x the stated overhead factor + the base', () => {
    const factor = Number(tf.locals.consumer_memory_overhead_factor);
    const baseMib = Number(tf.locals.consumer_memory_base_mib);
    expect(factor).toBeGreaterThanOrEqual(2);
    expect(baseMib).toBeGreaterThanOrEqual(256);
    const budgetMib = Number(variable('consumer_flow_max_bytes').default) / 1024 / 1024;
    const limitMib = mebibytes(String((variable('consumer_resources').default as Hcl).memory));
    const neededMib = Math.ceil(budgetMib * factor) + baseMib;
    expect({ neededMib, limitMib, fits: neededMib <= limitMib }).toEqual({ neededMib, limitMib, fits: true });
  });

  test('terraform plan refuses a memory limit below that sum (precondition)', () => {
    const precondition = block(block(consumer(), 'lifecycle'), 'precondition');
    expect(precondition.condition).toBe('${local.consumer_memory_needed_mib <= local.consumer_memory_limit_mib}');
    expect(String(tf.locals.consumer_memory_needed_mib)).toBe(
      '${ceil(var.consumer_flow_max_bytes * local.consumer_memory_overhead_factor / 1048576) + local.consumer_memory_base_mib}',
    );
    expect(String(tf.locals.consumer_memory_limit_mib)).toContain('var.consumer_resources.memory');
  });
});

describe('bucket for atomic publishing', () => {
  const bucket = () => resource(tf, 'google_storage_bucket.store');

  test('hierarchical namespace (folder rename), which needs uniform access', () => {
    expect(block(bucket(), 'hierarchical_namespace')).toEqual({ enabled: true });
    expect(bucket().uniform_bucket_level_access).toBe(true);
  });

  test('soft delete is off by default: staging and lease churn is not kept for a week', () => {
    expect(block(bucket(), 'soft_delete_policy')).toEqual({
      retention_duration_seconds: '${var.soft_delete_retention_seconds}',
    });
    expect(variable('soft_delete_retention_seconds').default).toBe(0);
    expect(validations('soft_delete_retention_seconds')[0]).toContain('>= 604800');
  });
});

describe('analysts', () => {
  test('read objects and listings under the type prefixes and _schemas/ only', () => {
    const grant = resource(tf, 'google_storage_bucket_iam_member.analyst_objects');
    expect(block(grant, 'condition').expression).toBe('${local.analyst_read_condition}');
    const prefixes = String(tf.locals.analyst_object_prefixes);
    expect(prefixes).toBe('${concat([for t in sort(keys(var.event_types)) : "${t}/"], ["_schemas/"])}');
    const condition = String(tf.locals.analyst_read_condition);
    expect(condition).toContain('resource.name.startsWith(\\"projects/_/buckets/${var.bucket_name}/objects/${p}\\")');
    expect(condition).toContain('for p in local.analyst_object_prefixes');
    expect(condition).toContain('storage.googleapis.com/objectListPrefix');
    expect(condition).not.toMatch(/_staging|_deadletter|_watermarks/);
  });

  test('may run query jobs and must filter on the partition columns', () => {
    expect(resource(tf, 'google_project_iam_member.analyst_jobs').role).toBe('roles/bigquery.jobUser');
    const hive = block(
      block(resource(tf, 'google_bigquery_table.events'), 'external_data_configuration'),
      'hive_partitioning_options',
    );
    expect(hive.require_partition_filter).toBe(true);
  });
});

describe('alerts on the consumer', () => {
  const query = (name: string) => String((tf.locals.consumer_alerts as Record<string, Hcl>)[name]?.query);

  test('the PromQL alerts also fire when the consumer or its sidecar exports nothing', () => {
    expect(query('watermark_lag')).toMatch(
      / or absent\(\$\{var\.watermark_lag_metric\}\$\{local\.consumer_selector\}\)$/,
    );
    expect(query('windows_not_closed')).toMatch(/ or absent_over_time\(\$\{var\.windows_closed_metric\}/);
  });

  test('dead-lettered messages and store errors alert, per event type', () => {
    expect(query('dead_lettered')).toBe(
      'sum by (event_type) (increase(${var.deadlettered_metric}${local.consumer_selector}[10m])) > 0',
    );
    expect(query('store_errors')).toBe(
      'sum by (event_type) (increase(${var.store_errors_metric}${local.consumer_selector}[10m])) > ${var.alert_store_errors}',
    );
  });
});

describe('Pub/Sub defaults are held to the limits the overrides are', () => {
  test.each([
    ['max_delivery_attempts', ['>= 5', '<= 100']],
    ['retention_seconds', ['>= 600', '<= 604800']],
    ['retry_minimum_backoff', ['<= 600']],
    ['retry_maximum_backoff', ['<= 600', '>= tonumber(trimsuffix(var.retry_minimum_backoff, "s"))']],
  ])('%s', (name, bounds) => {
    const [condition = ''] = validations(name);
    for (const bound of bounds) expect(condition).toContain(bound);
    const overrides = validations('type_overrides').join('\n');
    if (name === 'max_delivery_attempts') expect(overrides).toContain('o.max_delivery_attempts >= 5');
    if (name === 'retention_seconds') expect(overrides).toContain('o.retention_seconds >= 600');
  });
});

describe('alerts', () => {
  const filter = (address: string) =>
    String(block(block(resource(tf, address), 'conditions'), 'condition_threshold').filter);
  /** The PromQL of one of the consumer alerts (one policy each, from local.consumer_alerts). */
  const query = (name: string) => String((tf.locals.consumer_alerts as Record<string, Hcl>)[name]?.query);

  test('oldest unacked message age, per consumer subscription', () => {
    expect(resource(tf, 'google_monitoring_alert_policy.oldest_unacked').for_each).toBe(EACH_TYPE);
    const f = filter('google_monitoring_alert_policy.oldest_unacked');
    expect(f).toContain('pubsub.googleapis.com/subscription/oldest_unacked_message_age');
    expect(f).toContain('resource.labels.subscription_id = "${each.value.subscription}"');
  });

  test('dead-letter growth, per dead-letter subscription', () => {
    expect(resource(tf, 'google_monitoring_alert_policy.dead_letters').for_each).toBe(EACH_TYPE);
    const f = filter('google_monitoring_alert_policy.dead_letters');
    expect(f).toContain('pubsub.googleapis.com/subscription/num_undelivered_messages');
    expect(f).toContain('resource.labels.subscription_id = "${each.value.dead_letter_subscription}"');
  });

  test('watermark lag and hours not closed, from the consumer metrics', () => {
    expect(query('watermark_lag')).toBe(
      'max by (event_type) (${var.watermark_lag_metric}${local.consumer_selector}) > ${var.alert_watermark_lag_seconds}' +
        ' or absent(${var.watermark_lag_metric}${local.consumer_selector})',
    );
    expect(query('windows_not_closed')).toBe(
      'sum by (event_type) (increase(${var.windows_closed_metric}${local.consumer_selector}[${local.close_alert_range_seconds}s])) < 1' +
        ' or absent_over_time(${var.windows_closed_metric}${local.consumer_selector}[${local.close_alert_range_seconds}s])',
    );
    expect(tf.locals.consumer_namespace).toBe('${var.prefix}-consumer');
    expect(tf.locals.consumer_selector).toBe('{namespace="${local.consumer_namespace}"}');
  });

  test('the metric names are the ones the consumer exports, as Prometheus renders them', () => {
    // OpenTelemetry instrument names become Prometheus names; counters gain _total.
    const instruments = readFileSync('services/consumer/src/metrics.ts', 'utf8');
    const gauge = /watermarkLag: meter\.createObservableGauge\('([\w.]+)'/.exec(instruments)?.[1];
    const counter = (field: string) =>
      new RegExp(`${field}: meter\\.createCounter\\('([\\w.]+)'`).exec(instruments)?.[1]?.replace(/\./g, '_');
    expect(tf.variables.get('watermark_lag_metric')?.default).toBe(gauge?.replace(/\./g, '_'));
    expect(tf.variables.get('windows_closed_metric')?.default).toBe(`${counter('windowsClosed')}_total`);
    expect(tf.variables.get('deadlettered_metric')?.default).toBe(`${counter('deadLettered')}_total`);
    expect(tf.variables.get('store_errors_metric')?.default).toBe(`${counter('storeErrors')}_total`);
  });

  test('every alert notifies the configured channels', () => {
    const policies = resourcesOfType(tf, 'google_monitoring_alert_policy');
    expect(policies.map(([address]) => address).sort()).toEqual([
      'google_monitoring_alert_policy.consumer',
      'google_monitoring_alert_policy.dead_letters',
      'google_monitoring_alert_policy.oldest_unacked',
    ]);
    expect(Object.keys(tf.locals.consumer_alerts as Hcl).sort()).toEqual([
      'dead_lettered',
      'store_errors',
      'watermark_lag',
      'windows_not_closed',
    ]);
    const consumer = resource(tf, 'google_monitoring_alert_policy.consumer');
    expect(consumer.for_each).toBe('${local.consumer_alerts}');
    expect(block(block(consumer, 'conditions'), 'condition_prometheus_query_language').query).toBe(
      '${each.value.query}',
    );
    for (const [, body] of policies) expect(body.notification_channels).toBe('${var.notification_channels}');
  });
});

describe('BigQuery', () => {
  test('one external Avro table per type over its Hive-partitioned closed hours', () => {
    const table = resource(tf, 'google_bigquery_table.events');
    expect(table.for_each).toBe(EACH_TYPE);
    expect(table.table_id).toBe('${each.key}');
    const external = block(table, 'external_data_configuration');
    expect(external.source_format).toBe('AVRO');
    expect(external.source_uris).toEqual(['gs://${google_storage_bucket.store.name}/${each.key}/*.avro']);
    expect(block(external, 'hive_partitioning_options')).toEqual({
      mode: 'CUSTOM',
      source_uri_prefix: 'gs://${google_storage_bucket.store.name}/${each.key}/{dt:DATE}/{hour:INTEGER}',
      require_partition_filter: true,
    });
    expect(block(external, 'avro_options').use_avro_logical_types).toBe(true);
  });

  test('the table schema comes from the uploaded reference schema, outside every type prefix', () => {
    const external = block(resource(tf, 'google_bigquery_table.events'), 'external_data_configuration');
    expect(external.reference_file_schema_uri).toBe(
      'gs://${google_storage_bucket.store.name}/${google_storage_bucket_object.reference_schema[each.key].name}',
    );
    const object = resource(tf, 'google_storage_bucket_object.reference_schema');
    expect(object.for_each).toBe(EACH_TYPE);
    expect(object.name).toBe('_schemas/${each.key}/v${each.value.schema_version}.avro');
    expect(object.source).toBe('${path.module}/${each.value.reference_avro}');
  });
});
