import { InferenceSession, Tensor } from 'onnxruntime-node';
import { ModelLoadError, ModelRunError } from '../core/errors.js';
import type { ModelSpec, OnnxModelSpec } from '../core/manifest.js';
import type { Scorer } from '../core/ports.js';
import { fromFlat, toFloat32 } from '../core/tensor.js';

/**
 * Runs ONNX members in-process. Sessions are created lazily, once per model per process, and
 * reused: creating and releasing sessions repeatedly leaks memory in onnxruntime-node
 * (microsoft/onnxruntime#25325), and the first session costs tens of milliseconds.
 */
export class OnnxScorer implements Scorer {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();

  constructor(private readonly options: InferenceSession.SessionOptions = { intraOpNumThreads: 1 }) {}

  /** Loads (or returns the cached) session for a model; a failed load is not cached. */
  session(model: OnnxModelSpec): Promise<InferenceSession> {
    let pending = this.sessions.get(model.id);
    if (!pending) {
      pending = InferenceSession.create(model.file, this.options).catch((err: unknown) => {
        this.sessions.delete(model.id);
        throw new ModelLoadError(`${model.id}: cannot load ${model.file}: ${(err as Error).message}`, {
          cause: err,
        });
      });
      this.sessions.set(model.id, pending);
    }
    return pending;
  }

  async score(model: ModelSpec, rows: readonly (readonly number[])[]): Promise<number[][]> {
    if (model.kind !== 'onnx') throw new ModelRunError(`${model.id}: is a ${model.kind} model, not onnx`);
    const session = await this.session(model);
    const width = model.features.length;
    const classes = model.labels.length;
    let output: Tensor | undefined;
    try {
      const feeds = { [model.input]: new Tensor('float32', toFloat32(rows, width), [rows.length, width]) };
      const result = await session.run(feeds, [model.output]);
      output = result[model.output];
    } catch (err) {
      throw new ModelRunError(`${model.id}: inference failed: ${(err as Error).message}`, { cause: err });
    }
    if (!output) throw new ModelRunError(`${model.id}: the graph has no output "${model.output}"`);
    const dims = output.dims;
    if (dims.length !== 2 || dims[0] !== rows.length || dims[1] !== classes) {
      throw new ModelRunError(
        `${model.id}: output "${model.output}" has shape [${dims.join(', ')}], expected [${rows.length}, ${classes}]`,
      );
    }
    return fromFlat(output.data as Float32Array, rows.length, classes);
  }

  /** Releases every session (tests and orderly shutdown of the local stack). */
  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.release()));
  }
}
