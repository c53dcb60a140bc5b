import { openSink } from '../adapters/object-sink.js';
import {
  type BadRow,
  type CsvLayout,
  csvField,
  csvLayout,
  type GoodRow,
  parseCsvRow,
  parseJsonlRow,
} from '../core/batch-rows.js';
import { BatchInputError, FanoutError } from '../core/errors.js';
import { jobKeys } from '../core/jobs.js';
import { readLines } from '../core/lines.js';
import type { Manifest } from '../core/manifest.js';
import type { JobStore, ObjectStore } from '../core/ports.js';
import {
  type FanOutMember,
  fanOutMembers,
  resolveTarget,
  type TimeoutCut,
  withinBudget,
} from '../core/targets.js';

/**
 * The batch execution's input, as the trigger started it (the state machine passes it whole, so a
 * field the trigger leaves out, such as `etag`, is simply absent).
 */
export interface PrepareEvent {
  jobId: string;
  bucket: string;
  key: string;
  etag?: string;
  ensemble: string;
  format: 'csv' | 'jsonl';
  createdAt: string;
}

/** What the Distributed Map needs: where the normalised rows are, and which members to run. */
export interface Prepared {
  rowsTotal: number;
  rowsValid: number;
  rowsMalformed: number;
  rowsKey: string;
  members: FanOutMember[];
}

/** What preparing a job needs. */
export interface PrepareDeps {
  manifest: Manifest;
  jobs: JobStore;
  objects: ObjectStore;
  now?: () => Date;
  /** The longest a member may wait in the runner (see runnerMemberLimit); longer timeouts are cut. */
  memberLimitSeconds?: number;
  /** Told which members' timeouts were cut for this job. */
  onBudgetCut?: (cut: TimeoutCut[]) => void;
}

/**
 * Streams the upload once: checks every row (column count, empty and non-numeric values, JSON
 * shape), writes the good rows as JSON Lines `{line, id, features}` for the Distributed Map's
 * ItemReader and the bad ones to the error file with their line number and reason.
 *
 * Why not read the upload with the ItemReader directly: Step Functions' CSV reader fills missing
 * fields with empty strings and silently drops extra ones, so a row with the wrong number of
 * columns could not be reported (or would be scored wrong).
 */
export async function prepare(event: PrepareEvent, deps: PrepareDeps): Promise<Prepared> {
  checkEvent(event);
  const target = resolveTarget(deps.manifest, event.ensemble, true);
  // `input` (which upload this is) is the trigger's to write: it knows the event's identity.
  await deps.jobs.updateJob(event.jobId, {
    status: 'RUNNING',
    ensemble: event.ensemble,
    format: event.format,
    createdAt: event.createdAt,
    startedAt: (deps.now?.() ?? new Date()).toISOString(),
    rowsTotal: 0,
    rowsOk: 0,
    rowsFailed: 0,
    rowsDegraded: 0,
    rowsCached: 0,
    rowsScored: 0,
  });
  const rowsOut = openSink(deps.objects, jobKeys.rows(event.jobId), 'application/x-ndjson');
  const errorsOut = openSink(deps.objects, jobKeys.prepareErrors(event.jobId), 'text/csv');
  let layout: CsvLayout | undefined;
  let rowsTotal = 0;
  let rowsMalformed = 0;
  let sawHeader = false;
  let bytes = 0;
  try {
    // The upload this job is for: a newer PUT of the same key is another job, never these rows.
    const source = await deps.objects.read(event.key, { etag: event.etag });
    const lines = readLines(
      source,
      (chunk, offset) => {
        bytes += chunk.length;
        const nul = chunk.indexOf(0);
        if (nul >= 0) throw new BatchInputError(`the file is not text (a NUL byte at byte ${offset + nul})`);
      },
      (offset) => new BatchInputError(`the file is not UTF-8 text (invalid bytes near byte ${offset})`),
    );
    for await (const { line, text } of lines) {
      if (text.trim() === '') continue;
      if (event.format === 'csv' && !sawHeader) {
        sawHeader = true;
        const parsed = csvLayout(text, target.features);
        if ('error' in parsed) throw new BatchInputError(parsed.error);
        layout = parsed;
        continue;
      }
      rowsTotal++;
      const row: GoodRow | BadRow =
        event.format === 'csv'
          ? parseCsvRow(text, line, layout as CsvLayout, target.features)
          : parseJsonlRow(text, line, target.features);
      if ('features' in row) {
        await rowsOut.write(`${JSON.stringify(row)}\n`);
      } else {
        rowsMalformed++;
        await errorsOut.write(`${row.line},${csvField(row.id ?? '')},${csvField(row.reason)}\n`);
      }
    }
  } catch (err) {
    await Promise.allSettled([rowsOut.close(), errorsOut.close()]);
    throw err;
  }
  // Outside the try: a failed upload of the normalised rows must fail the step, not pass silently.
  await Promise.all([rowsOut.close(), errorsOut.close()]);
  if (bytes === 0) throw new BatchInputError('the file is empty');
  if (rowsTotal === 0) {
    throw new BatchInputError(
      event.format === 'csv' ? 'the file has a header but no rows' : 'the file has no rows',
    );
  }
  await deps.jobs.updateJob(event.jobId, { rowsTotal, rowsFailed: rowsMalformed });
  return {
    rowsTotal,
    rowsValid: rowsTotal - rowsMalformed,
    rowsMalformed,
    rowsKey: jobKeys.rows(event.jobId),
    // Shadows run on batch rows too (their agreement is measured); a canary never takes a batch.
    members:
      deps.memberLimitSeconds === undefined
        ? fanOutMembers(deps.manifest, target)
        : withinBudget(fanOutMembers(deps.manifest, target), deps.memberLimitSeconds, deps.onBudgetCut),
  };
}

/** The execution input's fields, named when one is missing (an execution started by hand, say). */
function checkEvent(event: PrepareEvent): void {
  for (const field of ['jobId', 'bucket', 'key', 'ensemble', 'createdAt'] as const) {
    if (typeof event?.[field] !== 'string' || event[field] === '') {
      throw new FanoutError(
        `the batch execution input has no "${field}" (a string): it is what the batch trigger sets`,
      );
    }
  }
  if (event.format !== 'csv' && event.format !== 'jsonl') {
    throw new FanoutError(
      `the batch execution input's "format" is ${JSON.stringify(event.format)}: "csv" or "jsonl"`,
    );
  }
  if (event.etag !== undefined && typeof event.etag !== 'string') {
    throw new FanoutError(`the batch execution input's "etag" is not a string`);
  }
}
