import * as protoLoader from '@grpc/proto-loader';
import http from 'node:http';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

/** Span kinds as OTLP numbers them (SPAN_KIND_SERVER = 2, …). */
export const OTLP_SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;
/** Span status codes as OTLP numbers them. */
export const OTLP_STATUS_CODE = { UNSET: 0, OK: 1, ERROR: 2 } as const;

/** An attribute value as it arrived (int64 values as strings, like the wire's decimal form). */
export type AttributeValue = string | number | boolean | AttributeValue[] | undefined;

/** One span, decoded from what arrived over the wire. Ids are lowercase hex. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, AttributeValue>;
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  /** Spans this one links to (ids lowercase hex). */
  links: { traceId: string; spanId: string }[];
  status: { code: number; message: string };
  resource: Record<string, AttributeValue>;
  scope: string;
}

/** The wire format of one export request. */
export type OtlpEncoding = 'protobuf' | 'json';

const PROTO_PATH = path.resolve(__dirname, '../../../test/helpers/otlp/trace-service.proto');

interface WireKeyValue {
  key: string;
  value?: Record<string, unknown> | null;
}

/**
 * A tiny OTLP/HTTP trace receiver on 127.0.0.1 (POST /v1/traces), decoding
 * protobuf (application/x-protobuf) and JSON (application/json), gzip or not,
 * so tests assert on what a collector such as Jaeger would receive.
 */
export class OtlpReceiver {
  /** Every span received so far, in arrival order. */
  readonly spans: ReceivedSpan[] = [];
  /** Encodings of the export requests received so far. */
  readonly requests: OtlpEncoding[] = [];
  private server: http.Server | undefined;
  private readonly decodeProtobuf: (buffer: Buffer) => { resource_spans: unknown[] };

  constructor() {
    // proto-loader's request deserializer is protobufjs decode + toObject with these options.
    const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
    const service = definition['opentelemetry.proto.collector.trace.v1.TraceService'] as protoLoader.ServiceDefinition;
    this.decodeProtobuf = service.Export!.requestDeserialize as (buffer: Buffer) => { resource_spans: unknown[] };
  }

  /** Listens on a free loopback port; resolves with the base URL (`http://127.0.0.1:port`). */
  async start(): Promise<string> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        try {
          let body = Buffer.concat(chunks);
          if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
          const isJson = (req.headers['content-type'] ?? '').includes('json');
          this.requests.push(isJson ? 'json' : 'protobuf');
          this.accept(isJson ? fromJson(JSON.parse(body.toString('utf8'))) : fromProtobuf(this.decodeProtobuf(body)));
          res.writeHead(200, { 'content-type': isJson ? 'application/json' : 'application/x-protobuf' });
          res.end(isJson ? '{}' : Buffer.alloc(0));
        } catch (err) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
        }
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  /** Resolves with the matching spans once at least `count` arrived; rejects after `timeoutMs`. */
  async waitFor(predicate: (span: ReceivedSpan) => boolean, timeoutMs: number, count = 1): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.spans.filter(predicate);
      if (found.length >= count) return found;
      if (Date.now() >= deadline) {
        throw new Error(`Expected ${count} matching span(s) within ${timeoutMs} ms; received ${this.spans.length}: ${this.spans.map((s) => s.name).join(', ') || 'none'}.`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops listening. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private accept(spans: ReceivedSpan[]): void {
    this.spans.push(...spans);
  }
}

/** Decoded protobuf (proto-loader objects: snake_case, bytes as Buffer, fixed64 as string). */
function fromProtobuf(request: { resource_spans: unknown[] }): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of request.resource_spans as { resource?: { attributes: WireKeyValue[] }; scope_spans: { scope?: { name: string }; spans: Record<string, unknown>[] }[] }[]) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scope_spans) {
      for (const s of ss.spans) {
        const parent = (s.parent_span_id as Buffer).toString('hex');
        const status = s.status as { code: number; message: string } | null;
        spans.push({
          traceId: (s.trace_id as Buffer).toString('hex'),
          spanId: (s.span_id as Buffer).toString('hex'),
          parentSpanId: parent === '' ? undefined : parent,
          name: s.name as string,
          kind: s.kind as number,
          startTimeUnixNano: s.start_time_unix_nano as string,
          endTimeUnixNano: s.end_time_unix_nano as string,
          attributes: attributesOf(s.attributes as WireKeyValue[]),
          events: (s.events as { name: string; attributes: WireKeyValue[] }[]).map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
          links: ((s.links ?? []) as { trace_id: Buffer; span_id: Buffer }[]).map((l) => ({ traceId: l.trace_id.toString('hex'), spanId: l.span_id.toString('hex') })),
          status: { code: status?.code ?? 0, message: status?.message ?? '' },
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return spans;
}

/** OTLP/JSON: camelCase fields, ids as hex strings, int64 as strings or numbers. */
function fromJson(request: { resourceSpans?: unknown[] }): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of (request.resourceSpans ?? []) as { resource?: { attributes?: WireKeyValue[] }; scopeSpans?: { scope?: { name?: string }; spans?: Record<string, unknown>[] }[] }[]) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const status = s.status as { code?: number; message?: string } | undefined;
        const parent = (s.parentSpanId as string | undefined) ?? '';
        spans.push({
          traceId: String(s.traceId).toLowerCase(),
          spanId: String(s.spanId).toLowerCase(),
          parentSpanId: parent === '' ? undefined : parent.toLowerCase(),
          name: String(s.name),
          kind: Number(s.kind ?? 0),
          startTimeUnixNano: String(s.startTimeUnixNano),
          endTimeUnixNano: String(s.endTimeUnixNano),
          attributes: attributesOf(s.attributes as WireKeyValue[] | undefined),
          events: ((s.events ?? []) as { name: string; attributes?: WireKeyValue[] }[]).map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
          links: ((s.links ?? []) as { traceId: string; spanId: string }[]).map((l) => ({ traceId: String(l.traceId).toLowerCase(), spanId: String(l.spanId).toLowerCase() })),
          status: { code: status?.code ?? 0, message: status?.message ?? '' },
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return spans;
}

function attributesOf(list: WireKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of list ?? []) out[kv.key] = valueOf(kv.value);
  return out;
}

/** AnyValue in either encoding: protobuf uses snake_case plus a `value` oneof name, JSON camelCase. */
function valueOf(value: Record<string, unknown> | null | undefined): AttributeValue {
  if (!value) return undefined;
  const which = (value.value as string | undefined) ?? Object.keys(value).find((k) => value[k] !== undefined && value[k] !== null);
  if (which === undefined) return undefined;
  const raw = value[which];
  switch (which) {
    case 'string_value':
    case 'stringValue':
      return raw as string;
    case 'bool_value':
    case 'boolValue':
      return raw as boolean;
    case 'int_value':
    case 'intValue':
      return String(raw);
    case 'double_value':
    case 'doubleValue':
      return Number(raw);
    case 'array_value':
    case 'arrayValue':
      return ((raw as { values?: Record<string, unknown>[] }).values ?? []).map(valueOf);
    case 'bytes_value':
    case 'bytesValue':
      return Buffer.isBuffer(raw) ? raw.toString('base64') : String(raw);
    default:
      return undefined;
  }
}
