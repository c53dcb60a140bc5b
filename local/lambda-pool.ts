import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FromWorker, ToWorker, WireError, WorkerSetup } from './lambda-protocol.js';
import { type LambdaFunction, LambdaInvocationError, newLogStream, timedOutError } from './lambda-runtime.js';
import { parsePerFunction } from './per-function.js';
import type { WireResponse, WireSender } from './sdk-transport.js';

/** Where a line a handler wrote goes (by default, the stack's own stdout or stderr, unchanged). */
export type OutputSink = (line: string, stream: 'stdout' | 'stderr', functionKey: string) => void;

/** Options for {@link LambdaPool}. */
export interface PoolOptions {
  /** Instances a function may run at once (its concurrency limit); default {@link defaultConcurrency}. */
  concurrency?: (functionKey: string) => number;
  /** The environment an instance starts with, read when it starts (the stack's handler environment). */
  env?: () => Record<string, string | undefined>;
  /**
   * Answers the SDK requests of handlers (the local emulators, in this thread). Without it, the
   * instances register no SDK transport and their clients use sockets.
   */
  sdk?: WireSender;
  /** Every complete line an instance writes to stdout or stderr (e.g. to collect EMF metrics). */
  onOutput?: OutputSink;
}

/** Concurrency per function when nothing says otherwise: one instance per core. */
export function defaultConcurrency(): number {
  return availableParallelism();
}

/** What one instance (worker) is doing, for {@link LambdaPool.stats}. */
export interface FunctionStats {
  instances: number;
  busy: number;
  queued: number;
  /** Instances started since the pool was created (cold starts). */
  started: number;
}

interface Job {
  payload: unknown;
  requestId: string;
  resolve: (result: unknown) => void;
  reject: (err: LambdaInvocationError) => void;
}

// Workers load the TypeScript handlers with Node's own type stripping (see lambda-worker-boot.mjs):
// tsx registers its hooks on the main thread only, and jest's transform does not reach workers.
const WORKER = new URL('./lambda-worker-boot.mjs', import.meta.url);
const WORKER_FLAGS = ['--experimental-transform-types', '--disable-warning=ExperimentalWarning'];
/**
 * The stack's own flags that instances should share: profiling and source maps. (V8 flags such as
 * --max-semi-space-size are process-wide already, and a worker refuses them in its execArgv.)
 */
const INHERITED = /^--(cpu-prof|heap-prof|enable-source-maps)/;

function workerFlags(): string[] {
  const inherited: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    if (!INHERITED.test(flag)) continue;
    // `--cpu-prof-dir dir` as two arguments becomes one, as a worker's execArgv needs.
    const next = argv[i + 1];
    if (!flag.includes('=') && /-(dir|name|interval)$/.test(flag) && next !== undefined) {
      inherited.push(`${flag}=${next}`);
      i++;
    } else inherited.push(flag);
  }
  return [...WORKER_FLAGS, ...inherited];
}

/**
 * Runs handler modules in worker threads as Lambda runs instances: each instance (worker) takes
 * one invocation at a time and stays warm between them (module state, ONNX sessions and SDK
 * clients are created once per instance); a function gets a new instance only when all of its
 * instances are busy, up to its concurrency limit, and invocations beyond it wait in order. An
 * instance whose handler runs past the function's timeout is discarded (its thread terminated),
 * never reused while still busy, as Lambda discards the sandbox.
 */
export class LambdaPool {
  private readonly functions = new Map<string, FunctionPool>();
  private closed = false;

  constructor(private readonly options: PoolOptions = {}) {}

  /** Runs `payload` on an instance of `fn` (module `file`); rejects with a {@link LambdaInvocationError}. */
  invoke(fn: LambdaFunction, file: string, payload: unknown): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(
        new LambdaInvocationError('Lambda.ServiceException', 'the local stack has stopped'),
      );
    }
    return this.pool(fn, file).invoke(payload);
  }

  /**
   * Starts up to `count` instances of `fn` ahead of demand; resolves when they are ready, rejects
   * with `Runtime.ImportModuleError` when one failed its init (the others stay).
   */
  prewarm(fn: LambdaFunction, file: string, count: number): Promise<void> {
    // Instances started after close() would outlive the stack: nothing would terminate them.
    if (this.closed) return Promise.resolve();
    return this.pool(fn, file).prewarm(count);
  }

  /** Instances, busy ones and queued invocations, by function key. */
  stats(): Record<string, FunctionStats> {
    return Object.fromEntries([...this.functions].map(([k, p]) => [k, p.stats()]));
  }

  /** Terminates every instance; queued invocations fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.functions.values()].map((p) => p.close()));
    this.functions.clear();
  }

  /**
   * A function's instances, made on first use. `file` is read then only: the dispatcher finds a
   * function's module file once and keeps it, so it does not change under a pool.
   */
  private pool(fn: LambdaFunction, file: string): FunctionPool {
    let pool = this.functions.get(fn.key);
    if (!pool) {
      const limit = this.options.concurrency?.(fn.key) ?? defaultConcurrency();
      pool = new FunctionPool(fn, file, Math.max(1, limit), this.options);
      this.functions.set(fn.key, pool);
    }
    return pool;
  }
}

