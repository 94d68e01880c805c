import type { Command } from 'commander';
import { Defaults, type Logger, checkPrefix, closedNoticeTopic, HourglassError } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { provisionTopology } from '../provision.js';

export function registerTopicCommands(program: Command, log: Logger): void {
  const topics = program.command('topics').description('Pub/Sub topics and subscriptions');
  topics
    .command('provision')
    .description(
      'create every topic, consumer subscription and dead-letter topic (idempotent); honours PUBSUB_EMULATOR_HOST',
    )
    .option('-d, --dir <dir>', 'schema directory', process.env.HOURGLASS_SCHEMAS_DIR ?? Defaults.schemasDir)
    .option('-p, --project <id>', 'project id', process.env.HOURGLASS_PROJECT_ID ?? Defaults.projectId)
    .option('--prefix <prefix>', 'resource name prefix', process.env.HOURGLASS_PREFIX ?? Defaults.prefix)
    .option(
      '--project-number <number>',
      "the project's number: grants the Pub/Sub service agent its dead-letter roles (Cloud Pub/Sub only)",
    )
    .action(async (opts: { dir: string; project: string; prefix: string; projectNumber?: string }) => {
      const bad = checkPrefix(opts.prefix);
      if (bad) throw new HourglassError('CONFIG_INVALID', bad, { path: 'HOURGLASS_PREFIX' });
      const registry = SchemaRegistry.load(opts.dir);
      const result = await provisionTopology({
        projectId: opts.project,
        prefix: opts.prefix,
        eventTypes: registry.eventTypes(),
        ...(opts.projectNumber ? { projectNumber: opts.projectNumber } : {}),
        logger: log,
      });
      for (const r of result) {
        process.stdout.write(
          `${r.eventType}: topic ${r.topic}, subscription ${r.subscription}, dead letters ${r.deadLetterTopic}` +
            `${r.created.length ? ` (created ${r.created.length})` : ' (unchanged)'}, dead-letter IAM ${r.iam}\n`,
        );
      }
      process.stdout.write(`closed-window notices: topic ${closedNoticeTopic(opts.prefix)}\n`);
    });
}
