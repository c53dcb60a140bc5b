import { type EmfRecord, parseEmf } from '../../local/observability/emf.js';
import { onEmfLines } from '../../local/observability/stdout-hook.js';

/** The EMF lines written to stdout while `fn` runs, parsed (one record per directive). */
export async function captureEmf<T>(fn: () => Promise<T> | T): Promise<{ result: T; records: EmfRecord[] }> {
  const lines: string[] = [];
  const stop = onEmfLines((line) => lines.push(line));
  try {
    const result = await fn();
    return { result, records: lines.flatMap((l) => parseEmf(l) ?? []) };
  } finally {
    stop();
  }
}

/** A record as the tests compare it: dimensions, `name: unit`, values and metadata. */
export function summarise(r: EmfRecord) {
  return {
    dimensions: r.dimensions,
    metrics: Object.fromEntries(r.metrics.map((m) => [m.name, { unit: m.unit, values: m.values }])),
    metadata: r.metadata,
  };
}
