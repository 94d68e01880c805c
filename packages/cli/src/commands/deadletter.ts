import type { Command } from 'commander';
import { Defaults, HourglassError, checkPrefix } from '@hourglass/common';
import { SchemaRegistry, decodeBundle } from '@hourglass/schemas';
import { createStore } from '@hourglass/storage';
import {
  type DeadLetter,
  type DeadLetterAccess,
  type DeadLetterSource,
  KeepSubscription,
  listDeadLetters,
  notFound,
  replayDeadLetters,
  stillFailing,
} from '../deadletters.js';
import { printTable } from './data.js';

/**
 * `hourglass deadletter ls|show|replay <type>`: the store's `_deadletter/` records and the
 * Pub/Sub keep subscription, listed with reasons, shown one at a time, and replayed after a fix.
 * Exit codes: 0 ok, 1 not found or (replay) some still fail, 2 usage, 3 store or Pub/Sub unreachable.
 */
interface Options {
  store: string;
  dir: string;
  project: string;
  prefix: string;
  source: 'all' | DeadLetterSource;
  json?: boolean;
}

function withOptions(cmd: Command): Command {
  return cmd
    .option('-s, --store <url>', 'object store', process.env.HOURGLASS_STORE ?? Defaults.storeRoot)
    .option('-d, --dir <dir>', 'schema directory', process.env.HOURGLASS_SCHEMAS_DIR ?? Defaults.schemasDir)
    .option('-p, --project <id>', 'project id', process.env.HOURGLASS_PROJECT_ID ?? Defaults.projectId)
    .option('--prefix <prefix>', 'resource name prefix', process.env.HOURGLASS_PREFIX ?? Defaults.prefix)
    .option('--source <which>', 'store (the _deadletter records), pubsub (the keep subscription) or all', 'all')
    .option('--json', 'one JSON object per line');
}

function accessOf(type: string, opts: Options): DeadLetterAccess {
  const bad = checkPrefix(opts.prefix);
  if (bad) throw new HourglassError('CONFIG_INVALID', bad, { path: 'HOURGLASS_PREFIX' });
  if (!['all', 'store', 'pubsub'].includes(opts.source)) {
    throw new HourglassError('CONFIG_INVALID', `--source ${opts.source}: expected store, pubsub or all`);
  }
  return {
    store: createStore(opts.store),
    eventType: type,
    projectId: opts.project,
    prefix: opts.prefix,
    sources: opts.source === 'all' ? ['store', 'pubsub'] : [opts.source],
  };
}

/** Runs `work` with the keep subscription (when asked for), releasing what was pulled and not settled. */
async function withKeep<T>(
  access: DeadLetterAccess,
  work: (keep: KeepSubscription | undefined) => Promise<T>,
): Promise<T> {
  const keep = access.sources.includes('pubsub') ? new KeepSubscription(access) : undefined;
  try {
    return await work(keep);
  } finally {
    await keep?.close();
  }
}

function summaryOf(l: DeadLetter): Record<string, unknown> {
  return {
    source: l.source,
    id: l.id,
    receivedAt: l.receivedAt,
    reason: l.reason,
    bytes: l.data.length,
    status: l.replayed ? 'replayed' : 'pending',
    ...(l.object ? { object: l.object } : {}),
    ...(l.replayed ? { replayed: l.replayed } : {}),
  };
}

export function registerDeadLetterCommands(program: Command): void {
  const dl = program.command('deadletter').description('dead letters: list, show, replay after a fix');

  withOptions(dl.command('ls').argument('<type>', 'event type'))
    .description('dead letters of a type with their reasons (store records and the keep subscription)')
    .action(async (type: string, opts: Options) => {
      const access = accessOf(type, opts);
      const letters = await withKeep(access, async (keep) => {
        const found = await listDeadLetters(access, keep);
        await keep?.release(found);
        return found;
      });
      if (opts.json) {
        for (const l of letters) process.stdout.write(`${JSON.stringify(summaryOf(l))}\n`);
        return;
      }
      const header = ['SOURCE', 'ID', 'RECEIVED', 'STATUS', 'BYTES', 'REASON'];
      const rows = letters.map((l) => [
        l.source,
        l.id,
        l.receivedAt ?? '-',
        l.replayed ? 'replayed' : 'pending',
        String(l.data.length),
        `${l.reason.code}: ${l.reason.message}`,
      ]);
      printTable([header, ...rows]);
      process.stdout.write(`${letters.length} dead letters, ${letters.filter((l) => !l.replayed).length} pending\n`);
    });

  withOptions(dl.command('show').argument('<type>', 'event type').argument('<id>', 'message id (from ls)'))
    .description('one dead letter: reason, attributes, and its events if the schemas now decode it')
    .action(async (type: string, id: string, opts: Options) => {
      const access = accessOf(type, opts);
      const registry = SchemaRegistry.load(opts.dir);
      const letter = await withKeep(access, async (keep) => {
        const found = await listDeadLetters(access, keep);
        await keep?.release(found);
        return found.find((l) => l.id === id);
      });
      if (!letter) throw notFound(type, id);
      const failing = stillFailing(registry, type, letter);
      const events = failing ? undefined : decodeBundle(registry, letter.data, letter.attributes).records;
      const shown = {
        ...summaryOf(letter),
        attributes: letter.attributes,
        nowDecodes: !failing,
        ...(failing ? { wouldFail: failing } : { events }),
      };
      process.stdout.write(
        `${JSON.stringify(shown, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
      );
    });

  withOptions(dl.command('replay').argument('<type>', 'event type'))
    .description("re-publish every dead letter that now decodes to the type's topic, once")
    .action(async (type: string, opts: Options) => {
      const access = accessOf(type, opts);
      const registry = SchemaRegistry.load(opts.dir);
      const summary = await withKeep(access, (keep) => replayDeadLetters(access, registry, keep));
      for (const l of summary.replayed) {
        process.stdout.write(`replayed ${l.source} ${l.id} as ${l.replayed!.messageId}\n`);
      }
      for (const { letter, reason } of summary.stillFailing) {
        process.stdout.write(`still failing ${letter.source} ${letter.id}: ${reason.code}: ${reason.message}\n`);
      }
      process.stdout.write(
        `${summary.replayed.length} replayed, ${summary.alreadyReplayed.length} already replayed, ` +
          `${summary.stillFailing.length} still failing\n`,
      );
      if (summary.stillFailing.length > 0) process.exitCode = 1;
    });
}
