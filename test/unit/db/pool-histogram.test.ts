import { expect } from 'chai';
import { Registry } from 'prom-client';
import { FastHistogram } from '../../../src/db/pool-histogram';

describe('db/FastHistogram', () => {
  it('renders cumulative buckets, sum and count per label set in the Prometheus text format', async () => {
    const registry = new Registry();
    const histogram = new FastHistogram({ name: 'test_duration_seconds', help: 'Test durations.', buckets: [0.01, 0.1, 1], registry });
    const a = histogram.labels({ operation: 'orders.get' });
    const b = histogram.labels({ operation: 'fills.insert_copy' });
    expect(histogram.labels({ operation: 'orders.get' })).to.equal(a);
    for (const v of [0.005, 0.01, 0.05, 2]) a.observe(v);
    b.observe(0.5);
    const text = await registry.metrics();
    expect(text).to.include('# TYPE test_duration_seconds histogram');
    expect(text).to.include('test_duration_seconds_bucket{operation="orders.get",le="0.01"} 2');
    expect(text).to.include('test_duration_seconds_bucket{operation="orders.get",le="0.1"} 3');
    expect(text).to.include('test_duration_seconds_bucket{operation="orders.get",le="1"} 3');
    expect(text).to.include('test_duration_seconds_bucket{operation="orders.get",le="+Inf"} 4');
    expect(text).to.include('test_duration_seconds_sum{operation="orders.get"} 2.065');
    expect(text).to.include('test_duration_seconds_count{operation="orders.get"} 4');
    expect(text).to.include('test_duration_seconds_bucket{operation="fills.insert_copy",le="1"} 1');
    expect(registry.getSingleMetric('test_duration_seconds')).to.equal(histogram);
  });

  it('reset() zeroes the series it keeps', async () => {
    const registry = new Registry();
    const histogram = new FastHistogram({ name: 'test_wait_seconds', help: 'Test waits.', buckets: [1], registry });
    const series = histogram.labels();
    series.observe(0.5);
    registry.resetMetrics();
    series.observe(3);
    const text = await registry.metrics();
    expect(text).to.include('test_wait_seconds_bucket{le="1"} 0');
    expect(text).to.include('test_wait_seconds_count 1');
  });
});
