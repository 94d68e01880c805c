import { startEmulator, type RunningEmulator } from '@hourglass/emulator';

/**
 * Starts one real Pub/Sub emulator for the whole test run and hands its address to the
 * workers through PUBSUB_EMULATOR_HOST (workers inherit the environment set here).
 * A test that needs isolation uses its own topic prefix, not its own emulator.
 */
declare global {
  var __HOURGLASS_EMULATOR__: RunningEmulator | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (process.env.PUBSUB_EMULATOR_HOST) return; // an emulator the caller runs
  const emulator = await startEmulator({ heapMb: 2048, logFile: '/tmp/hourglass-test-emulator.log' });
  globalThis.__HOURGLASS_EMULATOR__ = emulator;
  process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  process.env.HOURGLASS_TEST_EMULATOR_PID = String(emulator.pid);
}
