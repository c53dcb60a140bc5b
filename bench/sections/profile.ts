import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PredictClient, sequentialLatencies } from '../lib/client.js';
import { MAIN_THREAD, stackCpuMs, startStack, threadCpu, threadCpuSince } from '../lib/stack.js';
import { round } from '../lib/stats.js';

/** Where the stack's CPU goes per request: the kernel's accounting per thread, and V8 profiles. */
export interface CpuProfileResult {
  requests: number;
  /** Wall time of the measured window and the part of it the stack's main thread was busy. */
  windowMs: number;
  busyShare: number;
  /** CPU per request of the whole process, every thread (user + system, from /proc). */
  cpuPerRequestMs: number;
  /** CPU per request of the main thread alone (from /proc). */
  mainThreadCpuPerRequestMs: number;
  /** Per thread, from /proc: the main thread, worker instances and V8's helpers, libuv's pool. */
  threads: { thread: string; msPerRequest: number }[];
  /**
   * Per component, summed over the JavaScript threads' V8 profiles (main thread and every worker
   * instance): busy ms per request and share, largest first. Samples are taken on a clock, so on a
   * busy machine a thread waiting for a core counts as busy: read the shares, and /proc's totals.
   */
  components: { name: string; msPerRequest: number; share: number }[];
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Components, matched on the file of the innermost frame that is not Node's own code: Node's
 * internals (HTTP parsing, sockets, streams) count for the package that called them, so an SDK
 * call's socket writes are the SDK's; a sample with no such frame is plain I/O.
 */
const COMPONENTS: [string, RegExp][] = [
  [
    'AWS SDK clients (@aws-sdk, @smithy)',
    /node_modules\/(@aws-sdk|@smithy|@aws-crypto|fast-xml-parser|bowser|tslib)\//,
  ],
  [
    'DynamoDB emulator (dynalite, LevelDB)',
    /node_modules\/(dynalite|classic-level|abstract-level|level-|levelup|leveldown|memdown|lazy|once|big\.js|buffer-crc32|lock)/,
  ],
  ['S3 emulator (s3rver)', /node_modules\/(s3rver|koa|@koa|xmlbuilder|fast-xml)/],
  [
    'Step Functions interpreter (aws-local-stepfunctions, jsonpath)',
    /node_modules\/(aws-local-stepfunctions|jsonpath-plus|p-limit|yocto-queue|asl-validator|ajv)/,
  ],
  ['Lambda middleware and logging (middy, powertools)', /node_modules\/(@middy|@aws-lambda-powertools)\//],
  ['ONNX inference (onnxruntime-node)', /node_modules\/onnxruntime-(node|common)\//],
  ['Schema validation (zod)', /node_modules\/zod\//],
  [
    'Local stack: HTTP API, Lambda dispatch and worker pool, SDK transport, endpoints (local/)',
    /\/local\/[^/]+\.(ts|mjs)/,
  ],
  ['Handlers and core (functions/)', /\/functions\/[^/]+\/[^/]+\.ts/],
  ['Other packages', /node_modules\//],
];

/** A profile's samples in a window, by component (µs). */
export interface Attributed {
  busyUs: number;
  windowUs: number;
  by: Map<string, number>;
}

/** Attributes a profile's samples inside [fromUs, toUs] (CLOCK_MONOTONIC, as process.hrtime) to components. */
export function attribute(profile: Profile, fromUs: number, toUs: number): Attributed {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const owner = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const known = owner.get(id);
    if (known) return known;
    const n = byId.get(id) as ProfileNode;
    const name = n.callFrame.functionName;
    let result: string;
    if (name === '(garbage collector)') result = 'Garbage collection';
    else if (name === '(idle)') result = 'idle';
    else if (name === '(program)') result = 'V8 and native code outside JavaScript';
    else {
      const url = n.callFrame.url;
      const match = url && !url.startsWith('node:') ? COMPONENTS.find(([, re]) => re.test(url)) : undefined;
      const up = parent.get(id);
      result = match
        ? match[0]
        : url && !url.startsWith('node:')
          ? 'Other code'
          : up !== undefined && byId.get(up)?.callFrame.functionName !== '(root)'
            ? ownerOf(up)
            : 'Node I/O: sockets, HTTP parsing, timers (no caller in the stack)';
    }
    owner.set(id, result);
    return result;
  };
  const by = new Map<string, number>();
  let t = profile.startTime;
  let busyUs = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) continue;
    first = Math.min(first, t);
    last = Math.max(last, t);
    const who = ownerOf(profile.samples[i] as number);
    if (who === 'idle') continue;
    busyUs += dt;
    by.set(who, (by.get(who) ?? 0) + dt);
  }
  return { busyUs, windowUs: Math.max(0, last - first), by };
}

/**
 * Runs the local stack with V8's sampling profiler (a sample every 1 ms, main thread and worker
 * instances alike), sends `count` one-row requests at concurrency 1 after a warm-up, reads every
 * thread's CPU time from /proc before and after, and attributes the JavaScript threads' samples
 * taken during those requests to components.
 */
export async function measureCpuProfile(options: {
  dataDir: string;
  ensemble: string;
  rows: number[][];
  warmup: number;
  count: number;
}): Promise<CpuProfileResult> {
  const dir = join(options.dataDir, 'profile');
  const stack = await startStack({
    dataDir: options.dataDir,
    logLevel: 'WARN',
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  });
  const client = new PredictClient(stack.api);
  let cpu: CpuWindow;
  try {
    await sequentialLatencies(client, options.ensemble, options.rows, 0, options.warmup);
    const window = openCpuWindow(stack.pid);
    await sequentialLatencies(client, options.ensemble, options.rows, options.count);
    cpu = window.close();
  } finally {
    client.close();
    await stack.stop();
  }
  // V8 writes each thread's profile as the thread ends: only now, after the stack has stopped.
  const { main, all: profiles } = profilesIn(dir, cpu.fromUs, cpu.toUs);
  const by = new Map<string, number>();
  let busyUs = 0;
  for (const p of profiles) {
    busyUs += p.busyUs;
    for (const [k, v] of p.by) by.set(k, (by.get(k) ?? 0) + v);
  }
  const perRequest = (us: number) => us / 1000 / options.count;
  const threads = cpu.threads.map((t) => ({
    thread: t.thread,
    msPerRequest: round(t.ms / options.count, 3),
  }));
  return {
    requests: options.count,
    windowMs: round(main.windowUs / 1000, 1),
    busyShare: round(main.busyUs / Math.max(1, main.windowUs), 3),
    cpuPerRequestMs: round(stackCpuMs(cpu.threads) / options.count, 3),
    mainThreadCpuPerRequestMs: round(cpu.mainMs / options.count, 3),
    threads,
    components: [...by]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({
        name,
        msPerRequest: round(perRequest(us), 3),
        share: round(us / busyUs, 3),
      })),
  };
}

/**
 * The V8 profiles a process wrote into `dir` (one per JavaScript thread, written as each ends),
 * attributed over [fromUs, toUs]: `main` is the main thread's, found by the thread id Node puts in
 * the file name (`CPU.<date>.<time>.<pid>.<thread id>.<n>.cpuprofile`, 0 for the main thread).
 * Threads with no sample in the window (tsx's loader thread) are left out of `all`.
 */
export function profilesIn(
  dir: string,
  fromUs: number,
  toUs: number,
): { main: Attributed; all: Attributed[] } {
  let main: Attributed | undefined;
  const all: Attributed[] = [];
  for (const f of readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'))) {
    const p = attribute(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile, fromUs, toUs);
    if (/^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f)) main = p;
    if (p.busyUs > 0) all.push(p);
  }
  if (!main) throw new Error(`no CPU profile of a main thread (thread id 0) in ${dir}`);
  if (main.busyUs === 0)
    throw new Error(`the main thread's CPU profile in ${dir} has no sample in the window`);
  return { main, all };
}

/** Now on the clock V8's profiles use (CLOCK_MONOTONIC, µs). */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/**
 * What a process's threads spent over a window (ms, from /proc; `mainMs` NaN if its main thread
 * spent nothing), and the window on the profiles' clock, to attribute them over the same span.
 */
export interface CpuWindow {
  threads: { thread: string; ms: number }[];
  mainMs: number;
  fromUs: number;
  toUs: number;
}

/**
 * Opens a CPU window on `pid`; `close` ends it. The clock is read inside the /proc readings, so the
 * profiles' window never takes in CPU time that /proc's leaves out.
 */
export function openCpuWindow(pid: number): { close(): CpuWindow } {
  const before = threadCpu(pid);
  const fromUs = monotonicUs();
  return {
    close() {
      const toUs = monotonicUs();
      const threads = threadCpuSince(pid, before, threadCpu(pid));
      const mainMs = threads.find((t) => t.thread === MAIN_THREAD)?.ms ?? Number.NaN;
      return { threads, mainMs, fromUs, toUs };
    },
  };
}
