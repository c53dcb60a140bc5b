// One Lambda instance of one function, in a worker thread: imports the handler module once (the
// init phase), then runs one invocation at a time for the pool (local/lambda-pool.ts), and carries
// the handler's SDK requests to the main thread's emulators over the worker's port.
import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { registerSdkTransport } from '../functions/adapters/sdk-transport.js';
import type { FromWorker, ToWorker, WireError, WorkerSetup } from './lambda-protocol.js';
import {
  handlerFrom,
  jsonBoundary,
  type LambdaFunction,
  type LambdaHandler,
  lambdaContext,
  toLambdaError,
} from './lambda-runtime.js';
import {
  LOCAL_SDK_TRANSPORT,
  LOCAL_SERVICES,
  localSdkTransport,
  type WireResponse,
} from './sdk-transport.js';

const port = parentPort;
if (!port) throw new Error('local/lambda-worker.ts runs as a worker thread of the local stack');
const setup = workerData as WorkerSetup;
const fn: LambdaFunction = setup.fn;
const post = (message: FromWorker) => port.postMessage(message);
const flushers: (() => void)[] = [];
const flushOutput = () => {
  for (const flush of flushers) flush();
};

captureOutput('stdout');
captureOutput('stderr');
nameThread(`lambda:${fn.key}`);

/**
 * Gives this thread its function's name in /proc, which `top -H`, `ps -L` and the bench's CPU
 * split show; otherwise every worker is "node", like V8's own helper threads. Linux only (the
 * kernel keeps 15 bytes); elsewhere the thread keeps its name.
 */
function nameThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // Not Linux, or /proc not mounted: the name is only a diagnostic.
  }
}

/**
 * The instance's stdout and stderr go to the pool as messages on the same port as the results, so
 * every line an invocation wrote reaches the stack (and its `onOutput`) before its result does.
 * A line is passed on once complete; a trailing partial line is flushed with the result.
 */
function captureOutput(name: 'stdout' | 'stderr'): void {
  const stream = process[name];
  let partial = '';
  const write = (chunk: string | Uint8Array, encoding?: unknown, cb?: unknown): boolean => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    if (lines.length) post({ type: 'output', stream: name, lines });
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') queueMicrotask(done as () => void);
    return true;
  };
  stream.write = write as typeof stream.write;
  flushers.push(() => {
    if (!partial) return;
    post({ type: 'output', stream: name, lines: [partial] });
    partial = '';
  });
}

const sdkCalls = new Map<number, { resolve: (r: WireResponse) => void; reject: (e: Error) => void }>();
let nextSdkCall = 0;
if (setup.sdkTransport) {
  registerSdkTransport(
    LOCAL_SDK_TRANSPORT,
    localSdkTransport(
      (service, request) =>
        new Promise<WireResponse>((resolve, reject) => {
          const { body } = request;
          if (body instanceof Readable) {
            reject(new Error(`${service}: a streamed request body cannot cross to the main thread`));
            return;
          }
          const id = ++nextSdkCall;
          sdkCalls.set(id, { resolve, reject });
          post({ type: 'sdk', id, service, request: { ...request, body } });
        }),
      // S3 keeps its socket here: an object streamed across threads would be held whole.
      LOCAL_SERVICES.filter((s) => s !== 's3'),
    ),
  );
}

/** The transport's error as the handler's SDK client would have seen it in the main thread. */
function fromWire(error: WireError | undefined): Error {
  const err = Object.assign(new Error(error?.message ?? 'SDK request failed'), {
    name: error?.name ?? 'Error',
  });
  return error?.code === undefined ? err : Object.assign(err, { code: error.code });
}

let handler: LambdaHandler | undefined;

port.on('message', (message: ToWorker) => {
  if (message.type === 'sdk-reply') {
    const call = sdkCalls.get(message.id);
    sdkCalls.delete(message.id);
    if (!call) return;
    if (message.response) call.resolve(message.response);
    else call.reject(fromWire(message.error));
    return;
  }
  if (message.type === 'invoke') void invoke(message);
});

async function invoke(message: Extract<ToWorker, { type: 'invoke' }>): Promise<void> {
  const context = lambdaContext(fn, message.deadline, setup.logStream, message.requestId);
  try {
    if (!handler) throw new Error(`${fn.key}: the handler is not loaded`);
    const result = jsonBoundary(await handler(message.payload, context));
    flushOutput();
    post({ type: 'result', id: message.id, ok: true, result });
  } catch (err) {
    const e = toLambdaError(err);
    flushOutput();
    post({ type: 'result', id: message.id, ok: false, errorType: e.errorType, errorMessage: e.errorMessage });
  }
}

try {
  const mod = (await import(pathToFileURL(setup.file).href)) as Record<string, unknown>;
  handler = handlerFrom(mod, fn);
  flushOutput();
  post({ type: 'ready' });
} catch (err) {
  flushOutput();
  post({ type: 'init-error', message: (err as Error)?.message ?? String(err) });
}
