import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Storage } from '@google-cloud/storage';
import { Defaults, resourceNames, seconds, sha256Hex } from '@hourglass/common';
import { provisionTopology, waitReady } from '@hourglass/cli';
import type { RunningEmulator } from '@hourglass/emulator';
import type { RunningGcsFake } from '@hourglass/gcs-fake';
import { SchemaRegistry } from '@hourglass/schemas';
import { createStore, type ObjectStore } from '@hourglass/storage';
import type { PipelineUnderTest } from '../faults/pipeline';
import { pubsubFor } from '../support/pubsub';
import { evaluateTerraform, type TerraformEvaluation, type TfVars } from './terraform-env';
import { HostNetwork, Instance } from './instance';
import type { HclValue } from './hcl-parse';

/**
 * One Hourglass deployment as Terraform describes it, run locally: the services get exactly
 * `local.gateway_env` / `local.consumer_env` evaluated from infra/*.tf with the test's tfvars,
 * plus what the image (Dockerfile ENV, CMD) and Cloud Run (PORT, K_*) provide. The only
 * substitutions are Google's endpoints: PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST (the GCS
 * fake) and METADATA_SERVER_DETECTION=none (no metadata server off Google Cloud).
 */
const ROOT = resolve(__dirname, '..', '..');
/** Cloud Run's startup probe path in infra/run.tf: an instance takes traffic once it answers. */
const STARTUP_PROBE = '/healthz';

export interface SharedServices {
  emulator: RunningEmulator;
  gcs: RunningGcsFake;
}

/** The last stage of a Dockerfile: its ENV settings and its CMD. */
function imageOf(dockerfile: string): { env: Record<string, string>; cmd: string[] } {
  const text = readFileSync(join(ROOT, 'deploy', dockerfile), 'utf8');
  const stage = text.slice(text.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const m of stage.matchAll(/^ENV\s+(\w+)[=\s]\s*(\S+)\s*$/gm)) env[m[1]!] = m[2]!;
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(stage);
  if (!cmd) throw new Error(`deploy/${dockerfile}: no exec-form CMD`);
  return { env, cmd: JSON.parse(cmd[1]!) as string[] };
}

type Service = 'gateway' | 'consumer';

export class Deployment implements PipelineUnderTest {
  readonly registry = SchemaRegistry.load(join(ROOT, 'schemas'));
  readonly consumers: Instance[] = [];
  readonly gateways: Instance[] = [];
  /** Gateway instances the front end routes to (started, not yet told to shut down). */
  private readonly serving = new Set<Instance>();
  readonly apiKey = randomBytes(24).toString('hex');
  gatewayUrl = '';
  store!: ObjectStore;
  terraform!: TerraformEvaluation;
  private revision = 1;
  private readonly started = { gateway: 0, consumer: 0 };
  private roundRobin = 0;
  private readonly network: HostNetwork;
  private readonly secretsDir: string;

  private constructor(
    readonly name: string,
    readonly dir: string,
    private readonly shared: SharedServices,
  ) {
    this.network = new HostNetwork(join(dir, 'net'));
    this.secretsDir = join(dir, 'secrets');
  }

  get emulatorHost(): string {
    return this.shared.emulator.host;
  }

  get projectId(): string {
    return this.terraform.consumer.HOURGLASS_PROJECT_ID!;
  }

  static async start(
    name: string,
    dir: string,
    shared: SharedServices,
    o: { tfvars: TfVars; consumers: number; gateways: number; auditTypes: readonly string[] },
  ): Promise<Deployment> {
    const d = new Deployment(name, dir, shared);
    d.terraform = await evaluateTerraform(join(ROOT, 'infra'), o.tfvars);
    await d.network.expose([shared.emulator.port, shared.gcs.port]);
    await d.createBucket();
    await d.provision(o.auditTypes);
    d.writeApiKeys();
    d.gatewayUrl = await d.network.route(() => d.nextGateway());
    // The runtime starts a revision's minimum instances at once.
    const services: Service[] = [
      ...Array<Service>(o.gateways).fill('gateway'),
      ...Array<Service>(o.consumers).fill('consumer'),
    ];
    await Promise.all(services.map((service) => d.addInstance(service)));
    return d;
  }

  /** The bucket HOURGLASS_STORE names, created with its google_storage_bucket's settings. */
  private async createBucket(): Promise<void> {
    const store = this.terraform.consumer.HOURGLASS_STORE!;
    const bucket = /^gs:\/\/([^/]+)/.exec(store)?.[1];
    const config = this.terraform.resourcesOfType('google_storage_bucket').find((b) => b('name') === bucket);
    if (!bucket || !config) throw new Error(`HOURGLASS_STORE=${store} names no google_storage_bucket in infra/`);
    const hns = config('hierarchical_namespace');
    const storage = new Storage({ projectId: this.projectId, apiEndpoint: this.shared.gcs.url });
    await storage.createBucket(bucket, {
      iamConfiguration: {
        uniformBucketLevelAccess: { enabled: config('uniform_bucket_level_access') === true },
      },
      ...(Array.isArray(hns) && hns.length > 0
        ? { hierarchicalNamespace: { enabled: field(hns[0]!, 'enabled') } }
        : {}),
    } as Parameters<Storage['createBucket']>[1]);
    this.store = createStore(store);
  }

