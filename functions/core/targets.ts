import { NotFoundError } from './errors.js';
import type { EnsembleSpec, Manifest } from './manifest.js';
import { DEFAULT_TIMEOUT_SECONDS } from './manifest-schema.js';

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

/** What a log of a {@link TimeoutCut} says it means. */
export const TIMEOUT_CUT_WHY =
  'the manifest timeout outlasts what this path or the runner function can wait: past this the member is timed out by name';

/** A member whose timeout was cut: what the manifest says, and what it waits here. */
export interface TimeoutCut {
  model: string;
  timeoutSeconds: number;
  waitsSeconds: number;
}

/**
 * `members` with no timeout past `budgetSeconds` (at least 1 s, the state machines' smallest):
 * a member that would outlast its caller is timed out by name, and the quorum still decides,
 * instead of the caller being stopped with no member named. The same list when every member fits;
 * otherwise `onCut` hears which were cut.
 */
export function withinBudget(
  members: FanOutMember[],
  budgetSeconds: number,
  onCut?: (cut: TimeoutCut[]) => void,
): FanOutMember[] {
  const limit = Math.max(1, Math.floor(budgetSeconds));
  const over = members.filter((m) => m.timeoutSeconds > limit);
  if (over.length === 0) return members;
  onCut?.(over.map((m) => ({ model: m.model, timeoutSeconds: m.timeoutSeconds, waitsSeconds: limit })));
  return members.map((m) => (m.timeoutSeconds <= limit ? m : { ...m, timeoutSeconds: limit }));
}

/**
 * The longest a member may wait in a runner whose function times out after `runnerTimeoutSeconds`:
 * a second less, so the member's state times out (by name) before the runner Lambda is stopped.
 */
export const runnerMemberLimit = (runnerTimeoutSeconds: number): number => runnerTimeoutSeconds - 1;

/** What the ensemble step, the execution's return and the answer need after the members. */
export const ANSWER_MARGIN_MS = 3000;

/**
 * The seconds a member may take on a synchronous request with `remainingMs` left to the API
 * function, and no more than a runner of `runnerTimeoutSeconds` can wait (when known): at least 1,
 * so a request near its end still gets its members' answers or their names.
 */
export function memberBudgetSeconds(remainingMs: number, runnerTimeoutSeconds?: number): number {
  const api = Math.floor((remainingMs - ANSWER_MARGIN_MS) / 1000);
  const runner = runnerTimeoutSeconds === undefined ? api : runnerMemberLimit(runnerTimeoutSeconds);
  return Math.max(1, Math.min(api, runner));
}

/** The most a member waits on each path, from the functions' timeouts (serverless.yml's). */
export interface MemberWaitLimits {
  /** In a batch job: the runner's timeout less a second. */
  batchSeconds: number;
  /** On a synchronous request, when the API function's timeout is known: see memberBudgetSeconds. */
  syncSeconds?: number;
}

/** The limits for a runner and an API function that time out after these seconds. */
export function memberWaitLimits(runnerTimeoutSeconds: number, apiTimeoutSeconds?: number): MemberWaitLimits {
  return {
    batchSeconds: runnerMemberLimit(runnerTimeoutSeconds),
    ...(apiTimeoutSeconds === undefined
      ? {}
      : { syncSeconds: memberBudgetSeconds(apiTimeoutSeconds * 1000, runnerTimeoutSeconds) }),
  };
}

/** A model whose manifest timeout outlasts a path: what it waits there instead. */
export interface ManifestTimeoutCut {
  model: string;
  timeoutSeconds: number;
  /** Set when batch jobs cut it. */
  batchSeconds?: number;
  /** Set when synchronous requests cut it (at the API function's full timeout; less when later). */
  syncSeconds?: number;
}

/**
 * The models whose timeouts the functions cannot give them, found before they serve (at start, in
 * `fanout models check`) rather than from a timed-out member on day thirty. Manifest order.
 */
export function manifestTimeoutCuts(
  models: Iterable<{ id: string; timeoutSeconds: number }>,
  limits: MemberWaitLimits,
): ManifestTimeoutCut[] {
  const cuts: ManifestTimeoutCut[] = [];
  for (const m of models) {
    const batch = m.timeoutSeconds > limits.batchSeconds;
    const sync = limits.syncSeconds !== undefined && m.timeoutSeconds > limits.syncSeconds;
    if (!batch && !sync) continue;
    cuts.push({
      model: m.id,
      timeoutSeconds: m.timeoutSeconds,
      ...(batch ? { batchSeconds: limits.batchSeconds } : {}),
      ...(sync ? { syncSeconds: limits.syncSeconds } : {}),
    });
  }
  return cuts;
}

/** One line for a cut: `<model>: its timeout of 60 s is cut to 29 s in batch jobs and ...`. */
export function describeTimeoutCut(cut: ManifestTimeoutCut): string {
  const where = [
    cut.batchSeconds === undefined ? '' : `${cut.batchSeconds} s in batch jobs`,
    cut.syncSeconds === undefined ? '' : `${cut.syncSeconds} s on the synchronous path`,
  ].filter(Boolean);
  return `${cut.model}: its timeout of ${cut.timeoutSeconds} s is cut to ${where.join(' and ')}; past that it is timed out by name`;
}

/** The members a fan-out runs for an ensemble: counted ones, then shadows flagged as such. */
export function fanOutMembers(manifest: Manifest, ensemble: EnsembleSpec): FanOutMember[] {
  const timeout = (model: string) => manifest.models.get(model)?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  return [
    ...ensemble.members.map((model) => ({ model, timeoutSeconds: timeout(model) })),
    ...(ensemble.shadow ?? []).map((model) => ({
      model,
      timeoutSeconds: timeout(model),
      shadow: true as const,
    })),
  ];
}
