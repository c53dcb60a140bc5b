import type { Readable } from 'node:stream';
import { type HttpHandler, type HttpRequest, HttpResponse } from '@smithy/protocol-http';
import type { HttpAuthScheme, HttpHandlerOptions } from '@smithy/types';
import type {
  SdkClientOverrides,
  SdkService,
  SdkTransport,
  TransportHints,
} from '../functions/adapters/sdk-transport.js';

/** The name the local stack registers its transport under (the value of FANOUT_SDK_TRANSPORT). */
export const LOCAL_SDK_TRANSPORT = 'local-stack';

/** A serialised SDK request, as it would go on the wire (plain data: it crosses thread boundaries). */
export interface WireRequest {
  method: string;
  /** Path and query string. */
  path: string;
  /** Lower-case names, as Node's HTTP server presents them. */
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** An emulator's answer, as it would come off the wire. */
export interface WireResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** Delivers a request to the emulator serving `service` and resolves with its answer. */
export type WireSender = (service: SdkService, request: WireRequest) => Promise<WireResponse>;

/**
 * A request that stays in this thread: its body may be a stream (an S3 upload part), which is
 * read as the emulator reads it.
 */
export interface LocalRequest extends Omit<WireRequest, 'body'> {
  body?: string | Uint8Array | Readable;
}

/** An answer whose body is read as the emulator writes it (S3 objects, however large). */
export interface StreamedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Readable;
}

/** Delivers a request in this thread; an emulator that streams answers with a stream. */
export type LocalSender = (
  service: SdkService,
  request: LocalRequest,
) => Promise<WireResponse | StreamedResponse>;

/**
 * A smithy HttpHandler that hands the serialised request to `send` (the emulator in this process, or
 * the main thread's over a MessagePort) instead of opening a socket. It honours the client's
 * `requestTimeout` as `throwOnRequestTimeout` does, and the operation's abort signal.
 */
export class InProcessHttpHandler implements HttpHandler {
  constructor(
    private readonly service: SdkService,
    private readonly send: LocalSender,
    private readonly requestTimeout = 0,
  ) {}

  async handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    const signal = options.abortSignal as AbortSignal | undefined;
    if (signal?.aborted) throw abortError();
    const wire: LocalRequest = {
      method: request.method,
      path: request.path + queryString(request.query),
      headers: lowerCase(request.headers),
      body: request.body as LocalRequest['body'],
    };
    const timeoutMs = options.requestTimeout ?? this.requestTimeout;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stops: Promise<never>[] = [];
    if (timeoutMs > 0) {
      stops.push(
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                Object.assign(new Error(`request to ${this.service} timed out after ${timeoutMs} ms`), {
                  name: 'TimeoutError',
                }),
              ),
            timeoutMs,
          );
        }),
      );
    }
    if (signal) {
      stops.push(
        new Promise<never>((_, reject) => {
          onAbort = () => reject(abortError());
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      );
    }
    try {
      const answer = stops.length
        ? await Promise.race([this.send(this.service, wire), ...stops])
        : await this.send(this.service, wire);
      const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
      // A stream's errors after this point reach whoever reads the body, as a socket's would.
      return {
        response: new HttpResponse({ statusCode: answer.statusCode, headers: answer.headers, body }),
      };
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {}
}

/**
 * SigV4 for an emulator that checks only the Authorization header's form (dynalite) or nothing
 * (the local Step Functions and SageMaker endpoints): a well-formed header with the caller's key
 * id, region and service, without computing the signature. Requests never leave the process, so
 * there is nothing for a signature to protect.
 */
const localSigV4: HttpAuthScheme = {
  schemeId: 'aws.auth#sigv4',
  identityProvider: (config) => config.getIdentityProvider('aws.auth#sigv4'),
  signer: {
    async sign(request, identity, properties) {
      const now = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
      const keyId = (identity as { accessKeyId?: string }).accessKeyId ?? 'local';
      const region = String(properties.signingRegion ?? properties.region ?? 'us-east-1');
      const service = String(properties.signingName ?? properties.name ?? 'local');
      request.headers['x-amz-date'] = now;
      request.headers.authorization = `AWS4-HMAC-SHA256 Credential=${keyId}/${now.slice(0, 8)}/${region}/${service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=${UNSIGNED}`;
      return request;
    },
  },
};

const UNSIGNED = '0'.repeat(64);

/**
 * S3 requests in the process go unsigned: s3rver verifies any signature it is given (the key pair
 * of the stack, for outside clients) and takes a request without one as anonymous. No payload hash
 * either, which SigV4 over plain HTTP would compute for every part written.
 */
const anonymousS3: HttpAuthScheme = {
  schemeId: 'aws.auth#sigv4',
  identityProvider: (config) => config.getIdentityProvider('aws.auth#sigv4'),
  signer: { sign: async (request) => request },
};

/** Every service the local stack's emulators serve to handlers. */
export const LOCAL_SERVICES: readonly SdkService[] = ['dynamodb', 'sfn', 'sagemaker-runtime', 's3'];

/**
 * The local stack's transport: every request for the services it `carries` to `send`. The others
 * keep the SDK's socket and SigV4 (a worker instance's S3 calls: an object's body streamed across
 * threads would be buffered whole).
 */
export function localSdkTransport(
  send: LocalSender,
  carries: readonly SdkService[] = LOCAL_SERVICES,
): SdkTransport {
  return {
    overrides(service: SdkService, hints: TransportHints): SdkClientOverrides {
      if (!carries.includes(service)) return {};
      return {
        requestHandler: new InProcessHttpHandler(service, send, hints.requestTimeout),
        httpAuthSchemes: [service === 's3' ? anonymousS3 : localSigV4],
      };
    },
  };
}

function lowerCase(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

function queryString(query: HttpRequest['query']): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query ?? {})) {
    const k = encodeURIComponent(key);
    if (value === null || value === undefined) parts.push(k);
    else if (Array.isArray(value)) for (const v of value) parts.push(`${k}=${encodeURIComponent(v)}`);
    else parts.push(`${k}=${encodeURIComponent(value)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function abortError(): Error {
  return Object.assign(new Error('Request aborted'), { name: 'AbortError' });
}
