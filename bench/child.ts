// Entry point of the benchmark's child processes: `node --import tsx bench/child.ts <section>`, the
// options as JSON on stdin, the result as one `BENCH_RESULT <json>` line on stdout (bench/lib/child.ts).
import { childMain } from './lib/child.js';

const section = process.argv[2];
const sections: Record<string, () => Promise<(options: never) => Promise<unknown>>> = {
  raw: async () => (await import('./sections/raw.js')).measureRaw,
  'raw-many': async () => (await import('./sections/raw.js')).measureRawMany,
  'raw-batch': async () => (await import('./sections/raw.js')).measureRawBatch,
  breakdown: async () => (await import('./sections/breakdown.js')).measureBreakdown,
};
const load = section ? sections[section] : undefined;
if (!load) {
  console.error(`usage: bench/child.ts <${Object.keys(sections).join('|')}>`);
  process.exit(2);
}
await childMain(await load());
// Warm handler state (ONNX sessions, SDK keep-alive agents, workers) may hold the loop open.
process.exit(0);
