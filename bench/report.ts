import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './lib/data.js';
import { f, int, signed, table } from './lib/format.js';
import type { BatchRun } from './sections/batch.js';
import type { BatchProfileResult } from './sections/batch-profile.js';
import type { BreakdownResult } from './sections/breakdown.js';
import { type CacheBench, renderCache } from './sections/cache.js';
import type { ColdStart } from './sections/cold-start.js';
import type { FanoutPoint } from './sections/fanout.js';
import type { ObservabilityCost } from './sections/observability.js';
import { renderObservability } from './sections/observability-report.js';
import type { CpuProfileResult } from './sections/profile.js';
import type { LoadResult } from './sections/throughput.js';

/** Batch figures for one file size: medians over the runs, every run kept. */
export interface BatchFigures {
  rows: number;
  rowsPerSec: number;
  peakRssMB: number;
  idleRssMB: number;
  seconds: number;
  jobRowsPerSec: number;
  runs: BatchRun[];
}

/** One stack's figures in the log-level comparison. */
export interface LogFigures {
  e2eP50Ms: number;
  e2eP99Ms: number;
  c16Rps: number;
  c16Errors: number;
}

/** bench/results.json. */
export interface BenchResults {
  $comment: string;
  date: string;
  smoke: boolean;
  benchSeconds: number;
  logLevel: string;
  machine: {
    cpuModel: string;
    cores: number;
    node: string;
    os: string;
    memoryMB: number;
    freeMemoryMB: number;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
    /** One heavy member alone in a fresh process (ms), at the start and at the end of the run. */
    speedProbeMs: { start: number; end: number };
  };
  sync: {
    ensemble: string;
    members: string[];
    e2eP50Ms: number;
    e2eP99Ms: number;
    rawLimitMs: number;
    sequentialMs: number;
    overheadMs: number;
    rawPromiseAllMs: number;
    rawWorkersMs: number | null;
    rawPerMemberMs: Record<string, number>;
    runs: { p50Ms: number; p99Ms: number }[];
    requestsPerRun: number;
    /** INFO logs against WARN, two stacks side by side (bench/sections/logs.ts). */
    infoLogs: LogFigures;
    warnLogsSideBySide: LogFigures;
  };
  throughput: { c16: LoadResult; c64: LoadResult };
  /** The result cache (bench/sections/cache.ts); absent in results written before it existed. */
  cache?: CacheBench;
  fanout: { members: FanoutPoint[]; ratio8to1: number | null };
  batch: BatchFigures & {
    rawRowsPerSec: number;
    /** rowsPerSec / rawRowsPerSec. */
    ratioToRaw: number;
    rawBatchSize: number;
    smaller: BatchFigures;
    /** The same file with V8's old space capped: the live memory a job needs. */
    cappedHeap: BatchFigures & { maxOldSpaceMB: number };
    cappedHeapSmaller: BatchFigures & { maxOldSpaceMB: number };
    /** Where a job's CPU goes per row (absent in results written before it existed; null if it failed). */
    profile?: BatchProfileResult | null;
    /** Jobs that did not succeed (the figures above are over the others). */
    failures: string[];
  };
  coldStartMs: number;
  /** The same from the packaged runner (`.serverless/runner.zip`, plain node); null without it. */
  coldStartPackagedMs: number | null;
  coldStart: { source: ColdStart; packaged: ColdStart | null; note: string };
  runnerPackageMB: number | null;
  runnerPackage: { unzippedMB: number; zipMB: number; files: number; file: string } | { note: string };
  breakdown: BreakdownResult;
  cpuProfile: CpuProfileResult;
  /** What metrics and tracing cost (bench/sections/observability.ts); absent in older results. */
  observability?: ObservabilityCost;
}

/** The targets of issue 14, checked in the summary. */
const TARGETS = {
  overheadMs: 3,
  c16Rps: 400,
  ratio8to1: 4.5,
  batchRatioToRaw: 0.07,
  coldStartPackagedMs: 300,
};
const met = (ok: boolean) => (ok ? 'met' : '**not met**');

