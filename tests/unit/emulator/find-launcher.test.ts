import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHourglassError } from '@hourglass/common';
import { findEmulatorLauncher } from '@hourglass/emulator';

/**
 * Finding the emulator on a real filesystem: fake SDK trees in a temp dir, and an empty
 * list of well-known roots so the machine's own SDK cannot answer for them.
 */
const LAUNCHER = join('platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hourglass-sdk-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function executable(path: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, '#!/bin/sh\nexit 0\n');
  chmodSync(path, 0o755);
  return path;
}

function fakeSdk(name: string): string {
  const root = join(tmp, name);
  executable(join(root, LAUNCHER));
  executable(join(root, 'bin', 'gcloud'));
  return root;
}

function fakeJavaDir(): string {
  const dir = join(tmp, 'jdk', 'bin');
  executable(join(dir, 'java'));
  return dir;
}

function missingError(run: () => unknown): Error {
  try {
    run();
  } catch (e) {
    if (isHourglassError(e, 'EMULATOR_MISSING')) return e;
    throw e;
  }
  throw new Error('expected EMULATOR_MISSING');
}

test('no gcloud on PATH and CLOUDSDK_ROOT_DIR pointing nowhere: EMULATOR_MISSING with an install hint', () => {
  const env = { PATH: join(tmp, 'empty-bin'), CLOUDSDK_ROOT_DIR: join(tmp, 'no-such-sdk') };
  const error = missingError(() => findEmulatorLauncher(env, []));
  expect(error.message).toContain(join(tmp, 'no-such-sdk'));
  expect(error.message).toContain('apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator');
  expect(error.message).toContain('gcloud components install pubsub-emulator');
});

test('nothing to look in at all still names what to install', () => {
  const error = missingError(() => findEmulatorLauncher({ PATH: '' }, []));
  expect(error.message).toMatch(/CLOUDSDK_ROOT_DIR unset and no gcloud on PATH/);
  expect(error.message).toContain('openjdk-17-jre-headless');
});

test('an SDK without java on PATH or JAVA_HOME: EMULATOR_MISSING naming java', () => {
  const root = fakeSdk('sdk-no-java');
  const error = missingError(() => findEmulatorLauncher({ PATH: join(tmp, 'empty-bin'), CLOUDSDK_ROOT_DIR: root }, []));
  expect(error.message).toMatch(/found .*cloud-pubsub-emulator but no java on PATH/);
});

test('CLOUDSDK_ROOT_DIR with java on PATH finds the launcher', () => {
  const root = fakeSdk('sdk-by-env');
  expect(findEmulatorLauncher({ PATH: fakeJavaDir(), CLOUDSDK_ROOT_DIR: root }, [])).toBe(join(root, LAUNCHER));
});

test('JAVA_HOME stands in for java on PATH', () => {
  const root = fakeSdk('sdk-java-home');
  expect(findEmulatorLauncher({ PATH: '', CLOUDSDK_ROOT_DIR: root, JAVA_HOME: '/opt/jdk' }, [])).toBe(
    join(root, LAUNCHER),
  );
});

test('gcloud on PATH, even through a symlink, leads to its SDK root', () => {
  const root = fakeSdk('sdk-by-gcloud');
  const linkDir = join(tmp, 'usr-bin');
  mkdirSync(linkDir, { recursive: true });
  symlinkSync(join(root, 'bin', 'gcloud'), join(linkDir, 'gcloud'));
  expect(findEmulatorLauncher({ PATH: `${linkDir}:${fakeJavaDir()}` }, [])).toBe(join(root, LAUNCHER));
});

test('well-known roots are probed last, after CLOUDSDK_ROOT_DIR', () => {
  const wellKnown = fakeSdk('sdk-well-known');
  const env = { PATH: fakeJavaDir(), CLOUDSDK_ROOT_DIR: join(tmp, 'no-such-sdk') };
  expect(findEmulatorLauncher(env, [join(tmp, 'absent'), wellKnown])).toBe(join(wellKnown, LAUNCHER));
  const preferred = fakeSdk('sdk-preferred');
  expect(findEmulatorLauncher({ ...env, CLOUDSDK_ROOT_DIR: preferred }, [wellKnown])).toBe(join(preferred, LAUNCHER));
});
