import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './data.js';

/** Node 22 from the `node` devDependency (the system node may be older). */
export const NODE = resolve(ROOT, 'node_modules/.bin/node');

/** A local stack in its own process, started as `npm start` starts it. */
export interface StackProcess {
  pid: number;
  api: string;
  port: number;
  /** The last 64 KB of its output (for error messages). */
  output(): string;
  /** Peak resident memory so far (VmHWM) and current (VmRSS), in MB; undefined once it exited. */
  memory(): { rssMB: number; peakMB: number } | undefined;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Options for {@link startStack}. */
export interface StackOptions {
  dataDir: string;
  /** POWERTOOLS_LOG_LEVEL of the stack (WARN for the figures, INFO once to show what logs cost). */
  logLevel?: string;
  /** FANOUT_MANIFEST (default: serverless.yml's, models/manifest.json). */
  manifest?: string;
  /** Extra node flags (e.g. --cpu-prof, --max-old-space-size). */
  nodeFlags?: string[];
  /** The checkout to run (default this one): A/B comparisons of a change against this tree. */
  root?: string;
  /** Extra environment variables. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Spawns `node --import tsx local/main.ts` on free ports with its own data folder and resolves once
 * it prints `ready`. Its output is drained (a full pipe would stall it) and only the tail is kept.
 */
export function startStack(options: StackOptions): Promise<StackProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    FANOUT_DATA_DIR: options.dataDir,
    POWERTOOLS_LOG_LEVEL: options.logLevel ?? 'WARN',
    ...options.env,
  };
  if (options.manifest) env.FANOUT_MANIFEST = options.manifest;
  else delete env.FANOUT_MANIFEST;
  const child: ChildProcess = spawn(
    NODE,
    [...(options.nodeFlags ?? []), '--import', 'tsx', 'local/main.ts'],
    {
      cwd: options.root ?? ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((done) =>
    child.once('exit', (code) => {
      exitCode = code;
      done(code);
    }),
  );
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`local stack did not start within 90 s:\n${out}`));
    }, 90_000);
    let ready = false;
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.length > 65_536) out = out.slice(-65_536);
      if (ready) return;
      const api = /fanout local stack: API (http:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      if (api && out.includes('fanout local stack: ready')) {
        ready = true;
        clearTimeout(timer);
        const pid = child.pid as number;
        resolveStart({
          pid,
          api: api[1] as string,
          port: Number(api[2]),
          output: () => out,
          memory: () => (exitCode === undefined ? procMemory(pid) : undefined),
          stop: async () => {
            if (exitCode !== undefined) return exitCode;
            child.kill('SIGTERM');
            const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
            const code = await exited;
            clearTimeout(kill);
            return code;
          },
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`local stack exited with ${code} before it was ready:\n${out}`));
    });
  });
}

/** VmRSS and VmHWM (peak) of a process from /proc, in MB (undefined where /proc is not there). */
export function procMemory(pid: number): { rssMB: number; peakMB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMB: kb('VmRSS') / 1024, peakMB: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; answers the highest sample (MB). */
export function sampleRss(pid: number, everyMs = 100): { stop(): number } {
  let max = 0;
  const take = () => {
    const m = procMemory(pid);
    if (m) max = Math.max(max, m.rssMB);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return max;
    },
  };
}

/** Runs `fn` against a stack; a failure carries the stack's last output (why it stopped answering). */
export async function withStack<T>(stack: StackProcess, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\nthe local stack's last output:\n${stack.output().slice(-4000)}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * The CPU time (user + system, ms) and the name in a /proc `stat` line of a process or thread. The
 * name sits in parentheses and may itself hold spaces or ')': the fields start after the last one.
 */
export function cpuOfStat(stat: string): { name: string; ms: number } {
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime, fields 14 and 15 of the whole line, in clock ticks (USER_HZ: 100 on Linux).
  return { name, ms: ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 };
}

/** A thread's name and CPU time so far (user + system, ms). */
export interface ThreadCpu {
  name: string;
  ms: number;
}

/** Every thread of a process with its CPU time so far (Linux /proc; empty elsewhere). */
export function threadCpu(pid: number): Map<string, ThreadCpu> {
  const out = new Map<string, ThreadCpu>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.set(tid, cpuOfStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
    } catch {
      // The thread ended in between.
    }
  }
  return out;
}

/** The row {@link threadCpuSince} gives the process's own thread (its tid is the pid). */
export const MAIN_THREAD = 'main thread';

/** The row {@link threadCpuSince} gives V8's helper threads, together. */
export const V8_HELPERS = "V8's helper threads (garbage collection, compilation)";

/**
 * The row of V8's CPU profiler threads (one per JavaScript thread under --cpu-prof): the bench's
 * own measuring, not the stack's work, so totals leave it out.
 */
export const V8_PROFILER = "V8's CPU profiler (the bench's sampling, not in totals)";

/** CPU (ms) of the stack's own threads in a {@link threadCpuSince} split: all but the profiler's. */
export const stackCpuMs = (rows: readonly { thread: string; ms: number }[]): number =>
  rows.reduce((sum, r) => (r.thread === V8_PROFILER ? sum : sum + r.ms), 0);

/**
 * CPU (ms) each thread spent between two {@link threadCpu} readings: the main thread first, then
 * the local stack's worker instances one row each (they name their thread `lambda:<function>`),
 * busiest first, and rows of threads taken together: V8's own helpers for garbage collection and
 * compilation (the unnamed ones, "node" to Linux), V8's CPU profiler under --cpu-prof, and libuv's
 * pool.
 */
export function threadCpuSince(
  pid: number,
  before: Map<string, ThreadCpu>,
  after: Map<string, ThreadCpu>,
): { thread: string; ms: number }[] {
  const rows: { thread: string; ms: number }[] = [];
  let pool = 0;
  let helpers = 0;
  let profiler = 0;
  for (const [tid, t] of after) {
    const ms = t.ms - (before.get(tid)?.ms ?? 0);
    if (ms <= 0) continue;
    if (tid === String(pid)) rows.push({ thread: MAIN_THREAD, ms });
    else if (t.name.startsWith('libuv')) pool += ms;
    else if (t.name.startsWith('lambda:')) rows.push({ thread: `${t.name} instance (thread ${tid})`, ms });
    else if (t.name.startsWith('v8:Prof')) profiler += ms;
    else helpers += ms;
  }
  if (helpers > 0) rows.push({ thread: V8_HELPERS, ms: helpers });
  if (profiler > 0) rows.push({ thread: V8_PROFILER, ms: profiler });
  if (pool > 0) rows.push({ thread: 'libuv thread pool', ms: pool });
  return rows.sort((a, b) => (a.thread === MAIN_THREAD ? -1 : b.thread === MAIN_THREAD ? 1 : b.ms - a.ms));
}