  /** Topics and subscriptions, as infra/pubsub.tf creates them; an audit subscription per type. */
  private async provision(auditTypes: readonly string[]): Promise<void> {
    const prefix = this.terraform.consumer.HOURGLASS_PREFIX!;
    await provisionTopology({
      projectId: this.projectId,
      prefix,
      eventTypes: this.registry.eventTypes(),
      ackDeadline: seconds(Number(this.terraform.variable('ack_deadline_seconds'))),
      maxDeliveryAttempts: Number(this.terraform.variable('max_delivery_attempts')),
    });
    const pubsub = pubsubFor(this.emulatorHost, this.projectId);
    try {
      for (const type of auditTypes) {
        await pubsub
          .topic(resourceNames(prefix, type).topic)
          .createSubscription(`${resourceNames(prefix, type).subscription}-audit`, { ackDeadlineSeconds: 600 });
      }
    } finally {
      await pubsub.close();
    }
  }

  /** The gateway's key file, as the secret volume Terraform mounts at its directory. */
  private writeApiKeys(): void {
    const file = this.terraform.gateway.HOURGLASS_API_KEYS_FILE!;
    mkdirSync(this.secretsDir, { recursive: true });
    const keys = [{ name: 'deployed-test', sha256: sha256Hex(this.apiKey), types: ['*'] }];
    writeFileSync(join(this.secretsDir, basename(file)), JSON.stringify(keys));
    // The mount point must exist on the host; only the instance's mount namespace sees what is mounted on it.
    if (!existsSync(dirname(file))) mkdirSync(dirname(file), { recursive: true });
  }

  private nextGateway(): string | undefined {
    const live = [...this.serving].filter((g) => g.running);
    return live.length === 0 ? undefined : live[this.roundRobin++ % live.length]!.socket;
  }

  /** A rollout's new revision: instances started from now on carry its K_REVISION. */
  newRevision(): void {
    this.revision++;
  }

  /** A new instance of `service`, as Cloud Run starts one; resolves once its startup probe passes. */
  async addInstance(service: Service): Promise<Instance> {
    const image = imageOf(`${service}.Dockerfile`);
    const env = this.terraform[service];
    // The port the service listens on: Terraform's setting, else the service's own default.
    const port = Number(
      service === 'gateway'
        ? (env.HOURGLASS_GATEWAY_PORT ?? Defaults.gatewayPort)
        : (env.HOURGLASS_CONSUMER_PORT ?? Defaults.consumerPort),
    );
    const substitutes = {
      PUBSUB_EMULATOR_HOST: this.shared.emulator.host,
      STORAGE_EMULATOR_HOST: this.shared.gcs.url,
      METADATA_SERVER_DETECTION: 'none',
    };
    const clash = Object.keys(substitutes).filter((k) => k in env);
    if (clash.length > 0) throw new Error(`Terraform sets ${clash.join(', ')}, which the test substitutes`);
    const serviceName = `${this.terraform.variable('prefix') as string}-${service}`;
    const name = `${service}-${this.started[service]++}`;
    const instance = await Instance.start(
      {
        name,
        argv: image.cmd.map((a, i) => (i === 0 && a === 'node' ? process.execPath : a)),
        env: {
          PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          HOME: '/home/node',
          ...image.env,
          PORT: String(port),
          K_SERVICE: serviceName,
          K_CONFIGURATION: serviceName,
          K_REVISION: `${serviceName}-${String(this.revision).padStart(5, '0')}`,
          ...env,
          ...substitutes,
        },
        cwd: ROOT,
        logFile: join(this.dir, `${name}.log`),
        containerPort: port,
        mounts:
          service === 'gateway' ? [{ source: this.secretsDir, target: dirname(env.HOURGLASS_API_KEYS_FILE!) }] : [],
      },
      this.network,
    );
    instance.url = await this.network.route(() => instance.socket);
    (service === 'gateway' ? this.gateways : this.consumers).push(instance);
    await waitReady(`${instance.url}${STARTUP_PROBE}`, 90_000);
    if (service === 'gateway') this.serving.add(instance);
    return instance;
  }

  /** Takes a gateway out of the front end's rotation before it is shut down. */
  drain(instance: Instance): void {
    this.serving.delete(instance);
  }

  log(name: string): string {
    try {
      return readFileSync(join(this.dir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** Every distinct HOURGLASS replica id the consumer instances started with (from their logs). */
  replicaIds(): string[] {
    const ids = new Set<string>();
    for (const c of this.consumers) {
      for (const m of this.log(c.name).matchAll(/"replicaId":"([^"]+)"[^\n]*"consumer started"/g)) ids.add(m[1]!);
    }
    return [...ids];
  }

  async stop(): Promise<void> {
    await Promise.all([...this.consumers, ...this.gateways].map((i) => i.stop()));
    await this.network.close();
  }
}

function field(value: HclValue, key: string): HclValue | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value[key] : undefined;
}
