import { type AgreementReport, agreementReport } from '../core/agreement.js';
import { csvField } from '../core/batch-rows.js';
import { combine, memberInfoFrom, type PredictionRecord } from '../core/combine.js';
import { QuorumNotMetError, ValidationError } from '../core/errors.js';
import { jobKeys, type RowResult } from '../core/jobs.js';
import type { Manifest } from '../core/manifest.js';
import type { JobStore, ObjectStore } from '../core/ports.js';
import { resolveTarget } from '../core/targets.js';
import { UNCERTAINTY_COLUMNS, uncertaintyRow } from '../core/uncertainty.js';

/** One batch of rows after the fan-out: their lines and ids, and every member's outcome. */
export interface StoreBatchEvent {
  jobId: string;
  ensemble: string;
  lines: number[];
  ids: string[];
  members: unknown[];
}

/** What a batch reports back to the Distributed Map (small: it ends up in the results writer). */
export interface BatchSummary {
  firstLine: number;
  rows: number;
  ok: number;
  failed: number;
  degraded: number;
}

/**
 * Combines a batch with the same strategy and quorum as the synchronous path, then stores it:
 * one DynamoDB item per row, a results part file, and the job's progress. Below the quorum every
 * row of the batch goes to the batch's error part with the reason naming the failed members.
 * Every write is keyed (rows by job and row id, parts by the batch's first line), so a retried
 * batch overwrites rather than duplicates. Shadow members never count; how they (and every
 * member) agreed with the answer goes to `onAgreement` once the batch is stored.
 */
export async function storeBatch(
  event: StoreBatchEvent,
  deps: {
    manifest: Manifest;
    jobs: JobStore;
    objects: ObjectStore;
    onAgreement?: (report: AgreementReport) => void;
  },
): Promise<BatchSummary> {
  check(event);
  const target = resolveTarget(deps.manifest, event.ensemble, true);
  const firstLine = event.lines[0] as number;
  const rows = event.lines.length;
  let record: PredictionRecord;
  try {
    record = combine(target, event.members, rows, memberInfoFrom(deps.manifest), {
      id: `${event.jobId}#${firstLine}`,
      createdAt: new Date().toISOString(),
    });
  } catch (err) {
    if (!(err instanceof QuorumNotMetError)) throw err;
    const lines = event.lines.map(
      (line, i) => `${line},${csvField(event.ids[i] ?? '')},${csvField(err.message)}\n`,
    );
    await deps.objects.write(jobKeys.batchErrors(event.jobId, firstLine), lines.join(''), 'text/csv');
    await deps.jobs.addProgress(event.jobId, { rowsOk: 0, rowsFailed: rows, rowsDegraded: 0 });
    return { firstLine, rows, ok: 0, failed: rows, degraded: 0 };
  }
  // A failed shadow degrades nothing, so it is not a failed member of the row either.
  const failedMembers = record.members.filter((m) => m.status !== 'ok' && !m.shadow).map((m) => m.model);
  const results: RowResult[] = record.predictions.map((p, i) => ({
    rowId: event.ids[i] as string,
    line: event.lines[i] as number,
    label: p.label,
    probabilities: p.probabilities,
    degraded: record.degraded,
    uncertainty: p.uncertainty,
    ...(failedMembers.length ? { failedMembers } : {}),
  }));
  await deps.jobs.putRows(event.jobId, results);
  const csv = results
    .map(
      (r) =>
        `${csvField(r.rowId)},${csvField(r.label)},${target.labels.map((l) => r.probabilities[l]).join(',')},${r.degraded},${uncertaintyRow(r.uncertainty).join(',')}\n`,
    )
    .join('');
  await deps.objects.write(jobKeys.part(event.jobId, firstLine), csv, 'text/csv');
  const degraded = record.degraded ? rows : 0;
  await deps.jobs.addProgress(event.jobId, { rowsOk: rows, rowsFailed: 0, rowsDegraded: degraded });
  deps.onAgreement?.(agreementReport(deps.manifest, target, record, event.members));
  return { firstLine, rows, ok: rows, failed: 0, degraded };
}

function check(event: StoreBatchEvent): void {
  const problems: string[] = [];
  if (typeof event?.jobId !== 'string') problems.push('"jobId" must be a string');
  if (typeof event?.ensemble !== 'string') problems.push('"ensemble" must be a string');
  if (!Array.isArray(event?.lines) || event.lines.length === 0)
    problems.push('"lines" must be a non-empty array');
  if (!Array.isArray(event?.ids) || event.ids.length !== event?.lines?.length) {
    problems.push('"ids" must have one id per line');
  }
  if (!Array.isArray(event?.members)) problems.push('"members" must be an array of member results');
  if (problems.length) throw new ValidationError(`batch event: ${problems.join('; ')}`);
}

/**
 * The results file's header for an ensemble's labels: id, label, one probability per label,
 * degraded, then the uncertainty columns (agreement, margin, entropy, spread), last so that
 * readers of the earlier columns by position are not disturbed.
 */
export function resultsHeader(labels: readonly string[]): string {
  return `id,label,${labels.map((l) => csvField(`probability_${l}`)).join(',')},degraded,${UNCERTAINTY_COLUMNS.join(',')}\n`;
}

/** Whether a results line (as written by storeBatch) is a degraded row. */
export function isDegradedLine(text: string): boolean {
  // The uncertainty columns after `degraded` are plain numbers: no quotes, no commas.
  return text.split(',').at(-1 - UNCERTAINTY_COLUMNS.length) === 'true';
}
