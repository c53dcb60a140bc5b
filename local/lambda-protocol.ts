import type { SdkService } from '../functions/adapters/sdk-transport.js';
import type { LambdaFunction } from './lambda-runtime.js';
import type { WireRequest, WireResponse } from './sdk-transport.js';

// The messages between the pool (main thread) and a function's worker (local/lambda-worker.ts).

/** What a worker is started with (its `workerData`). */
export interface WorkerSetup {
  fn: LambdaFunction;
  /** The handler module, absolute. */
  file: string;
  /** This instance's log stream (one per instance, as on Lambda). */
  logStream: string;
  /** Whether to register the local SDK transport (requests answered by the main thread). */
  sdkTransport: boolean;
}

/** Main thread to worker. */
export type ToWorker =
  | { type: 'invoke'; id: number; payload: unknown; requestId: string; deadline: number }
  | {
      type: 'sdk-reply';
      id: number;
      response?: WireResponse;
      error?: WireError;
    };

/**
 * A failed SDK request as it crosses the thread: what the SDK's retry strategy reads of a transport
 * error (`code`, e.g. ECONNRESET, makes it a transient one) besides its name and message.
 */
export interface WireError {
  name: string;
  message: string;
  code?: string;
}

/** Worker to main thread. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; ok: true; result: unknown }
  | { type: 'result'; id: number; ok: false; errorType: string; errorMessage: string }
  | { type: 'sdk'; id: number; service: SdkService; request: WireRequest }
  /** Complete lines the instance wrote, in order, always before the result of the invocation that wrote them. */
  | { type: 'output'; stream: 'stdout' | 'stderr'; lines: string[] };
