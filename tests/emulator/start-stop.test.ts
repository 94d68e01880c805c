import { readFileSync } from 'node:fs';
import { isHourglassError } from '@hourglass/common';
import { startEmulator, type RunningEmulator } from '@hourglass/emulator';

/**
 * A second, real emulator next to the shared one: it starts, answers, and once stopped
 * its JVM is gone (the harness holds the JVM's pid, not a wrapper's).
 */
let emulator: RunningEmulator | undefined;

afterAll(async () => {
  await emulator?.stop(); // only if a failed assertion left it running
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('start answers on its port with a JVM pid; stop ends that JVM', async () => {
  emulator = await startEmulator({ heapMb: 256 });
  const { pid, host, port } = emulator;
  expect(host).toBe(`127.0.0.1:${port}`);
  expect(host).not.toBe(process.env.PUBSUB_EMULATOR_HOST);
  expect(alive(pid)).toBe(true);
  // The launcher script execs java, so the pid we hold is the JVM itself.
  expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toMatch(/java$/);
  const res = await fetch(`http://${host}/`);
  expect(res.ok).toBe(true);

  await emulator.stop();
  expect(alive(pid)).toBe(false);
  expect(() => process.kill(pid, 0)).toThrow();
  await expect(fetch(`http://${host}/`)).rejects.toThrow();
  await emulator.stop(); // a second stop is harmless
  emulator = undefined;
});

test('a port already in use is EMULATOR_START_FAILED, without starting a JVM', async () => {
  const shared = process.env.PUBSUB_EMULATOR_HOST;
  expect(shared).toBeDefined();
  const port = Number(shared!.split(':')[1]);
  let thrown: unknown;
  try {
    emulator = await startEmulator({ port, heapMb: 256 });
  } catch (e) {
    thrown = e;
  }
  expect(isHourglassError(thrown, 'EMULATOR_START_FAILED')).toBe(true);
  expect((thrown as Error).message).toContain(`port ${port} is already in use`);
});

test('preTouchMb starts the JVM with that much of its heap committed and resident', async () => {
  emulator = await startEmulator({ heapMb: 512, preTouchMb: 256 });
  const { pid } = emulator;
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  expect(args).toEqual(expect.arrayContaining(['-Xmx512m', '-Xms256m', '-XX:+AlwaysPreTouch']));
  const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  expect(rssKb).toBeGreaterThan(256 * 1024);
  await emulator.stop();
  emulator = undefined;
});
