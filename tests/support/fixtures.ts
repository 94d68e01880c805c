import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Small helpers every suite shares: one start of time, unique names, temporary directories.
 * No Pub/Sub, no child process: the unit project imports this too.
 */

/** The start of every test's time (ManualClock, gateway_ts): on an hour, a day and a minute boundary. */
export const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
export const MINUTE = 60_000;
export const HOUR = 3_600_000;

/**
 * A name no other test uses (topic prefix, object-store prefix), so tests sharing the emulator
 * or a GCS fake never see each other's resources. The tag says which test made it.
 */
export function uniquePrefix(tag?: string): string {
  return `t-${tag ? `${tag}-` : ''}${randomBytes(6).toString('hex')}`;
}

/** A new empty directory under the system's temporary directory. */
export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `hourglass-${label}-`));
}
