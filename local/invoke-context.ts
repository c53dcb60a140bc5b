import { AsyncLocalStorage } from 'node:async_hooks';

// The keys the Lambda runtime's InvokeStore (@aws/lambda-invoke-store) protects, shared by symbol.
const REQUEST_ID = Symbol.for('_AWS_LAMBDA_REQUEST_ID');
const PROTECTED = new Set<symbol>(
  ['REQUEST_ID', 'X_RAY_TRACE_ID', 'TENANT_ID', 'TRACEPARENT', 'TRACESTATE', 'BAGGAGE'].map((k) =>
    Symbol.for(`_AWS_LAMBDA_${k}`),
  ),
);

type Context = Record<string | symbol, unknown>;

/**
 * The `globalThis.awslambda.InvokeStore` of a Lambda execution environment that runs several
 * invocations at once (Lambda Managed Instances), which Powertools uses when
 * AWS_LAMBDA_MAX_CONCURRENCY is set: each invocation's logger context (request id, cold start,
 * temporary keys) lives in its own AsyncLocalStorage store instead of on the shared logger.
 * Same interface as the runtime's InvokeStoreMulti.
 */
class ConcurrentInvokeStore {
  private readonly als = new AsyncLocalStorage<Context>();

  getContext(): Context | undefined {
    return this.als.getStore();
  }
  hasContext(): boolean {
    return this.als.getStore() !== undefined;
  }
  get<T = unknown>(key: string | symbol): T | undefined {
    return this.als.getStore()?.[key] as T | undefined;
  }
  set<T = unknown>(key: string | symbol, value: T): void {
    if (typeof key === 'symbol' && PROTECTED.has(key)) {
      throw new Error(`Cannot modify protected Lambda context field: ${String(key)}`);
    }
    const store = this.als.getStore();
    if (!store) throw new Error('No context available');
    store[key] = value;
  }
  run<T>(context: Context, fn: () => T): T {
    return this.als.run(context, fn);
  }
  getRequestId(): string {
    return (this.get<string>(REQUEST_ID) as string | undefined) ?? '-';
  }
  getXRayTraceId(): string | undefined {
    return this.get(Symbol.for('_AWS_LAMBDA_X_RAY_TRACE_ID'));
  }
  getTenantId(): string | undefined {
    return this.get(Symbol.for('_AWS_LAMBDA_TENANT_ID'));
  }
  getTraceparent(): string | undefined {
    return this.get(Symbol.for('_AWS_LAMBDA_TRACEPARENT'));
  }
  getTracestate(): string | undefined {
    return this.get(Symbol.for('_AWS_LAMBDA_TRACESTATE'));
  }
  getBaggage(): string | undefined {
    return this.get(Symbol.for('_AWS_LAMBDA_BAGGAGE'));
  }
}

const holder = globalThis as unknown as { awslambda?: { InvokeStore?: unknown } };

/**
 * Installs a per-invocation InvokeStore in this thread (once) and returns it. The AWS SDK may have
 * created a single-context one already (its recursion-detection middleware does on the first
 * call); that one would let concurrent invocations overwrite each other's context, so it is replaced.
 */
export function concurrentInvokeStore(): ConcurrentInvokeStore {
  holder.awslambda ??= {};
  if (!(holder.awslambda.InvokeStore instanceof ConcurrentInvokeStore)) {
    holder.awslambda.InvokeStore = new ConcurrentInvokeStore();
  }
  return holder.awslambda.InvokeStore as ConcurrentInvokeStore;
}

/** Runs `fn` as invocation `requestId`: Powertools scopes what it keeps per invocation to it. */
export function inInvocation<T>(requestId: string, fn: () => T): T {
  return concurrentInvokeStore().run({ [REQUEST_ID]: requestId }, fn);
}
