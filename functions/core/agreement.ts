import {
  collectOutcomes,
  decide,
  type EnsemblePrediction,
  type PredictionRecord,
  toPrediction,
} from './combine.js';
import { QuorumNotMetError } from './errors.js';
import type { EnsembleSpec, Manifest } from './manifest.js';
import { fanOutModels } from './targets.js';

/**
 * How one member's answers compared with the ensemble's on one request (or batch): of `rows`
 * rows it answered, `agreed` had its top label equal to the ensemble's, and `absDiffSum` sums,
 * over those rows, the mean over labels of |member probability - ensemble probability|.
 * Sums and counts rather than ratios, so that they add up over requests: the agreement rate is
 * sum(agreed) / sum(rows), the mean absolute difference sum(absDiffSum) / sum(rows).
 */
export interface MemberAgreement {
  ensemble: string;
  model: string;
  shadow: boolean;
  rows: number;
  agreed: number;
  absDiffSum: number;
}

/** The same comparison between an ensemble's answer and its canary's, on rows both answered. */
export interface CanaryAgreement {
  primary: string;
  canary: string;
  /** Which side served the request (the other side was computed from the same member results). */
  served: string;
  rows: number;
  agreed: number;
  absDiffSum: number;
}

/** Everything one request (or batch of rows) says about agreement. */
export interface AgreementReport {
  members: MemberAgreement[];
  canary?: CanaryAgreement;
}

/**
 * Compares each member that answered (counted and shadow) with the ensemble's answer, and, when
 * the served ensemble is a canary or has one, the two sides' answers where both are known.
 *
 * Both sides are known when the other side's counted members all ran in this fan-out (as counted
 * members or shadows of the served side) and enough of them answered for its quorum: then its
 * answer is computed from the same member results, with its own strategy, nothing run twice.
 * A canary that adds a model the primary runs as a shadow (the bundled breast-cancer-v2) is
 * compared on every request of either side; one with a model the primary never runs is not.
 */
export function agreementReport(
  manifest: Manifest,
  served: EnsembleSpec,
  record: PredictionRecord,
  rawOutcomes: readonly unknown[],
): AgreementReport {
  const report: AgreementReport = { members: memberAgreement(record) };
  const canary = canaryAgreement(manifest, served, record, rawOutcomes);
  if (canary) report.canary = canary;
  return report;
}

/** Each answering member of a record against the record's own answer. */
export function memberAgreement(record: PredictionRecord): MemberAgreement[] {
  const out: MemberAgreement[] = [];
  for (const m of record.members) {
    if (m.status !== 'ok' || !m.predictions) continue;
    const c = compareRows(record.predictions, m.predictions);
    out.push({ ensemble: record.ensemble, model: m.model, shadow: m.shadow === true, ...c });
  }
  return out;
}

function canaryAgreement(
  manifest: Manifest,
  served: EnsembleSpec,
  record: PredictionRecord,
  rawOutcomes: readonly unknown[],
): CanaryAgreement | undefined {
  const from = record.routedFrom ? manifest.ensembles.get(record.routedFrom) : undefined;
  let primary: EnsembleSpec | undefined;
  let canary: EnsembleSpec | undefined;
  if (from && from.canary?.ensemble === served.name) {
    primary = from;
    canary = served;
  } else if (served.canary) {
    primary = served;
    canary = manifest.ensembles.get(served.canary.ensemble);
  }
  if (!primary || !canary) return undefined;
  const other = served.name === primary.name ? canary : primary;
  const ran = new Set(fanOutModels(served));
  if (!other.members.every((m) => ran.has(m))) return undefined;
  const rows = record.predictions.length;
  let otherAnswer: { label: string; probabilities: Record<string, number> }[];
  try {
    const { combined } = decide(
      other,
      collectOutcomes(other.members, rawOutcomes, rows, other.labels.length),
      rows,
    );
    otherAnswer = combined.probabilities.map((p, i) =>
      toPrediction(other.labels, p, combined.labelIndex[i] as number),
    );
  } catch (err) {
    // The other side would not have answered: nothing to compare.
    if (err instanceof QuorumNotMetError) return undefined;
    throw err;
  }
  return {
    primary: primary.name,
    canary: canary.name,
    served: served.name,
    ...compareRows(record.predictions, otherAnswer),
  };
}

function compareRows(
  answer: readonly Pick<EnsemblePrediction, 'label' | 'probabilities'>[],
  other: readonly Pick<EnsemblePrediction, 'label' | 'probabilities'>[],
): { rows: number; agreed: number; absDiffSum: number } {
  let agreed = 0;
  let absDiffSum = 0;
  answer.forEach((a, i) => {
    const o = other[i];
    if (!o) return;
    if (o.label === a.label) agreed++;
    const labels = Object.keys(a.probabilities);
    let diff = 0;
    for (const l of labels) diff += Math.abs((a.probabilities[l] ?? 0) - (o.probabilities[l] ?? 0));
    absDiffSum += diff / labels.length;
  });
  return { rows: Math.min(answer.length, other.length), agreed, absDiffSum };
}
