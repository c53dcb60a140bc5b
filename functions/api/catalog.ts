import type { EnsembleSpec, Manifest } from '../core/manifest.js';
import { resolveTarget } from '../core/targets.js';
import { UNCERTAINTY_COLUMNS } from '../core/uncertainty.js';

/**
 * `GET /v2/models/{name}/ready`: a member is ready unless it failed the start check; an ensemble
 * is ready while its quorum of members is (it answers degraded), and names those that are not.
 * Shadow members play no part: a shadow that is not ready fails only its own entry.
 */
export function targetReadiness(target: EnsembleSpec, notReady: ReadonlyMap<string, string>) {
  const down = target.members.flatMap((m) => {
    const reason = notReady.get(m);
    return reason ? [{ model: m, reason }] : [];
  });
  const ready = target.members.length - down.length >= target.quorum;
  if (down.length === 0) return { name: target.name, ready };
  if (target.members.length === 1) return { name: target.name, ready, reason: down[0]?.reason };
  const reason = `${down.length} of ${target.members.length} members not ready (quorum ${target.quorum}): ${down.map((d) => d.reason).join('; ')}`;
  return { name: target.name, ready, reason, notReady: down };
}

/** What a client may want to know of one model of an ensemble, its readiness included. */
function modelSummary(manifest: Manifest, id: string, notReady: ReadonlyMap<string, string>) {
  const m = manifest.models.get(id);
  return {
    model: id,
    kind: m?.kind,
    version: m?.version,
    timeoutSeconds: m?.timeoutSeconds,
    description: m?.description,
    ready: !notReady.has(id),
    ...(notReady.has(id) ? { reason: notReady.get(id) } : {}),
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
export function listEnsembles(manifest: Manifest, notReady: ReadonlyMap<string, string> = new Map()) {
  return {
    ensembles: [...manifest.ensembles.values()].map((e) => {
      const of = canaryOf(manifest, e.name);
      return {
        name: e.name,
        description: e.description,
        strategy: e.strategy,
        quorum: e.quorum,
        members: e.members.map((id, i) => ({
          ...modelSummary(manifest, id, notReady),
          weight: e.weights[i],
        })),
        shadow: (e.shadow ?? []).map((id) => modelSummary(manifest, id, notReady)),
        ...(e.canary ? { canary: e.canary } : {}),
        ...(of.length ? { canaryOf: of } : {}),
        features: e.features,
        labels: e.labels,
        ...(e.cache ? { cache: { ttlSeconds: e.cache.ttlSeconds } } : {}),
      };
    }),
  };
}

/** The version an ensemble or a member is served at (a member's own, an ensemble's derived). */
export function targetVersion(manifest: Manifest, name: string): string {
  return manifest.models.get(name)?.version ?? versionOf(manifest, resolveTarget(manifest, name, true));
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
