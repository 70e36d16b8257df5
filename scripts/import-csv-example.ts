/**
 * Example: stream a CSV file of fills into orderflow through the TypeScript
 * client, exactly once.
 *
 *   npm run build
 *   node dist/scripts/import-csv-example.js --address 127.0.0.1:50051 --source venue-a-2024-06-03 fills.csv
 *   node dist/scripts/import-csv-example.js --address … --source … --spool ./fills.spool fills.csv
 *
 * The file has a header line naming its columns (any order):
 *
 *   column      required  meaning
 *   fill_id     yes       execution id (at most 64 printable characters)
 *   order_id    yes       order the fill executes
 *   account_id  yes       account of the order
 *   symbol      yes       instrument (at most 32 characters)
 *   side        yes       BUY or SELL (or 1 / 2)
 *   price       yes       decimal string, > 0 ("189.25")
 *   qty         yes       decimal string, > 0
 *   ts_ns       yes       execution time, nanoseconds since the epoch (integer)
 *   fee         no        decimal string, may be negative; empty = none
 *   venue       no        execution venue (MIC)
 *   seq         no        the source's sequence number; default: the row's number (1 = first data row)
 *
 * Fields follow RFC 4180 quoting ("a,b" and "say ""hi""") on one line each.
 * Because seqs are stable (row numbers or the seq column), running the same
 * file again for the same source stores nothing twice: rows at or below the
 * source's committed mark settle as duplicates without being sent. With
 * --spool, a run that was killed resumes where its spool says.
 * Exit status: 0 when every row was stored (or already there), 2 when some
 * rows were invalid or rejected (listed with their line numbers), 1 on error.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { createOrderFlowClient, EventRejectedError, Side, type EventOutcome, type FillInput } from '../src/client';

interface Args {
  address: string;
  source: string;
  spool: string | undefined;
  file: string;
}

/** A row the script could not turn into an event, or the server rejected. */
interface Problem {
  line: number;
  reason: string;
}

const REQUIRED = ['fill_id', 'order_id', 'account_id', 'symbol', 'side', 'price', 'qty', 'ts_ns'] as const;
const PROGRESS_EVERY_ROWS = 50_000;
const MAX_PROBLEMS_LISTED = 20;

function parseArgs(argv: string[]): Args {
  const args: Partial<Args> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--address') args.address = argv[++i];
    else if (a === '--source') args.source = argv[++i];
    else if (a === '--spool') args.spool = argv[++i];
    else if (!a.startsWith('--')) args.file = a;
    else throw new Error(`unknown option ${a}`);
  }
  if (!args.address || !args.source || !args.file) throw new Error('usage: import-csv-example --address host:port --source <source id> [--spool <file>] <file.csv>');
  return args as Args;
}

/** Splits one CSV line (RFC 4180 quoting, no line breaks inside fields). */
function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  fields.push(field);
  return fields;
}

function toSide(value: string): number | undefined {
  const v = value.trim().toUpperCase();
  if (v === 'BUY' || v === '1') return Side.SIDE_BUY;
  if (v === 'SELL' || v === '2') return Side.SIDE_SELL;
  return undefined;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const client = createOrderFlowClient({ address: args.address });
  const started = Date.now();
  const counts: Record<EventOutcome['status'], number> = { stored: 0, committed: 0, duplicate: 0 };
  const problems: Problem[] = [];
  let rows = 0;
  let skippedInSpool = 0;
  let failed = 0;
  try {
    const producer = await client.openIngest({ sourceId: args.source, spool: args.spool ? { path: args.spool } : undefined });
    // Rows above the committed mark but already in the spool were taken by an
    // earlier run that died; the producer resends them itself.
    const committedAtStart = producer.lastCommittedSeq;
    const spooledUpTo = producer.lastAcceptedSeq;
    const input = readline.createInterface({ input: fs.createReadStream(args.file, 'utf8'), crlfDelay: Infinity });
    let header: string[] | undefined;
    let lineNo = 0;
    for await (const line of input) {
      lineNo++;
      if (line.trim() === '') continue;
      if (!header) {
        header = splitCsvLine(line).map((h) => h.trim());
        const missing = REQUIRED.filter((c) => !header!.includes(c));
        if (missing.length > 0) throw new Error(`${args.file}: header lacks ${missing.join(', ')}`);
        continue;
      }
      rows++;
      const fields = splitCsvLine(line);
      if (fields.length !== header.length) {
        problems.push({ line: lineNo, reason: `${fields.length} fields, the header has ${header.length}` });
        continue;
      }
      const row = Object.fromEntries(header.map((h, i) => [h, fields[i]!]));
      const side = toSide(row.side ?? '');
      const seqText = row.seq === undefined || row.seq === '' ? String(rows) : row.seq;
      if (side === undefined || !/^[0-9]+$/.test(seqText) || !/^-?[0-9]+$/.test(row.ts_ns ?? '')) {
        problems.push({ line: lineNo, reason: side === undefined ? `side must be BUY or SELL, got ${JSON.stringify(row.side)}` : `seq and ts_ns must be integers` });
        continue;
      }
      const seq = BigInt(seqText);
      if (seq > committedAtStart && seq <= spooledUpTo) {
        skippedInSpool++;
        continue;
      }
      const fill: FillInput = { fill_id: row.fill_id, order_id: row.order_id, account_id: row.account_id, symbol: row.symbol, side: side as FillInput['side'], price: row.price, qty: row.qty, ts_ns: row.ts_ns, fee: row.fee ?? '', venue: row.venue ?? '' };
      const at = lineNo;
      const { acked } = await producer.send({ seq, fill });
      acked.then(
        (outcome) => counts[outcome.status]++,
        (err: unknown) => {
          if (err instanceof EventRejectedError) problems.push({ line: at, reason: `${err.rejectCodeName}: ${err.reason}` });
          else failed++;
        },
      );
      if (rows % PROGRESS_EVERY_ROWS === 0) {
        const seconds = (Date.now() - started) / 1_000;
        process.stderr.write(`${rows} rows, ${Math.round(rows / seconds)} rows/s, committed up to seq ${producer.lastCommittedSeq}\n`);
      }
    }
    await producer.close();
    const stats = producer.stats();
    const seconds = (Date.now() - started) / 1_000;
    problems.sort((a, b) => a.line - b.line);
    const summary = {
      file: args.file,
      source: args.source,
      rows,
      stored: counts.stored + counts.committed,
      alreadyPresent: counts.duplicate,
      resentFromSpool: skippedInSpool,
      problems: problems.length,
      failed,
      seconds: Number(seconds.toFixed(2)),
      rowsPerSecond: Math.round(rows / Math.max(seconds, 0.001)),
      reconnects: stats.reconnects,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    for (const p of problems.slice(0, MAX_PROBLEMS_LISTED)) process.stdout.write(`line ${p.line}: ${p.reason}\n`);
    if (problems.length > MAX_PROBLEMS_LISTED) process.stdout.write(`… and ${problems.length - MAX_PROBLEMS_LISTED} more\n`);
    return problems.length > 0 || failed > 0 ? 2 : 0;
  } finally {
    await client.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`import-csv-example: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
