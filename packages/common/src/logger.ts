import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout (pino). Level from HOURGLASS_LOG_LEVEL, default info. */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  return pino({
    name,
    level: process.env.HOURGLASS_LOG_LEVEL ?? 'info',
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...options,
  });
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
