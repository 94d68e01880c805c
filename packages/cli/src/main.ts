import { Command } from 'commander';
import { createLogger, isHourglassError } from '@hourglass/common';
import { registerSchemaCommands } from './commands/schemas.js';
import { registerTopicCommands } from './commands/topics.js';
import { registerInfraCommands } from './commands/infra.js';
import { registerTailCommand } from './commands/tail.js';

/**
 * `hourglass` — one CLI for operators and scripts. Exit codes: 0 success, 1 a check
 * failed (the output says what), 2 bad usage or configuration, 3 a dependency
 * (emulator, Pub/Sub, store) was unreachable.
 */
export const ExitCode = { ok: 0, checkFailed: 1, usage: 2, unavailable: 3 } as const;

const program = new Command('hourglass')
  .description('Hourglass event delivery pipeline')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : ExitCode.usage));

const log = createLogger('hourglass-cli', { level: process.env.HOURGLASS_LOG_LEVEL ?? 'warn' });
registerSchemaCommands(program);
registerTopicCommands(program, log);
registerInfraCommands(program);
registerTailCommand(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  if (isHourglassError(e)) {
    process.stderr.write(`${e.toLine()}\n`);
    process.exit(e.code === 'CONFIG_INVALID' ? ExitCode.usage : ExitCode.checkFailed);
  }
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(ExitCode.unavailable);
});