/** The instances of one function. */
class FunctionPool {
  private readonly instances = new Set<Instance>();
  private readonly idle: Instance[] = [];
  private readonly queue: Job[] = [];
  private started = 0;

  constructor(
    readonly fn: LambdaFunction,
    private readonly file: string,
    private readonly limit: number,
    private readonly options: PoolOptions,
  ) {}

  invoke(payload: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ payload, requestId: randomUUID(), resolve, reject });
      this.pump();
    });
  }

  async prewarm(count: number): Promise<void> {
    const starting: Promise<string | undefined>[] = [];
    while (this.instances.size < Math.min(count, this.limit)) starting.push(this.spawn().ready);
    const failed = (await Promise.all(starting)).find((why) => why !== undefined);
    if (failed !== undefined) throw new LambdaInvocationError('Runtime.ImportModuleError', failed);
  }

  stats(): FunctionStats {
    const all = [...this.instances];
    return {
      instances: all.length,
      busy: all.filter((i) => i.state === 'busy').length,
      queued: this.queue.length,
      started: this.started,
    };
  }

  async close(): Promise<void> {
    for (const job of this.queue.splice(0)) {
      job.reject(new LambdaInvocationError('Lambda.ServiceException', 'the local stack is stopping'));
    }
    await Promise.all([...this.instances].map((i) => i.discard('the local stack is stopping')));
  }

  /** Hands queued invocations to idle instances, and starts instances while all are busy. */
  private pump(): void {
    while (this.queue.length > 0) {
      const instance = this.idle.pop();
      if (!instance) break;
      instance.run(this.queue.shift() as Job);
    }
    let starting = 0;
    for (const i of this.instances) if (i.state === 'starting') starting++;
    while (this.queue.length > starting && this.instances.size < this.limit) {
      this.spawn();
      starting++;
    }
  }

  private spawn(): Instance {
    this.started++;
    const instance = new Instance(this.fn, this.file, this.options, {
      idle: (i) => {
        this.idle.push(i);
        this.pump();
      },
      gone: (i, initError) => {
        this.instances.delete(i);
        const at = this.idle.indexOf(i);
        if (at >= 0) this.idle.splice(at, 1);
        // The invocation that would have run on it fails as Lambda reports a failed init.
        if (initError !== undefined) {
          this.queue.shift()?.reject(new LambdaInvocationError('Runtime.ImportModuleError', initError));
        }
        this.pump();
      },
    });
    this.instances.add(instance);
    return instance;
  }
}

/** One Lambda instance: a worker thread with the handler module loaded. */
class Instance {
  state: 'starting' | 'idle' | 'busy' | 'gone' = 'starting';
  /**
   * Settles once the init is over: with why it failed (not naming the function: the caller knows
   * which it started), or undefined when the instance is ready.
   */
  readonly ready: Promise<string | undefined>;
  private readonly worker: Worker;
  private job?: Job;
  private timer?: NodeJS.Timeout;
  private nextId = 0;
  private settle: (failure?: string) => void = () => undefined;

