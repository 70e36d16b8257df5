import net from 'node:net';

/** Where a connection's server listens: TCP host and port, or a Unix socket directory (host starting with `/`). */
export interface CancelTarget {
  host: string;
  port: number;
}

/** CancelRequest code from the protocol docs: 1234 << 16 | 5678. */
const CANCEL_REQUEST_CODE = 80_877_102;

/**
 * Sends a PostgreSQL CancelRequest for backend `processId` on a new socket
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS).
 *
 * Resolves true once the server has closed the socket: the postmaster closes
 * it only after signalling the backend, so from then on the cancel cannot hit
 * a later statement of the same connection. Resolves false on any error or
 * after `timeoutMs`; never rejects. A cancel that arrives while the backend is
 * idle is ignored by PostgreSQL.
 */
export function sendCancelRequest(target: CancelTarget, processId: number, secretKey: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = target.host.startsWith('/') ? net.connect({ path: `${target.host}/.s.PGSQL.${target.port}` }) : net.connect(target.port, target.host);
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    timer.unref();
    socket.setNoDelay(true);
    socket.once('connect', () => {
      const message = Buffer.allocUnsafe(16);
      message.writeInt32BE(16, 0);
      message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      message.writeInt32BE(processId, 8);
      message.writeInt32BE(secretKey, 12);
      socket.write(message);
    });
    // The server answers nothing; it closes the socket when done.
    socket.on('data', () => undefined);
    socket.once('end', () => finish(true));
    socket.once('close', (hadError) => finish(!hadError));
    socket.once('error', () => finish(false));
  });
}
