import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseBatchArgs } from '../../cli/args.js';
import { findTarget, runBatch } from '../../cli/batch.js';
import { writeBatchCsv } from '../lib/data.js';
import { sampleRss, startStack } from '../lib/stack.js';
import { round } from '../lib/stats.js';

/** One batch file scored end to end on a fresh local stack. */
export interface BatchRun {
  rows: number;
  fileMB: number;
  /** Upload start to the job seen finished by the CLI (it polls every 250 ms). */
  seconds: number;
  rowsPerSec: number;
  /** The job's own startedAt..finishedAt (after the upload, without the CLI's polling). */
  jobSeconds: number;
  status: string;
  rowsOk: number;
  rowsFailed: number;
  /** The stack process: resident memory when idle, and its peak (VmHWM) after the job. */
  idleRssMB: number;
  peakRssMB: number;
}

/**
 * Writes a CSV of `rows` rows, starts a fresh local stack (its own process and data folder, so its
 * peak memory is this job's), and scores the file through the CLI's upload path (cli/batch.ts:
 * multipart upload to the stack's S3, the upload event starts the batch state machine, the CLI
 * follows `GET /v1/jobs/{jobId}` until the job ends).
 */
export async function measureBatch(options: {
  rows: number;
  workDir: string;
  timeoutSec: number;
  /** V8's old-space limit for the stack (MB): a job that completes under it needs no more live memory. */
  maxOldSpaceMB?: number;
  /** Another checkout to run the stack from (A/B comparisons); default this one. */
  root?: string;
  /** Extra environment for the stack (e.g. FANOUT_LOCAL_CONCURRENCY). */
  env?: NodeJS.ProcessEnv;
  /** Extra node flags for the stack (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Called with the stack's pid just before the upload starts and once the job is seen finished. */
  around?: { before(pid: number): void; after(pid: number): void };
}): Promise<BatchRun> {
  const dir = join(options.workDir, `batch-${options.rows}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${options.rows}.csv`);
  await writeBatchCsv(file, options.rows);
  const stack = await startStack({
    dataDir: join(dir, 'data'),
    logLevel: 'WARN',
    nodeFlags: [
      ...(options.maxOldSpaceMB ? [`--max-old-space-size=${options.maxOldSpaceMB}`] : []),
      ...(options.nodeFlags ?? []),
    ],
    root: options.root,
    env: options.env,
  });
  try {
    // Let start-up garbage settle before reading the idle figure.
    await new Promise((r) => setTimeout(r, 500));
    const idle = stack.memory();
    const sampler = sampleRss(stack.pid, 100);
    const args = parseBatchArgs(
      ['batch', file, '--ensemble', 'breast-cancer', '--json', '--timeout', String(options.timeoutSec)],
      { PORT: String(stack.port) },
    );
    const quiet = { write: () => true, isTTY: false };
    const io = {
      fetch,
      stdout: () => undefined,
      stderr: quiet,
      sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    };
    const target = await findTarget(args, io);
    options.around?.before(stack.pid);
    const started = performance.now();
    const job = await runBatch(args, target, io);
    const seconds = (performance.now() - started) / 1000;
    options.around?.after(stack.pid);
    const sampled = sampler.stop();
    const peak = Math.max(stack.memory()?.peakMB ?? 0, sampled);
    target.s3.destroy();
    const jobSeconds =
      job.startedAt && job.finishedAt
        ? (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000
        : Number.NaN;
    if (job.status !== 'SUCCEEDED') {
      throw new Error(
        `batch job of ${options.rows} rows ended ${job.status} after ${round(seconds, 1)} s ` +
          `(${job.rowsOk} rows scored, job ${job.startedAt} to ${job.finishedAt}): ${job.error?.message}` +
          `\nthe local stack's last output:\n${stack.output().slice(-3000)}`,
      );
    }
    return {
      rows: options.rows,
      fileMB: round(statSync(file).size / 1e6, 2),
      seconds: round(seconds, 2),
      rowsPerSec: round(options.rows / seconds, 0),
      jobSeconds: round(jobSeconds, 2),
      status: job.status,
      rowsOk: job.rowsOk,
      rowsFailed: job.rowsFailed,
      idleRssMB: round(idle?.rssMB ?? Number.NaN, 1),
      peakRssMB: round(peak, 1),
    };
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
