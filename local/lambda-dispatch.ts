import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Context } from 'aws-lambda';
import type { FunctionConfig } from './serverless-config.js';

/** A Lambda handler as the local stack calls it: the event and a Lambda context. */
export type LambdaHandler = (event: unknown, context: Context) => unknown;

/** The fields of a function the dispatcher needs (a subset of serverless-config's FunctionConfig). */
export type LambdaFunction = Pick<
  FunctionConfig,
  'key' | 'name' | 'logicalId' | 'arn' | 'handlerModule' | 'handlerExport' | 'timeoutSeconds' | 'memoryMB'
>;

/** Options for {@link LambdaDispatcher}. */
export interface DispatcherOptions {
  /** Folder that handler module paths are relative to (the service folder). */
  root: string;
  /** Handlers to use instead of importing the module, by function key (tests inject fakes here). */
  handlers?: Record<string, LambdaHandler>;
}

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

/** Converts anything a handler threw into AWS's error shape (see {@link LambdaInvocationError}). */
export function toLambdaError(err: unknown): LambdaInvocationError {
  if (err instanceof LambdaInvocationError) return err;
  if (err instanceof Error) return new LambdaInvocationError(err.name || 'Error', err.message);
  return new LambdaInvocationError(
    'Error',
    typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err)),
  );
}

const EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

/**
 * Invokes serverless functions in-process, the way Lambda would: the handler module is imported
 * lazily once, each call gets a fresh Lambda context with a real deadline, the result crosses a
 * JSON boundary (as it does on AWS, so no shared references), and failures become AWS-shaped errors.
 */
export class LambdaDispatcher {
  private readonly byKey = new Map<string, LambdaFunction>();
  private readonly byRef = new Map<string, string>();
  private readonly loaded = new Map<string, Promise<LambdaHandler>>();
  /** One log stream per function, as one warm sandbox per function would have. */
  private readonly logStreams = new Map<string, string>();

  constructor(
    functions: readonly LambdaFunction[],
    private readonly options: DispatcherOptions,
  ) {
    for (const f of functions) {
      this.byKey.set(f.key, f);
      for (const ref of [f.key, f.name, f.logicalId, f.arn]) this.byRef.set(ref, f.key);
    }
  }

  /** The function keys this dispatcher can invoke. */
  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /**
   * Finds the function a state machine names: `{Fn::GetAtt: [RunnerLambdaFunction, Arn]}`,
   * `{Ref: RunnerLambdaFunction}`, a function ARN (qualifier allowed), a deployed name or a key.
   */
  resolve(ref: unknown): string | undefined {
    if (typeof ref === 'string') {
      const arn = /^arn:aws[\w-]*:lambda:[^:]*:[^:]*:function:([^:]+)(?::[^:]+)?$/.exec(ref);
      return this.byRef.get(arn ? (arn[1] as string) : ref);
    }
    if (ref !== null && typeof ref === 'object') {
      const o = ref as Record<string, unknown>;
      const getAtt = o['Fn::GetAtt'];
      if (Array.isArray(getAtt) && getAtt[1] === 'Arn' && typeof getAtt[0] === 'string') {
        return this.byRef.get(getAtt[0]);
      }
      if (typeof o.Ref === 'string') return this.byRef.get(o.Ref);
    }
    return undefined;
  }

  /**
   * Runs function `key` on `payload` and returns its JSON result. Throws a
   * {@link LambdaInvocationError} when the handler throws, times out or cannot be loaded.
   */
  async invoke(key: string, payload: unknown): Promise<unknown> {
    const fn = this.byKey.get(key);
    if (!fn)
      throw new LambdaInvocationError('Lambda.ResourceNotFoundException', `Function not found: ${key}`);
    let handler: LambdaHandler;
    try {
      handler = await this.handler(fn);
    } catch (err) {
      throw new LambdaInvocationError('Runtime.ImportModuleError', (err as Error).message);
    }
    const timeoutMs = fn.timeoutSeconds * 1000;
    const deadline = Date.now() + timeoutMs;
    let logStream = this.logStreams.get(fn.key);
    if (!logStream) {
      logStream = newLogStream();
      this.logStreams.set(fn.key, logStream);
    }
    const context = lambdaContext(fn, deadline, logStream);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LambdaInvocationError(
              'Sandbox.Timedout',
              `RequestId: ${context.awsRequestId} Error: Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`,
            ),
          ),
        timeoutMs,
      );
      // A watchdog, not work: it must not keep a finished process (or a test run) alive.
      timer.unref();
    });
    try {
      // Handlers are not cancelled on timeout, as on AWS the sandbox would be; the answer is just dropped.
      const result = await Promise.race([Promise.resolve().then(() => handler(payload, context)), timedOut]);
      return jsonBoundary(result);
    } catch (err) {
      throw toLambdaError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  private handler(fn: LambdaFunction): Promise<LambdaHandler> {
    let pending = this.loaded.get(fn.key);
    if (!pending) {
      pending = this.load(fn);
      // A failed import is not cached: the file may be being written right now.
      pending.catch(() => this.loaded.delete(fn.key));
      this.loaded.set(fn.key, pending);
    }
    return pending;
  }

  private async load(fn: LambdaFunction): Promise<LambdaHandler> {
    const injected = this.options.handlers?.[fn.key];
    if (injected) return injected;
    const base = resolve(this.options.root, fn.handlerModule);
    const file = EXTENSIONS.map((ext) => base + ext).find((f) => existsSync(f));
    if (!file) {
      throw new Error(
        `${fn.key}: handler module ${fn.handlerModule}(${EXTENSIONS.join('|')}) does not exist`,
      );
    }
    // An absolute path (not a file: URL) imports under both tsx and jest's ESM loader.
    const mod = (await import(file)) as Record<string, unknown>;
    const handler = mod[fn.handlerExport];
    if (typeof handler !== 'function') {
      throw new Error(`${fn.key}: ${fn.handlerModule} does not export a function "${fn.handlerExport}"`);
    }
    return handler as LambdaHandler;
  }
}

/**
 * A Lambda context with a real deadline. middy 7 arms its early-timeout timer from
 * `getRemainingTimeInMillis` (5 ms before the deadline), so this must return the true remaining
 * time, never 0 or a constant: a fake value would make middy abort every call at once.
 */
export function lambdaContext(fn: LambdaFunction, deadline: number, logStreamName = newLogStream()): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.name,
    functionVersion: '$LATEST',
    invokedFunctionArn: fn.arn,
    memoryLimitInMB: String(fn.memoryMB),
    awsRequestId: randomUUID(),
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
function newLogStream(): string {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
  return `${day}/[$LATEST]${randomBytes(16).toString('hex')}`;
}

/**
 * Lambda hands Step Functions and API Gateway a JSON copy of the result. Handlers here return
 * plain JSON almost always, so only other values (dates, class instances, undefined fields, NaN)
 * pay for a JSON round trip that turns them into what AWS would deliver.
 */
function jsonBoundary(result: unknown): unknown {
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
