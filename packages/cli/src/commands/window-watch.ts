import type { ObjectStore } from '@hourglass/storage';
import { parseManifest } from '@hourglass/bucket-format';

/** Prints one line per newly closed window (a new _SUCCESS) in the store. */
export function watchClosedWindows(
  store: ObjectStore,
  eventTypes: readonly string[],
  say: (line: string) => void,
): () => void {
  const seen = new Set<string>();
  let busy = false;
  const poll = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      for (const type of eventTypes) {
        for (const o of await store.list(`${type}/`)) {
          if (!o.name.endsWith('/_SUCCESS') || seen.has(o.name)) continue;
          seen.add(o.name);
          const data = await store.get(o.name);
          if (!data) continue;
          const m = parseManifest(data, o.name);
          say(
            `closed ${type.padEnd(17)} ${m.window.start} .. ${m.window.end.slice(11)}  ` +
              `${String(m.counts.records).padStart(7)} records (late ${m.counts.late}, duplicates dropped ${m.counts.duplicatesDropped}) ` +
              `in ${m.files.length} file(s)`,
          );
        }
      }
    } catch {
      /* the next poll tries again */
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void poll(), 2000);
  return () => clearInterval(timer);
}
