import { runChild } from '../lib/child.js';
import { PredictClient, sequentialLatencies } from '../lib/client.js';
import { BENCH_MANIFEST } from '../lib/data.js';
import { startStack, withStack } from '../lib/stack.js';
import { median, percentile, round } from '../lib/stats.js';
import type { RawResult } from './raw.js';

/** End-to-end latency of an ensemble of `members` heavy members, beside onnxruntime alone. */
export interface FanoutPoint {
  members: number;
  ensemble: string;
  /** Through the local stack at concurrency 1 (median of the runs' medians / 99th percentiles). */
  e2eP50Ms: number;
  e2eP99Ms: number;
  /**
   * One heavy member's own time inside the stack, in the same minutes as the e2e figures: the
   * runner's `latencyMs` (session.run and its tensor) in the answers of the one-member ensemble.
   * The machine's speed drifts, so this, not a separate process's figure, is the yardstick.
   */
  memberAloneMs: number;
  /** The same member alone in a separate process right after (onnxruntime only). */
  rawMemberAloneMs: number;
  /**
   * onnxruntime alone in a separate process, after the e2e runs: the members one after another;
   * with Promise.all; one worker thread each.
   */
  rawSequentialMs: number;
  rawPromiseAllMs: number;
  rawWorkersMs: number;
  /** (e2e with n members - e2e with 1) / (n - 1): what one more member costs. */
  perAddedMemberMs: number | null;
  /**
   * n x (one member alone) / (e2e - the fixed overhead, taken as e2e with 1 member - one member
   * alone): 1 = the members ran one after another, n = all n at once.
   */
  parallelism: number;
}

/**
 * Ensembles of 1, 2, 4 and 8 synthetic heavy members (bench/manifest.json), served by a local stack
 * started with FANOUT_MANIFEST=bench/manifest.json. Sizes interleave within each run so background
 * load falls on all of them alike.
 */
export async function measureFanout(options: {
  dataDir: string;
  rows: number[][];
  sizes: number[];
  warmup: number;
  runs: number;
  count: number;
  rawIterations: number;
}): Promise<{ members: FanoutPoint[] }> {
  const stack = await startStack({ dataDir: options.dataDir, manifest: BENCH_MANIFEST, logLevel: 'WARN' });
  const client = new PredictClient(stack.api);
  const perSize = new Map<number, { p50: number[]; p99: number[] }>(
    options.sizes.map((n) => [n, { p50: [], p99: [] }]),
  );
  const memberTimes: number[] = [];
  const readMember = (a: { body: string }) => {
    const ms = (JSON.parse(a.body) as { members?: { latencyMs?: number }[] }).members?.[0]?.latencyMs;
    if (typeof ms === 'number') memberTimes.push(ms);
  };
  try {
    await withStack(stack, async () => {
      for (const n of options.sizes)
        await sequentialLatencies(client, `heavy-x${n}`, options.rows, 0, options.warmup);
      for (let r = 0; r < options.runs; r++) {
        for (const n of options.sizes) {
          const lat = await sequentialLatencies(
            client,
            `heavy-x${n}`,
            options.rows,
            options.count,
            0,
            n === 1 ? readMember : undefined,
          );
          const s = perSize.get(n) as { p50: number[]; p99: number[] };
          s.p50.push(median(lat));
          s.p99.push(percentile(lat, 0.99));
        }
      }
    });
  } finally {
    client.close();
    await stack.stop();
  }
  const raws = await runChild<RawResult[]>('raw-many', {
    manifest: BENCH_MANIFEST,
    ensembles: options.sizes.map((n) => `heavy-x${n}`),
    rows: options.rows,
    iterations: options.rawIterations,
    workers: true,
  });
  const points: FanoutPoint[] = [];
  for (const [i, n] of options.sizes.entries()) {
    const raw = raws[i] as RawResult;
    const s = perSize.get(n) as { p50: number[]; p99: number[] };
    points.push({
      members: n,
      ensemble: `heavy-x${n}`,
      e2eP50Ms: round(median(s.p50)),
      e2eP99Ms: round(median(s.p99)),
      memberAloneMs: round(median(memberTimes)),
      rawMemberAloneMs: round(median(Object.values(raw.perMemberMs))),
      rawSequentialMs: round(raw.sequentialMs),
      rawPromiseAllMs: round(raw.promiseAllMs),
      rawWorkersMs: round(raw.workersMs ?? Number.NaN),
      perAddedMemberMs: null,
      parallelism: Number.NaN,
    });
  }
  const one = points.find((p) => p.members === 1);
  const fixed = one ? Math.max(0, one.e2eP50Ms - one.memberAloneMs) : 0;
  for (const p of points) {
    if (one && p.members > 1) p.perAddedMemberMs = round((p.e2eP50Ms - one.e2eP50Ms) / (p.members - 1));
    p.parallelism = round((p.memberAloneMs * p.members) / Math.max(1e-3, p.e2eP50Ms - fixed));
  }
  return { members: points };
}
