import { expect } from 'chai';
import path from 'node:path';
import { parseArgs, planFor } from '../../../scripts/bench/lib/args';
import { SCENARIO_IDS } from '../../../scripts/bench/lib/results';

describe('bench/args', () => {
  it('defaults to 3 runs of every scenario into bench/results', () => {
    const o = parseArgs([], '/repo');
    expect(o).to.deep.include({ runs: 3, quick: false, outDir: path.resolve('/repo/bench/results'), ingestClient: 'pre-encoded', serviceMain: undefined, help: false });
    expect(o.only).to.deep.equal([...SCENARIO_IDS]);
  });

  it('makes --quick a single run into the git-ignored bench/results/tmp unless told otherwise', () => {
    expect(parseArgs(['--quick']).runs).to.equal(1);
    expect(parseArgs(['--quick'], '/repo').outDir).to.equal(path.resolve('/repo/bench/results/tmp'));
    expect(parseArgs(['--quick', '--out', 'x'], '/repo').outDir).to.equal(path.resolve('/repo/x'));
    expect(parseArgs(['--quick', '--runs', '2']).runs).to.equal(2);
    expect(parseArgs(['--runs=5']).runs).to.equal(5);
  });

  it('keeps --only in run order whatever order it was typed in', () => {
    expect(parseArgs(['--only', 'alternatives,limit']).only).to.deep.equal(['limit', 'alternatives']);
    expect(parseArgs(['--only=reads, floor']).only).to.deep.equal(['floor', 'reads']);
  });

  it('rejects unknown scenarios, bad run counts, missing values and unknown flags', () => {
    expect(() => parseArgs(['--only', 'limit,nope'])).to.throw(/unknown: nope/);
    expect(() => parseArgs(['--runs', '0'])).to.throw(/--runs/);
    expect(() => parseArgs(['--runs', 'x'])).to.throw(/--runs/);
    expect(() => parseArgs(['--runs'])).to.throw(/needs a value/);
    expect(() => parseArgs(['--ingest-client', 'grpc-web'])).to.throw(/ingest-client/);
    expect(() => parseArgs(['--fast'])).to.throw(/unknown argument --fast/);
  });

  it('plans smaller loads for --quick than for a full run', () => {
    const full = planFor({ quick: false });
    const quick = planFor({ quick: true });
    expect(full.limitRows).to.equal(1_000_000);
    expect(quick.limitRows).to.be.lessThan(full.limitRows);
    expect(full.offeredRates).to.deep.equal([10_000, 50_000]);
    expect(full.saturationStreams).to.deep.equal([1, 4, 16]);
    expect(full.sweepBatchMaxMs).to.deep.equal([0, 1, 2, 5, 10, 20]);
    expect(full.multiRowBatchRows).to.equal(1_000);
  });
});
