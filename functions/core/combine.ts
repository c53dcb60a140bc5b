import type { EnsembleSpec, Manifest, StrategyName } from './manifest.js';
import {
  checkShape,
  type MemberError,
  type MemberOutcome,
  type MemberStatus,
  normaliseOutcome,
} from './outcomes.js';
import { checkQuorum } from './quorum.js';
import { argmax, type Combined, strategies } from './strategies.js';
import { fanOutModels } from './targets.js';
import { type Uncertainty, uncertainty } from './uncertainty.js';

/** One scored instance: the chosen label and every label's probability. */
export interface Prediction {
  label: string;
  probabilities: Record<string, number>;
}

/** One instance as the ensemble answered it: a prediction and how sure the members were. */
export interface EnsemblePrediction extends Prediction {
  uncertainty: Uncertainty;
}

/** A member as reported to clients. */
export interface MemberRecord {
  model: string;
  version: string;
  kind: 'onnx' | 'sagemaker';
  status: MemberStatus;
  latencyMs: number;
  predictions?: Prediction[];
  error?: MemberError;
  /** A shadow member: run and recorded, never counted in the answer, the quorum or `degraded`. */
  shadow?: true;
}

/** The stored and returned result of one prediction request (the HTTP contract's shape). */
export interface PredictionRecord {
  id: string;
  /** The ensemble that served the request: the one named, or its canary. */
  ensemble: string;
  /** The ensemble the request named, when its canary served it. */
  routedFrom?: string;
  strategy: StrategyName;
  degraded: boolean;
  predictions: EnsemblePrediction[];
  members: MemberRecord[];
  createdAt: string;
  /** True when the answer came from the result cache (no member ran for it). */
  cached?: boolean;
}

/** Facts about a member that the manifest knows even when the member did not answer. */
export interface MemberInfo {
  version: string;
  kind: 'onnx' | 'sagemaker';
  /** Its manifest timeout: a timed-out member's message says when it was cut (not recorded). */
  timeoutSeconds?: number;
}

/** What the manifest says of a member, for members that may not have answered. */
export function memberInfoFrom(manifest: Manifest): (model: string) => MemberInfo {
  return (id) => {
    const m = manifest.models.get(id);
    return {
      version: m?.version ?? 'unknown',
      kind: m?.kind ?? 'onnx',
      ...(m ? { timeoutSeconds: m.timeoutSeconds } : {}),
    };
  };
}

/** Turns a row of probabilities into a labelled prediction. */
export function toPrediction(
  labels: readonly string[],
  probs: readonly number[],
  labelIndex: number,
): Prediction {
  const probabilities: Record<string, number> = {};
  labels.forEach((l, i) => {
    probabilities[l] = probs[i] as number;
  });
  return { label: labels[labelIndex] as string, probabilities };
}

/**
 * Normalises the raw member results of a fan-out for the models in `models`: a model with no
 * result counts as failed, and one with malformed scores is failed with a message saying what
 * was wrong. Results for other models are ignored.
 */
export function collectOutcomes(
  models: readonly string[],
  rawOutcomes: readonly unknown[],
  rows: number,
  classes: number,
  info?: (model: string) => MemberInfo,
): Map<string, MemberOutcome> {
  const byModel = new Map<string, MemberOutcome>();
  const manifestTimeout = info && ((model: string) => info(model).timeoutSeconds);
  for (const raw of rawOutcomes) {
    const o = normaliseOutcome(raw, 'unknown', manifestTimeout);
    if (models.includes(o.model)) byModel.set(o.model, checkShape(o, rows, classes));
  }
  for (const m of models) {
    if (!byModel.has(m)) {
      byModel.set(m, {
        model: m,
        status: 'failed',
        error: { name: 'MissingMemberResult', message: `${m}: no result reached the ensemble step` },
      });
    }
  }
  return byModel;
}

/** An ensemble's decision on a fan-out: combined scores, the members that answered, degraded. */
export interface Decision {
  combined: Combined;
  answered: MemberOutcome[];
  degraded: boolean;
}

