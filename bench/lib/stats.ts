/** Small statistics helpers: every figure of the benchmark is a median or a percentile. */

/** The q-quantile (0..1) of `values` by the nearest-rank method; NaN for an empty list. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** The median (the mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Arithmetic mean. */
export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : Number.NaN;
}

/** Rounds to `digits` decimals (results stay readable in JSON and markdown). */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Median of `fn` applied to every run: the figure reported for a measurement repeated `runs` times. */
export function medianOf<T>(runs: readonly T[], fn: (run: T) => number): number {
  return median(runs.map(fn));
}

/** Times `fn` `count` times after `warmup` untimed calls; answers the durations in ms. */
export async function timeCalls(
  fn: () => Promise<unknown> | unknown,
  count: number,
  warmup = 0,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}
