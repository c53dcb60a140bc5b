import { ConfigError } from './errors.js';
import type { EnsembleSpec, Manifest } from './manifest.js';

/** The manifest as this deployment serves it, and why members were left out. */
export interface Served {
  manifest: Manifest;
  notes: string[];
}

/**
 * Leaves out SageMaker members that this deployment has no endpoint for. `enabled` maps the
 * enabled SageMaker model ids to their endpoint names; everything else of kind `sagemaker` is
 * dropped from every ensemble, shadows included (with a note for the logs, not a failure), and
 * each ensemble's quorum is capped at the members it still has. An ensemble left with no member
 * is dropped, and so is a canary pointing to it.
 */
export function servedManifest(manifest: Manifest, enabled: ReadonlyMap<string, string>): Served {
  const notes: string[] = [];
  const disabled = new Set(
    [...manifest.models.values()]
      .filter((m) => m.kind === 'sagemaker' && !enabled.has(m.id))
      .map((m) => m.id),
  );
  if (disabled.size === 0) return { manifest, notes };
  const ensembles = new Map<string, EnsembleSpec>();
  for (const e of manifest.ensembles.values()) {
    const keep = e.members
      .map((m, i) => ({ m, w: e.weights[i] as number }))
      .filter(({ m }) => !disabled.has(m));
    const left = e.members.filter((m) => disabled.has(m));
    const shadowLeft = (e.shadow ?? []).filter((m) => disabled.has(m));
    if (left.length === 0 && shadowLeft.length === 0) {
      ensembles.set(e.name, e);
      continue;
    }
    if (keep.length === 0) {
      notes.push(
        `ensemble ${e.name} is not served: all its members are SageMaker members without an endpoint`,
      );
      continue;
    }
    const quorum = Math.min(e.quorum, keep.length);
    if (left.length) {
      notes.push(
        `ensemble ${e.name}: left out ${left.join(', ')} (SageMaker, no endpoint configured in FANOUT_SAGEMAKER_MEMBERS)` +
          (quorum < e.quorum ? `; quorum lowered from ${e.quorum} to ${quorum}` : ''),
      );
    }
    if (shadowLeft.length) {
      notes.push(
        `ensemble ${e.name}: shadow member(s) ${shadowLeft.join(', ')} left out (SageMaker, no endpoint configured in FANOUT_SAGEMAKER_MEMBERS)`,
      );
    }
    const { shadow: _shadow, ...rest } = e;
    const shadow = (e.shadow ?? []).filter((m) => !disabled.has(m));
    ensembles.set(e.name, {
      ...rest,
      members: keep.map((k) => k.m),
      weights: keep.map((k) => k.w),
      quorum,
      ...(shadow.length ? { shadow } : {}),
    });
  }
  // A canary whose ensemble is not served here sends nothing anywhere: the primary serves it all.
  for (const [name, e] of ensembles) {
    if (e.canary && !ensembles.has(e.canary.ensemble)) {
      notes.push(
        `ensemble ${name}: canary ${e.canary.ensemble} is not served, so ${name} serves all its traffic`,
      );
      const { canary: _canary, ...rest } = e;
      ensembles.set(name, rest);
    }
  }
  return { manifest: { ...manifest, ensembles }, notes };
}

/**
 * Parses `FANOUT_SAGEMAKER_MEMBERS`: comma-separated `modelId` or `modelId=endpointName`
 * (the bare form uses the manifest's endpoint name).
 */
export function parseSageMakerMembers(value: string | undefined, manifest: Manifest): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [id, name] = part.split('=').map((s) => s.trim()) as [string, string | undefined];
    const model = manifest.models.get(id);
    if (!model || model.kind !== 'sagemaker') {
      throw new ConfigError(
        `environment variable FANOUT_SAGEMAKER_MEMBERS: "${id}" is not a sagemaker model of the manifest`,
      );
    }
    out.set(id, name || model.endpoint.name);
  }
  return out;
}
