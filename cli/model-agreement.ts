import type { OnnxScorer } from '../functions/adapters/onnx-scorer.js';
import { agreementReport } from '../functions/core/agreement.js';
import { combine, memberInfoFrom } from '../functions/core/combine.js';
import { QuorumNotMetError } from '../functions/core/errors.js';
import { localOnnx, type Manifest } from '../functions/core/manifest.js';

const SLICE = 1000;

/** A member's agreement with its ensemble's answer on the rows it was compared on. */
export interface MemberShare {
  model: string;
  share: number;
}

/** How each counted member of an ensemble agreed with its answer on a data set. */
export interface EnsembleAgreement {
  ensemble: string;
  rows: number;
  members: MemberShare[];
}

/**
 * Scores every other counted member of `ensemble` on `rows`, takes the added model's scores on them
 * as the command already has them, combines all with the ensemble's strategy, and reports how
 * often each member's top label was the answer: what the agreement metrics and the drift alarm
 * will see in service. Undefined when a member cannot be run here (a SageMaker endpoint without a
 * local file) or the members miss the quorum.
 */
export async function ensembleAgreement(
  manifest: Manifest,
  ensemble: string,
  added: { id: string; scores: number[][] },
  scorer: OnnxScorer,
  rows: number[][],
): Promise<EnsembleAgreement | undefined> {
  const target = manifest.ensembles.get(ensemble);
  if (!target || rows.length === 0) return undefined;
  const outcomes = [];
  for (const id of target.members) {
    if (id === added.id) {
      outcomes.push({ model: id, status: 'ok', probabilities: added.scores });
      continue;
    }
    const spec = manifest.models.get(id);
    const onnx = spec && localOnnx(spec);
    if (!onnx) return undefined;
    const probabilities: number[][] = [];
    // In slices, as the command scores its data: a large --data file stays a modest tensor.
    for (let i = 0; i < rows.length; i += SLICE)
      probabilities.push(...(await scorer.score(onnx, rows.slice(i, i + SLICE))));
    outcomes.push({ model: id, status: 'ok', probabilities });
  }
  let record: ReturnType<typeof combine>;
  try {
    record = combine(target, outcomes, rows.length, memberInfoFrom(manifest), {
      id: 'fanout-models-add',
      createdAt: new Date(0).toISOString(),
    });
  } catch (err) {
    if (err instanceof QuorumNotMetError) return undefined;
    throw err;
  }
  const report = agreementReport(manifest, target, record, outcomes);
  return {
    ensemble,
    rows: rows.length,
    members: report.members
      .filter((m) => !m.shadow)
      .map((m) => ({ model: m.model, share: m.rows ? m.agreed / m.rows : 0 })),
  };
}

const pct = (share: number) => `${(share * 100).toFixed(1)}%`;

/**
 * What `fanout models add --ensemble` says of the member it added: how often it agreed with the
 * ensemble's answer on the data set next to the other members, and a warning when that is below the
 * drift alarm's threshold, which would then page on day one rather than when the member drifts.
 */
export function agreementLines(a: EnsembleAgreement, id: string, source: string, alarmMin: number): string[] {
  const own = a.members.find((m) => m.model === id);
  if (!own) return [];
  const others = a.members.filter((m) => m.model !== id).map((m) => m.share);
  const range = others.length
    ? `; the other members ${pct(Math.min(...others))}-${pct(Math.max(...others))}`
    : '';
  const lines = [
    `${id} agrees with ${a.ensemble}'s answer on ${pct(own.share)} of the ${a.rows} rows of ${source}${range}`,
  ];
  if (own.share < alarmMin) {
    lines.push(
      `warning: that is below ${pct(alarmMin)}, under which the ${a.ensemble}-${id}-agreement alarm fires ` +
        '(custom.alarms.memberAgreementMin in serverless.yml): deployed, it would page on traffic like this ' +
        'from the start. Check the model, or lower the threshold if this member is meant to differ',
    );
  }
  return lines;
}
