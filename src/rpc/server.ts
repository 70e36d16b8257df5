import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { formatHostPort, type HostPort } from '../config';
import type { OrderFlowDefinition, OrderFlowHandlers } from '../generated/orderflow/v1/OrderFlow';
import { grpcMetricsInterceptor, preregisterGrpcMethods } from '../telemetry/grpc-metrics';
import type { Logger } from '../telemetry/logger';
import { HEALTH_PROTO_PATH, type HealthReporter } from './health';
import { ORDERFLOW_PROTO_PATH, PROTO_LOADER_OPTIONS, orderFlowServiceDefinition } from './proto';

/** Life cycle of the gRPC server. */
export type GrpcServerState = 'CREATED' | 'RUNNING' | 'DRAINING' | 'CLOSED';

/** Options of createGrpcServer. */
export interface GrpcServerOptions {
  address: HostPort;
  /** Implemented RPCs; the others answer UNIMPLEMENTED. */
  handlers: Partial<OrderFlowHandlers>;
  health: HealthReporter;
  logger: Logger;
  /** Largest message accepted, bytes. */
  maxMessageBytes: number;
  /** The OrderFlow definition to serve (e.g. with a faster request decoder). Default: as loaded from the proto. */
  definition?: OrderFlowDefinition;
}

const METHODS: readonly (keyof OrderFlowHandlers)[] = ['Ingest', 'GetOrder', 'BatchGetOrders', 'ListOrders', 'ListFills', 'GetPosition', 'BustFills'];

/**
 * The gRPC server: OrderFlow, grpc.health.v1 and server reflection (v1 and
 * v1alpha) on one port.
 */
export class GrpcServer {
  private stateValue: GrpcServerState = 'CREATED';
  private readonly server: grpc.Server;
  private boundPort = 0;
  private closePromise: Promise<void> | undefined;

  constructor(private readonly options: GrpcServerOptions) {
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': options.maxMessageBytes,
      'grpc.max_send_message_length': options.maxMessageBytes,
      // Clients reconnect often; keepalive finds dead peers of long-lived streams.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
      // Calls by method and status for /metrics (orderflow_grpc_server_*).
      interceptors: [grpcMetricsInterceptor],
    });
    preregisterGrpcMethods(METHODS.map(String));
    this.server.addService(options.definition ?? orderFlowServiceDefinition(), withUnimplemented(options.handlers) as unknown as grpc.UntypedServiceImplementation);
    options.health.addToServer(this.server);
    const reflectionDefinition = protoLoader.loadSync([ORDERFLOW_PROTO_PATH, HEALTH_PROTO_PATH], PROTO_LOADER_OPTIONS);
    new ReflectionService(reflectionDefinition).addToServer(this.server);
  }

  get state(): GrpcServerState {
    return this.stateValue;
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return this.boundPort;
  }

  /** Binds and starts serving. */
  async start(): Promise<number> {
    const target = formatHostPort(this.options.address);
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`Cannot bind gRPC to ${target}: ${err.message}`, { cause: err })) : resolve(port)));
    });
    this.stateValue = 'RUNNING';
    this.options.logger.info({ address: formatHostPort({ host: this.options.address.host, port: this.boundPort }) }, 'gRPC server listening');
    return this.boundPort;
  }

  /** Stops accepting calls and waits for open calls to end; at the deadline, cancels them. Idempotent. */
  close(graceMs: number): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.stateValue = 'DRAINING';
    this.closePromise = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.options.logger.warn({ graceMs }, 'gRPC calls still open at the deadline; cancelling them');
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    }).finally(() => {
      this.stateValue = 'CLOSED';
    });
    return this.closePromise;
  }

  /** Cancels every open call at once. */
  forceClose(): void {
    this.server.forceShutdown();
    this.stateValue = 'CLOSED';
  }
}

function withUnimplemented(handlers: Partial<OrderFlowHandlers>): OrderFlowHandlers {
  const full: Record<string, unknown> = {};
  for (const method of METHODS) {
    full[method] =
      handlers[method] ??
      ((call: { emit?: unknown; end?: () => void }, callback?: grpc.sendUnaryData<unknown>) => {
        const error = { code: grpc.status.UNIMPLEMENTED, details: `${method} is not implemented yet.` };
        if (callback) callback(error);
        else (call as grpc.ServerDuplexStream<unknown, unknown>).emit('error', error); // emit, not destroy(): destroy sends no status to the client
      });
  }
  return full as unknown as OrderFlowHandlers;
}
