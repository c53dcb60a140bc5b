import { type AgreementReport, agreementReport } from '../core/agreement.js';
import { csvField } from '../core/batch-rows.js';
import {
  combine,
  type EnsemblePrediction,
  fanOutOutcomes,
  memberInfoFrom,
  type PredictionRecord,
} from '../core/combine.js';
import { QuorumNotMetError, ValidationError } from '../core/errors.js';
import { batchCountsMetadata, jobKeys, type RowResult } from '../core/jobs.js';
import type { Manifest } from '../core/manifest.js';
import { type MemberObservation, memberObservations } from '../core/outcomes.js';
import type { JobStore, ObjectStore, ResultCache } from '../core/ports.js';
import { type CacheObserver, hasCache, storeFresh } from '../core/result-cache.js';
import { resolveTarget } from '../core/targets.js';
import { UNCERTAINTY_COLUMNS, uncertaintyRow } from '../core/uncertainty.js';

/**
 * One batch of rows after the fan-out: their lines and ids, every member's outcome, and the plan
 * that said which rows the members scored (see batch-plan). Without a plan every row was scored,
 * in order.
 */
export interface StoreBatchEvent {
  jobId: string;
  ensemble: string;
  lines: number[];
  ids: string[];
  members: unknown[];
  /** The distinct rows the members scored (the plan's `instances`). */
  instances?: number[][];
  /** Per row: `i >= 0` is `instances[i]`'s answer, `i < 0` is `cached[-i - 1]`. */
  source?: number[];
  /** Predictions from the result cache (their uncertainty included). */
  cached?: EnsemblePrediction[];
}

/** What a batch reports back to the Distributed Map (small: it ends up in the results writer). */
export interface BatchSummary {
  firstLine: number;
  rows: number;
  ok: number;
  failed: number;
  degraded: number;
  /** Rows answered from the result cache. */
  cached: number;
  /** Distinct rows the members ran on. */
  scored: number;
}

/** What storing a batch needs; `cache` fills the result cache for ensembles that have one. */
export interface StoreBatchDeps {
  manifest: Manifest;
  jobs: JobStore;
  objects: ObjectStore;
  cache?: ResultCache;
  onCacheResult?: CacheObserver;
  warn?: (message: string, data: Record<string, unknown>) => void;
  now?: () => Date;
  /** How every member that ran, shadows included, agreed with the answers (see agreement.ts). */
  onAgreement?: (report: AgreementReport) => void;
}

/** A stored batch: its summary, and how each member's call went (for the metrics, not the map). */
export interface StoredBatch {
  summary: BatchSummary;
  members: MemberObservation[];
}

/**
 * Combines the scored rows with the same strategy and quorum as the synchronous path, puts every
 * row's answer back in line order (a repeated row shares its first copy's answer, a cached row has
 * its stored prediction), then stores the batch: its rows and counts in DynamoDB (one item for a
 * batch of ordinary rows), a results part file, and the job's progress. Below the quorum the
 * scored rows go to the batch's error part with the reason naming the failed members (cached rows
 * are still answered). A non-degraded batch fills the result cache; a failed cache write only
 * warns. Every write is keyed by the job and the batch's first line, so a retried batch overwrites
 * rather than duplicates. Shadow members never count; how they and every member agreed with the
 * scored rows' answers goes to `onAgreement` once the batch is stored.
 */
