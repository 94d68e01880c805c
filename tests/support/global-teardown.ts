export default async function globalTeardown(): Promise<void> {
  await globalThis.__HOURGLASS_EMULATOR__?.stop();
}
