'use strict';
/** Small helpers shared by the benchmarks. */
const { readFileSync } = require('node:fs');
const { randomUUID } = require('node:crypto');

/** Resident set size of a process in MB, from /proc (0 once it has exited). */
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds (user + system) a process, or one of its threads when `tid` is given, has used so
 * far, from /proc (0 once it has exited).
 */
function cpuSeconds(pid, tid) {
  try {
    const stat = readFileSync(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the name may hold spaces
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** A realistic track_played record (newest schema) for event number `i`, stamped `gatewayTs`. */
function trackPlayed(i, gatewayTs) {
  return {
    meta: { event_id: randomUUID(), gateway_ts: gatewayTs, client_ts: gatewayTs - 250, gateway_id: 'bench-gw' },
    user_id: `user-${i % 100000}`,
    track_id: `spotify:track:${(i * 7919) % 1000000}`,
    ms_played: 180000 + (i % 1000),
    reason_start: 'TRACK_DONE',
    reason_end: 'TRACK_DONE',
    shuffle: i % 2 === 0,
    platform: 'ANDROID',
    country: 'SE',
    offline: false,
    context_uri: i % 3 ? null : `spotify:playlist:${i % 5000}`,
  };
}

module.exports = { cpuSeconds, rssMb, trackPlayed };
