import { randomBytes } from 'node:crypto';
import { PubSub, type Message } from '@google-cloud/pubsub';
import type { Command } from 'commander';
import { Defaults, HourglassError, resourceNames } from '@hourglass/common';
import { SchemaRegistry, decodeBundle } from '@hourglass/schemas';

/**
 * `hourglass tail <type>`: a real-time subscriber. It creates its own short-lived
 * subscription on the type's topic (so it never steals messages from the consumer),
 * prints every event as a JSON line, and deletes the subscription when it stops.
 */
export function registerTailCommand(program: Command): void {
  program
    .command('tail')
    .argument('<type>', 'event type')
    .description('print events of one type as JSON lines as they are published')
    .option('-n, --limit <n>', 'stop after n events', (v) => Number(v))
    .option('-d, --dir <dir>', 'schema directory', process.env.HOURGLASS_SCHEMAS_DIR ?? Defaults.schemasDir)
    .option('-p, --project <id>', 'project id', process.env.HOURGLASS_PROJECT_ID ?? Defaults.projectId)
    .option('--prefix <prefix>', 'resource name prefix', process.env.HOURGLASS_PREFIX ?? Defaults.prefix)
    .action(async (eventType: string, opts: { limit?: number; dir: string; project: string; prefix: string }) => {
      const registry = SchemaRegistry.load(opts.dir);
      if (!registry.has(eventType))
        throw new HourglassError('SCHEMA_UNKNOWN_TYPE', `unknown event type "${eventType}"`);
      const names = resourceNames(opts.prefix, eventType);
      const pubsub = new PubSub({ projectId: opts.project });
      const [sub] = await pubsub
        .topic(names.topic)
        .createSubscription(`${names.topic}-tail-${randomBytes(4).toString('hex')}`, {
          ackDeadlineSeconds: 10,
          expirationPolicy: { ttl: { seconds: 24 * 3600 } },
        });
      let printed = 0;
      const done = new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        sub.on('error', (e: Error) => {
          process.stderr.write(`tail: ${e.message}\n`);
          resolve();
        });
        sub.on('message', (m: Message) => {
          m.ack();
          try {
            const bundle = decodeBundle(registry, m.data, m.attributes);
            for (const r of bundle.records) {
              process.stdout.write(`${JSON.stringify(r)}\n`);
              printed++;
              if (opts.limit !== undefined && printed >= opts.limit) return resolve();
            }
          } catch (e) {
            process.stderr.write(`tail: skipped undecodable message ${m.id}: ${(e as Error).message}\n`);
          }
        });
      });
      await done;
      await sub.close();
      await sub.delete().catch(() => undefined);
      await pubsub.close();
    });
}
