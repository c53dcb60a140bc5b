// Markdown helpers for bench/RESULTS.md and its sections: one rule for a figure that is missing.

/** A figure with `digits` decimals; `n/a` when there is none (null, NaN, infinite). */
export const f = (v: number | null | undefined, digits = 2): string =>
  v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);

/** A difference with its sign (`+0.68`, `-1.20`); `n/a` when there is none. */
export const signed = (v: number, digits = 2): string =>
  Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(digits)}` : 'n/a';

/** A whole number with thousands separators. */
export const int = (v: number): string => Math.round(v).toLocaleString('en-US');

/** A Markdown table, the first column left-aligned and the others right-aligned (figures). */
export const table = (head: string[], rows: (string | number)[][]): string =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
