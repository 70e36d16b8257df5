import net from 'node:net';

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  /** Black-holed: bytes and closes are swallowed for good, as on a dead route. */
  lostRequests: boolean;
  lostResponses: boolean;
}

/**
 * A TCP proxy in front of PostgreSQL for network faults.
 * - `stall()`/`resume()`: nothing moves on any connection, new ones included
 *   (a frozen switch); afterwards everything flows again.
 * - `blackhole()`: the connections open now go silent for good in one or both
 *   directions, and their closes are not passed on either (a dead route);
 *   new connections work. The database keeps such a session until something
 *   ends it.
 */
export class StallProxy {
  private server: net.Server | undefined;
  private readonly links = new Set<Link>();
  private stalled = false;

  constructor(private readonly targetPort: number) {}

  /** Starts listening on a free loopback port and returns it. */
  async start(): Promise<number> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      const link: Link = { client, upstream, lostRequests: false, lostResponses: false };
      this.links.add(link);
      for (const s of [client, upstream]) {
        s.on('error', () => undefined);
        if (this.stalled) s.pause();
      }
      // Plain 'data' forwarding, not pipe(): pipe() resumes a paused source whenever its destination drains.
      client.on('data', (chunk: Buffer) => {
        if (!link.lostRequests) upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!link.lostResponses) client.write(chunk);
      });
      client.on('close', () => {
        if (!link.lostRequests) upstream.destroy();
      });
      upstream.on('close', () => {
        if (!link.lostResponses) client.destroy();
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  /** Stops moving bytes in both directions on every connection (they stay open). */
  stall(): void {
    this.stalled = true;
    for (const link of this.links) {
      link.client.pause();
      link.upstream.pause();
    }
  }

  /** Moves bytes again after stall(). */
  resume(): void {
    this.stalled = false;
    for (const link of this.links) {
      link.client.resume();
      link.upstream.resume();
    }
  }

  /** Silences the connections open now for good: `both` directions, or only PostgreSQL's `responses`. */
  blackhole(direction: 'both' | 'responses'): void {
    for (const link of this.links) {
      link.lostResponses = true;
      if (direction === 'both') link.lostRequests = true;
    }
  }

  async close(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream.destroy();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
