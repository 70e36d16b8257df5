import { expect } from 'chai';
import { parseImportArgs, parsePurgeArgs } from '../../../src/cli/args';
import { formatDuration, ProgressReporter, renderProgress } from '../../../src/cli/progress';
import { formatNs, parseCutoff } from '../../../src/cli/time';

const NOW_MS = Date.UTC(2025, 0, 1);

describe('cli/time parseCutoff', () => {
  it('reads a date as midnight UTC and a date-time with its zone, exactly to the nanosecond', () => {
    expect(parseCutoff('2024-01-31', NOW_MS)).to.equal(1_706_659_200_000_000_000n);
    expect(parseCutoff('2024-01-31T00:00:00Z', NOW_MS)).to.equal(1_706_659_200_000_000_000n);
    expect(parseCutoff('2024-01-31T02:00:00+02:00', NOW_MS)).to.equal(1_706_659_200_000_000_000n);
    expect(parseCutoff('2024-01-31T00:00:00.123456789Z', NOW_MS)).to.equal(1_706_659_200_123_456_789n);
    expect(formatNs(1_706_659_200_123_456_789n)).to.equal('2024-01-31T00:00:00.123456789Z');
  });

  it('refuses local times, impossible dates, the future and garbage', () => {
    expect(() => parseCutoff('2024-01-31T00:00:00', NOW_MS)).to.throw(/zone/);
    expect(() => parseCutoff('2024-02-30', NOW_MS)).to.throw(/not a valid date/);
    expect(() => parseCutoff('2030-01-01', NOW_MS)).to.throw(/in the future/);
    expect(() => parseCutoff('yesterday', NOW_MS)).to.throw().with.property('field', '--before');
  });
});

describe('cli/args', () => {
  it('parses purge flags with defaults', () => {
    expect(parsePurgeArgs(['--before', '2024-01-01', '--dry-run', '--concurrency', '3', '--batch-size', '5_000'], NOW_MS)).to.deep.equal({
      help: false,
      beforeNs: 1_704_067_200_000_000_000n,
      dryRun: true,
      concurrency: 3,
      batchRows: 5_000,
    });
    expect(parsePurgeArgs(['--before', '2024-01-01'], NOW_MS)).to.include({ dryRun: false, concurrency: 2, batchRows: 10_000 });
  });

  it('refuses a missing --before, unknown flags and bad numbers, naming the flag', () => {
    expect(() => parsePurgeArgs([], NOW_MS)).to.throw().with.property('field', '--before');
    expect(() => parsePurgeArgs(['--before', '2024-01-01', '--force'], NOW_MS)).to.throw().with.property('code', 'INVALID_ARGUMENT');
    expect(() => parsePurgeArgs(['--before', '2024-01-01', '--concurrency', '0'], NOW_MS)).to.throw().with.property('field', '--concurrency');
  });

  it('parses import arguments', () => {
    expect(parseImportArgs(['x.csv', '--type', 'fills', '--source', 'venue-a-2023'])).to.include({ file: 'x.csv', type: 'fills', source: 'venue-a-2023', concurrency: 2, chunkRows: 5_000 });
    expect(() => parseImportArgs([])).to.throw().with.property('field', '<file>');
    expect(() => parseImportArgs(['x.csv', '--type', 'trades'])).to.throw().with.property('field', '--type');
    expect(() => parseImportArgs(['x.csv', '--source', 'has space'])).to.throw().with.property('field', '--source');
  });
});

describe('cli/progress', () => {
  it('renders a bar with percent, rows, rows/s and ETA', () => {
    expect(renderProgress({ label: 'import f.csv', done: 250, total: 1_000, rows: 50_000, elapsedMs: 5_000 })).to.equal(
      'import f.csv  [######------------------]   25.0%  50,000 rows  10,000 rows/s  ETA 0:15',
    );
    expect(formatDuration(3_725)).to.equal('1:02:05');
  });

  it('throttles redraws on a terminal and writes plain lines elsewhere', () => {
    let now = 0;
    const tty: string[] = [];
    const reporter = new ProgressReporter('x', { isTTY: true, write: (t: string) => tty.push(t) }, () => now);
    for (let i = 0; i < 100; i++) {
      now += 10;
      reporter.update(i, 100, i);
    }
    // 1,000 ms of updates every 10 ms at one redraw per 200 ms.
    expect(tty.length).to.be.within(4, 6);
    expect(tty.every((t) => t.startsWith('\r\x1b[2K'))).to.equal(true);
    const log: string[] = [];
    now = 0;
    const plain = new ProgressReporter('x', { isTTY: false, write: (t: string) => log.push(t) }, () => now);
    for (let i = 0; i < 100; i++) {
      now += 1_000;
      plain.update(i, 100, i);
    }
    expect(log.length).to.equal(10);
    expect(log.every((t) => t.endsWith('\n') && !t.includes('\x1b'))).to.equal(true);
  });
});
