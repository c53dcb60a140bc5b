import { type ObjectSink, openSink } from '../adapters/object-sink.js';
import type { Prepared } from '../batch-prepare/prepare.js';
import { isDegradedLine, resultsHeader } from '../batch-store/store-batch.js';
import { csvField } from '../core/batch-rows.js';
import { BatchInputError, UploadReplacedError } from '../core/errors.js';
import {
  type BatchCounts,
  batchCountsFromMetadata,
  ERRORS_HEADER,
  type JobRecord,
  jobKeys,
} from '../core/jobs.js';
import { readLines } from '../core/lines.js';
import type { Manifest } from '../core/manifest.js';
import { causeMessage } from '../core/outcomes.js';
import type { JobStore, ObjectStore } from '../core/ports.js';
import { resolveTarget } from '../core/targets.js';

/** The batch execution's state when it reaches the end: whatever steps ran, and any failure. */
export interface FinalizeEvent {
  jobId: string;
  bucket: string;
  ensemble: string;
  prepared?: Prepared;
  failure?: { Error?: string; Cause?: string };
}

/**
 * The job error code of what Prepare throws about the upload itself, by the error's name (Step
 * Functions' `Error`), from the error classes; anything else is `batch_failed`.
 */
const PREPARE_FAILURES: Record<string, string> = Object.fromEntries(
  [new BatchInputError(''), new UploadReplacedError('')].map((e) => [e.name, e.code]),
);

/**
 * Ends a job. After a failed preparation the job is FAILED with the reason. Otherwise the parts
 * written by the batches are joined, in line order, into one results file and one error file
 * (malformed rows, batches below the quorum, batches whose child execution failed), and the
 * job's counters are set to exact figures (rows from the files, cached and scored rows from each
 * batch's stored counts): the per-batch progress updates may have counted a retried batch twice. A Distributed Map that failed past its tolerance still keeps every row
 * already scored.
 */
export async function finalize(
  event: FinalizeEvent,
  deps: { manifest: Manifest; jobs: JobStore; objects: ObjectStore; now?: () => Date },
): Promise<JobRecord> {
  const finishedAt = (deps.now?.() ?? new Date()).toISOString();
  const { jobId } = event;
  if (!event.prepared) {
    const reason = causeMessage(event.failure?.Cause ?? 'the job could not be prepared');
    const code = PREPARE_FAILURES[event.failure?.Error ?? ''] ?? 'batch_failed';
    await deps.jobs.updateJob(jobId, { status: 'FAILED', finishedAt, error: { code, message: reason } });
    return (await deps.jobs.getJob(jobId)) as JobRecord;
  }
  const labels = resolveTarget(deps.manifest, event.ensemble, true).labels;
  const results = openSink(deps.objects, jobKeys.results(jobId), 'text/csv');
  const errors = openSink(deps.objects, jobKeys.errors(jobId), 'text/csv');
  let rowsOk = 0;
  let rowsDegraded = 0;
  let rowsFailed = 0;
  let batchFiles: string[] = [];
  try {
    await results.write(resultsHeader(labels));
    const partKeys = await deps.objects.list(jobKeys.partsPrefix(jobId));
    for (const key of partKeys) {
      await copyLines(deps.objects, key, results, (text) => {
        rowsOk++;
        if (isDegradedLine(text)) rowsDegraded++;
      });
    }
    await errors.write(ERRORS_HEADER);
    const countError = () => {
      rowsFailed++;
    };
    await copyLines(deps.objects, jobKeys.prepareErrors(jobId), errors, countError);
    const batchErrorKeys = await deps.objects.list(jobKeys.batchErrorsPrefix(jobId));
    for (const key of batchErrorKeys) {
      await copyLines(deps.objects, key, errors, countError);
    }
    batchFiles = [...partKeys, ...batchErrorKeys];
    const written = new Set(batchFiles.map(firstLineOf));
    rowsFailed += await failedChildren(deps.objects, jobId, errors, written);
    const unaccounted = event.prepared.rowsTotal - rowsOk - rowsFailed;
    if (unaccounted > 0) {
      await errors.write(
        `,,${csvField(`${unaccounted} rows were not scored: their batches did not finish`)}\n`,
      );
      rowsFailed += unaccounted;
    }
  } catch (err) {
    await Promise.allSettled([results.close(), errors.close()]);
    throw err;
  }
  // A results file that failed to store must not be reported as written.
  await Promise.all([results.close(), errors.close()]);
  // Once per stored batch, whatever the live progress counted for retried ones.
  const batches = await countsOfStoredBatches(deps, jobId, batchFiles);
  const rowsCached = batches.reduce((sum, b) => sum + b.cached, 0);
  const rowsScored = batches.reduce((sum, b) => sum + b.scored, 0);
  const mapFailed = event.failure !== undefined;
  await deps.jobs.updateJob(jobId, {
    status: mapFailed ? 'FAILED' : 'SUCCEEDED',
    rowsTotal: event.prepared.rowsTotal,
    rowsOk,
    rowsFailed,
    rowsDegraded,
    rowsCached,
    rowsScored,
    finishedAt,
    resultsLocation: deps.objects.location(jobKeys.results(jobId)),
    errorsLocation: deps.objects.location(jobKeys.errors(jobId)),
    ...(mapFailed
      ? {
          error: {
            code: 'batch_failed',
            message: `scoring stopped (${event.failure?.Error}): ${causeMessage(event.failure?.Cause ?? '')}; rows scored before it are kept`,
          },
        }
      : {}),
  });
  return (await deps.jobs.getJob(jobId)) as JobRecord;
}

