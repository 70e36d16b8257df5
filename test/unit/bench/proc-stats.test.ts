import { expect } from 'chai';
import { parseProcStat, parseProcStatus, processCpuMicros, processMemory, processTreeCpuMicros, treeCpuTicks, type ProcStat } from '../../../scripts/bench/lib/proc-stats';

describe('bench/proc-stats', () => {
  it('parses /proc/<pid>/stat even when the command name holds spaces and parentheses', () => {
    const line = '4242 (node (worker) x) S 17 4242 4242 0 -1 4194560 1200 0 0 0 731 96 12 7 20 0 11 0 5000 1000000 5000 18446744073709551615';
    expect(parseProcStat(line)).to.deep.equal({ pid: 4242, ppid: 17, utimeTicks: 731, stimeTicks: 96, cutimeTicks: 12, cstimeTicks: 7 });
  });

  it('reads VmHWM and VmRSS in bytes from /proc/<pid>/status', () => {
    const text = 'Name:\tnode\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n';
    expect(parseProcStatus(text)).to.deep.equal({ peakRssBytes: 204800 * 1024, rssBytes: 102400 * 1024 });
    expect(parseProcStatus('Name:\tx\n').peakRssBytes).to.be.NaN;
  });

  it('sums a process tree, reaped children included, and ignores processes outside it', () => {
    const stat = (pid: number, ppid: number, u: number, s = 0, cu = 0, cs = 0): ProcStat => ({ pid, ppid, utimeTicks: u, stimeTicks: s, cutimeTicks: cu, cstimeTicks: cs });
    const stats = [stat(1, 0, 1000), stat(10, 1, 5, 1, 30, 3), stat(11, 10, 7, 2), stat(12, 10, 4), stat(13, 12, 1, 1), stat(20, 1, 999)];
    expect(treeCpuTicks(stats, 10)).to.equal(5 + 1 + 30 + 3 + 7 + 2 + 4 + 1 + 1);
    expect(treeCpuTicks(stats, 99)).to.be.NaN;
  });

  it('reads this process from the real /proc', function () {
    if (process.platform !== 'linux') this.skip();
    for (let i = 0, x = 0; i < 2_000_000; i++) x += i;
    expect(processCpuMicros(process.pid)).to.be.greaterThan(0);
    expect(processTreeCpuMicros(process.pid)).to.be.at.least(processCpuMicros(process.pid) - 10_000);
    const mem = processMemory(process.pid);
    expect(mem.peakRssBytes).to.be.at.least(mem.rssBytes);
  });
});
