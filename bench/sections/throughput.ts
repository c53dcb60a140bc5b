import autocannon from 'autocannon';
import { median, round } from '../lib/stats.js';

/** One load run's figures. */
export interface LoadRun {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors + timeouts + answers other than 2xx. */
  errors: number;
  requests: number;
}

/** The median over runs, with every run kept. */
export interface LoadResult extends LoadRun {
  connections: number;
  durationSec: number;
  runs: LoadRun[];
}

/**
 * Requests per second at `connections` concurrent keep-alive clients for `durationSec` (autocannon,
 * one-row predictions), after a warm-up; the median of `runs` runs.
 */
export async function measureLoad(options: {
  api: string;
  ensemble: string;
  row: readonly number[];
  connections: number;
  durationSec: number;
  warmupSec: number;
  runs: number;
}): Promise<LoadResult> {
  const once = async (duration: number): Promise<LoadRun> => {
    const r = await autocannon({
      url: `${options.api}/v1/ensembles/${options.ensemble}/predictions`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [options.row] }),
      connections: options.connections,
      duration,
      timeout: 30,
    });
    return {
      rps: round(r['2xx'] / r.duration, 1),
      p50Ms: r.latency.p50,
      p99Ms: r.latency.p99,
      errors: r.errors + r.timeouts + r.non2xx,
      requests: r['2xx'] + r.non2xx,
    };
  };
  if (options.warmupSec > 0) await once(options.warmupSec);
  const runs: LoadRun[] = [];
  for (let i = 0; i < options.runs; i++) runs.push(await once(options.durationSec));
  return {
    connections: options.connections,
    durationSec: options.durationSec,
    rps: round(median(runs.map((r) => r.rps)), 1),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    // Errors are summed, not a median: one failed request in any run counts.
    errors: runs.reduce((s, r) => s + r.errors, 0),
    requests: runs.reduce((s, r) => s + r.requests, 0),
    runs,
  };
}
