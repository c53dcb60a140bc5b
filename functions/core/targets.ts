import { NotFoundError } from './errors.js';
import type { EnsembleSpec, Manifest } from './manifest.js';

/**
 * What a request can score: an ensemble, or (for the Open Inference Protocol, where `{name}` may
 * be a single member) one model treated as an ensemble of one with a quorum of one.
 */
export function resolveTarget(manifest: Manifest, name: string, allowModels: boolean): EnsembleSpec {
  const ensemble = manifest.ensembles.get(name);
  if (ensemble) return ensemble;
  const model = allowModels ? manifest.models.get(name) : undefined;
  if (model) {
    return {
      name: model.id,
      description: model.description,
      members: [model.id],
      weights: [1],
      strategy: 'soft-vote',
      quorum: 1,
      features: model.features,
      labels: model.labels,
    };
  }
  const served = [...manifest.ensembles.keys()].join(', ');
  const what = allowModels ? 'ensemble or model' : 'ensemble';
  throw new NotFoundError(`unknown ${what} "${name}"; ensembles served: ${served}`);
}

/**
 * `name` when the manifest serves it (an ensemble or a model), else "unknown": what a metric
 * dimension may hold, since a name from a path or an upload key is a client's text.
 */
export function servedOrUnknown(manifest: Manifest, name: string | undefined): string {
  return name && (manifest.ensembles.has(name) || manifest.models.has(name)) ? name : 'unknown';
}

/** One member of a fan-out, as the state machines' Maps receive it. */
export interface FanOutMember {
  model: string;
  timeoutSeconds: number;
  shadow?: true;
}

/** The models a fan-out runs for an ensemble, in its order: counted members, then shadows. */
export function fanOutModels(ensemble: EnsembleSpec): string[] {
  return [...ensemble.members, ...(ensemble.shadow ?? [])];
}

/**
 * `members` with no timeout past `budgetSeconds` (at least 1 s, the state machines' smallest):
 * a member that would outlast the caller is timed out by name, and the quorum still decides,
 * instead of the caller being stopped with no member named. Unchanged when every member fits.
 */
export function withinBudget(members: FanOutMember[], budgetSeconds: number): FanOutMember[] {
  const limit = Math.max(1, Math.floor(budgetSeconds));
  if (members.every((m) => m.timeoutSeconds <= limit)) return members;
  return members.map((m) => (m.timeoutSeconds <= limit ? m : { ...m, timeoutSeconds: limit }));
}

/** The members a fan-out runs for an ensemble: counted ones, then shadows flagged as such. */
export function fanOutMembers(manifest: Manifest, ensemble: EnsembleSpec): FanOutMember[] {
  const timeout = (model: string) => manifest.models.get(model)?.timeoutSeconds ?? 10;
  return [
    ...ensemble.members.map((model) => ({ model, timeoutSeconds: timeout(model) })),
    ...(ensemble.shadow ?? []).map((model) => ({
      model,
      timeoutSeconds: timeout(model),
      shadow: true as const,
    })),
  ];
}
