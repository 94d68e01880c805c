'use strict';
/** Small helpers shared by the benchmarks. */
const { readFileSync } = require('node:fs');

/** Resident set size of a process in MB, from /proc (0 once it has exited). */
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

module.exports = { rssMb };
