import { dirname, relative, resolve } from 'node:path';
import { checkOnnxFile } from '../functions/adapters/model-checks.js';
import { OnnxScorer } from '../functions/adapters/onnx-scorer.js';
import { localOnnx, type OnnxModelSpec, parseManifest, shownPath } from '../functions/core/manifest.js';
import { batchWaitSeconds, manifestTimeoutNotes, readDeploySettings } from '../local/deploy-settings.js';
import { type BundledDataset, bundledDatasetFor } from './datasets.js';
import { readManifestDoc } from './manifest-doc.js';
import { columnOrderProblem, probabilitiesProblem } from './model-scores.js';
import { batchMsHere, batchTimeNote } from './model-timeout.js';
import type { ModelsIo } from './models.js';
import type { CheckArgs } from './models-args.js';

/**
 * Why a model's answers on its feature set's bundled data set would be refused or would mislead
 * (not probabilities, or columns out of the label set's order), or undefined when they are fine, or
 * when there is no bundled data set to run it on.
 */
async function scoresProblem(
  scorer: OnnxScorer,
  model: OnnxModelSpec,
  data: BundledDataset | undefined,
): Promise<string | undefined> {
  if (!data) return undefined;
  let scores: number[][];
  try {
    scores = await scorer.score(model, data.rows);
  } catch (err) {
    return (err as Error).message;
  }
  return (
    probabilitiesProblem(model.id, scores, data.name) ??
    columnOrderProblem(model, scores, data.targets, data.name)
  );
}

/**
 * A warning when one call with a batch job's rows takes the model more than half of what a batch
 * job gives it, timed on its bundled data set (a row of zeros without one); none otherwise.
 */
async function batchTimeWarning(
  scorer: OnnxScorer,
  model: OnnxModelSpec,
  data: BundledDataset | undefined,
  batchLimit: (seconds: number) => number,
  io: ModelsIo,
): Promise<string[]> {
  const rows = data?.rows ?? [model.features.map(() => 0)];
  try {
    const ms = await batchMsHere((r) => scorer.score(model, r), rows, io.clock);
    const note = batchTimeNote(
      model.id,
      ms,
      batchLimit(model.timeoutSeconds),
      '"timeoutSeconds" in the manifest',
    );
    return note ? [note.replace(/^warning: /, '')] : [];
  } catch {
    // A model that cannot score is reported by the checks above.
    return [];
  }
}

/**
 * `fanout models check`: the start check on every ONNX member (a SageMaker member's local file
 * too), then a real onnxruntime load of each, as the runner does, and a run on its bundled data
 * set, whose answers must be probabilities with columns in the label set's order. Exit code 1 if
 * any is not ready.
 * A member whose timeout serverless.yml's functions cannot give it gets a note, not a failure.
 */
export async function checkModels(args: CheckArgs, io: ModelsIo): Promise<number> {
  const manifestPath = resolve(args.manifest);
  const shown = shownPath(manifestPath);
  const manifest = parseManifest(readManifestDoc(manifestPath), manifestPath, shown);
  const scorer = new OnnxScorer({ manifestPath });
  const modelsDir = dirname(manifestPath);
  const { timeouts } = readDeploySettings();
  const batchLimit = (seconds: number) => batchWaitSeconds(seconds, timeouts);
  const slow: string[] = [];
  let bad = 0;
  try {
    for (const model of manifest.models.values()) {
      const onnx = localOnnx(model);
      if (!onnx) {
        io.out(`unchecked  ${model.id}: SageMaker endpoint, checked on its first answer`);
        continue;
      }
      const check = checkOnnxFile(onnx, manifestPath);
      let problem = check.ok ? undefined : check.reason;
      if (!problem) {
        // The runner's own view: the session loads, and its metadata passes the same check.
        problem = await scorer.session(onnx).then(
          () => undefined,
          (err: Error) => err.message,
        );
      }
      if (!problem && check.ok) {
        const data = bundledDatasetFor(modelsDir, onnx.features, onnx.labels);
        problem = await scoresProblem(scorer, onnx, data);
        if (!problem) slow.push(...(await batchTimeWarning(scorer, onnx, data, batchLimit, io)));
      }
      const where = relative(dirname(manifestPath), onnx.file);
      if (problem) {
        bad++;
        io.out(`NOT READY  ${problem}`);
      } else if (check.ok) {
        io.out(`ready      ${model.id} (${where}): ${check.input} -> ${check.output}`);
      }
    }
  } finally {
    await scorer.close();
  }
  // Not failures: the member serves, and is timed out by name past what it is given.
  for (const line of manifestTimeoutNotes(manifest.models.values(), timeouts)) io.out(`note       ${line}`);
  for (const line of slow) io.out(`note       ${line}`);
  io.err(
    bad ? `${bad} model${bad > 1 ? 's' : ''} not ready in ${shown}` : `every model in ${shown} is ready`,
  );
  return bad ? 1 : 0;
}