/** A batch file's first line, from its key (`.../<zero-padded line>.csv`). */
const firstLineOf = (key: string) => Number(/(\d+)\.csv$/.exec(key)?.[1] ?? Number.NaN);

/**
 * The counts of every batch that stored its files: its counts item, or, for a batch whose counts
 * write failed after its files were stored, the copy its files carry. A batch with neither (files
 * written before the copy existed) counts nothing, as before.
 */
async function countsOfStoredBatches(
  deps: { jobs: JobStore; objects: ObjectStore },
  jobId: string,
  batchFiles: readonly string[],
): Promise<BatchCounts[]> {
  const counts = await deps.jobs.batchCounts(jobId);
  const known = new Set(counts.map((c) => c.firstLine));
  for (const key of batchFiles) {
    const firstLine = firstLineOf(key);
    if (known.has(firstLine)) continue;
    known.add(firstLine);
    const copy = batchCountsFromMetadata(firstLine, await deps.objects.metadata(key));
    if (copy) counts.push(copy);
  }
  return counts;
}

async function copyLines(objects: ObjectStore, key: string, out: ObjectSink, onLine: (text: string) => void) {
  let source: AsyncIterable<Uint8Array>;
  try {
    source = await objects.read(key);
  } catch (err) {
    if ((err as Error).name === 'NotFoundError') return;
    throw err;
  }
  for await (const { text } of readLines(source)) {
    if (text === '') continue;
    onLine(text);
    await out.write(`${text}\n`);
  }
}

/** A child execution entry as the Distributed Map's ResultWriter stores it. */
interface ChildResult {
  Input?: string;
  Error?: string;
  Cause?: string;
}

/**
 * Rows of batches whose child execution failed, from the ResultWriter's FAILED_<n>.json files
 * (each entry carries the child's input, hence its rows' lines and ids).
 */
async function failedChildren(
  objects: ObjectStore,
  jobId: string,
  out: ObjectSink,
  written: ReadonlySet<number>,
): Promise<number> {
  let count = 0;
  const keys = (await objects.list(jobKeys.mapResultsPrefix(jobId))).filter((k) =>
    /\/FAILED_\d+\.json$/.test(k),
  );
  for (const key of keys) {
    let text = '';
    for await (const chunk of await objects.read(key)) text += Buffer.from(chunk).toString('utf8');
    for (const child of JSON.parse(text) as ChildResult[]) {
      const items =
        (JSON.parse(child.Input ?? '{}') as { Items?: { line: number; id: string }[] }).Items ?? [];
      // A child that failed after storing its batch (e.g. the progress update) is already counted.
      if (items[0] && written.has(items[0].line)) continue;
      const why = `batch failed (${child.Error ?? 'error'}): ${causeMessage(child.Cause ?? '')}`;
      for (const item of items) {
        await out.write(`${item.line},${csvField(String(item.id))},${csvField(why)}\n`);
        count++;
      }
    }
  }
  return count;
}
