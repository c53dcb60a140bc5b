import { loadManifest } from '../../functions/core/manifest.js';
import { PredictClient } from '../lib/client.js';
import { f } from '../lib/format.js';
import type { StackProcess } from '../lib/stack.js';
import { median, percentile, round } from '../lib/stats.js';

/** The result cache: the same one-row request twice (a miss, then a hit) next to an uncached ensemble. */
export interface CacheBench {
  /** The ensemble with a cache (the manifest's first with `cache`). */
  ensemble: string;
  /** An ensemble with the same members and no cache: what a miss costs over no cache at all. */
  uncachedEnsemble: string | null;
  missP50Ms: number;
  missP99Ms: number;
  /** The first hit: the entry read from the table (the instance's memory did not have it). */
  hitP50Ms: number;
  hitP99Ms: number;
  /** The same row once more: answered from the API instance's memory tier, no table read. */
  memoryHitP50Ms: number;
  memoryHitP99Ms: number;
  uncachedP50Ms: number | null;
  /** missP50Ms / hitP50Ms. */
  speedup: number;
  /** Per run: the medians. */
  runs: { missP50Ms: number; hitP50Ms: number; memoryHitP50Ms: number; uncachedP50Ms: number | null }[];
  pairsPerRun: number;
  /** When the figures come from another run than the rest of results.json, which one. */
  note?: string;
}

/**
 * `runs` runs of `count` rounds, one request at a time: a row never sent before to the cached
 * ensemble (a miss, which also fills the cache), the same row again (a hit), and the same row to
 * the uncached ensemble with the same members, interleaved so background load falls on all three
 * alike. Rows are the data set's, each shifted by a distinct amount so every round's first
 * request is a miss whatever ran before. Every answer must be 200 with the expected cache-status.
 */
export async function measureCache(
  stack: StackProcess,
  options: { manifest: string; rows: number[][]; warmup: number; runs: number; count: number },
): Promise<CacheBench> {
  const manifest = loadManifest(options.manifest);
  const cached = [...manifest.ensembles.values()].find((e) => e.cache);
  if (!cached) throw new Error(`${options.manifest} has no ensemble with a cache`);
  const uncached = [...manifest.ensembles.values()].find(
    (e) => !e.cache && e.members.join() === cached.members.join(),
  );
  const client = new PredictClient(stack.api);
  let round_ = 0;
  // A new float32 value in the first feature for every round: a row the cache has never seen.
  const nextRow = () => {
    const base = options.rows[round_ % options.rows.length] as number[];
    round_++;
    return [(base[0] as number) + round_ * 0.001, ...base.slice(1)];
  };
  const send = async (ensemble: string, row: number[], expected: string | null) => {
    const answer = await client.predict(ensemble, row);
    const status = answer.status === 200 ? /"cached":true/.test(answer.body) : undefined;
    const got =
      status === undefined ? `HTTP ${answer.status}` : status ? 'hit' : expected === null ? null : 'miss';
    if (got !== expected) {
      throw new Error(
        `POST ${ensemble}: expected ${expected ?? 'no cache'}, got ${got}: ${answer.body.slice(0, 300)}`,
      );
    }
    return answer.ms;
  };
  const round3 = async () => {
    const row = nextRow();
    const miss = await send(cached.name, row, 'miss');
    const hit = await send(cached.name, row, 'hit');
    const again = await send(cached.name, row, 'hit');
    const plain = uncached ? await send(uncached.name, row, null) : Number.NaN;
    return { miss, hit, again, plain };
  };
  try {
    for (let i = 0; i < options.warmup; i++) await round3();
    const runs: CacheBench['runs'] = [];
    const all = { miss: [] as number[], hit: [] as number[], again: [] as number[], plain: [] as number[] };
    for (let r = 0; r < options.runs; r++) {
      const run = { miss: [] as number[], hit: [] as number[], again: [] as number[], plain: [] as number[] };
      for (let i = 0; i < options.count; i++) {
        const t = await round3();
        run.miss.push(t.miss);
        run.hit.push(t.hit);
        run.again.push(t.again);
        if (uncached) run.plain.push(t.plain);
      }
      all.miss.push(...run.miss);
      all.hit.push(...run.hit);
      all.again.push(...run.again);
      all.plain.push(...run.plain);
      runs.push({
        missP50Ms: round(median(run.miss), 3),
        hitP50Ms: round(median(run.hit), 3),
        memoryHitP50Ms: round(median(run.again), 3),
        uncachedP50Ms: uncached ? round(median(run.plain), 3) : null,
      });
    }
    const missP50Ms = round(median(runs.map((x) => x.missP50Ms)), 3);
    const hitP50Ms = round(median(runs.map((x) => x.hitP50Ms)), 3);
    return {
      ensemble: cached.name,
      uncachedEnsemble: uncached?.name ?? null,
      missP50Ms,
      missP99Ms: round(percentile(all.miss, 0.99), 3),
      hitP50Ms,
      hitP99Ms: round(percentile(all.hit, 0.99), 3),
      memoryHitP50Ms: round(median(runs.map((x) => x.memoryHitP50Ms)), 3),
      memoryHitP99Ms: round(percentile(all.again, 0.99), 3),
      uncachedP50Ms: uncached ? round(median(runs.map((x) => x.uncachedP50Ms as number)), 3) : null,
      speedup: round(missP50Ms / hitP50Ms, 2),
      runs,
      pairsPerRun: options.count,
    };
  } finally {
    client.close();
  }
}

/** The RESULTS.md section for the result cache. */
export function renderCache(c: CacheBench | undefined): string[] {
  if (!c) return [];
  return [
    `## Result cache: \`${c.ensemble}\`, the same one-row request twice`,
    '',
    `Rounds of four requests at concurrency 1 (${c.runs.length} runs of ${c.pairsPerRun}): a row the cache ` +
      `has not seen (a **miss**: the whole fan-out, plus a cache read before it and a cache write next to ` +
      `the record), the same row again (a **hit**: one DynamoDB read and the answer stored under its id; ` +
      `no state machine, no member), the same row once more (a **memory hit**: the API instance kept the ` +
      `entry it read, so only the answer is stored)` +
      (c.uncachedEnsemble
        ? `, and the same row to \`${c.uncachedEnsemble}\` (same members, no cache).`
        : '.'),
    '',
    `| | p50 ms | p99 ms |`,
    `|---|---:|---:|`,
    `| Miss (\`cache.missP50Ms\`) | ${f(c.missP50Ms)} | ${f(c.missP99Ms)} |`,
    `| **Hit** (\`cache.hitP50Ms\`) | **${f(c.hitP50Ms)}** | ${f(c.hitP99Ms)} |`,
    ...(c.memoryHitP50Ms === undefined
      ? []
      : [`| Memory hit (\`cache.memoryHitP50Ms\`) | ${f(c.memoryHitP50Ms)} | ${f(c.memoryHitP99Ms)} |`]),
    ...(c.uncachedEnsemble ? [`| No cache (\`${c.uncachedEnsemble}\`) | ${f(c.uncachedP50Ms)} | |`] : []),
    '',
    `A hit answers ${f(c.speedup, 1)}x faster than a miss at the median.${c.note ? ` ${c.note}` : ''}`,
    '',
  ];
}
