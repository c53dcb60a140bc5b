import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stackCpuMs } from '../lib/stack.js';
import { round } from '../lib/stats.js';
import { measureBatch } from './batch.js';
import { type CpuWindow, openCpuWindow, profilesIn } from './profile.js';

/** Where a batch job's CPU goes, per row: the kernel's accounting per thread, and V8's profiles. */
export interface BatchProfileResult {
  rows: number;
  /** Of this run, which the profiler slows (its figures are the batch table's). */
  rowsPerSec: number;
  /** CPU per row over every thread of the stack (µs, from /proc). */
  cpuPerRowUs: number;
  /** CPU per row of the stack's main thread (µs, from /proc): the busiest thread of a batch job. */
  mainThreadCpuPerRowUs: number;
  /** The share of the job's wall time the main thread was busy (V8 samples). */
  mainThreadBusyShare: number;
  threads: { thread: string; usPerRow: number }[];
  /**
   * The main thread's CPU per row by component: its /proc time split by the shares of its V8
   * profile (a thread waiting for a core is sampled as busy, so the profile gives shares only).
   */
  mainThread: { name: string; usPerRow: number; share: number }[];
}

/**
 * One batch job through the CLI's upload path, as in the batch table, on a stack running with V8's
 * sampling profiler; CPU per thread is read from /proc when the upload starts and when the job is
 * seen finished, and the profiles are attributed over the same window.
 */
export async function measureBatchProfile(options: {
  rows: number;
  workDir: string;
}): Promise<BatchProfileResult> {
  const dir = join(options.workDir, 'batch-profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let window: ReturnType<typeof openCpuWindow> | undefined;
  let cpu: CpuWindow | undefined;
  const run = await measureBatch({
    rows: options.rows,
    workDir: options.workDir,
    timeoutSec: 900,
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    around: {
      before(pid) {
        window = openCpuWindow(pid);
      },
      after() {
        cpu = window?.close();
      },
    },
  });
  // measureBatch returns only after a job it has run between the two calls.
  const { threads, mainMs, fromUs, toUs } = cpu as CpuWindow;
  const { main } = profilesIn(dir, fromUs, toUs);
  rmSync(dir, { recursive: true, force: true });
  const perRow = (ms: number) => round((ms * 1000) / options.rows, 1);
  const busy = main.busyUs;
  return {
    rows: options.rows,
    rowsPerSec: run.rowsPerSec,
    cpuPerRowUs: perRow(stackCpuMs(threads)),
    mainThreadCpuPerRowUs: perRow(mainMs),
    mainThreadBusyShare: round(busy / Math.max(1, toUs - fromUs), 3),
    threads: threads.map((t) => ({ thread: t.thread, usPerRow: perRow(t.ms) })),
    mainThread: [...main.by]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({
        name,
        usPerRow: perRow((mainMs * us) / Math.max(1, busy)),
        share: round(us / busy, 3),
      })),
  };
}
