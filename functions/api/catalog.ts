import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import { resolveTarget } from '../core/targets.js';

/** `GET /v1/ensembles`: every ensemble with its members, strategy, features and labels. */
export function listEnsembles(manifest: Manifest) {
  return {
    ensembles: [...manifest.ensembles.values()].map((e) => ({
      name: e.name,
      description: e.description,
      strategy: e.strategy,
      quorum: e.quorum,
      members: e.members.map((id, i) => {
        const m = manifest.models.get(id);
        return {
          model: id,
          kind: m?.kind,
          version: m?.version,
          weight: e.weights[i],
          timeoutSeconds: m?.timeoutSeconds,
          description: m?.description,
        };
      }),
      features: e.features,
      labels: e.labels,
      ...(e.cache ? { cache: { ttlSeconds: e.cache.ttlSeconds } } : {}),
    })),
  };
}

/** `GET /v2/models/{name}`: Open Inference Protocol model metadata for an ensemble or a member. */
export function modelMetadata(manifest: Manifest, name: string) {
  const target = resolveTarget(manifest, name, true);
  const model = manifest.models.get(name);
  return {
    name: target.name,
    versions: [model?.version ?? versionOf(manifest, target)],
    platform: model ? (model.kind === 'onnx' ? 'onnxruntime_onnx' : 'sagemaker') : 'fanout_ensemble',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, target.features.length] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, target.labels.length] },
      { name: 'label', datatype: 'BYTES', shape: [-1] },
    ],
    parameters: {
      features: target.features,
      labels: target.labels,
      ...(model
        ? { kind: model.kind }
        : { strategy: target.strategy, quorum: target.quorum, members: target.members }),
    },
  };
}

/** An ensemble's version: its members' versions, so a member change shows as a new version. */
function versionOf(manifest: Manifest, e: EnsembleSpec): string {
  return e.members.map((id) => `${id}@${manifest.models.get(id)?.version ?? '?'}`).join('+');
}
