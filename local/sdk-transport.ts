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
 * A smithy HttpHandler that hands the serialised request to `send` (the emulator in this process, or
 * the main thread's over a MessagePort) instead of opening a socket. It honours the client's
 * `requestTimeout` as `throwOnRequestTimeout` does, and the operation's abort signal.
 */
export class InProcessHttpHandler implements HttpHandler {
  constructor(
    private readonly service: SdkService,
    private readonly send: WireSender,
    private readonly requestTimeout = 0,
  ) {}

  async handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    const signal = options.abortSignal as AbortSignal | undefined;
    if (signal?.aborted) throw abortError();
    const wire: WireRequest = {
      method: request.method,
      path: request.path + queryString(request.query),
      headers: lowerCase(request.headers),
      body: request.body as string | Uint8Array | undefined,
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
 * there is nothing for a signature to protect; S3 keeps real signing (s3rver verifies it).
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

/** The local stack's transport: every request to `send`, signed with {@link localSigV4}. */
export function localSdkTransport(send: WireSender): SdkTransport {
  return {
    overrides(service: SdkService, hints: TransportHints): SdkClientOverrides {
      return {
        requestHandler: new InProcessHttpHandler(service, send, hints.requestTimeout),
        httpAuthSchemes: [localSigV4],
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
