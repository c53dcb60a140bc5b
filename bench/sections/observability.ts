import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDynamo } from '../../local/dynamodb.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';
import { PredictClient } from '../lib/client.js';
import { ROOT } from '../lib/data.js';
import { cpuOfStat, NODE, startStack, withStack } from '../lib/stack.js';
import { median, percentile, round } from '../lib/stats.js';
import { measureLoad } from './throughput.js';

/** One side of the metrics comparison. */
export interface MetricsSide {
  e2eP50Ms: number;
  e2eP99Ms: number;
  /** The stack process's CPU time (user + system) per request over the concurrency-1 run. */
  cpuMsPerRequest: number;
  c16Rps: number;
  c16Errors: number;
}

/** One tracing mode, medians over the rounds (microseconds per invocation). */
export interface TracingSide {
  runnerUs: number;
  /** A handler making one DynamoDB call through the captured client. */
  sdkCallUs: number;
}

/** What metrics and tracing cost (bench/results.json `observability`). */
export interface ObservabilityCost {
  metrics: {
    on: MetricsSide;
    off: MetricsSide;
    /** p50(on) - p50(off) through `npm start` (EMF lines written, collected and served). */
    costP50Ms: number;
    /** CPU per request, on minus off: less sensitive to other load on the machine than latency. */
    costCpuMs: number;
    /**
     * c16 throughput, on against off, as the median over the pairs of back-to-back runs of
     * (on / off - 1), in %: pairs cancel the drift of the machine's load over the section.
     */
    c16ChangePct: number;
    /** Publishing the ensemble step's lines for a five-member prediction, in-process. */
    publishUsPerEnsembleStep: number;
    emfBytesPerEnsembleStep: number;
    /** The local stack's collector: one EMF line parsed into `/metrics` and the dashboard. */
    ingestUsPerLine: number;
  };
  tracing: {
    off: TracingSide;
    unsampled: TracingSide;
    sampled: TracingSide;
    /**
     * A synchronous prediction on Lambda, sampled: five runners and two functions with one SDK
     * call each (the API's StartSyncExecution, the ensemble's PutItem), tracing on minus off.
     */
    perRequestSampledMs: number;
    perRequestUnsampledMs: number;
    segmentsSent: number;
    rounds: number;
  };
  /** Set when this section was run on its own, apart from the rest of results.json. */
  measuredAt?: string;
  loadAverageAtStart?: number[];
  loadAverageAtEnd?: number[];
}

/**
 * Metrics: two `npm start` stacks side by side, one as shipped and one with
 * POWERTOOLS_METRICS_DISABLED=true; requests alternate between them at concurrency 1 (which goes
 * first alternates too), then short 16-client runs alternate. Tracing: it is off outside Lambda, so
 * it is measured in child processes given Lambda's environment (X-Ray SDK in Lambda mode, segments
 * sent over UDP to a local socket standing in for the daemon), sampled and not sampled, against a
 * child without it; the three run in turn, round after round, the order rotating.
 */
export async function measureObservability(options: {
  dataDir: string;
  ensemble: string;
  rows: number[][];
  warmup: number;
  count: number;
  loadSec: number;
  loadRuns: number;
  traceRounds: number;
  traceWarmup: number;
  traceCount: number;
}): Promise<ObservabilityCost> {
  const metrics = await compareMetrics(options);
  const tracing = await compareTracing(options);
  return { metrics: { ...metrics, ...tracing.publish }, tracing: tracing.tracing };
}

async function compareMetrics(options: Parameters<typeof measureObservability>[0]) {
  const on = await startStack({ dataDir: join(options.dataDir, 'metrics-on'), logLevel: 'WARN' });
  const off = await startStack({
    dataDir: join(options.dataDir, 'metrics-off'),
    logLevel: 'WARN',
    env: { POWERTOOLS_METRICS_DISABLED: 'true' },
  }).catch(async (err) => {
    await on.stop();
    throw err;
  });
  const clients = [new PredictClient(on.api), new PredictClient(off.api)] as const;
  try {
    return await withStack(on, async () => {
      const lat: [number[], number[]] = [[], []];
      const cpu: [number, number] = [0, 0];
      for (let i = 0; i < options.warmup + options.count; i++) {
        if (i === options.warmup) for (const k of [0, 1] as const) cpu[k] = cpuMs([on, off][k]?.pid);
        const row = options.rows[i % options.rows.length] as number[];
        for (const k of i % 2 ? [0, 1] : [1, 0]) {
          const a = await (clients[k] as PredictClient).predict(options.ensemble, row);
          if (a.status !== 200) throw new Error(`HTTP ${a.status}: ${a.body}`);
          if (i >= options.warmup) lat[k]?.push(a.ms);
        }
      }
      for (const k of [0, 1] as const) cpu[k] = (cpuMs([on, off][k]?.pid) - cpu[k]) / options.count;
      const load = (api: string) =>
        measureLoad({
          api,
          ensemble: options.ensemble,
          row: options.rows[0] as number[],
          connections: 16,
          durationSec: options.loadSec,
          warmupSec: 0,
          runs: 1,
        });
      const runs: [number[], number[]] = [[], []];
      const errors = [0, 0];
      for (let r = 0; r < options.loadRuns; r++) {
        for (const k of r % 2 ? [1, 0] : [0, 1]) {
          const out = await load((k === 0 ? on : off).api);
          runs[k as 0 | 1].push(out.rps);
          errors[k] = (errors[k] ?? 0) + out.errors;
        }
      }
      const side = (k: 0 | 1): MetricsSide => ({
        e2eP50Ms: round(median(lat[k]), 3),
        e2eP99Ms: round(percentile(lat[k], 0.99), 3),
        cpuMsPerRequest: round(cpu[k], 3),
        c16Rps: round(median(runs[k]), 1),
        c16Errors: errors[k] ?? 0,
      });
      return {
        on: side(0),
        off: side(1),
        costP50Ms: round(median(lat[0]) - median(lat[1]), 3),
        costCpuMs: round(cpu[0] - cpu[1], 3),
        c16ChangePct: round(median(runs[0].map((rps, i) => (rps / (runs[1][i] as number) - 1) * 100)), 1),
      };
    });
  } finally {
    for (const c of clients) c.close();
    await Promise.all([on.stop(), off.stop()]);
  }
}

