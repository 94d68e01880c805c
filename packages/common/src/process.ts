import type { ChildProcess } from 'node:child_process';

/** SIGTERM, then SIGKILL if the child has not exited after `graceMs`; resolves once it has. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  // No pid: spawn itself failed, so there is no process and no 'exit' will come.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(killer);
}
