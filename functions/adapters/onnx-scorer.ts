import type * as Ort from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ModelLoadError, ModelNotReadyError, ModelRunError } from '../core/errors.js';
import { type ModelSpec, type OnnxModelSpec, shownPath } from '../core/manifest.js';
import type { Scorer } from '../core/ports.js';
import { checkSignature, type ModelSignature, type ValueInfo } from '../core/signature.js';
import { fromFlat, toFloat32 } from '../core/tensor.js';

/**
 * onnxruntime-node is CommonJS. In the bundles (esbuild, ESM) `require` is the banner's: an ES
 * import of a CommonJS package makes Node pre-parse its source and, recursively, every file it
 * re-exports (onnxruntime-common's dozen) with its CommonJS export lexer, then wrap it as an ES
 * module; a plain require skips all that (about 45 ms of the packaged runner's cold start, measured
 * with --cpu-prof and interleaved runs). From source (tsx, jest) there is no `require` in an ES
 * module: the dynamic import serves there, and in the bundle it also tells serverless-esbuild,
 * which finds a function's external packages by its entry's `require(...)`/`import` statements,
 * to pack onnxruntime-node with the runner (the bundle's `require` is renamed by esbuild).
 */
// onnxruntime 1.30 on Linux starts Microsoft's telemetry client when its environment is created
// (the first session): it reads the machine's identity (/etc/machine-id, /proc/cpuinfo, the PCI
// devices) and opens and fsyncs a SQLite event store under $HOME/.cache, about 10 ms of CPU at
// the runner's cold start (fresh processes, interleaved) for something this service does not use.
// Read then, so set before; an explicit ORT_DISABLE_TELEMETRY=0 in the environment keeps it on.
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const ort: typeof Ort =
  typeof require === 'function' ? require('onnxruntime-node') : await import('onnxruntime-node');

/** A loaded member: its session and the tensors its signature check chose. */
interface Loaded {
  session: InferenceSession;
  input: string;
  output: string;
}

/**
 * Runs ONNX members in-process. Sessions are created lazily, once per model per process, and
 * reused: creating and releasing sessions repeatedly leaks memory in onnxruntime-node
 * (microsoft/onnxruntime#25325), and the first session costs tens of milliseconds. Each session's
 * own metadata goes through the same signature check as the start check, which picks the input
 * and output when the manifest leaves them unset.
 */
export class OnnxScorer implements Scorer {
  private readonly sessions = new Map<string, Promise<Loaded>>();

  private readonly options: InferenceSession.SessionOptions;
  private readonly manifestPath: string;

  constructor(
    options: {
      session?: InferenceSession.SessionOptions;
      /** The manifest, named in messages as the file a fix goes into. */
      manifestPath?: string;
    } = {},
  ) {
    this.options = options.session ?? { intraOpNumThreads: 1 };
    this.manifestPath = options.manifestPath ?? 'the manifest';
  }

  /** Loads (or returns the cached) session for a model; a failed load or check is not cached. */
  session(model: OnnxModelSpec): Promise<Loaded> {
    let pending = this.sessions.get(model.id);
    if (!pending) {
      pending = this.load(model);
      pending.catch(() => this.sessions.delete(model.id));
      this.sessions.set(model.id, pending);
    }
    return pending;
  }

  private async load(model: OnnxModelSpec): Promise<Loaded> {
    let session: InferenceSession;
    try {
      session = await ort.InferenceSession.create(model.file, this.options);
    } catch (err) {
      throw new ModelLoadError(`${model.id}: cannot load ${model.file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const check = checkSignature(
      { ...model, file: model.manifestFile },
      sessionSignature(session),
      shownPath(this.manifestPath),
    );
    if (!check.ok) {
      await session.release().catch(() => undefined);
      throw new ModelNotReadyError(check.reason);
    }
    return { session, input: check.input, output: check.output };
  }

  async score(model: ModelSpec, rows: readonly (readonly number[])[]): Promise<number[][]> {
    if (model.kind !== 'onnx') throw new ModelRunError(`${model.id}: is a ${model.kind} model, not onnx`);
    const { session, input, output: name } = await this.session(model);
    const width = model.features.length;
    const classes = model.labels.length;
    let output: Tensor | undefined;
    try {
      const feeds = { [input]: new ort.Tensor('float32', toFloat32(rows, width), [rows.length, width]) };
      // Only the probability output is fetched: an extra `label` output is never computed into JS.
      const result = await session.run(feeds, [name]);
      output = result[name];
    } catch (err) {
      throw new ModelRunError(`${model.id}: inference failed: ${(err as Error).message}`, { cause: err });
    }
    if (!output) throw new ModelRunError(`${model.id}: the graph has no output "${name}"`);
    const dims = output.dims;
    if (dims.length !== 2 || dims[0] !== rows.length || dims[1] !== classes) {
      throw new ModelRunError(
        `${model.id}: output "${name}" has shape [${dims.join(', ')}], expected [${rows.length}, ${classes}]`,
      );
    }
    return fromFlat(output.data as Float32Array, rows.length, classes);
  }

  /**
   * Loads the sessions of `models` now (in parallel), for an instance that starts ahead of its
   * traffic. A model that fails to load is named with why, not thrown: its calls fail by name as
   * without preloading, and a later call tries it again.
   */
  async preload(
    models: readonly OnnxModelSpec[],
  ): Promise<{ loaded: string[]; failed: Record<string, string> }> {
    const outcomes = await Promise.allSettled(models.map((m) => this.session(m)));
    const loaded: string[] = [];
    const failed: Record<string, string> = {};
    outcomes.forEach((o, i) => {
      const id = (models[i] as OnnxModelSpec).id;
      if (o.status === 'fulfilled') loaded.push(id);
      else failed[id] = (o.reason as Error).message;
    });
    return { loaded, failed };
  }

  /** Releases every session (tests and orderly shutdown of the local stack). */
  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.session.release()));
  }
}

/** A session's inputs and outputs as the signature check describes them. */
export function sessionSignature(session: InferenceSession): ModelSignature {
  const describe = (meta: readonly InferenceSession.ValueMetadata[] | undefined, names: readonly string[]) =>
    meta?.map(valueInfo) ?? names.map((name): ValueInfo => ({ name, tensor: true }));
  return {
    inputs: describe(session.inputMetadata, session.inputNames),
    outputs: describe(session.outputMetadata, session.outputNames),
  };
}

function valueInfo(meta: InferenceSession.ValueMetadata): ValueInfo {
  if (!meta.isTensor) return { name: meta.name, tensor: false };
  // onnxruntime shows an unnamed dynamic dimension as '' (the file reader as null).
  const dims = meta.shape.map((d) => (d === '' ? null : d));
  return { name: meta.name, tensor: true, type: meta.type, dims };
}
