import type { EnsembleSpec, Manifest, StrategyName } from './manifest.js';
import {
  checkShape,
  type MemberError,
  type MemberOutcome,
  type MemberStatus,
  normaliseOutcome,
} from './outcomes.js';
import { checkQuorum } from './quorum.js';
import { argmax, strategies } from './strategies.js';

/** One scored instance: the chosen label and every label's probability. */
export interface Prediction {
  label: string;
  probabilities: Record<string, number>;
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
}

/** The stored and returned result of one prediction request (the HTTP contract's shape). */
export interface PredictionRecord {
  id: string;
  ensemble: string;
  strategy: StrategyName;
  degraded: boolean;
  predictions: Prediction[];
  members: MemberRecord[];
  createdAt: string;
  /** True when the answer came from the result cache (no member ran for it). */
  cached?: boolean;
}

/** Facts about a member that the manifest knows even when the member did not answer. */
export interface MemberInfo {
  version: string;
  kind: 'onnx' | 'sagemaker';
}

/** What the manifest says of a member, for members that may not have answered. */
export function memberInfoFrom(manifest: Manifest): (model: string) => MemberInfo {
  return (id) => {
    const m = manifest.models.get(id);
    return { version: m?.version ?? 'unknown', kind: m?.kind ?? 'onnx' };
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
 * Combines member outcomes into the ensemble's answer. Missing members count as failed; members
 * with malformed scores are failed with a message saying what was wrong; the quorum is applied
 * (QuorumNotMetError below it); the ensemble's strategy combines the members that answered.
 */
export function combine(
  ensemble: EnsembleSpec,
  rawOutcomes: readonly unknown[],
  rows: number,
  info: (model: string) => MemberInfo,
  meta: { id: string; createdAt: string },
): PredictionRecord {
  const classes = ensemble.labels.length;
  const outcomes = collectOutcomes(ensemble, rawOutcomes, rows);
  const { answered, degraded } = checkQuorum(ensemble.name, outcomes, ensemble.quorum);
  const weightOf = new Map(ensemble.members.map((m, i) => [m, ensemble.weights[i] as number]));
  const combined = strategies[ensemble.strategy](
    answered.map((a) => ({
      model: a.model,
      weight: weightOf.get(a.model) ?? 1,
      probabilities: a.probabilities as number[][],
    })),
    { classes, rows, members: ensemble.members, stacking: ensemble.stacking },
  );
  return {
    id: meta.id,
    ensemble: ensemble.name,
    strategy: ensemble.strategy,
    degraded,
    predictions: combined.probabilities.map((p, i) =>
      toPrediction(ensemble.labels, p, combined.labelIndex[i] as number),
    ),
    members: outcomes.map((o) => memberRecord(o, ensemble.labels, info(o.model))),
    createdAt: meta.createdAt,
  };
}

/**
 * One outcome per member of the ensemble, in manifest order: results are normalised, checked for
 * shape (a malformed one becomes a failure that says why), and a member with no result is failed.
 */
export function collectOutcomes(
  ensemble: EnsembleSpec,
  rawOutcomes: readonly unknown[],
  rows: number,
): MemberOutcome[] {
  const classes = ensemble.labels.length;
  const byModel = new Map<string, MemberOutcome>();
  for (const raw of rawOutcomes) {
    const o = normaliseOutcome(raw);
    if (ensemble.members.includes(o.model)) byModel.set(o.model, checkShape(o, rows, classes));
  }
  return ensemble.members.map(
    (m): MemberOutcome =>
      byModel.get(m) ?? {
        model: m,
        status: 'failed',
        error: { name: 'MissingMemberResult', message: `${m}: no result reached the ensemble step` },
      },
  );
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
