import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createStore } from '@hourglass/storage';
import { WindowReader } from '../../deployed/reader';

/** The deployed suite's reader (deployed.test.ts) counts exactly the files a query could read too early. */
let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'hg-reader-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const put = (name: string): void => {
  mkdirSync(dirname(join(root, name)), { recursive: true });
  writeFileSync(join(root, name), 'x');
};
const WINDOW = 'track_played/dt=2026-01-01/hour=10/minute=05';

test('an .avro file in a window folder without _SUCCESS is counted; staging is never listed', async () => {
  put(`${WINDOW}/part-00000.avro`);
  put('_staging/track_played/x/part-9.avro');
  const reader = new WindowReader(createStore(root), ['track_played', 'ab_exposure']);
  await reader.scan();
  expect([...reader.unclosedFiles]).toEqual([`${WINDOW}/part-00000.avro`]);
  expect(reader.listings).toBe(2);
});

test('files published together with _SUCCESS (one folder rename) are never counted', async () => {
  const reader = new WindowReader(createStore(root), ['track_played']);
  put(`_staging/track_played/p/_publish/part-00000.avro`);
  put(`_staging/track_played/p/_publish/_SUCCESS`);
  await reader.scan();
  mkdirSync(dirname(join(root, WINDOW)), { recursive: true });
  renameSync(join(root, '_staging/track_played/p/_publish'), join(root, WINDOW));
  await reader.scan();
  expect(reader.unclosedFiles.size).toBe(0);
  expect(reader.listings).toBe(2);
});
