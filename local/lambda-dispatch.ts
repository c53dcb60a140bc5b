import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { inInvocation } from './invoke-context.js';
import { type FunctionStats, LambdaPool, type PoolOptions } from './lambda-pool.js';
import {
  handlerFrom,
  jsonBoundary,
  type LambdaFunction,
  type LambdaHandler,
  LambdaInvocationError,
  lambdaContext,
  newLogStream,
  timedOutError,
  toLambdaError,
} from './lambda-runtime.js';

export {
  type LambdaFunction,
  type LambdaHandler,
  LambdaInvocationError,
  lambdaContext,
  toLambdaError,
} from './lambda-runtime.js';

/** Where a function's handler runs: its own worker-thread instances, or this thread. */
export type Isolation = 'workers' | 'in-process';

/** Options for {@link LambdaDispatcher}. */
export interface DispatcherOptions {
  /** Folder that handler module paths are relative to (the service folder). */
  root: string;
  /**
   * Handlers to use instead of importing the module, by function key (tests inject fakes here).
   * They are functions of this thread, so they run in-process.
   */
  handlers?: Record<string, LambdaHandler>;
  /**
   * `workers` (default): handler modules run in a pool of worker threads, one invocation at a time
   * per instance, as on Lambda. `in-process`: imported into this thread and called directly (one
   * module instance shared by concurrent invocations; for profiling and the benchmark's breakdown).
   */
  isolation?: Isolation | ((functionKey: string) => Isolation);
  /** The worker pool's settings (concurrency, environment, SDK transport, output). */
  pool?: PoolOptions;
}

const EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

/**
 * Invokes serverless functions the way Lambda would: each handler module runs in its own instances
 * (worker threads, see local/lambda-pool.ts), each call gets a Lambda context with its own request
 * id and a real deadline, the result crosses a JSON boundary (as it does on AWS, so no shared
 * references), and failures become AWS-shaped errors.
 */
export class LambdaDispatcher {
  private readonly byKey = new Map<string, LambdaFunction>();
  private readonly byRef = new Map<string, string>();
  private readonly loaded = new Map<string, Promise<LambdaHandler>>();
  private readonly files = new Map<string, string>();
  /** In-process handlers: one log stream per function, as one warm sandbox would have. */
  private readonly logStreams = new Map<string, string>();
  private pool?: LambdaPool;
  /** In-process handler modules are imported one after another (see load). */
  private imports: Promise<unknown> = Promise.resolve();

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
    if (this.inWorkers(fn)) {
      let file: string;
      try {
        file = this.moduleFile(fn);
      } catch (err) {
        throw new LambdaInvocationError('Runtime.ImportModuleError', (err as Error).message);
      }
      return this.workers().invoke(fn, file, payload);
    }
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
      timer = setTimeout(() => reject(timedOutError(fn, context.awsRequestId)), timeoutMs);
      // A watchdog, not work: it must not keep a finished process (or a test run) alive.
      timer.unref();
    });
    try {
      // Handlers are not cancelled on timeout, as on AWS the sandbox would be; the answer is just dropped.
      // Concurrent invocations share this thread: each gets its own Lambda context in the InvokeStore.
      const result = await Promise.race([
        inInvocation(context.awsRequestId, () => Promise.resolve().then(() => handler(payload, context))),
        timedOut,
      ]);
      return jsonBoundary(result);
    } catch (err) {
      throw toLambdaError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Does each function's init ahead of its first invocation, so it does not pay the cold start:
   * starts up to `count` worker instances, or imports an in-process handler's module. A handler
   * that cannot load fails it, naming the function, whichever way the function runs.
   */
  async prewarm(keys: readonly string[], count = 1): Promise<void> {
    await Promise.all(
      keys.map(async (key) => {
        const fn = this.byKey.get(key);
        if (!fn) return;
        try {
          if (this.inWorkers(fn)) await this.workers().prewarm(fn, this.moduleFile(fn), count);
          else await this.handler(fn);
        } catch (err) {
          const why = err instanceof LambdaInvocationError ? err.errorMessage : (err as Error)?.message;
          throw new Error(
            `function ${key}: its handler ${fn.handlerModule}.${fn.handlerExport} cannot load: ${why}`,
          );
        }
      }),
    );
  }

  /** The worker pool's instances, busy instances and queued invocations, by function key. */
  stats(): Record<string, FunctionStats> {
    return this.pool?.stats() ?? {};
  }

  /** Terminates every instance (worker thread); invocations still queued fail. */
  async close(): Promise<void> {
    // The closed pool is kept (made if there was none): an in-process handler still running while
    // the stack stops may invoke afterwards, and must get the pool's refusal, not a fresh pool
    // whose worker threads nothing would terminate.
    await this.workers().close();
  }

  private inWorkers(fn: LambdaFunction): boolean {
    const isolation = this.options.isolation ?? 'workers';
    const mode = typeof isolation === 'function' ? isolation(fn.key) : isolation;
    return mode === 'workers' && !this.options.handlers?.[fn.key];
  }

  private workers(): LambdaPool {
    this.pool ??= new LambdaPool(this.options.pool);
    return this.pool;
  }

  /**
   * The handler module's file, found once per function (a stat per extension on every invocation
   * cost 2% of the stack's main thread); a missing one is looked for again next time.
   */
  private moduleFile(fn: LambdaFunction): string {
    const known = this.files.get(fn.key);
    if (known) return known;
    const base = resolve(this.options.root, fn.handlerModule);
    const file = EXTENSIONS.map((ext) => base + ext).find((f) => existsSync(f));
    if (!file) {
      throw new Error(
        `${fn.key}: handler module ${fn.handlerModule}(${EXTENSIONS.join('|')}) does not exist`,
      );
    }
    this.files.set(fn.key, file);
    return file;
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
    const file = this.moduleFile(fn);
    // An absolute path (not a file: URL) imports under both tsx and jest's ESM loader. One import at
    // a time: jest's ESM linker fails ("module not been linked") when two imports of modules that
    // share dependencies overlap, as prewarming several functions would make them.
    const imported = this.imports.then(() => import(file) as Promise<Record<string, unknown>>);
    this.imports = imported.catch(() => undefined);
    const mod = await imported;
    return handlerFrom(mod, fn);
  }
}