  constructor(
    private readonly fn: LambdaFunction,
    file: string,
    private readonly options: PoolOptions,
    private readonly events: {
      idle: (i: Instance) => void;
      gone: (i: Instance, initError?: string) => void;
    },
  ) {
    const logStream = newLogStream();
    const setup: WorkerSetup = { fn, file, logStream, sdkTransport: Boolean(options.sdk) };
    this.worker = new Worker(WORKER, {
      workerData: setup,
      execArgv: workerFlags(),
      env: instanceEnv(fn, logStream, options.env?.() ?? process.env),
      // Lambda's memory setting bounds the instance; here it bounds the JavaScript heap.
      resourceLimits: { maxOldGenerationSizeMb: Math.max(64, fn.memoryMB) },
      name: `${fn.key} ${logStream.slice(-8)}`,
    });
    this.ready = new Promise<string | undefined>((resolve) => {
      this.settle = resolve;
    });
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (err) => this.crashed(`${err.name}: ${err.message}`));
    this.worker.on('exit', (code) => this.crashed(`exit code ${code}`));
  }

  run(job: Job): void {
    this.state = 'busy';
    this.job = job;
    this.worker.ref();
    const timeoutMs = this.fn.timeoutSeconds * 1000;
    this.timer = setTimeout(() => {
      const timedOut = timedOutError(this.fn, job.requestId);
      this.fail(timedOut.errorType, timedOut.errorMessage);
      // Lambda does not reuse a sandbox whose handler is still running: neither does the pool.
      void this.discard();
    }, timeoutMs);
    this.post({
      type: 'invoke',
      id: ++this.nextId,
      payload: job.payload,
      requestId: job.requestId,
      deadline: Date.now() + timeoutMs,
    });
  }

  /** Terminates the worker; the instance is gone for good. */
  async discard(reason?: string): Promise<void> {
    if (this.state === 'gone') return;
    if (reason) this.fail('Lambda.ServiceException', reason);
    // A prewarm waiting on this instance's init learns it will never be ready.
    if (this.state === 'starting') this.settle(reason ?? 'the instance was discarded while loading');
    this.state = 'gone';
    clearTimeout(this.timer);
    this.events.gone(this);
    await this.worker.terminate();
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        this.state = 'idle';
        this.worker.unref();
        this.settle();
        this.events.idle(this);
        return;
      case 'init-error':
        this.state = 'gone';
        this.settle(m.message);
        this.events.gone(this, m.message);
        void this.worker.terminate();
        return;
      case 'result': {
        if (m.id !== this.nextId || !this.job) return;
        const job = this.job;
        this.job = undefined;
        clearTimeout(this.timer);
        if (m.ok) job.resolve(m.result);
        else job.reject(new LambdaInvocationError(m.errorType, m.errorMessage));
        this.state = 'idle';
        this.worker.unref();
        this.events.idle(this);
        return;
      }
      case 'sdk':
        this.answerSdk(m.id, m);
        return;
      case 'output': {
        const sink = this.options.onOutput ?? defaultSink;
        for (const line of m.lines) sink(line, m.stream, this.fn.key);
        return;
      }
    }
  }

  private answerSdk(id: number, m: Extract<FromWorker, { type: 'sdk' }>): void {
    const sdk = this.options.sdk;
    if (!sdk) {
      this.post({ type: 'sdk-reply', id, error: { name: 'Error', message: 'no local SDK transport' } });
      return;
    }
    sdk(m.service, m.request).then(
      (response) => this.post({ type: 'sdk-reply', id, response: compact(response) }),
      (err: unknown) => this.post({ type: 'sdk-reply', id, error: wireError(err) }),
    );
  }

  private crashed(why: string): void {
    if (this.state === 'gone') return;
    const starting = this.state === 'starting';
    this.fail(
      'Runtime.ExitError',
      `RequestId: ${this.job?.requestId} Error: Runtime exited with error: ${why}`,
    );
    this.state = 'gone';
    clearTimeout(this.timer);
    const initError = starting ? `the instance exited while loading: ${why}` : undefined;
    this.settle(initError);
    // The invocation that waited for this instance learns which function's instance it was.
    this.events.gone(this, initError && `${this.fn.key}: ${initError}`);
    void this.worker.terminate();
  }

  private fail(errorType: string, message: string): void {
    const job = this.job;
    this.job = undefined;
    job?.reject(new LambdaInvocationError(errorType, message));
  }

  private post(message: ToWorker): void {
    if (this.state !== 'gone') this.worker.postMessage(message);
  }
}

/**
 * The stack's environment plus what the Lambda runtime sets for an instance. An on-demand
 * initialization type is what lets Powertools report `cold_start: true` on an instance's first
 * invocation; AWS_EXECUTION_ENV is left out on purpose (Tracer would then try to reach X-Ray).
 */
function instanceEnv(
  fn: LambdaFunction,
  logStream: string,
  base: Record<string, string | undefined>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  // One invocation at a time: an instance is not a multi-concurrency environment.
  delete env.AWS_LAMBDA_MAX_CONCURRENCY;
  return Object.assign(env, {
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMB),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: logStream,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
  });
}

/**
 * postMessage copies a typed array's whole backing ArrayBuffer, not just its view: a short reply
 * body made by Buffer.from(string) is a view into Node's shared 8 KiB pool, so each SDK reply would
 * copy 8 KiB. A body that is only part of its buffer is sent as a copy of its own bytes.
 */
function compact(response: WireResponse): WireResponse {
  const { body } = response;
  if (typeof body === 'string' || body.byteLength === body.buffer.byteLength) return response;
  // A new Uint8Array copies the bytes (Buffer's own slice() would be another view).
  return { ...response, body: new Uint8Array(body) };
}

function defaultSink(line: string, stream: 'stdout' | 'stderr'): void {
  (stream === 'stdout' ? process.stdout : process.stderr).write(`${line}\n`);
}

/**
 * Reads a concurrency setting (FANOUT_LOCAL_CONCURRENCY): comma-separated `N` (every function) and
 * `function=N` (one function, by its serverless.yml key), e.g. `4` or `runner=8,api=2` or
 * `2,runner=6`. Unset: {@link defaultConcurrency} for every function. Errors name the entry.
 */
export function parseConcurrency(
  spec: string | undefined,
  functionKeys: readonly string[],
  variable = 'FANOUT_LOCAL_CONCURRENCY',
): (functionKey: string) => number {
  const { all = defaultConcurrency(), each } = parsePerFunction(
    spec,
    functionKeys,
    variable,
    (raw, entry) => {
      const value = Number(raw);
      if (!Number.isInteger(value) || value < 1 || value > 256) {
        throw new Error(`${variable}: "${entry}" is not a concurrency (a whole number from 1 to 256)`);
      }
      return value;
    },
  );
  return (functionKey) => each.get(functionKey) ?? all;
}

/** An SDK transport's error in a form postMessage keeps (an Error's own `code` would be dropped). */
function wireError(err: unknown): WireError {
  const e = err as { name?: unknown; message?: unknown; code?: unknown } | undefined;
  const out: WireError = {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
  if (typeof e?.code === 'string') out.code = e.code;
  return out;
}
