/** One type's staging counters on this replica (status, logs, tests). */
export interface StagerStats {
  messages: number;
  events: number;
  staged: number;
  late: number;
  stagedFiles: number;
  stagedBytes: number;
  deadLettered: number;
  acked: number;
  nacked: number;
  failedWrites: number;
  /** Messages settled after the client had stopped extending them (they were redelivered meanwhile). */
  overheld: number;
}

export function newStagerStats(): StagerStats {
  return {
    messages: 0,
    events: 0,
    staged: 0,
    late: 0,
    stagedFiles: 0,
    stagedBytes: 0,
    deadLettered: 0,
    acked: 0,
    nacked: 0,
    failedWrites: 0,
    overheld: 0,
  };
}
