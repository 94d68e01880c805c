/**
 * Finalize work of every type runs one job at a time, process-wide. It shares the event loop with
 * staging: each job yields between staged files, and with five types finalizing at once staging
 * waited behind up to five files' scans at every turn.
 */
let finalizeTail: Promise<unknown> = Promise.resolve();

export function oneAtATime<T>(job: () => Promise<T>): Promise<T> {
  const run = finalizeTail.then(job, job);
  finalizeTail = run.catch(() => undefined);
  return run;
}
