import { randomBytes, randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import type { FunctionConfig } from './serverless-config.js';

// What the dispatcher (main thread) and a function's worker (its Lambda instance) share.

/** A Lambda handler as the local stack calls it: the event and a Lambda context. */
export type LambdaHandler = (event: unknown, context: Context) => unknown;

/** The fields of a function the dispatcher needs (a subset of serverless-config's FunctionConfig). */
export type LambdaFunction = Pick<
  FunctionConfig,
  'key' | 'name' | 'logicalId' | 'arn' | 'handlerModule' | 'handlerExport' | 'timeoutSeconds' | 'memoryMB'
>;

/**
 * A failed invocation, shaped as AWS reports it to Step Functions: `name` is the Lambda errorType
 * and `message` is Lambda's JSON error document, which becomes the Catch's `Cause` unchanged
 * (aws-local-stepfunctions yields `{Error: err.name, Cause: err.message}`). The trace is always
 * empty: a stack trace must never reach a state's output or a client.
 */
export class LambdaInvocationError extends Error {
  readonly errorType: string;
  readonly errorMessage: string;

  constructor(errorType: string, errorMessage: string) {
    super(JSON.stringify({ errorType, errorMessage, trace: [] }));
    this.name = errorType;
    this.errorType = errorType;
    this.errorMessage = errorMessage;
    // The stack would only show the dispatcher; keeping it out means no accidental leak either.
    this.stack = `${errorType}: ${errorMessage}`;
  }
}

/** Lambda's error for an invocation that ran past the function's timeout. */
export function timedOutError(fn: LambdaFunction, requestId: string): LambdaInvocationError {
  return new LambdaInvocationError(
    'Sandbox.Timedout',
    `RequestId: ${requestId} Error: Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`,
  );
}

/** The function's handler from its imported module, or an error naming what is missing. */
export function handlerFrom(mod: Record<string, unknown>, fn: LambdaFunction): LambdaHandler {
  const handler = mod[fn.handlerExport];
  if (typeof handler !== 'function') {
    throw new Error(`${fn.key}: ${fn.handlerModule} does not export a function "${fn.handlerExport}"`);
  }
  return handler as LambdaHandler;
}

/** Converts anything a handler threw into AWS's error shape (see {@link LambdaInvocationError}). */
export function toLambdaError(err: unknown): LambdaInvocationError {
  if (err instanceof LambdaInvocationError) return err;
  if (err instanceof Error) return new LambdaInvocationError(err.name || 'Error', err.message);
  return new LambdaInvocationError(
    'Error',
    typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err)),
  );
}

/**
 * A Lambda context with a real deadline. middy 7 arms its early-timeout timer from
 * `getRemainingTimeInMillis` (5 ms before the deadline), so this must return the true remaining
 * time, never 0 or a constant: a fake value would make middy abort every call at once.
 */
export function lambdaContext(
  fn: LambdaFunction,
  deadline: number,
  logStreamName = newLogStream(),
  awsRequestId: string = randomUUID(),
): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.name,
    functionVersion: '$LATEST',
    invokedFunctionArn: fn.arn,
    memoryLimitInMB: String(fn.memoryMB),
    awsRequestId,
    logGroupName: `/aws/lambda/${fn.name}`,
    logStreamName,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported('done'),
    fail: unsupported('fail'),
    succeed: unsupported('succeed'),
  };
}

const unsupported = (what: string) => () => {
  throw new Error(`context.${what}() is not supported by the local stack: return or throw instead`);
};

/** A log stream name shaped like Lambda's: `2026/01/31/[$LATEST]<32 hex>`. */
export function newLogStream(): string {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
  return `${day}/[$LATEST]${randomBytes(16).toString('hex')}`;
}

/**
 * Lambda hands Step Functions and API Gateway a JSON copy of the result. Handlers here return
 * plain JSON almost always, so only other values (dates, class instances, undefined fields, NaN)
 * pay for a JSON round trip that turns them into what AWS would deliver.
 */
export function jsonBoundary(result: unknown): unknown {
  if (result === undefined) return null;
  return isPlainJson(result, 0) ? result : JSON.parse(JSON.stringify(result));
}

function isPlainJson(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth > 100) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isPlainJson(item, depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  return true;
}
