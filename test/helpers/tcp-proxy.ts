import net from 'node:net';

/** A loopback TCP proxy that can stop forwarding, to simulate a network stall. */
export interface TcpProxy {
  /** Port on 127.0.0.1 to connect to instead of the target. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly connectionCount: number;
  /**
   * Stops forwarding in both directions on every connection, present and
   * future, without closing anything: bytes stay unread in the kernel, as in
   * a stalled network path.
   */
  stall(): void;
  /** Forwards again. */
  resume(): void;
  /** Rewrites `url` (host and port) to go through the proxy. */
  urlFor(url: string): string;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (free port) forwarding to `targetHost:targetPort`. */
export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let stalled = false;
  let connectionCount = 0;

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A reset from either side is expected (destroyed connections); never crash the test run.
    socket.on('error', () => socket.destroy());
    if (stalled) socket.pause();
  };

  const server = net.createServer((client) => {
    connectionCount++;
    const upstream = net.connect(targetPort, targetHost);
    track(client);
    track(upstream);
    // Manual forwarding (not pipe()): pipe() resumes a paused source on its own.
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    get connectionCount() {
      return connectionCount;
    },
    stall() {
      stalled = true;
      for (const socket of sockets) socket.pause();
    },
    resume() {
      stalled = false;
      for (const socket of sockets) socket.resume();
    },
    urlFor(url: string) {
      const rewritten = new URL(url);
      rewritten.hostname = '127.0.0.1';
      rewritten.port = String(port);
      return rewritten.toString();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
