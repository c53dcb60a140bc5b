import type { HttpHandler } from '@smithy/protocol-http';
import type { HttpAuthScheme } from '@smithy/types';
import { ConfigError } from '../core/errors.js';

/** The services whose SDK clients a transport may carry. */
export type SdkService = 'dynamodb' | 'sfn' | 'sagemaker-runtime' | 's3';

/** What a client would ask of its default socket handler; a transport honours what applies. */
export interface TransportHints {
  /** Milliseconds before a request is given up with a `TimeoutError`, as `throwOnRequestTimeout` does. */
  requestTimeout?: number;
}

/** Client settings a transport contributes; they replace the SDK defaults of the same name. */
export interface SdkClientOverrides {
  requestHandler?: HttpHandler;
  httpAuthSchemes?: HttpAuthScheme[];
}

/**
 * Carries a service's requests somewhere other than a socket (the local stack hands them to its
 * emulators in the same process). The SDK's middleware, serialisation and parsing still run; only
 * the last step, sending the bytes, and optionally signing, are the transport's. A transport that
 * does not carry a service answers no overrides for it: that client keeps its socket and SigV4.
 */
export interface SdkTransport {
  overrides(service: SdkService, hints: TransportHints): SdkClientOverrides;
}

const transports = new Map<string, SdkTransport>();

/**
 * Makes a transport available under `name`, for clients built while `FANOUT_SDK_TRANSPORT=name`.
 * Returns how to take it away again.
 */
export function registerSdkTransport(name: string, transport: SdkTransport): () => void {
  transports.set(name, transport);
  return () => {
    if (transports.get(name) === transport) transports.delete(name);
  };
}

/**
 * The client settings for `service` under the configured transport: nothing (the SDK's own socket
 * handler and SigV4) when none is configured, as on AWS. A transport named in the configuration but
 * not registered in this process is a configuration error, never a silent fallback to sockets.
 */
export function sdkClientOverrides(
  transport: string | undefined,
  service: SdkService,
  hints: TransportHints = {},
): SdkClientOverrides {
  if (!transport) return {};
  const t = transports.get(transport);
  if (!t) {
    throw new ConfigError(
      `environment variable FANOUT_SDK_TRANSPORT: no SDK transport "${transport}" is registered in this process (it is set by the local stack for its own handlers)`,
    );
  }
  return t.overrides(service, hints);
}
