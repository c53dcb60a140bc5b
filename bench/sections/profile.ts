import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PredictClient, sequentialLatencies } from '../lib/client.js';
import { startStack } from '../lib/stack.js';
import { round } from '../lib/stats.js';

/** Where the stack's CPU goes per request, from a V8 CPU profile of the stack process. */
export interface CpuProfileResult {
  requests: number;
  /** Wall time of the measured window and the part of it the stack's main thread was busy. */
  windowMs: number;
  busyShare: number;
  /** Main-thread CPU per request (busy time in the window / requests). */
  cpuPerRequestMs: number;
  /** Per component: CPU ms per request and share of the busy time, largest first. */
  components: { name: string; msPerRequest: number; share: number }[];
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Components, matched on the file of the innermost frame that is not Node's own code: Node's
 * internals (HTTP parsing, sockets, streams) count for the package that called them, so an SDK
 * call's socket writes are the SDK's; a sample with no such frame is plain I/O.
 */
const COMPONENTS: [string, RegExp][] = [
  [
    'AWS SDK clients (@aws-sdk, @smithy)',
    /node_modules\/(@aws-sdk|@smithy|@aws-crypto|fast-xml-parser|bowser|tslib)\//,
  ],
  [
    'DynamoDB emulator (dynalite, LevelDB)',
    /node_modules\/(dynalite|classic-level|abstract-level|level-|levelup|leveldown|memdown|lazy|once|big\.js|buffer-crc32|lock)/,
  ],
  ['S3 emulator (s3rver)', /node_modules\/(s3rver|koa|@koa|xmlbuilder|fast-xml)/],
  [
    'Step Functions interpreter (aws-local-stepfunctions, jsonpath)',
    /node_modules\/(aws-local-stepfunctions|jsonpath-plus|p-limit|yocto-queue|asl-validator|ajv)/,
  ],
  ['Lambda middleware and logging (middy, powertools)', /node_modules\/(@middy|@aws-lambda-powertools)\//],
  ['ONNX inference (onnxruntime-node)', /node_modules\/onnxruntime-(node|common)\//],
  ['Schema validation (zod)', /node_modules\/zod\//],
  ['Local stack: HTTP API, Lambda dispatch, SFN and SageMaker endpoints (local/)', /\/local\/[^/]+\.ts/],
  ['Handlers and core (functions/)', /\/functions\/[^/]+\/[^/]+\.ts/],
  ['Other packages', /node_modules\//],
];

/** Attributes a profile's samples inside [fromUs, toUs] (CLOCK_MONOTONIC, as process.hrtime) to components. */
export function attribute(
  profile: Profile,
  fromUs: number,
  toUs: number,
): { busyUs: number; windowUs: number; by: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const owner = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const known = owner.get(id);
    if (known) return known;
    const n = byId.get(id) as ProfileNode;
    const name = n.callFrame.functionName;
    let result: string;
    if (name === '(garbage collector)') result = 'Garbage collection';
    else if (name === '(idle)') result = 'idle';
    else if (name === '(program)') result = 'V8 and native code outside JavaScript';
    else {
      const url = n.callFrame.url;
      const match = url && !url.startsWith('node:') ? COMPONENTS.find(([, re]) => re.test(url)) : undefined;
      const up = parent.get(id);
      result = match
        ? match[0]
        : url && !url.startsWith('node:')
          ? 'Other code'
          : up !== undefined && byId.get(up)?.callFrame.functionName !== '(root)'
            ? ownerOf(up)
            : 'Node I/O: sockets, HTTP parsing, timers (no caller in the stack)';
    }
    owner.set(id, result);
    return result;
  };
  const by = new Map<string, number>();
  let t = profile.startTime;
  let busyUs = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) continue;
    first = Math.min(first, t);
    last = Math.max(last, t);
    const who = ownerOf(profile.samples[i] as number);
    if (who === 'idle') continue;
    busyUs += dt;
    by.set(who, (by.get(who) ?? 0) + dt);
  }
  return { busyUs, windowUs: Math.max(0, last - first), by };
}

/**
 * Runs the local stack with V8's sampling profiler (a sample every 1 ms), sends `count` one-row requests
 * at concurrency 1 after a warm-up, and attributes the main thread's samples taken during those
 * requests to components. At concurrency 1 the stack's CPU per request is the floor of its latency.
 */
export async function measureCpuProfile(options: {
  dataDir: string;
  ensemble: string;
  rows: number[][];
  warmup: number;
  count: number;
}): Promise<CpuProfileResult> {
  const dir = join(options.dataDir, 'profile');
  const stack = await startStack({
    dataDir: options.dataDir,
    logLevel: 'WARN',
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  });
  const client = new PredictClient(stack.api);
  let from = 0;
  let to = 0;
  try {
    await sequentialLatencies(client, options.ensemble, options.rows, 0, options.warmup);
    from = Number(process.hrtime.bigint() / 1000n);
    await sequentialLatencies(client, options.ensemble, options.rows, options.count);
    to = Number(process.hrtime.bigint() / 1000n);
  } finally {
    client.close();
    await stack.stop();
  }
  // The profile is written when the process exits; the loader's worker thread writes its own.
  const best = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => attribute(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile, from, to))
    .sort((a, b) => b.busyUs - a.busyUs)[0];
  if (!best) throw new Error(`no CPU profile in ${dir}`);
  const perRequest = (us: number) => us / 1000 / options.count;
  return {
    requests: options.count,
    windowMs: round(best.windowUs / 1000, 1),
    busyShare: round(best.busyUs / Math.max(1, best.windowUs), 3),
    cpuPerRequestMs: round(perRequest(best.busyUs), 3),
    components: [...best.by]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({
        name,
        msPerRequest: round(perRequest(us), 3),
        share: round(us / best.busyUs, 3),
      })),
  };
}
