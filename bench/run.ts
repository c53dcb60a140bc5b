// `npm run bench` (and `npm run bench:smoke`): measures the service on this machine and writes
// bench/results.json and bench/RESULTS.md. See bench/README.md for what each figure means.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runChild } from './lib/child.js';
import { BENCH_MANIFEST, breastCancerRows, MODELS_MANIFEST, ROOT } from './lib/data.js';
import { startStack, withStack } from './lib/stack.js';
import { median, round } from './lib/stats.js';
import { type BenchResults, renderMarkdown } from './report.js';
import { type BatchRun, measureBatch } from './sections/batch.js';
import { type BatchProfileResult, measureBatchProfile } from './sections/batch-profile.js';
import type { BreakdownResult } from './sections/breakdown.js';
import { type CacheBench, measureCache } from './sections/cache.js';
import { measureColdStart, RUNNER_ZIP, runnerPackageSize } from './sections/cold-start.js';
import { measureFanout } from './sections/fanout.js';
import { measureLogCost } from './sections/logs.js';
import { measureObservability } from './sections/observability.js';
import { measureCpuProfile } from './sections/profile.js';
import type { RawResult } from './sections/raw.js';
import { measureSyncLatency } from './sections/sync.js';
import { measureLoad } from './sections/throughput.js';

/** How much of everything: the full run, and the tiny one CI runs to keep the benchmark working. */
const SIZES = {
  full: {
    sync: { warmup: 300, runs: 5, count: 400 },
    cache: { warmup: 30, runs: 5, count: 100 },
    info: { warmup: 100, count: 600, loadSec: 4, loadRuns: 3 },
    load: { warmupSec: 3, durationSec: 10, runs: 3 },
    raw: { iterations: 3000 },
    breakdown: { rounds: 1, calls: 300 },
    profile: { warmup: 300, count: 1500 },
    fanout: { warmup: 5, runs: 7, count: 20, rawIterations: 20 },
    batch: { rows: 100_000, runs: 3, smallRows: 20_000, smallRuns: 3, cappedHeapMB: 128, cappedSmall: true },
    coldStart: { runs: 5 },
    observability: {
      warmup: 100,
      count: 600,
      loadSec: 4,
      loadRuns: 4,
      traceRounds: 6,
      traceWarmup: 200,
      traceCount: 1000,
    },
    timeoutMin: 40,
  },
  smoke: {
    sync: { warmup: 10, runs: 2, count: 20 },
    cache: { warmup: 2, runs: 1, count: 5 },
    info: { warmup: 5, count: 10, loadSec: 1, loadRuns: 1 },
    load: { warmupSec: 0, durationSec: 1, runs: 1 },
    raw: { iterations: 20 },
    breakdown: { rounds: 1, calls: 5 },
    profile: { warmup: 10, count: 20 },
    fanout: { warmup: 1, runs: 1, count: 2, rawIterations: 1 },
    batch: { rows: 1000, runs: 1, smallRows: 500, smallRuns: 1, cappedHeapMB: 128, cappedSmall: false },
    coldStart: { runs: 1 },
    observability: {
      warmup: 5,
      count: 10,
      loadSec: 1,
      loadRuns: 2,
      traceRounds: 1,
      traceWarmup: 5,
      traceCount: 10,
    },
    timeoutMin: 5,
  },
};

const { values: flags } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    // Writes RESULTS.md again from the results.json in --out (after editing ANALYSIS.md), no measuring.
    render: { type: 'boolean', default: false },
  },
});
const smoke = flags.smoke ?? false;
const size = smoke ? SIZES.smoke : SIZES.full;
const outDir = resolve(flags.out ?? (smoke ? join(ROOT, 'bench/tmp/smoke') : join(ROOT, 'bench')));
const work = mkdtempSync(join(tmpdir(), 'fanout-bench-'));
const started = performance.now();
const ENSEMBLE = 'breast-cancer';
const LOG_LEVEL = 'WARN';

