import type { FinalizeStep } from './finalize/context.js';

/**
 * TEST ONLY. HOURGLASS_TEST_CRASH_AFTER=<step>[:<n>] kills this process with SIGKILL right
 * after the n-th (default first) finalize step of that kind: early-plan-written, plan-written,
 * part-written, manifest-written, published or staging-deleted. The crash tests use it to prove that a rerun on any
 * replica produces the same final bytes. Never set it in production.
 */
export function crashHookFromEnv(
  env: Record<string, string | undefined> = process.env,
): ((step: FinalizeStep, detail: string) => void) | undefined {
  const spec = env.HOURGLASS_TEST_CRASH_AFTER;
  if (!spec) return undefined;
  const [step, countText] = spec.split(':');
  const steps: readonly string[] = [
    'early-plan-written',
    'plan-written',
    'part-written',
    'manifest-written',
    'published',
    'staging-deleted',
  ];
  if (!step || !steps.includes(step)) {
    throw new Error(`HOURGLASS_TEST_CRASH_AFTER=${spec}: expected one of ${steps.join(', ')}[:n]`);
  }
  let remaining = countText ? Number(countText) : 1;
  return (s, detail) => {
    if (s !== step || --remaining > 0) return;
    process.stderr.write(`HOURGLASS_TEST_CRASH_AFTER: killing myself after ${s} ${detail}\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}
