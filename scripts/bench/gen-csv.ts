import fs from 'node:fs';
import { once } from 'node:events';

/**
 * Writes a synthetic import file: `node dist/scripts/bench/gen-csv.js <out.csv> [rows] [orders|fills] [invalidEvery]`.
 * Defaults: 1,000,000 fills, one invalid row (qty 0) every 100,000 rows, a
 * quoted venue with an embedded comma every 1,000 rows. Deterministic, so two
 * runs write the same file. Streams with backpressure: constant memory.
 */
async function main(): Promise<void> {
  const [out, rowsArg, typeArg, invalidArg] = process.argv.slice(2);
  if (!out) {
    process.stderr.write('usage: node dist/scripts/bench/gen-csv.js <out.csv> [rows=1000000] [orders|fills] [invalidEvery=100000]\n');
    process.exit(2);
  }
  const rows = Number(rowsArg ?? 1_000_000);
  const type = typeArg === 'orders' ? 'orders' : 'fills';
  const invalidEvery = Number(invalidArg ?? 100_000);
  const stream = fs.createWriteStream(out);
  const baseTsNs = 1_700_000_000_000_000_000n;
  stream.write(type === 'fills' ? 'fill_id,order_id,account_id,symbol,side,price,qty,ts_ns,fee,venue\n' : 'order_id,account_id,symbol,side,order_type,event_type,price,qty,time_in_force,ts_ns,client_order_id\n');
  let buffer = '';
  for (let i = 1; i <= rows; i++) {
    const invalid = invalidEvery > 0 && i % invalidEvery === 0;
    const qty = invalid ? '0' : String((i % 500) + 1);
    const price = `${100 + Math.floor((i % 1000) / 100)}.${String(i % 100).padStart(2, '0')}`;
    const ts = (baseTsNs + BigInt(i) * 1_000_000n).toString();
    const account = `acc-${i % 97}`;
    const symbol = ['AAPL', 'MSFT', 'NVDA', 'ESZ4', 'BTC-USD'][i % 5];
    if (type === 'fills') {
      const venue = i % 1_000 === 0 ? '"XNAS, Inc."' : 'XNAS';
      buffer += `f-${i},o-${Math.ceil(i / 2)},${account},${symbol},${i % 2 ? 'BUY' : 'SELL'},${price},${qty},${ts},0.${i % 100},${venue}\n`;
    } else {
      buffer += `o-${i},${account},${symbol},${i % 2 ? 'BUY' : 'SELL'},LIMIT,NEW,${price},${qty},DAY,${ts},c-${i}\n`;
    }
    if (buffer.length > 256 * 1024) {
      if (!stream.write(buffer)) await once(stream, 'drain');
      buffer = '';
    }
  }
  stream.end(buffer);
  await once(stream, 'finish');
  const { size } = await fs.promises.stat(out);
  process.stderr.write(`wrote ${rows} ${type} rows, ${(size / 1_048_576).toFixed(1)} MiB, to ${out}\n`);
}

void main();
