import { Command } from 'commander';
import { createLogger, isHourglassError } from '@hourglass/common';
import { registerSchemaCommands } from './commands/schemas.js';
import { registerTopicCommands } from './commands/topics.js';
import { registerInfraCommands } from './commands/infra.js';
import { registerTailCommand } from './commands/tail.js';
import { registerSendCommands } from './commands/send.js';
import { registerUpCommand } from './commands/up.js';
import { registerDataCommands } from './commands/data.js';
import { registerDeadLetterCommands } from './commands/deadletter.js';

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

// `hourglass cat ... | head` closes the pipe early: that is success, not a crash.
process.stdout.on('error', (e: NodeJS.ErrnoException) =>
  process.exit(e.code === 'EPIPE' ? ExitCode.ok : ExitCode.unavailable),
);

const log = createLogger('hourglass-cli', { level: process.env.HOURGLASS_LOG_LEVEL ?? 'warn' });
registerSchemaCommands(program);
registerTopicCommands(program, log);
registerInfraCommands(program);
registerTailCommand(program);
registerSendCommands(program);
registerUpCommand(program, log);
registerDataCommands(program);
registerDeadLetterCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  if (isHourglassError(e)) {
    process.stderr.write(`${e.toLine()}\n`);
    const unavailable = ['STORAGE_UNAVAILABLE', 'EMULATOR_MISSING', 'EMULATOR_START_FAILED'];
    process.exit(
      e.code === 'CONFIG_INVALID'
        ? ExitCode.usage
        : unavailable.includes(e.code)
          ? ExitCode.unavailable
          : ExitCode.checkFailed,
    );
  }
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(ExitCode.unavailable);
});
