import type { IncomingMessage, RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Every local server binds here only: the stack is for one machine, never the network. */
export const HOST = '127.0.0.1';

/** A started local server. */
export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
  /** The server's request handling, for callers in this process that skip the socket. */
  requestListener?: RequestListener;
}

/** A request body over the limit; thrown as soon as the limit is passed, before reading the rest. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
}

/** A port that another process holds; the message says which server wanted it. */
export class PortInUseError extends Error {
  override name = 'PortInUseError';
}

/**
 * Listens on 127.0.0.1 (port 0 picks a free one) and answers the server's URL and a `close` that
 * also ends keep-alive connections, so stopping never waits for idle clients to time out.
 */
export function listen(server: Server, port: number, what: string): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new PortInUseError(`${what}: port ${port} on ${HOST} is already in use`)
          : new Error(`${what}: cannot listen on ${HOST}:${port}: ${err.message}`),
      );
    };
    server.once('error', onError);
    server.listen(port, HOST, () => {
      server.off('error', onError);
      const actual = (server.address() as AddressInfo).port;
      resolve({
        url: `http://${HOST}:${actual}`,
        port: actual,
        close: () => closeServer(server),
        requestListener: server.listeners('request')[0] as RequestListener | undefined,
      });
    });
  });
}

/** Closes a server and its open connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!server.listening) return resolve();
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

/** Reads a request body, failing with {@link BodyTooLargeError} as soon as it exceeds `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit)
    return Promise.reject(new BodyTooLargeError(`body of ${declared} bytes exceeds ${limit}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        reject(new BodyTooLargeError(`body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}
