import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadManifest } from '../../functions/core/manifest.js';
import { parseSageMakerMembers } from '../../functions/core/served.js';
import { startLocalSageMaker } from '../../local/sagemaker-endpoint.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';
import { extractZip, zipEntries } from '../../scripts/zip.js';
import { MODELS_MANIFEST, ROOT } from '../lib/data.js';
import { NODE } from '../lib/stack.js';
import { median, round } from '../lib/stats.js';

const CHILD = resolve(ROOT, 'bench/sections/cold-start-child.mjs');
/** Where `npm run package` (serverless package) leaves the runner's deployment package. */
export const RUNNER_ZIP = resolve(ROOT, '.serverless/runner.zip');

/** What the child reports, ms since its process started. */
interface ChildTimes {
  entered: number;
  imported: number;
  firstPredictionMs: number;
  done: number;
  perModel: Record<string, number>;
}

/** One variant's cold start: medians over the runs. */
export interface ColdStart {
  /**
   * Spawn (in the parent) to the first model's answer (in the child), wall clock: one Lambda cold
   * start, which serves one invocation.
   */
  wallMs: number;
  /** Spawn to every bundled model answered once, one after another (a cold instance's first calls). */
  allModelsWallMs: number;
  /** The same seen from the child: node's start to the last answer (no spawn/exec). */
  inProcessMs: number;
  /** Node's start to the first line of the child script (runtime + loader bootstrap). */
  bootMs: number;
  /** Importing the runner handler (its module graph, the AWS SDK, onnxruntime's native addon). */
  importMs: number;
  /** Node's start to the first model's answer. */
  firstPredictionMs: number;
  /** First call of each model (session creation included), medians. */
  perModelMs: Record<string, number>;
  runs: number;
}

/**
 * Cold start of the runner: a new process that imports functions/runner/handler and calls it once
 * for every model of models/manifest.json (the first, an ONNX member, is what one cold invocation
 * pays). The SageMaker member is answered by the local SageMaker
 * runtime, started (and warmed) here as a separate, already-running service: what the runner's cold
 * start includes is its SDK client and the call, not the endpoint's own start.
 * Measured from source (node --import tsx, as the local stack runs) and, when `npm run package` left
 * `.serverless/runner.zip`, from the packaged bundle (plain node, as Lambda runs it).
 */
export async function measureColdStart(options: { runs: number }): Promise<{
  source: ColdStart;
  packaged: ColdStart | null;
  note: string;
}> {
  const manifest = loadManifest(MODELS_MANIFEST);
  const sagemakerIds = [...manifest.models.values()].filter((m) => m.kind === 'sagemaker').map((m) => m.id);
  const sagemaker = await startLocalSageMaker(
    manifest,
    parseSageMakerMembers(sagemakerIds.join(','), manifest),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FANOUT_SAGEMAKER_MEMBERS: sagemakerIds.join(','),
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: sagemaker.url,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    POWERTOOLS_LOG_LEVEL: 'WARN',
  };
  let packagedDir: string | undefined;
  try {
    const source = await variant(options.runs, {
      args: ['--import', 'tsx', CHILD, resolve(ROOT, 'functions/runner/handler.ts')],
      cwd: ROOT,
      env: { ...env, FANOUT_MANIFEST: MODELS_MANIFEST },
    });
    let packaged: ColdStart | null = null;
    let note = `${sagemakerIds.join(', ')} answered by the local SageMaker runtime (already running)`;
    if (existsSync(RUNNER_ZIP)) {
      packagedDir = mkdtempSync(join(tmpdir(), 'fanout-bench-runner-'));
      extractZip(readFileSync(RUNNER_ZIP), packagedDir);
      const handler = join(packagedDir, 'functions/runner/handler.mjs');
      if (!existsSync(handler)) throw new Error(`${RUNNER_ZIP} has no functions/runner/handler.mjs`);
      packaged = await variant(options.runs, {
        args: [CHILD, handler],
        cwd: packagedDir,
        // serverless.yml's provider environment names the manifest relative to the package root,
        // and sets NODE_OPTIONS (source maps) for every function, as Lambda starts it.
        env: { ...env, FANOUT_MANIFEST: 'models/manifest.json', NODE_OPTIONS: lambdaNodeOptions() },
      });
    } else {
      note += '; no .serverless/runner.zip (run `npm run package` first): packaged cold start not measured';
    }
    return { source, packaged, note };
  } finally {
    await sagemaker.close();
    if (packagedDir) rmSync(packagedDir, { recursive: true, force: true });
  }
}

async function variant(
  runs: number,
  how: { args: string[]; cwd: string; env: NodeJS.ProcessEnv },
): Promise<ColdStart> {
  // One untimed run first: tsx's transpile cache and the OS file cache are warm on a developer's
  // machine and in a Lambda image alike; what is measured is the process, not the disk.
  await once(how);
  const all: { wall: number; first: number; t: ChildTimes }[] = [];
  for (let i = 0; i < runs; i++) all.push(await once(how));
  const models = Object.keys(all[0]?.t.perModel ?? {});
  return {
    wallMs: round(median(all.map((r) => r.first)), 1),
    allModelsWallMs: round(median(all.map((r) => r.wall)), 1),
    inProcessMs: round(median(all.map((r) => r.t.done)), 1),
    bootMs: round(median(all.map((r) => r.t.entered)), 1),
    importMs: round(median(all.map((r) => r.t.imported - r.t.entered)), 1),
    firstPredictionMs: round(median(all.map((r) => r.t.firstPredictionMs)), 1),
    perModelMs: Object.fromEntries(
      models.map((m) => [m, round(median(all.map((r) => r.t.perModel[m] ?? 0)), 2)]),
    ),
    runs,
  };
}

function once(how: {
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}): Promise<{ wall: number; first: number; t: ChildTimes }> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn(NODE, how.args, { cwd: how.cwd, env: how.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let first: number | undefined;
    let answered: number | undefined;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const now = performance.now();
      if (first === undefined && out.includes('first\n')) first = now;
      if (answered === undefined && out.includes('{"entered"')) answered = now;
    });
    child.stderr.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-10_000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{"entered"'));
      if (code !== 0 || !line || answered === undefined || first === undefined) {
        return fail(new Error(`cold start child failed (exit ${code}):\n${err || out}`));
      }
      done({ wall: answered - started, first: first - started, t: JSON.parse(line) as ChildTimes });
    });
  });
}

/** serverless.yml's provider NODE_OPTIONS (the packaged functions run with it on Lambda). */
function lambdaNodeOptions(): string {
  const config = loadServerlessConfig({ file: resolve(ROOT, 'serverless.yml') });
  return config.environment.NODE_OPTIONS ?? '';
}

/** The packaged runner's size: unzipped (what counts against Lambda's 250 MB) and zipped, MB (10^6 bytes). */
export function runnerPackageSize(): { unzippedMB: number; zipMB: number; files: number } | null {
  if (!existsSync(RUNNER_ZIP)) return null;
  const zip = readFileSync(RUNNER_ZIP);
  const entries = zipEntries(zip);
  return {
    unzippedMB: round(entries.reduce((s, e) => s + e.size, 0) / 1e6, 1),
    zipMB: round(zip.length / 1e6, 1),
    files: entries.length,
  };
}
