import { Worker } from 'node:worker_threads';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { checkOnnxFile } from '../../functions/adapters/model-checks.js';
import { loadManifest, localOnnx, type OnnxModelSpec } from '../../functions/core/manifest.js';
import { toFloat32 } from '../../functions/core/tensor.js';
import { median, round } from '../lib/stats.js';

/** What the raw measurement needs: a manifest, an ensemble of it, rows, and how many repetitions. */
export interface RawOptions {
  manifest: string;
  ensemble: string;
  rows: number[][];
  /** Timed repetitions of each measurement (after as many warm-up calls, at least 5). */
  iterations: number;
  /** Also time the members in worker threads (real parallelism inside one process). */
  workers?: boolean;
}

/** Onnxruntime alone, no service around it: the floor the service's latency is compared with. */
export interface RawResult {
  members: string[];
  /** Each member alone on one row (tensor built, session.run), median ms. */
  perMemberMs: Record<string, number>;
  /** The slowest member alone: the limit if every member ran at the same time on its own core. */
  slowestMemberMs: number;
  /** All members one after another in one process, median ms. */
  sequentialMs: number;
  /** All members started together with Promise.all in one process (what onnxruntime-node gives). */
  promiseAllMs: number;
  /** One worker thread per member, all started together; null when not measured. */
  workersMs: number | null;
}

/** The members of `ensemble` as ONNX files (a SageMaker member's local file: same model, no endpoint). */
export function onnxMembers(manifestPath: string, ensemble: string): OnnxModelSpec[] {
  const manifest = loadManifest(manifestPath);
  const target = manifest.ensembles.get(ensemble);
  if (!target) throw new Error(`${manifestPath}: no ensemble ${ensemble}`);
  return target.members.map((id) => {
    const model = manifest.models.get(id);
    const onnx = model && localOnnx(model);
    if (!onnx) throw new Error(`${id}: no ONNX file to run it directly`);
    // The tensors the start check picks (the manifest may leave them to detection).
    const check = checkOnnxFile(onnx, manifest.path);
    if (!check.ok) throw new Error(check.reason);
    return { ...onnx, input: check.input, output: check.output };
  });
}

type Run = (data: Float32Array, rows: number) => Promise<unknown>;

async function sessionRun(model: OnnxModelSpec): Promise<Run> {
  const session = await InferenceSession.create(model.file, { intraOpNumThreads: 1 });
  const width = model.features.length;
  return (data, rows) =>
    session.run({ [model.input as string]: new Tensor('float32', data, [rows, width]) }, [
      model.output as string,
    ]);
}