// Every loop below is bounded in count and time; this bounds the whole run as well.
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${size.timeoutMin} min; giving up`);
  rmSync(work, { recursive: true, force: true });
  process.exit(124);
}, size.timeoutMin * 60_000);
watchdog.unref();

const log = (line: string) =>
  console.error(`bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s: ${line}`);

async function main(): Promise<void> {
  const rows = breastCancerRows();
  const machine = {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    os: `${process.platform} ${release()}`,
    memoryMB: Math.round(totalmem() / 2 ** 20),
    freeMemoryMB: Math.round(freemem() / 2 ** 20),
    loadAverageAtStart: loadavg().map((l) => round(l)),
    loadAverageAtEnd: [] as number[],
    speedProbeMs: { start: Number.NaN, end: Number.NaN },
  };
  log(
    `${smoke ? 'smoke' : 'full'} run on ${machine.cores} x ${machine.cpuModel}, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}`,
  );

  // The machine's own speed, at the start and at the end: shared vCPUs drift (one heavy member
  // has taken 20 ms in one minute and 31 ms in the next on the same idle machine).
  const speedProbe = async () =>
    smoke
      ? Number.NaN
      : (
          await runChild<RawResult>('raw', {
            manifest: BENCH_MANIFEST,
            ensemble: 'heavy-x1',
            rows,
            iterations: 30,
          })
        ).slowestMemberMs;
  const speedAtStart = await speedProbe();

  log('raw onnxruntime limit (breast-cancer members, one row)');
  const raw = await runChild<RawResult>('raw', {
    manifest: MODELS_MANIFEST,
    ensemble: ENSEMBLE,
    rows,
    iterations: size.raw.iterations,
    workers: true,
  });

  log(`sync latency and throughput through the local stack (POWERTOOLS_LOG_LEVEL=${LOG_LEVEL})`);
  const stack = await startStack({ dataDir: join(work, 'sync'), logLevel: LOG_LEVEL });
  let sync: Awaited<ReturnType<typeof measureSyncLatency>>;
  let c16: Awaited<ReturnType<typeof measureLoad>>;
  let c64: Awaited<ReturnType<typeof measureLoad>>;
  let cache: CacheBench;
  try {
    const warm = stack;
    sync = await withStack(warm, () => measureSyncLatency(warm, { ensemble: ENSEMBLE, rows, ...size.sync }));
    log(`  c1 p50 ${sync.e2eP50Ms} ms p99 ${sync.e2eP99Ms} ms; load at 16 connections`);
    const load = { api: stack.api, ensemble: ENSEMBLE, row: rows[0] as number[], ...size.load };
    c16 = await withStack(warm, () => measureLoad({ ...load, connections: 16 }));
    log(`  c16 ${c16.rps} req/s p99 ${c16.p99Ms} ms errors ${c16.errors}; load at 64 connections`);
    c64 = await withStack(warm, () => measureLoad({ ...load, connections: 64 }));
    log(
      `  c64 ${c64.rps} req/s p99 ${c64.p99Ms} ms errors ${c64.errors}; result cache: miss, hit, memory hit, no cache`,
    );
    cache = await withStack(warm, () =>
      measureCache(warm, { manifest: MODELS_MANIFEST, rows, ...size.cache }),
    );
    log(
      `  ${cache.ensemble}: miss p50 ${cache.missP50Ms} ms, hit p50 ${cache.hitP50Ms} ms, memory hit p50 ${cache.memoryHitP50Ms} ms`,
    );
  } finally {
    await stack.stop();
  }

  log('what INFO logs cost: a WARN stack and an INFO stack side by side');
  const logs = await measureLogCost({ dataDir: join(work, 'logs'), ensemble: ENSEMBLE, rows, ...size.info });

  log('what metrics and tracing cost: metrics on and off side by side; tracing as on Lambda, in turn');
  const observability = await measureObservability({
    dataDir: join(work, 'observability'),
    ensemble: ENSEMBLE,
    rows,
    ...size.observability,
  });

  log('overhead breakdown (every layer timed in one process)');
  const breakdown = await runChild<BreakdownResult>(
    'breakdown',
    { dataDir: join(work, 'breakdown'), ensemble: ENSEMBLE, rows, ...size.breakdown },
    { POWERTOOLS_LOG_LEVEL: LOG_LEVEL },
  );

  log('CPU profile of the stack at concurrency 1');
  const profile = await measureCpuProfile({
    dataDir: join(work, 'profile'),
    ensemble: ENSEMBLE,
    rows,
    ...size.profile,
  });

  log('fan-out: 1, 2, 4 and 8 heavy members');
  const fanout = await measureFanout({
    dataDir: join(work, 'fanout'),
    rows,
    sizes: [1, 2, 4, 8],
    ...size.fanout,
  });

  log(
    `batch: ${size.batch.smallRuns} x ${size.batch.smallRows} rows, ${size.batch.runs} x ${size.batch.rows} rows, ` +
      `1 x ${size.batch.smallRows} and 1 x ${size.batch.rows} rows with a ${size.batch.cappedHeapMB} MB heap`,
  );
  const small: BatchRun[] = [];
  const big: BatchRun[] = [];
  const failures: string[] = [];
  // A failed job is recorded and the run goes on: the other figures are still worth having.
  const batchRun = async (rows: number, into: BatchRun[], maxOldSpaceMB?: number) => {
    try {
      const r = await measureBatch({ rows, workDir: work, timeoutSec: 900, maxOldSpaceMB });
      into.push(r);
      log(
        `  ${rows} rows${maxOldSpaceMB ? ` (heap ${maxOldSpaceMB} MB)` : ''}: ${r.rowsPerSec} rows/s, peak ${r.peakRssMB} MB`,
      );
    } catch (err) {
      failures.push((err as Error).message);
      log(`  FAILED: ${(err as Error).message}`);
    }
  };
  // Interleaved, so a slow patch of background load does not land on one size only.
  for (let i = 0; i < Math.max(size.batch.runs, size.batch.smallRuns); i++) {
    if (i < size.batch.smallRuns) await batchRun(size.batch.smallRows, small);
    if (i < size.batch.runs) await batchRun(size.batch.rows, big);
  }
  const capped: BatchRun[] = [];
  const cappedSmall: BatchRun[] = [];
  if (size.batch.cappedSmall) await batchRun(size.batch.smallRows, cappedSmall, size.batch.cappedHeapMB);
  await batchRun(size.batch.rows, capped, size.batch.cappedHeapMB);
  log(`CPU profile of a batch job of ${size.batch.smallRows} rows`);
  let batchProfile: BatchProfileResult | null = null;
  try {
    batchProfile = await measureBatchProfile({ rows: size.batch.smallRows, workDir: work });
  } catch (err) {
    failures.push(`profiled run: ${(err as Error).message}`);
    log(`  FAILED: ${(err as Error).message}`);
  }
  const rawBatch = await runChild<{ rowsPerSec: number; seconds: number }>('raw-batch', {
    manifest: MODELS_MANIFEST,
    ensemble: ENSEMBLE,
    rows,
    total: size.batch.rows,
    batchSize: 250,
  });

  log('cold start of the runner');
  const cold = await measureColdStart({ runs: size.coldStart.runs });
  const pkg = runnerPackageSize();

  machine.loadAverageAtEnd = loadavg().map((l) => round(l));
  machine.speedProbeMs = { start: round(speedAtStart, 2), end: round(await speedProbe(), 2) };
  const benchSeconds = round((performance.now() - started) / 1000, 0);
  const batchFigures = (rows: number, runs: BatchRun[]) => ({
    rows,
    rowsPerSec: round(median(runs.map((r) => r.rowsPerSec)), 0),
    peakRssMB: round(median(runs.map((r) => r.peakRssMB)), 1),
    idleRssMB: round(median(runs.map((r) => r.idleRssMB)), 1),
    seconds: round(median(runs.map((r) => r.seconds)), 2),
    jobRowsPerSec: round(median(runs.map((r) => r.rows / r.jobSeconds)), 0),
    runs,
  });
  const results: BenchResults = {
    $comment:
      'Written by `npm run bench` (bench/run.ts); milliseconds unless a field says otherwise. See bench/RESULTS.md.',
    date: new Date().toISOString(),
    smoke,
    benchSeconds,
    logLevel: LOG_LEVEL,
    machine,
    sync: {
      ensemble: ENSEMBLE,
      members: raw.members,
      e2eP50Ms: sync.e2eP50Ms,
      e2eP99Ms: sync.e2eP99Ms,
      rawLimitMs: raw.slowestMemberMs,
      sequentialMs: raw.sequentialMs,
      overheadMs: round(sync.e2eP50Ms - raw.slowestMemberMs, 3),
      rawPromiseAllMs: raw.promiseAllMs,
      rawWorkersMs: raw.workersMs,
      rawPerMemberMs: raw.perMemberMs,
      runs: sync.runs,
      requestsPerRun: sync.requestsPerRun,
      infoLogs: logs.info,
      warnLogsSideBySide: logs.warn,
    },
    throughput: { c16, c64 },
    cache,
    fanout: {
      ...fanout,
      // 8 heavy members against 1, same stack and minutes: 1 = perfectly parallel, 8 = serial.
      ratio8to1: ratioOf(fanout.members),
    },
    batch: {
      ...batchFigures(size.batch.rows, big),
      rawRowsPerSec: rawBatch.rowsPerSec,
      ratioToRaw: round(median(big.map((r) => r.rowsPerSec)) / rawBatch.rowsPerSec, 4),
      rawBatchSize: 250,
      smaller: batchFigures(size.batch.smallRows, small),
      cappedHeap: { maxOldSpaceMB: size.batch.cappedHeapMB, ...batchFigures(size.batch.rows, capped) },
      cappedHeapSmaller: {
        maxOldSpaceMB: size.batch.cappedHeapMB,
        ...batchFigures(size.batch.smallRows, cappedSmall),
      },
      profile: batchProfile,
      failures,
    },
    coldStartMs: cold.source.wallMs,
    coldStartPackagedMs: cold.packaged?.wallMs ?? null,
    coldStart: cold,
    runnerPackageMB: pkg?.unzippedMB ?? null,
    runnerPackage: pkg
      ? { ...pkg, file: '.serverless/runner.zip' }
      : {
          note: `${RUNNER_ZIP.slice(ROOT.length + 1)} not found: run \`npm run package\` before the benchmark`,
        },
    breakdown,
    cpuProfile: profile,
    observability,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(results));
  log(`done in ${benchSeconds} s: ${join(outDir, 'results.json')}, ${join(outDir, 'RESULTS.md')}`);
}

function ratioOf(points: { members: number; e2eP50Ms: number }[]): number | null {
  const one = points.find((p) => p.members === 1);
  const eight = points.find((p) => p.members === 8);
  return one && eight ? round(eight.e2eP50Ms / one.e2eP50Ms, 2) : null;
}

try {
  if (flags.render) {
    const results = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as BenchResults;
    writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(results));
    log(`rendered ${join(outDir, 'RESULTS.md')}`);
  } else await main();
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
// SDK keep-alive agents of the batch CLI and autocannon's timers may hold the loop open.
process.exit(process.exitCode ?? 0);
