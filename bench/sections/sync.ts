import { PredictClient, sequentialLatencies } from '../lib/client.js';
import type { StackProcess } from '../lib/stack.js';
import { median, percentile, round } from '../lib/stats.js';

/** One-row requests at concurrency 1 through a running stack. */
export interface SyncLatency {
  e2eP50Ms: number;
  e2eP99Ms: number;
  /** Per run: median and 99th percentile. */
  runs: { p50Ms: number; p99Ms: number }[];
  requestsPerRun: number;
}

/**
 * `runs` runs of `count` one-row requests, one at a time, after `warmup` requests; the figure is
 * the median over the runs of each run's median (and of each run's 99th percentile).
 */
export async function measureSyncLatency(
  stack: StackProcess,
  options: { ensemble: string; rows: number[][]; warmup: number; runs: number; count: number },
): Promise<SyncLatency> {
  const client = new PredictClient(stack.api);
  try {
    await sequentialLatencies(client, options.ensemble, options.rows, 0, options.warmup);
    const runs: { p50Ms: number; p99Ms: number }[] = [];
    for (let r = 0; r < options.runs; r++) {
      const lat = await sequentialLatencies(client, options.ensemble, options.rows, options.count);
      runs.push({ p50Ms: round(median(lat), 3), p99Ms: round(percentile(lat, 0.99), 3) });
    }
    return {
      e2eP50Ms: round(median(runs.map((r) => r.p50Ms)), 3),
      e2eP99Ms: round(median(runs.map((r) => r.p99Ms)), 3),
      runs,
      requestsPerRun: options.count,
    };
  } finally {
    client.close();
  }
}
