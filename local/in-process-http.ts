import { EventEmitter } from 'node:events';
import type { IncomingMessage, OutgoingHttpHeaders, RequestListener, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { WireRequest, WireResponse } from './sdk-transport.js';

/** Answers a serialised request without a socket. */
export type LocalEndpoint = (request: WireRequest) => Promise<WireResponse>;

/**
 * Calls a Node HTTP server's request listener with an in-memory request and response, so an
 * emulator's own request handling (routing, header checks, validation, error shapes) answers
 * without a socket, HTTP parsing or a second event-loop turn for the network. The listener sees
 * what a socket would have given it: method, URL, lower-case headers and the body as a stream.
 */
export function requestListenerEndpoint(listener: RequestListener): LocalEndpoint {
  return (request) =>
    new Promise<WireResponse>((resolve, reject) => {
      const req = new MemoryRequest(request);
      const res = new MemoryResponse(resolve, reject);
      try {
        listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      } catch (err) {
        reject(err);
      }
    });
}

class MemoryRequest extends Readable {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly socket = { remoteAddress: '127.0.0.1', remotePort: 0, encrypted: false };

  constructor(request: WireRequest) {
    super();
    this.method = request.method;
    this.url = request.path;
    const body =
      request.body === undefined
        ? undefined
        : typeof request.body === 'string'
          ? Buffer.from(request.body)
          : Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
    this.headers = { ...request.headers };
    if (body && this.headers['content-length'] === undefined)
      this.headers['content-length'] = String(body.length);
    if (body?.length) this.push(body);
    this.push(null);
  }

  override _read(): void {}
}

/** The parts of ServerResponse the local emulators use, collecting the answer in memory. */
class MemoryResponse extends EventEmitter {
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  writableEnded = false;
  finished = false;
  private readonly headers = new Map<string, string>();
  private readonly chunks: Buffer[] = [];

  constructor(
    private readonly done: (response: WireResponse) => void,
    private readonly failed: (err: Error) => void,
  ) {
    super();
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    this.headers.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value));
    return this;
  }

  getHeader(name: string): string | undefined {
    return this.headers.get(name.toLowerCase());
  }

  getHeaders(): Record<string, string> {
    return Object.fromEntries(this.headers);
  }

  hasHeader(name: string): boolean {
    return this.headers.has(name.toLowerCase());
  }

  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase());
  }

  writeHead(
    status: number,
    reasonOrHeaders?: string | OutgoingHttpHeaders,
    maybeHeaders?: OutgoingHttpHeaders,
  ): this {
    this.statusCode = status;
    const headers = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
    if (typeof reasonOrHeaders === 'string') this.statusMessage = reasonOrHeaders;
    for (const [k, v] of Object.entries(headers ?? {})) {
      if (v !== undefined) this.setHeader(k, v as string | number | string[]);
    }
    this.headersSent = true;
    return this;
  }

  write(chunk: string | Uint8Array, encoding?: BufferEncoding | (() => void), cb?: () => void): boolean {
    this.headersSent = true;
    this.chunks.push(
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8')
        : Buffer.from(chunk),
    );
    const callback = typeof encoding === 'function' ? encoding : cb;
    callback?.();
    return true;
  }

  end(
    chunk?: string | Uint8Array | (() => void),
    encoding?: BufferEncoding | (() => void),
    cb?: () => void,
  ): this {
    if (this.writableEnded) return this;
    if (typeof chunk === 'function') cb = chunk;
    else if (chunk !== undefined && chunk !== null)
      this.write(chunk, typeof encoding === 'string' ? encoding : undefined);
    if (typeof encoding === 'function') cb = encoding;
    this.headersSent = true;
    this.writableEnded = this.finished = true;
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const headers = Object.fromEntries(this.headers);
    this.done({
      statusCode: this.statusCode,
      headers,
      body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    });
    this.emit('finish');
    this.emit('close');
    cb?.();
    return this;
  }

  /** What a server does to a connection it gives up on: the client sees the socket close. */
  destroy(err?: Error): this {
    if (!this.writableEnded) {
      this.writableEnded = true;
      this.failed(
        Object.assign(new Error(`socket hang up${err ? `: ${err.message}` : ''}`), { code: 'ECONNRESET' }),
      );
      this.emit('close');
    }
    return this;
  }
}