/**
 * Applies an ensemble's quorum (QuorumNotMetError below it) and strategy to the outcomes of its
 * counted members; `outcomes` must hold one for each (see collectOutcomes). Shadows play no part.
 */
export function decide(
  ensemble: EnsembleSpec,
  outcomes: ReadonlyMap<string, MemberOutcome>,
  rows: number,
): Decision {
  const counted = ensemble.members.map((m) => outcomes.get(m) as MemberOutcome);
  const { answered, degraded } = checkQuorum(ensemble.name, counted, ensemble.quorum);
  const weightOf = new Map(ensemble.members.map((m, i) => [m, ensemble.weights[i] as number]));
  const combined = strategies[ensemble.strategy](
    answered.map((a) => ({
      model: a.model,
      weight: weightOf.get(a.model) ?? 1,
      probabilities: a.probabilities as number[][],
    })),
    { classes: ensemble.labels.length, rows, members: ensemble.members, stacking: ensemble.stacking },
  );
  return { combined, answered, degraded };
}

/**
 * Combines member outcomes into the ensemble's answer. Missing members count as failed; members
 * with malformed scores are failed with a message saying what was wrong; the quorum is applied
 * (QuorumNotMetError below it); the ensemble's strategy combines the members that answered, and
 * each prediction carries its uncertainty over those members. Shadow members are recorded after
 * the counted ones with `shadow: true`; whether they answered changes nothing else.
 */
export function combine(
  ensemble: EnsembleSpec,
  rawOutcomes: readonly unknown[],
  rows: number,
  info: (model: string) => MemberInfo,
  meta: { id: string; createdAt: string; routedFrom?: string },
): PredictionRecord {
  const shadow = ensemble.shadow ?? [];
  const outcomes = collectOutcomes(fanOutModels(ensemble), rawOutcomes, rows, ensemble.labels.length, info);
  const { combined, answered, degraded } = decide(ensemble, outcomes, rows);
  const memberRows = answered.map((a) => a.probabilities as number[][]);
  const predictions = combined.probabilities.map((p, i): EnsemblePrediction => {
    const labelIndex = combined.labelIndex[i] as number;
    return {
      ...toPrediction(ensemble.labels, p, labelIndex),
      uncertainty: uncertainty(
        p,
        labelIndex,
        memberRows.map((m) => m[i] as number[]),
      ),
    };
  });
  const record = (model: string, isShadow: boolean) => {
    const r = memberRecord(outcomes.get(model) as MemberOutcome, ensemble.labels, info(model));
    if (isShadow) r.shadow = true;
    return r;
  };
  return {
    id: meta.id,
    ensemble: ensemble.name,
    ...(meta.routedFrom && meta.routedFrom !== ensemble.name ? { routedFrom: meta.routedFrom } : {}),
    strategy: ensemble.strategy,
    degraded,
    predictions,
    members: [...ensemble.members.map((m) => record(m, false)), ...shadow.map((m) => record(m, true))],
    createdAt: meta.createdAt,
  };
}

/**
 * One outcome per model of an ensemble's fan-out, counted members in manifest order then shadows:
 * results are normalised, checked for shape (a malformed one becomes a failure that says why), and
 * a model with no result is failed. For the member metrics of a call that missed its quorum.
 */
export function fanOutOutcomes(
  ensemble: EnsembleSpec,
  rawOutcomes: readonly unknown[],
  rows: number,
  info?: (model: string) => MemberInfo,
): MemberOutcome[] {
  const models = fanOutModels(ensemble);
  const byModel = collectOutcomes(models, rawOutcomes, rows, ensemble.labels.length, info);
  return models.map((m) => byModel.get(m) as MemberOutcome);
}

function memberRecord(o: MemberOutcome, labels: readonly string[], info: MemberInfo): MemberRecord {
  const rec: MemberRecord = {
    model: o.model,
    version: o.version ?? info.version,
    kind: o.kind ?? info.kind,
    status: o.status,
    latencyMs: o.latencyMs ?? 0,
  };
  if (o.status === 'ok' && o.probabilities) {
    rec.predictions = o.probabilities.map((p) => toPrediction(labels, p, argmax(p)));
  }
  if (o.error) rec.error = o.error;
  return rec;
}
