import type { ObjectStore } from '@hourglass/storage';
import { stagingTypePrefix, type IntervalWindow, parsePartition } from '@hourglass/bucket-format';

const HOUR_MS = 3_600_000;

/**
 * The windows of a type that have anything in staging, found by walking the partition folders
 * one level at a time (`dt=` → `hour=` → `minute=`) with delimiter listings: a few small
 * requests per day of staging instead of one listing of every staged object.
 */
export async function listStagedWindows(
  store: ObjectStore,
  eventType: string,
  windowMs: number,
): Promise<Map<number, IntervalWindow>> {
  const root = stagingTypePrefix(eventType);
  const windows = new Map<number, IntervalWindow>();
  const depth = windowMs < HOUR_MS ? 3 : 2;
  const walk = async (prefix: string, level: number): Promise<void> => {
    for (const child of (await store.listChildren(prefix)).prefixes) {
      if (level < depth) {
        await walk(child, level + 1);
        continue;
      }
      const window = parsePartition(child.slice(root.length, -1), windowMs);
      if (window) windows.set(window.start, window);
    }
  };
  await walk(root, 1);
  return windows;
}