/** bench/RESULTS.md: every figure of `r` in tables, then the hand-written analysis (bench/ANALYSIS.md). */
export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const s = r.sync;
  const b = r.breakdown;
  const cp = r.cpuProfile;
  const p = b.parts;
  const layer = (key: string) => b.layers.find((l) => l.key === key);
  const heavy = r.fanout.members;
  const eight = heavy.find((x) => x.members === 8);
  const out: string[] = [];
  out.push(
    '# fanout benchmark results',
    '',
    `Written by \`npm run bench\`${r.smoke ? ' (SMOKE SIZE: not representative)' : ''} on ${r.date.slice(0, 10)} ` +
      `(${r.date.slice(11, 16)} UTC); the run took ${Math.floor(r.benchSeconds / 60)} min ${r.benchSeconds % 60} s. ` +
      'Raw figures: `bench/results.json`.',
    '',
    table(
      ['Machine', ''],
      [
        ['CPU', `${m.cores} x ${m.cpuModel}`],
        ['Memory', `${int(m.memoryMB)} MB`],
        ['OS', m.os],
        ['Node', m.node],
        [
          'Load average (1, 5, 15 min) at start / end',
          `${m.loadAverageAtStart.join(', ')} / ${m.loadAverageAtEnd.join(', ')}`,
        ],
        [
          'Speed probe: one heavy member alone in a fresh process, at start / end',
          `${f(m.speedProbeMs?.start, 1)} / ${f(m.speedProbeMs?.end, 1)} ms`,
        ],
      ],
    ),
    '',
    `Every figure is the median of several runs after a warm-up. The local stack ran with ` +
      `\`POWERTOOLS_LOG_LEVEL=${r.logLevel}\` (no per-request log lines) except where a row says INFO. ` +
      'The load generator (autocannon) and the stack share the same cores; a load average above the ' +
      'core count means other work was competing for them during the run.',
    '',
    '## Summary',
    '',
    table(
      ['Field', 'Value'],
      [
        ['`sync.e2eP50Ms` / `sync.e2eP99Ms`', `${f(s.e2eP50Ms)} / ${f(s.e2eP99Ms)} ms`],
        ['`sync.rawLimitMs` (slowest member alone)', `${f(s.rawLimitMs, 3)} ms`],
        ['`sync.sequentialMs` (members one after another)', `${f(s.sequentialMs, 3)} ms`],
        ['`sync.overheadMs`', `**${f(s.overheadMs)} ms**`],
        [
          '`throughput.c16`',
          `${f(r.throughput.c16.rps, 1)} req/s, p99 ${f(r.throughput.c16.p99Ms, 0)} ms, ${r.throughput.c16.errors} errors`,
        ],
        [
          '`throughput.c64`',
          `${f(r.throughput.c64.rps, 1)} req/s, p99 ${f(r.throughput.c64.p99Ms, 0)} ms, ${r.throughput.c64.errors} errors`,
        ],
        ...(r.cache
          ? [
              [
                '`cache.hitP50Ms` / `cache.missP50Ms` (result cache)',
                `${f(r.cache.hitP50Ms)} / ${f(r.cache.missP50Ms)} ms`,
              ],
            ]
          : []),
        [
          '`fanout.members[]` (e2e p50 for 1/2/4/8 heavy members)',
          `${heavy.map((x) => `${f(x.e2eP50Ms, 1)}`).join(' / ')} ms`,
        ],
        ['`fanout.ratio8to1`', f(r.fanout.ratio8to1)],
        [
          '`batch.rowsPerSec` / `batch.rawRowsPerSec`',
          `${int(r.batch.rowsPerSec)} / ${int(r.batch.rawRowsPerSec)} rows/s`,
        ],
        ['`batch.ratioToRaw`', f(r.batch.ratioToRaw, 4)],
        [
          '`batch.peakRssMB`',
          `${f(r.batch.peakRssMB, 1)} MB at ${int(r.batch.rows)} rows (${f(r.batch.smaller.peakRssMB, 1)} MB at ${int(r.batch.smaller.rows)})`,
        ],
        [
          '`coldStartMs` (from source) / `coldStartPackagedMs`',
          `${f(r.coldStartMs, 0)} / ${r.coldStartPackagedMs === null ? 'n/a (no package)' : `${f(r.coldStartPackagedMs, 0)} ms`}`,
        ],
        [
          '`runnerPackageMB`',
          r.runnerPackageMB === null
            ? 'n/a (no `.serverless/runner.zip`)'
            : `${f(r.runnerPackageMB, 1)} MB unzipped`,
        ],
      ],
    ),
    '',
    '### Targets (issue 14)',
    '',
    table(
      ['Figure', 'This run', 'Target', ''],
      [
        [
          '`sync.overheadMs`',
          `${f(s.overheadMs)} ms`,
          `<= ${TARGETS.overheadMs} ms`,
          met(s.overheadMs <= TARGETS.overheadMs),
        ],
        [
          '`throughput.c16.rps`, 0 errors',
          `${f(r.throughput.c16.rps, 1)} req/s, ${r.throughput.c16.errors} errors`,
          `>= ${TARGETS.c16Rps}`,
          met(r.throughput.c16.rps >= TARGETS.c16Rps && r.throughput.c16.errors === 0),
        ],
        [
          '`fanout.ratio8to1`',
          f(r.fanout.ratio8to1),
          `<= ${TARGETS.ratio8to1} on ${m.cores} cores`,
          met((r.fanout.ratio8to1 ?? Number.POSITIVE_INFINITY) <= TARGETS.ratio8to1),
        ],
        [
          '`batch.ratioToRaw`',
          f(r.batch.ratioToRaw, 4),
          `>= ${TARGETS.batchRatioToRaw}`,
          met(r.batch.ratioToRaw >= TARGETS.batchRatioToRaw),
        ],
        [
          '`coldStartPackagedMs`',
          r.coldStartPackagedMs === null ? 'n/a' : `${f(r.coldStartPackagedMs, 0)} ms`,
          `<= ${TARGETS.coldStartPackagedMs} ms`,
          met((r.coldStartPackagedMs ?? Number.POSITIVE_INFINITY) <= TARGETS.coldStartPackagedMs),
        ],
      ],
    ),
    '',
    'How the stack ran: the member runner in worker-thread instances (one invocation at a time each, ' +
      `up to ${m.cores} per function: one per core), the API, ensemble and batch functions in the ` +
      "stack's own thread; handlers' DynamoDB, Step Functions and SageMaker calls through the in-process " +
      'SDK transport (README, "Instances and isolation").',
    '',
    `## Synchronous request: \`${s.ensemble}\`, one row, concurrency 1`,
    '',
    `A client holds one keep-alive connection and sends one-row requests one after another ` +
      `(${s.runs.length} runs of ${s.requestsPerRun}). The path: HTTP API -> api Lambda -> StartSyncExecution ` +
      `-> Express state machine -> Map over ${s.members.length} runner Lambdas -> ensemble Lambda (combine, ` +
      'DynamoDB put) -> answer. The raw figures run the same members with onnxruntime-node and nothing ' +
      'else, one row, tensor built per call (the SageMaker member runs its ONNX file directly).',
    '',
    table(
      ['', 'ms'],
      [
        ['End to end, p50', f(s.e2eP50Ms)],
        ['End to end, p99', f(s.e2eP99Ms)],
        ['Raw limit: slowest member alone (`rawLimitMs`)', f(s.rawLimitMs, 3)],
        ['Raw: members one after another (`sequentialMs`)', f(s.sequentialMs, 3)],
        ['Raw: members with Promise.all in one process', f(s.rawPromiseAllMs, 3)],
        ['Raw: one worker thread per member', f(s.rawWorkersMs, 3)],
        ['**Overhead** = e2e p50 - raw limit', `**${f(s.overheadMs)}**`],
      ],
    ),
    '',
    table(
      ['Member alone (onnxruntime-node)', 'ms'],
      Object.entries(s.rawPerMemberMs).map(([k, v]) => [k, f(v, 3)]),
    ),
    '',
    `### What INFO logs cost`,
    '',
    'Two stacks side by side, one at WARN and one at INFO (one JSON line per request, per member and per ' +
      'stored prediction: 7 lines for this ensemble), requests alternating between them so background ' +
      'load falls on both alike (`bench/sections/logs.ts`).',
    '',
    table(
      ['', 'WARN', 'INFO', 'INFO costs'],
      [
        [
          'c1 p50 ms',
          f(s.warnLogsSideBySide.e2eP50Ms),
          f(s.infoLogs.e2eP50Ms),
          `${signed(s.infoLogs.e2eP50Ms - s.warnLogsSideBySide.e2eP50Ms)} ms`,
        ],
        ['c1 p99 ms', f(s.warnLogsSideBySide.e2eP99Ms), f(s.infoLogs.e2eP99Ms), ''],
        [
          'c16 req/s',
          f(s.warnLogsSideBySide.c16Rps, 1),
          f(s.infoLogs.c16Rps, 1),
          `${signed((s.infoLogs.c16Rps / s.warnLogsSideBySide.c16Rps - 1) * 100, 0)}%`,
        ],
      ],
    ),
    '',
    '## Where the overhead goes',
    '',
    'Measured in one process on the same local stack code (`bench/sections/breakdown.ts`): each layer is ' +
      'called the way the layer above calls it, so the difference between two nested layers is what the ' +
      'outer one adds; the parts inside the state machine are timed alone. Medians of ' +
      `${b.layers.length} layers, interleaved call by call.`,
    '',
    table(
      ['Layer (a call at this level includes everything below it)', 'p50 ms', 'p90 ms'],
      b.layers.map((l) => [`${l.label} (\`${l.key}\`)`, f(l.p50Ms, 3), f(l.p90Ms, 3)]),
    ),
    '',
    table(
      ['Part', 'ms', 'Measured as'],
      [
        ['HTTP: client, local HTTP server, API Gateway event', f(p.httpLayer, 3), '`http` - `dispatchApi`'],
        [
          'Lambda dispatch of the API function (in-process)',
          f(p.apiDispatch, 3),
          '`dispatchApi` - `apiHandler`',
        ],
        [
          'API handler: middy, validation, predict, response',
          f(p.apiHandler, 3),
          '`apiHandler` - `sdkStartSync`',
        ],
        [
          'AWS SDK client and the in-process transport to the Step Functions endpoint',
          f(p.sdkClient, 3),
          '`sdkStartSync` - `engine`',
        ],
        [
          'State machine: ASL interpreter + 6 in-process Lambda dispatches',
          f(p.stateMachine, 3),
          '`engineBare`',
        ],
        [
          `Members: ${s.members.length} runner invocations on the runner's worker instances, started together`,
          f(p.members, 3),
          '`membersWorkers`',
        ],
        ['Ensemble: combine (soft vote, quorum)', f(p.combine, 3), '`combine`'],
        [
          'Store: DynamoDB conditional put (in-process transport, dynalite on disk)',
          f(p.dynamoPut, 3),
          '`dynamoPut`',
        ],
        [
          'Ensemble handler: the rest (middy, logging)',
          f(p.ensembleHandlerRest, 3),
          '`ensembleHandler` - `combine` - `dynamoPut`',
        ],
        [
          '**Sum of the parts**',
          `**${f(b.sumOfPartsMs, 3)}**`,
          `in-process end to end: ${f(b.e2eInProcessP50Ms, 3)}`,
        ],
      ],
    ),
    '',
    `Inside the members' part: the slowest runner handler alone is ${f(p.slowestMemberHandler, 3)} ms ` +
      `(${slowestMember(b)}), against ${f(s.rawLimitMs, 3)} ms for the slowest raw session.run; the same ` +
      `members called in this thread take ${f(p.membersInThisThread, 3)} ms together. One invocation of a ` +
      `worker instance whose handler answers at once costs ${f(p.workerInvocation, 3)} ms (the messages ` +
      `both ways), one in-process dispatch ${f(layer('dispatchNoop')?.p50Ms, 3)} ms. What a socket and ` +
      `SigV4 would add to the handlers' SDK calls (an outside client's path, measured on the same ` +
      `endpoints): StartSyncExecution ${f(p.sfnSocketSigV4, 3)} ms, the DynamoDB put ` +
      `${f(p.dynamoSocketSigV4, 3)} ms. The engine with the real Lambdas minus the bare engine, the members ` +
      `and the ensemble handler leaves ${f(p.engineUnexplained, 3)} ms unattributed (what the Map adds ` +
      'around the members, and noise).',
    '',
    `### The stack's CPU per request`,
    '',
    `During ${int(cp.requests)} one-row requests at concurrency 1 against the stack as \`npm start\` runs ` +
      `it: **${f(cp.cpuPerRequestMs)} ms of CPU per request** over every thread of the process ` +
      `(${f(cp.mainThreadCpuPerRequestMs)} ms on the main thread), from the kernel's accounting (/proc); ` +
      `the main thread was busy ${f(cp.busyShare * 100, 0)}% of the ${f(cp.windowMs / 1000, 1)} s. ` +
      "Other threads: the worker instances (each names its thread `lambda:<function>`), V8's helpers " +
      "for garbage collection and compilation (one row), and libuv's pool (LevelDB). V8's CPU " +
      'profiler threads sample for the next table: they are shown, and left out of the total.',
    '',
    table(
      ['Thread', 'CPU ms per request'],
      (cp.threads ?? []).map((t) => [t.thread, f(t.msPerRequest, 3)]),
    ),
    '',
    'Where the JavaScript threads spend it, from V8 CPU profiles of the main thread and every worker ' +
      'instance (a sample every 1 ms, charged to the innermost frame that is not Node itself, so socket ' +
      'writes and HTTP parsing count for the package that called them). Samples follow the clock: on a ' +
      'busy machine a thread waiting for a core is counted busy, so read the shares.',
    '',
    table(
      ['Component', 'ms per request', 'share'],
      cp.components.map((c) => [c.name, f(c.msPerRequest, 3), `${f(c.share * 100, 1)}%`]),
    ),
    '',
    '## Throughput',
    '',
    table(
      ['Clients', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'requests', 'runs'],
      [r.throughput.c16, r.throughput.c64].map((t) => [
        t.connections,
        f(t.rps, 1),
        f(t.p50Ms, 0),
        f(t.p99Ms, 0),
        t.errors,
        int(t.requests),
        `${t.runs.length} x ${t.durationSec} s`,
      ]),
    ),
    '',
    `One-row \`${s.ensemble}\` predictions from autocannon, keep-alive connections, after a warm-up. ` +
      "The stack's main thread (HTTP, the state machine interpreter, dynalite, the in-process functions) " +
      "and the runner's worker instances share the machine's cores with the load generator.",
    '',
    ...renderCache(r.cache),
    '## Fan-out: 1, 2, 4 and 8 heavy members',
    '',
    'Synthetic members (`bench/models/heavy.onnx`, made by `bench/models/make_heavy.py`): a Loop of ' +
      'MatMul+Tanh steps over a small shared weight, about 20 ms of CPU per one-row call. ' +
      '`bench/manifest.json` declares heavy-1..heavy-8 and the ensembles heavy-x1/x2/x4/x8; the stack ran ' +
      'with `FANOUT_MANIFEST=bench/manifest.json`.',
    '',
    table(
      [
        'Members',
        'e2e p50 ms',
        'e2e p99 ms',
        'one member in the stack',
        'raw: one alone',
        'raw sequential',
        'raw Promise.all',
        'raw worker threads',
        'per added member',
        'parallelism',
      ],
      heavy.map((x) => [
        x.members,
        f(x.e2eP50Ms, 1),
        f(x.e2eP99Ms, 1),
        f(x.memberAloneMs, 1),
        f(x.rawMemberAloneMs, 1),
        f(x.rawSequentialMs, 1),
        f(x.rawPromiseAllMs, 1),
        f(x.rawWorkersMs, 1),
        f(x.perAddedMemberMs, 1),
        f(x.parallelism, 2),
      ]),
    ),
    '',
    '"One member in the stack" is the runner\'s own `latencyMs` for the one-member ensemble, read from ' +
      'the answers in the same minutes as the e2e figures (the raw columns come from a separate process ' +
      'afterwards; this machine\'s speed drifts, see the speed probe). "Parallelism" is n x (one member) / ' +
      '(e2e p50 - the fixed overhead, that is e2e with one member minus the member): 1.0 means the members ran ' +
      `one after another, n means all at once. On ${m.cores} cores at most ${m.cores} members compute at the ` +
      "same instant in any design. The runner's worker instances (one per core by default) each take one " +
      'member at a time, so n heavy members take about n / ' +
      `${m.cores} member times plus the fixed overhead` +
      (eight
        ? ` (8 members: ${f(eight.e2eP50Ms, 0)} ms against ${f(heavy.find((x) => x.members === 1)?.e2eP50Ms, 0)} ms for one, ` +
          `\`fanout.ratio8to1\` ${f(r.fanout.ratio8to1)}; one member ${f(eight.memberAloneMs, 1)} ms).`
        : '.') +
      ' The OnnxScorer uses `intraOpNumThreads: 1`: onnxruntime would otherwise split one operator over a ' +
      'pool of threads (one per core by default), which makes concurrent members fight over the same ' +
      'cores, and a Lambda of 1024 MB has less than one vCPU anyway. The raw worker-thread column is ' +
      'onnxruntime alone with one worker thread per member. On AWS each runner is its own Lambda ' +
      'invocation with its own CPU, so the e2e time follows the slowest member.',
    '',
    '## Batch: upload to results',
    '',
    table(
      ['Rows', 'rows/s end to end', 'rows/s inside the job', 'seconds', 'idle RSS MB', 'peak RSS MB', 'runs'],
      [
        ['', r.batch.smaller],
        ['', r.batch],
        [` (old space capped at ${r.batch.cappedHeap.maxOldSpaceMB} MB)`, r.batch.cappedHeapSmaller],
        [` (old space capped at ${r.batch.cappedHeap.maxOldSpaceMB} MB)`, r.batch.cappedHeap],
      ].map(([note, y]) => {
        const x = y as BatchFigures;
        return [
          `${int(x.rows)}${note as string}`,
          int(x.rowsPerSec),
          int(x.jobRowsPerSec),
          f(x.seconds, 1),
          f(x.idleRssMB, 1),
          f(x.peakRssMB, 1),
          x.runs.length,
        ];
      }),
    ),
    '',
    `A CSV of the breast cancer rows repeated with unique ids, uploaded through the CLI's code path ` +
      '(`cli/batch.ts`: multipart upload to the local S3, the upload event starts the batch state machine, ' +
      'the CLI follows the job) to a fresh stack per run; "end to end" runs from the upload to the job seen ' +
      "finished (the CLI polls every 250 ms). Peak RSS is the stack process's VmHWM (and 100 ms samples). " +
      `Raw: the same ${s.members.length} members over the same rows in tensors of ${r.batch.rawBatchSize} rows, ` +
      `one member after another, no I/O: ${int(r.batch.rawRowsPerSec)} rows/s. The capped run gives V8 ` +
      `at most ${r.batch.cappedHeap.maxOldSpaceMB} MB of old space: a job that completes under it needs no more ` +
      'live memory than that, whatever its peak RSS without the cap (V8 grows the heap lazily while the ' +
      'allocation rate is high).',
    '',
    ...renderBatchProfile(r.batch.profile),
    ...(r.batch.failures.length
      ? [
          `**Failed batch jobs** (left out of the figures): ${r.batch.failures.map((x) => `\`${x}\``).join('; ')}`,
          '',
        ]
      : []),
    '## Cold start and package',
    '',
    table(
      [
        'Runner cold start (median)',
        'spawn to first prediction',
        'node + loader boot',
        'import handler',
        'first prediction (in the process)',
        'spawn to all models answered',
      ],
      [
        ['From source (`node --import tsx`)', r.coldStart.source],
        ['Packaged bundle (`.serverless/runner.zip`)', r.coldStart.packaged],
      ].map(([name, c]) => {
        const x = c as ColdStart | null;
        return x
          ? [
              name as string,
              f(x.wallMs, 0),
              f(x.bootMs, 0),
              f(x.importMs, 0),
              f(x.firstPredictionMs, 0),
              f(x.allModelsWallMs ?? x.inProcessMs, 0),
            ]
          : [name as string, 'not measured', '', '', '', ''];
      }),
    ),
    '',
    table(
      ['First call per model (source run)', 'ms'],
      Object.entries(r.coldStart.source.perModelMs).map(([k, v]) => [k, f(v, 1)]),
    ),
    '',
    "`coldStartMs` (source) and `coldStartPackagedMs` (the bundle Lambda runs, with serverless.yml's " +
      '`NODE_OPTIONS`) are a new process from spawn to its first prediction through the runner handler: ' +
      'the cold start one Lambda invocation pays. The process then answers every other bundled model once, ' +
      "one after another (a Lambda sandbox takes one event at a time); each model's first call includes " +
      `creating its onnxruntime session. ${r.coldStart.note}.`,
    '',
    'runnerPackage' in r && 'unzippedMB' in r.runnerPackage
      ? `Runner package: ${f(r.runnerPackage.unzippedMB, 1)} MB unzipped (${f(r.runnerPackage.zipMB, 1)} MB zipped, ${r.runnerPackage.files} files), read from \`${r.runnerPackage.file}\`'s central directory.`
      : `Runner package: not measured: ${(r.runnerPackage as { note: string }).note}.`,
    '',
  );
  if (r.observability) out.push(...renderObservability(r.observability));
  const analysis = resolve(ROOT, 'bench/ANALYSIS.md');
  if (existsSync(analysis)) out.push(readFileSync(analysis, 'utf8').trim(), '');
  return out.join('\n');
}

