import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * CPU time and memory of processes from /proc (Linux). CPU is what the
 * kernel charged the process (all threads), so it counts the service's own
 * work however many cores it spread over, and nothing of the load generator.
 */

/** Fields of /proc/<pid>/stat the benchmark uses, in clock ticks. */
export interface ProcStat {
  pid: number;
  ppid: number;
  utimeTicks: number;
  stimeTicks: number;
  /** CPU of children that ended and were waited for (reaped backends, for the postmaster). */
  cutimeTicks: number;
  cstimeTicks: number;
}

/**
 * Parses one /proc/<pid>/stat line. The command name (field 2) is in
 * parentheses and may itself contain spaces and parentheses, so fields are
 * counted from the last ')'.
 */
export function parseProcStat(line: string): ProcStat {
  const close = line.lastIndexOf(')');
  if (close < 0) throw new Error(`Not a /proc/<pid>/stat line: ${line.slice(0, 80)}`);
  const pid = Number(line.slice(0, line.indexOf(' ')));
  // After ") ": field 3 (state) is index 0 here; utime is field 14 → index 11.
  const rest = line.slice(close + 2).trim().split(/\s+/);
  const num = (i: number) => Number(rest[i]);
  return { pid, ppid: num(1), utimeTicks: num(11), stimeTicks: num(12), cutimeTicks: num(13), cstimeTicks: num(14) };
}

/** Memory figures of /proc/<pid>/status, bytes. */
export interface ProcMemory {
  /** Peak resident set size (VmHWM). */
  peakRssBytes: number;
  /** Current resident set size (VmRSS). */
  rssBytes: number;
}

/** Parses VmHWM and VmRSS (reported in kB) out of /proc/<pid>/status text. */
export function parseProcStatus(text: string): ProcMemory {
  const kb = (key: string) => {
    const match = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  };
  return { peakRssBytes: kb('VmHWM'), rssBytes: kb('VmRSS') };
}

let ticksPerSecond: number | undefined;

/** Kernel clock ticks per second (`getconf CLK_TCK`, 100 on Linux when unknown). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU time (user + system, all threads) of one live process, µs. */
export function processCpuMicros(pid: number): number {
  const stat = parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return ((stat.utimeTicks + stat.stimeTicks) * 1e6) / clockTicksPerSecond();
}

/** Peak and current RSS of one live process. */
export function processMemory(pid: number): ProcMemory {
  return parseProcStatus(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/**
 * CPU time of `rootPid` and every descendant, µs, including descendants that
 * already ended (their time is in their parent's cutime/cstime). For the
 * postmaster this is all of PostgreSQL: backends, WAL writer, checkpointer.
 */
export function processTreeCpuMicros(rootPid: number): number {
  const stats: ProcStat[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      stats.push(parseProcStat(fs.readFileSync(`/proc/${entry}/stat`, 'utf8')));
    } catch {
      // The process ended between readdir and read.
    }
  }
  return treeCpuTicks(stats, rootPid) * (1e6 / clockTicksPerSecond());
}

/** Sum of utime+stime+cutime+cstime over `rootPid` and its descendants in `stats`, ticks. */
export function treeCpuTicks(stats: readonly ProcStat[], rootPid: number): number {
  const children = new Map<number, ProcStat[]>();
  let root: ProcStat | undefined;
  for (const s of stats) {
    if (s.pid === rootPid) root = s;
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  if (!root) return Number.NaN;
  let total = 0;
  const queue: ProcStat[] = [root];
  while (queue.length > 0) {
    const s = queue.pop()!;
    total += s.utimeTicks + s.stimeTicks + s.cutimeTicks + s.cstimeTicks;
    queue.push(...(children.get(s.pid) ?? []));
  }
  return total;
}

/** Samples one process's CPU between two points in time. */
export class CpuMeter {
  private startMicros: number;

  constructor(private readonly read: () => number) {
    this.startMicros = read();
  }

  /** Restarts the measurement now. */
  reset(): void {
    this.startMicros = this.read();
  }

  /** CPU µs used since construction or the last reset. */
  elapsedMicros(): number {
    return this.read() - this.startMicros;
  }
}