interface ChildResult {
  tracing: boolean;
  runnerUs: number;
  readerUs: number;
  publishUs: number;
  emfBytesPerEnsembleStep: number;
  ingestUsPerLine: number;
}

async function compareTracing(options: Parameters<typeof measureObservability>[0]) {
  const config = loadServerlessConfig({ file: join(ROOT, 'serverless.yml') });
  const dynamo = await startDynamo({
    dataDir: join(options.dataDir, 'tracing'),
    region: config.region,
    tables: config.tables,
  });
  const daemon = createSocket('udp4');
  let segmentsSent = 0;
  daemon.on('message', (m) => {
    segmentsSent += m.toString().split('\n').length - 1;
  });
  await new Promise<void>((done) => daemon.bind(0, '127.0.0.1', () => done()));
  const lambda = (sampled: boolean): NodeJS.ProcessEnv => ({
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    LAMBDA_TASK_ROOT: ROOT,
    _HANDLER: 'functions/runner/handler.handler',
    _X_AMZN_TRACE_ID: `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=${sampled ? 1 : 0}`,
    AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}`,
  });
  const modes = { off: {}, unsampled: lambda(false), sampled: lambda(true) } as const;
  const results: Record<keyof typeof modes, ChildResult[]> = { off: [], unsampled: [], sampled: [] };
  try {
    const order = Object.keys(modes) as (keyof typeof modes)[];
    for (let r = 0; r < options.traceRounds; r++) {
      for (const mode of [...order.slice(r % 3), ...order.slice(0, r % 3)]) {
        results[mode].push(
          await runTracingChild({
            ...modes[mode],
            FANOUT_TABLE: config.tables[0]?.tableName ?? 'fanout-local',
            AWS_ENDPOINT_URL_DYNAMODB: dynamo.url,
            AWS_REGION: config.region,
            AWS_ACCESS_KEY_ID: 'bench',
            AWS_SECRET_ACCESS_KEY: 'bench',
            POWERTOOLS_LOG_LEVEL: 'WARN',
            BENCH_OPTIONS: JSON.stringify({
              row: options.rows[0],
              model: 'bc-logreg',
              warmup: options.traceWarmup,
              count: options.traceCount,
            }),
          }),
        );
      }
    }
  } finally {
    daemon.close();
    await dynamo.close();
  }
  for (const [mode, list] of Object.entries(results)) {
    const expected = mode !== 'off';
    if (list.some((r) => r.tracing !== expected))
      throw new Error(`tracing ${mode}: the child traced ${!expected}`);
  }
  const side = (list: ChildResult[]): TracingSide => ({
    runnerUs: round(median(list.map((r) => r.runnerUs)), 1),
    sdkCallUs: round(median(list.map((r) => r.readerUs)), 1),
  });
  const off = side(results.off);
  const perRequest = (s: TracingSide) =>
    round((5 * (s.runnerUs - off.runnerUs) + 2 * (s.sdkCallUs - off.sdkCallUs)) / 1000, 3);
  const all = Object.values(results).flat();
  return {
    tracing: {
      off,
      unsampled: side(results.unsampled),
      sampled: side(results.sampled),
      perRequestSampledMs: perRequest(side(results.sampled)),
      perRequestUnsampledMs: perRequest(side(results.unsampled)),
      segmentsSent,
      rounds: options.traceRounds,
    },
    publish: {
      publishUsPerEnsembleStep: round(median(all.map((r) => r.publishUs)), 1),
      emfBytesPerEnsembleStep: Math.round(median(all.map((r) => r.emfBytesPerEnsembleStep))),
      ingestUsPerLine: round(median(all.map((r) => r.ingestUsPerLine)), 1),
    },
  };
}

function runTracingChild(env: NodeJS.ProcessEnv): Promise<ChildResult> {
  return new Promise((done, fail) => {
    const child = spawn(NODE, ['--import', 'tsx', 'bench/sections/tracing-child.ts'], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let result: string | undefined;
    let tail = '';
    let pending = '';
    child.stdout.on('data', (c: Buffer) => {
      pending += c.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('BENCH_RESULT ')) result = l.slice('BENCH_RESULT '.length);
    });
    child.stderr.on('data', (c: Buffer) => {
      tail = (tail + c.toString()).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0 && result) done(JSON.parse(result) as ChildResult);
      else fail(new Error(`tracing child failed (exit ${code}): ${tail}`));
    });
  });
}

/** A process's CPU time so far (user + system), ms, from /proc; NaN where /proc is not there. */
function cpuMs(pid: number | undefined): number {
  try {
    return cpuOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).ms;
  } catch {
    return Number.NaN;
  }
}