async function timeIt(fn: () => Promise<unknown>, iterations: number): Promise<number> {
  for (let i = 0; i < Math.max(1, Math.min(iterations, 50)); i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** Measures the members of an ensemble on one row with onnxruntime-node and nothing else. */
export async function measureRaw(options: RawOptions): Promise<RawResult> {
  const [result] = await measureRawMany({ ...options, ensembles: [options.ensemble] });
  return result as RawResult;
}

/**
 * {@link measureRaw} for several ensembles of one manifest in one process: every member's session
 * (and worker thread) is created once and its time alone measured once, whichever ensembles share it.
 */
export async function measureRawMany(
  options: Omit<RawOptions, 'ensemble'> & { ensembles: string[] },
): Promise<RawResult[]> {
  const ensembles = options.ensembles.map((e) => onnxMembers(options.manifest, e));
  const models = [...new Map(ensembles.flat().map((m) => [m.id, m])).values()];
  const runs = new Map(await Promise.all(models.map(async (m) => [m.id, await sessionRun(m)] as const)));
  const width = models[0]?.features.length ?? 0;
  const inputs = options.rows.map((r) => toFloat32([r], width));
  let next = 0;
  // Each call builds its tensor from a plain row, as the runner does; rows cycle through the data set.
  const row = () => inputs[next++ % inputs.length] as Float32Array;
  const alone = new Map<string, number>();
  for (const m of models) {
    const run = runs.get(m.id) as Run;
    alone.set(m.id, await timeIt(() => run(row(), 1), options.iterations));
  }
  const pool = options.workers ? await startWorkers(models) : undefined;
  try {
    const out: RawResult[] = [];
    for (const members of ensembles) {
      const these = members.map((m) => runs.get(m.id) as Run);
      const sequentialMs = await timeIt(async () => {
        const x = row();
        for (const run of these) await run(x, 1);
      }, options.iterations);
      const promiseAllMs = await timeIt(() => {
        const x = row();
        return Promise.all(these.map((run) => run(x, 1)));
      }, options.iterations);
      const workersMs = pool
        ? await timeIt(
            () =>
              pool.runAll(
                members.map((m) => m.id),
                row(),
              ),
            options.iterations,
          )
        : null;
      const perMemberMs = Object.fromEntries(members.map((m) => [m.id, round(alone.get(m.id) as number, 4)]));
      out.push({
        members: members.map((m) => m.id),
        perMemberMs,
        slowestMemberMs: round(Math.max(...Object.values(perMemberMs)), 4),
        sequentialMs: round(sequentialMs, 4),
        promiseAllMs: round(promiseAllMs, 4),
        workersMs: workersMs === null ? null : round(workersMs, 4),
      });
    }
    return out;
  } finally {
    await pool?.close();
  }
}

/** One worker thread per model, each with its own session; `runAll` starts the given ones together. */
async function startWorkers(models: OnnxModelSpec[]) {
  const url = new URL('./raw-worker.mjs', import.meta.url);
  const workers = new Map(
    models.map((m) => [
      m.id,
      new Worker(url, {
        workerData: { file: m.file, input: m.input, output: m.output, width: m.features.length },
      }),
    ]),
  );
  const pending = new Map<number, () => void>();
  await Promise.all(
    [...workers.values()].map(
      (w) =>
        new Promise<void>((ready, fail) => {
          w.once('error', fail);
          w.once('message', () => ready());
        }),
    ),
  );
  for (const w of workers.values()) {
    w.on('message', (m: { id: number }) => {
      pending.get(m.id)?.();
      pending.delete(m.id);
    });
  }
  let id = 0;
  return {
    runAll: (ids: string[], data: Float32Array) =>
      Promise.all(
        ids.map((modelId) => {
          const me = id++;
          const done = new Promise<void>((resolveDone) => pending.set(me, resolveDone));
          workers.get(modelId)?.postMessage({ id: me, data });
          return done;
        }),
      ),
    close: () => Promise.all([...workers.values()].map((w) => w.terminate())),
  };
}

/** Options for {@link measureRawBatch}. */
export interface RawBatchOptions {
  manifest: string;
  ensemble: string;
  rows: number[][];
  /** Rows to score in total (the data set repeated), in tensors of `batchSize` rows. */
  total: number;
  batchSize: number;
}

/**
 * Scores `total` rows with every member in batched tensors, one member after another per batch, in
 * one process, with no I/O: the ceiling for the batch path's rows per second on one core.
 */
export async function measureRawBatch(
  options: RawBatchOptions,
): Promise<{ rowsPerSec: number; seconds: number }> {
  const models = onnxMembers(options.manifest, options.ensemble);
  const runs = await Promise.all(models.map(sessionRun));
  const width = models[0]?.features.length ?? 0;
  const batches: Float32Array[] = [];
  for (let i = 0; i * options.batchSize < options.rows.length * 4; i++) {
    const rows = Array.from(
      { length: options.batchSize },
      (_, j) => options.rows[(i * options.batchSize + j) % options.rows.length] as number[],
    );
    batches.push(toFloat32(rows, width));
  }
  const scoreAll = async (total: number) => {
    for (let done = 0, b = 0; done < total; done += options.batchSize, b++) {
      const n = Math.min(options.batchSize, total - done);
      const full = batches[b % batches.length] as Float32Array;
      const x = n === options.batchSize ? full : full.subarray(0, n * width);
      for (const run of runs) await run(x, n);
    }
  };
  await scoreAll(Math.min(options.total, 10 * options.batchSize));
  const started = performance.now();
  await scoreAll(options.total);
  const seconds = (performance.now() - started) / 1000;
  return { rowsPerSec: round(options.total / seconds, 0), seconds: round(seconds, 3) };
}