function slowestMember(b: BreakdownResult): string {
  const members = b.layers.filter((l) => l.key.startsWith('member:'));
  const slowest = members.sort((x, y) => y.p50Ms - x.p50Ms)[0];
  return slowest ? slowest.key.slice('member:'.length) : 'n/a';
}

/** Where a batch job's CPU goes per row: by thread (/proc), and the main thread by component. */
function renderBatchProfile(p: BatchProfileResult | null | undefined): string[] {
  if (!p) return [];
  return [
    "### A batch job's CPU per row",
    '',
    `One more job of ${int(p.rows)} rows on a stack running V8's sampling profiler ` +
      `(${int(p.rowsPerSec)} rows/s, the profiler slows it): **${f(p.cpuPerRowUs, 0)} µs of CPU per row** ` +
      `over every thread, **${f(p.mainThreadCpuPerRowUs, 0)} µs on the main thread**, which was busy ` +
      `${f(p.mainThreadBusyShare * 100, 0)}% of the job: the main thread (the interpreter, the emulators, ` +
      'the in-process functions) is what a job waits for, the worker instances run the members. ' +
      "V8's CPU profiler threads are the bench's own measuring: shown, and left out of the total.",
    '',
    table(
      ['Thread', 'µs per row'],
      p.threads.map((t) => [t.thread, f(t.usPerRow, 1)]),
    ),
    '',
    "The main thread's time by component: its CPU from /proc split by the shares of its V8 profile.",
    '',
    table(
      ['Component', 'µs per row', 'share'],
      p.mainThread.map((c) => [c.name, f(c.usPerRow, 1), `${f(c.share * 100, 1)}%`]),
    ),
    '',
  ];
}
