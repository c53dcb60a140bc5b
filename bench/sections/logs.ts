import { PredictClient } from '../lib/client.js';
import { startStack, withStack } from '../lib/stack.js';
import { median, percentile, round } from '../lib/stats.js';
import { measureLoad } from './throughput.js';

/** What INFO logs cost: the same requests against a WARN stack and an INFO stack, side by side. */
export interface LogCost {
  info: { e2eP50Ms: number; e2eP99Ms: number; c16Rps: number; c16Errors: number };
  warn: { e2eP50Ms: number; e2eP99Ms: number; c16Rps: number; c16Errors: number };
}

/**
 * Two stacks run at once, one with POWERTOOLS_LOG_LEVEL=WARN and one with INFO (one JSON line per
 * request, per member and per stored prediction, read from its stdout pipe and discarded). At
 * concurrency 1 the requests alternate between them, so background load falls on both alike; the
 * 16-client load alternates short runs the same way.
 */
export async function measureLogCost(options: {
  dataDir: string;
  ensemble: string;
  rows: number[][];
  warmup: number;
  count: number;
  loadSec: number;
  loadRuns: number;
}): Promise<LogCost> {
  const warn = await startStack({ dataDir: `${options.dataDir}/warn`, logLevel: 'WARN' });
  const info = await startStack({ dataDir: `${options.dataDir}/info`, logLevel: 'INFO' }).catch(
    async (err) => {
      await warn.stop();
      throw err;
    },
  );
  const clients = [new PredictClient(warn.api), new PredictClient(info.api)] as const;
  try {
    return await withStack(info, async () => {
      const lat: [number[], number[]] = [[], []];
      for (let i = 0; i < options.warmup + options.count; i++) {
        const row = options.rows[i % options.rows.length] as number[];
        // Which goes first alternates too: the second of a pair follows the first's garbage.
        for (const k of i % 2 ? [0, 1] : [1, 0]) {
          const a = await (clients[k] as PredictClient).predict(options.ensemble, row);
          if (a.status !== 200) throw new Error(`HTTP ${a.status}: ${a.body}`);
          if (i >= options.warmup) lat[k]?.push(a.ms);
        }
      }
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
      await load(warn.api);
      await load(info.api);
      for (let r = 0; r < options.loadRuns; r++) {
        for (const [k, s] of [warn, info].entries()) {
          const out = await load(s.api);
          runs[k as 0 | 1].push(out.rps);
          errors[k] = (errors[k] ?? 0) + out.errors;
        }
      }
      const figures = (k: 0 | 1) => ({
        e2eP50Ms: round(median(lat[k]), 3),
        e2eP99Ms: round(percentile(lat[k], 0.99), 3),
        c16Rps: round(median(runs[k]), 1),
        c16Errors: errors[k] ?? 0,
      });
      return { warn: figures(0), info: figures(1) };
    });
  } finally {
    for (const c of clients) c.close();
    await Promise.all([warn.stop(), info.stop()]);
  }
}
