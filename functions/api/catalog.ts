import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import { resolveTarget } from '../core/targets.js';
import { UNCERTAINTY_COLUMNS } from '../core/uncertainty.js';

/** What a client may want to know of one model of an ensemble. */
function modelSummary(manifest: Manifest, id: string) {
  const m = manifest.models.get(id);
  return {
    model: id,
    kind: m?.kind,
    version: m?.version,
    timeoutSeconds: m?.timeoutSeconds,
    description: m?.description,
  };
}

/** The ensembles whose canary `name` is. */
function canaryOf(manifest: Manifest, name: string): string[] {
  return [...manifest.ensembles.values()].filter((e) => e.canary?.ensemble === name).map((e) => e.name);
}

/**
 * `GET /v1/ensembles`: every ensemble with its counted members, strategy, features and labels;
 * its shadow members apart (they run but never count), its canary, and whose canary it is.
 */
export function listEnsembles(manifest: Manifest) {
  return {
    ensembles: [...manifest.ensembles.values()].map((e) => {
      const of = canaryOf(manifest, e.name);
      return {
        name: e.name,
        description: e.description,
        strategy: e.strategy,
        quorum: e.quorum,
        members: e.members.map((id, i) => ({ ...modelSummary(manifest, id), weight: e.weights[i] })),
        shadow: (e.shadow ?? []).map((id) => modelSummary(manifest, id)),
        ...(e.canary ? { canary: e.canary } : {}),
        ...(of.length ? { canaryOf: of } : {}),
        features: e.features,
        labels: e.labels,
      };
    }),
  };
}

/** `GET /v2/models/{name}`: Open Inference Protocol model metadata for an ensemble or a member. */
export function modelMetadata(manifest: Manifest, name: string) {
  const target = resolveTarget(manifest, name, true);
  const model = manifest.models.get(name);
  const of = model ? [] : canaryOf(manifest, target.name);
  return {
    name: target.name,
    versions: [model?.version ?? versionOf(manifest, target)],
    platform: model ? (model.kind === 'onnx' ? 'onnxruntime_onnx' : 'sagemaker') : 'fanout_ensemble',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, target.features.length] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, target.labels.length] },
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      // Returned only when a request names it in `outputs`.
      { name: 'uncertainty', datatype: 'FP32', shape: [-1, UNCERTAINTY_COLUMNS.length] },
    ],
    parameters: {
      features: target.features,
      labels: target.labels,
      uncertainty_columns: UNCERTAINTY_COLUMNS,
      ...(model
        ? { kind: model.kind }
        : {
            strategy: target.strategy,
            quorum: target.quorum,
            members: target.members,
            shadow: target.shadow ?? [],
            ...(target.canary ? { canary: target.canary } : {}),
            ...(of.length ? { canary_of: of } : {}),
          }),
    },
  };
}

/**
 * An ensemble's version: its counted members' versions, so a member change shows as a new
 * version. Shadows are left out: they never change an answer.
 */
function versionOf(manifest: Manifest, e: EnsembleSpec): string {
  return e.members.map((id) => `${id}@${manifest.models.get(id)?.version ?? '?'}`).join('+');
}
