import { readFileSync } from 'node:fs';
import { HourglassError } from './errors.js';
import { type Duration, parseBytes, parseDuration } from './duration.js';

/**
 * Typed configuration: each setting names its environment variable, its parser and its
 * default. `loadConfig` reads a JSON file (HOURGLASS_CONFIG) and the environment (env
 * wins), validates every setting and fails with one message naming the bad setting.
 */
export interface Setting<T> {
  env: string;
  parse: (raw: string) => T | undefined;
  /** What a valid value looks like, for the error message. */
  expect: string;
  default: T;
}

export type SettingsSpec = Record<string, Setting<unknown>>;
export type ConfigOf<S extends SettingsSpec> = { [K in keyof S]: S[K]['default'] };

export const setting = {
  string(env: string, def: string, pattern?: RegExp): Setting<string> {
    return {
      env,
      default: def,
      expect: pattern ? `a string matching ${pattern.source}` : 'a non-empty string',
      parse: (raw) => (raw.length > 0 && (!pattern || pattern.test(raw)) ? raw : undefined),
    };
  },
  /** One of a fixed set of words, typed as that union. */
  oneOf<T extends string>(env: string, def: T, values: readonly T[]): Setting<T> {
    return {
      env,
      default: def,
      expect: `one of ${values.join(', ')}`,
      parse: (raw) => ((values as readonly string[]).includes(raw) ? (raw as T) : undefined),
    };
  },
  optionalString(env: string): Setting<string | undefined> {
    return { env, default: undefined, expect: 'a string', parse: (raw) => raw };
  },
  int(env: string, def: number, min: number, max: number): Setting<number> {
    return {
      env,
      default: def,
      expect: `an integer in ${min}..${max}`,
      parse: (raw) => {
        // Number() alone would read " " as 0 and "0x10" as 16.
        if (!/^\s*-?\d+\s*$/.test(raw)) return undefined;
        const n = Number(raw);
        return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
      },
    };
  },
  bytes(env: string, def: number, min = 1): Setting<number> {
    return {
      env,
      default: def,
      expect: `a size like 65536, 64kib or 10mb, at least ${min}`,
      parse: (raw) => {
        const n = parseBytes(raw);
        return n !== undefined && n >= min ? n : undefined;
      },
    };
  },
  duration(env: string, def: Duration, min = 0): Setting<Duration> {
    return {
      env,
      default: def,
      expect: `a duration like 250ms, 5s, 1m or 1h, at least ${min}ms`,
      parse: (raw) => {
        const d = parseDuration(raw);
        return d !== undefined && d >= min ? d : undefined;
      },
    };
  },
  bool(env: string, def: boolean): Setting<boolean> {
    return {
      env,
      default: def,
      expect: 'true or false',
      parse: (raw) => (raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : undefined),
    };
  },
  list(env: string, def: string[]): Setting<string[]> {
    return {
      env,
      default: def,
      expect: 'a comma-separated list',
      parse: (raw) =>
        raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
    };
  },
};

export function loadConfig<S extends SettingsSpec>(
  spec: S,
  env: Record<string, string | undefined> = process.env,
): ConfigOf<S> {
  const fromFile = readConfigFile(env.HOURGLASS_CONFIG);
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) {
    const fileValue = fromFile[s.env] ?? fromFile[key];
    const fromEnv = env[s.env] !== undefined && env[s.env] !== '';
    const raw = fromEnv ? env[s.env] : fileText(fileValue);
    if (raw === undefined || raw === '') {
      out[key] = s.default;
      continue;
    }
    const value = s.parse(raw);
    if (value === undefined) {
      const source = fromEnv ? '' : ` (from ${env.HOURGLASS_CONFIG})`;
      throw new HourglassError(
        'CONFIG_INVALID',
        `${s.env}=${JSON.stringify(raw)}${source} is invalid: expected ${s.expect}`,
        { path: s.env },
      );
    }
    out[key] = value;
  }
  return out as ConfigOf<S>;
}

/** JSON values as the text an environment variable would hold; null means unset. */
function fileText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(String).join(',');
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function readConfigFile(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new HourglassError('CONFIG_INVALID', `HOURGLASS_CONFIG=${path}: cannot read (${(e as Error).message})`, {
      path: 'HOURGLASS_CONFIG',
    });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (e) {
    throw new HourglassError('CONFIG_INVALID', `HOURGLASS_CONFIG=${path}: ${(e as Error).message}`, {
      path: 'HOURGLASS_CONFIG',
    });
  }
}
