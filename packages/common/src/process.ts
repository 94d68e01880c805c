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

/**
 * Node flags for the gateway process, wherever it starts (deploy/gateway.Dockerfile, `hourglass
 * up`, the benchmarks, the process tests). One V8 helper thread instead of four: on the one or
 * two cores a gateway gets, four helpers marking in parallel at each full GC took the cores from
 * the request thread, and its answers stalled. Paired runs at 90,000 events/s on 2 cores: answer
 * p99 46.9 / 49.9 / 30.6 ms against 67.1 / 63.4 / 51.9 ms with the default.
 */
export const GATEWAY_NODE_ARGS: readonly string[] = ['--v8-pool-size=1'];
