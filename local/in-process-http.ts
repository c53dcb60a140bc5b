import { EventEmitter } from 'node:events';
import type { IncomingMessage, OutgoingHttpHeaders, RequestListener, ServerResponse } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import type { LocalRequest, StreamedResponse, WireResponse } from './sdk-transport.js';

/** Answers a serialised request without a socket. */
export type LocalEndpoint = (request: LocalRequest) => Promise<WireResponse | StreamedResponse>;

/**
 * Calls a Node HTTP server's request listener with an in-memory request and response, so an
 * emulator's own request handling (routing, header checks, validation, error shapes) answers
 * without a socket, HTTP parsing or a second event-loop turn for the network. The listener sees
 * what a socket would have given it: method, URL, lower-case headers and the body as a stream.
 *
 * With `streaming`, the answer resolves as soon as its headers are sent and its body is a stream
 * the listener writes into with backpressure (an S3 object is never held whole); without, the body
 * is collected first (plain data, which a worker thread's request can be answered with).
 */
export function requestListenerEndpoint(
  listener: RequestListener,
  options: { streaming?: boolean } = {},
): LocalEndpoint {
  return (request) =>
    new Promise<WireResponse | StreamedResponse>((resolve, reject) => {
      const req = new MemoryRequest(request);
      const res = new MemoryResponse(resolve, reject, options.streaming ?? false);
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

  private readonly source?: Readable;

  constructor(request: LocalRequest) {
    super();
    this.method = request.method;
    this.url = request.path;
    this.headers = { ...request.headers };
    if (request.body instanceof Readable) {
      // Read as the listener reads: a paused source holds the rest of the upload, not this stream.
      const source = request.body;
      this.source = source;
      source.on('data', (chunk: Buffer) => {
        if (!this.push(chunk)) source.pause();
      });
      source.once('end', () => this.push(null));
      source.once('error', (err) => this.destroy(err));
      source.pause();
      return;
    }
    const body =
      request.body === undefined
        ? undefined
        : typeof request.body === 'string'
          ? Buffer.from(request.body)
          : Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
    if (body && this.headers['content-length'] === undefined)
      this.headers['content-length'] = String(body.length);
    if (body?.length) this.push(body);
    this.push(null);
  }

  override _read(): void {
    this.source?.resume();
  }
}

/**
 * What a streamed answer's listener sees as its connection: it closes when the reader of the body
 * gives up early, so the emulator stops writing (Koa, under s3rver, then closes the object's file).
 */
class MemorySocket extends EventEmitter {
  writable = true;
  readonly remoteAddress = '127.0.0.1';

  close(): void {
    if (!this.writable) return;
    this.writable = false;
    this.emit('close');
  }
}

/**
 * The parts of ServerResponse the local emulators use: the answer collected in memory, or (when
 * streaming) handed over at its first byte with its body as a stream.
 */
class MemoryResponse extends EventEmitter {
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  writableEnded = false;
  finished = false;
  readonly socket?: MemorySocket;
  private readonly headers = new Map<string, string>();
  private readonly chunks: Buffer[] = [];
  private readonly out?: PassThrough;
  private started = false;

  constructor(
    private readonly done: (response: WireResponse | StreamedResponse) => void,
    private readonly failed: (err: Error) => void,
    streaming: boolean,
  ) {
    super();
    if (!streaming) return;
    const out = new PassThrough();
    const socket = new MemorySocket();
    this.out = out;
    this.socket = socket;
    out.on('drain', () => this.emit('drain'));
    out.once('close', () => {
      // The reader gave up before the end: like a client hanging up.
      if (!this.writableEnded) {
        socket.close();
        this.emit('close');
      }
    });
  }

  /** Hands the answer over when its headers would go on the wire. */
  private start(out: PassThrough): void {
    if (this.started) return;
    this.started = true;
    this.headersSent = true;
    this.done({ statusCode: this.statusCode, headers: Object.fromEntries(this.headers), body: out });
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

  getHeaderNames(): string[] {
    return [...this.headers.keys()];
  }

  /** Sends the headers now: a streamed answer is handed over, with its body still to come. */
  flushHeaders(): void {
    this.headersSent = true;
    if (this.out) this.start(this.out);
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
    const buffer =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8')
        : Buffer.from(chunk);
    const callback = typeof encoding === 'function' ? encoding : cb;
    if (this.out) {
      this.start(this.out);
      if (this.out.destroyed) {
        callback?.();
        return false;
      }
      return this.out.write(buffer, () => callback?.());
    }
    this.chunks.push(buffer);
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
    if (this.out) {
      this.start(this.out);
      this.out.end();
    } else {
      const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      this.done({
        statusCode: this.statusCode,
        headers: Object.fromEntries(this.headers),
        body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
      });
    }
    this.emit('finish');
    this.emit('close');
    cb?.();
    return this;
  }

  /** What a server does to a connection it gives up on: the client sees the socket close. */
  destroy(err?: Error): this {
    if (!this.writableEnded) {
      this.writableEnded = true;
      const hangUp = Object.assign(new Error(`socket hang up${err ? `: ${err.message}` : ''}`), {
        code: 'ECONNRESET',
      });
      // Once the answer is handed over, its reader sees the cut in the body, as from a socket.
      if (this.started) this.out?.destroy(hangUp);
      else this.failed(hangUp);
      this.emit('close');
    }
    return this;
  }
}
