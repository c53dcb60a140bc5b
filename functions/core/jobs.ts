import { createHash } from 'node:crypto';
import type { Uncertainty } from './uncertainty.js';

export type JobStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** A batch scoring job as stored and served by `GET /v1/jobs/{jobId}`. */
export interface JobRecord {
  jobId: string;
  status: JobStatus;
  ensemble: string;
  input: {
    bucket: string;
    key: string;
    etag?: string;
    sequencer?: string;
    versionId?: string;
    uploadId?: string;
  };
  format?: 'csv' | 'jsonl';
  rowsTotal: number;
  rowsOk: number;
  rowsFailed: number;
  rowsDegraded: number;
  /** Rows answered from the result cache (ensembles with a cache). */
  rowsCached?: number;
  /** Distinct rows the members ran on: repeated and cached rows are not scored again. */
  rowsScored?: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  resultsLocation?: string;
  errorsLocation?: string;
  error?: { code: string; message: string };
}

/** One scored row as stored in DynamoDB (keyed by job id and row id). */
export interface RowResult {
  rowId: string;
  line: number;
  label: string;
  probabilities: Record<string, number>;
  degraded: boolean;
  /** How sure the ensemble was; absent only for a cached answer stored before it existed. */
  uncertainty?: Uncertainty;
  failedMembers?: string[];
  /** Present when the answer came from the result cache. */
  cached?: boolean;
}

/**
 * What one stored batch counted that the job's files do not show: rows answered from the result
 * cache, distinct rows the members ran on. Kept per batch (keyed by its first line), so a batch
 * stored twice (a retry) is counted once when the job finishes.
 */
export interface BatchCounts {
  firstLine: number;
  cached: number;
  scored: number;
}

/** One stored batch: its counts and the rows it answered, in line order. */
export interface StoredRows extends BatchCounts {
  rows: readonly RowResult[];
}

/** Progress a finished batch adds to its job. */
export interface JobProgress {
  rowsOk: number;
  rowsFailed: number;
  rowsDegraded: number;
  rowsCached?: number;
  rowsScored?: number;
}

/** The object metadata key an uploader may set to name its upload (`x-amz-meta-fanout-upload-id`). */
export const UPLOAD_ID_METADATA = 'fanout-upload-id';

/** What tells one upload of an object from another upload of the same key. */
export interface UploadIdentity {
  /** The uploader's own id for this upload (object metadata `fanout-upload-id`), if it set one. */
  uploadId?: string;
  /** The object's version on a versioned bucket (S3 sends "null" on an unversioned one). */
  versionId?: string;
  /** The event's sequencer: S3 gives each PUT of a key its own, increasing, hex string. */
  sequencer?: string;
  etag?: string;
}

/**
 * Which upload an event is about, as the job id hashes it: the uploader's own upload id, else the
 * version id, else the event's sequencer. Every delivery of one event carries the same ones, so a
 * duplicated event names the same job; a new upload, even of the same bytes (same ETag), gets a
 * new sequencer or version and so a new job. The ETag is the last resort (no event field at all).
 */
export function uploadKeyOf(u: UploadIdentity): string {
  if (u.uploadId) return `upload:${u.uploadId}`;
  if (u.versionId && u.versionId !== 'null') return `version:${u.versionId}`;
  if (u.sequencer) return `sequencer:${u.sequencer}`;
  return `etag:${(u.etag ?? '').replaceAll('"', '')}`;
}

/**
 * The job id for an upload: a hash of bucket, key and the upload's key ({@link uploadKeyOf}), so
 * one event delivered twice is one job (and one Step Functions execution: the name is the job
 * id), and each new upload is a new job. 40 characters: within the execution-name limit of 80.
 */
export function jobIdFor(bucket: string, key: string, uploadKey: string): string {
  return `job-${createHash('sha256').update(`${bucket}\n${key}\n${uploadKey}`).digest('hex').slice(0, 36)}`;
}

/**
 * A batch's first line as keys name it (its files here, its DynamoDB items): zero-padded so a
 * job's batches sort by line.
 */
export const lineKey = (firstLine: number) => String(firstLine).padStart(12, '0');

/** Where a job's files live in the data bucket. */
export const jobKeys = {
  rows: (jobId: string) => `jobs/${jobId}/rows.jsonl`,
  prepareErrors: (jobId: string) => `jobs/${jobId}/prepare-errors.csv`,
  partsPrefix: (jobId: string) => `jobs/${jobId}/parts/`,
  part: (jobId: string, firstLine: number) => `jobs/${jobId}/parts/${lineKey(firstLine)}.csv`,
  batchErrorsPrefix: (jobId: string) => `jobs/${jobId}/batch-errors/`,
  batchErrors: (jobId: string, firstLine: number) => `jobs/${jobId}/batch-errors/${lineKey(firstLine)}.csv`,
  mapResultsPrefix: (jobId: string) => `jobs/${jobId}/map/`,
  results: (jobId: string) => `results/${jobId}.csv`,
  errors: (jobId: string) => `results/${jobId}.errors.csv`,
};

/**
 * A batch's counts as user metadata of its files (`x-amz-meta-fanout-cached`, `-scored`): a copy of
 * its counts item, so a batch whose counts write failed after its files were stored still counts
 * exactly in the job's totals.
 */
export function batchCountsMetadata(counts: Pick<BatchCounts, 'cached' | 'scored'>): Record<string, string> {
  return { 'fanout-cached': String(counts.cached), 'fanout-scored': String(counts.scored) };
}

/** The counts {@link batchCountsMetadata} stored, or undefined for a file that carries none. */
export function batchCountsFromMetadata(
  firstLine: number,
  metadata: Record<string, string> | undefined,
): BatchCounts | undefined {
  const cached = metadata?.['fanout-cached'];
  const scored = metadata?.['fanout-scored'];
  if (!cached || !scored || !/^\d+$/.test(cached) || !/^\d+$/.test(scored)) return undefined;
  return { firstLine, cached: Number(cached), scored: Number(scored) };
}

/** An object key as S3 event notifications carry it (URL-encoded, spaces as `+`), decoded. */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** `incoming/<ensemble>/<name>` → the ensemble, or undefined if the key is not under incoming/. */
export function ensembleOfKey(key: string): string | undefined {
  const m = /^incoming\/([^/]+)\/[^/]+$/.exec(key);
  return m?.[1];
}

/** The error file's header; one line per rejected row. */
export const ERRORS_HEADER = 'line,id,reason\n';