export async function storeBatch(event: StoreBatchEvent, deps: StoreBatchDeps): Promise<StoredBatch> {
  check(event);
  const target = resolveTarget(deps.manifest, event.ensemble, true);
  const firstLine = event.lines[0] as number;
  const rows = event.lines.length;
  const source = event.source ?? event.lines.map((_, i) => i);
  const cachedPredictions = event.cached ?? [];
  const scored = event.source ? (event.instances?.length ?? 0) : rows;
  const createdAt = (deps.now?.() ?? new Date()).toISOString();
  let record: PredictionRecord | undefined;
  let failure: QuorumNotMetError | undefined;
  if (scored > 0) {
    try {
      record = combine(target, event.members, scored, memberInfoFrom(deps.manifest), {
        id: `${event.jobId}#${firstLine}`,
        createdAt,
      });
    } catch (err) {
      if (!(err instanceof QuorumNotMetError)) throw err;
      failure = err;
    }
  }
  // A failed shadow degrades nothing, so it is not a failed member of the row either.
  const failedMembers =
    record?.members.filter((m) => m.status !== 'ok' && !m.shadow).map((m) => m.model) ?? [];
  const results: RowResult[] = [];
  const errorLines: string[] = [];
  let fromCache = 0;
  source.forEach((s, i) => {
    const rowId = event.ids[i] as string;
    const line = event.lines[i] as number;
    if (s < 0) {
      const p = cachedPredictions[-s - 1] as EnsemblePrediction;
      fromCache++;
      results.push({
        rowId,
        line,
        label: p.label,
        probabilities: p.probabilities,
        degraded: false,
        ...(p.uncertainty ? { uncertainty: p.uncertainty } : {}),
        cached: true,
      });
    } else if (record) {
      const p = record.predictions[s] as EnsemblePrediction;
      results.push({
        rowId,
        line,
        label: p.label,
        probabilities: p.probabilities,
        degraded: record.degraded,
        uncertainty: p.uncertainty,
        ...(failedMembers.length ? { failedMembers } : {}),
      });
    } else {
      errorLines.push(`${line},${csvField(rowId ?? '')},${csvField((failure as Error).message)}\n`);
    }
  });
  const counts = batchCountsMetadata({ cached: fromCache, scored });
  if (results.length) {
    const csv = results
      .map(
        (r) =>
          `${csvField(r.rowId)},${csvField(r.label)},${target.labels.map((l) => r.probabilities[l]).join(',')},${r.degraded},${uncertaintyCells(r)}\n`,
      )
      .join('');
    await deps.objects.write(jobKeys.part(event.jobId, firstLine), csv, 'text/csv', counts);
  }
  if (errorLines.length) {
    const key = jobKeys.batchErrors(event.jobId, firstLine);
    await deps.objects.write(key, errorLines.join(''), 'text/csv', counts);
  }
  // After the batch's files: a batch whose files failed is a failed batch, and its counts must not
  // reach the job's totals. Kept per batch for the job's exact totals (a retried batch replaces its
  // own); the progress below is the live view, which a retry would count twice. The files carry a
  // copy of the counts, which Finalize reads for a batch whose counts item this write failed to store.
  await deps.jobs.putBatch(event.jobId, { firstLine, cached: fromCache, scored, rows: results });
  if (record && event.instances) await fillCache(target, event, record, deps);
  if (record) deps.onAgreement?.(agreementReport(deps.manifest, target, record, event.members));
  const degraded = results.filter((r) => r.degraded).length;
  const summary: BatchSummary = {
    firstLine,
    rows,
    ok: results.length,
    failed: errorLines.length,
    degraded,
    cached: fromCache,
    scored,
  };
  await deps.jobs.addProgress(event.jobId, {
    rowsOk: summary.ok,
    rowsFailed: summary.failed,
    rowsDegraded: degraded,
    rowsCached: fromCache,
    rowsScored: scored,
  });
  // Observed from the distinct rows the members ran on; a fully cached batch ran none.
  let members: MemberObservation[] = [];
  if (record) members = memberObservations(record.members, scored);
  else if (failure)
    members = memberObservations(
      fanOutOutcomes(target, event.members, scored, memberInfoFrom(deps.manifest)),
      scored,
    );
  return { summary, members };
}

async function fillCache(
  target: ReturnType<typeof resolveTarget>,
  event: StoreBatchEvent,
  record: PredictionRecord,
  deps: StoreBatchDeps,
): Promise<void> {
  if (!deps.cache || !hasCache(target)) return;
  const rows = event.instances as number[][];
  const { error } = await storeFresh(
    deps.cache,
    target,
    deps.manifest.models,
    record,
    rows,
    deps.now?.() ?? new Date(),
  );
  if (error) {
    deps.warn?.('result cache write failed; the batch is stored, not cached', {
      jobId: event.jobId,
      ensemble: target.name,
      reason: error,
    });
    deps.onCacheResult?.({ ensemble: target.name, path: 'batch', hits: 0, misses: 0, errors: 1 });
  }
}

/** A row's uncertainty columns; empty for a cached answer stored before uncertainty existed. */
function uncertaintyCells(r: RowResult): string {
  return r.uncertainty
    ? uncertaintyRow(r.uncertainty).join(',')
    : UNCERTAINTY_COLUMNS.map(() => '').join(',');
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
  if (event?.source !== undefined) {
    const scored = Array.isArray(event.instances) ? event.instances.length : -1;
    const cached = Array.isArray(event.cached) ? event.cached.length : -1;
    if (scored < 0) problems.push('"instances" must be the scored rows');
    if (cached < 0) problems.push('"cached" must be an array of predictions');
    if (
      !Array.isArray(event.source) ||
      event.source.length !== event.lines?.length ||
      !event.source.every((s) => Number.isInteger(s) && (s >= 0 ? s < scored : -s - 1 < cached))
    ) {
      problems.push('"source" must name, for each line, a scored row or a cached prediction');
    }
  }
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
