import { createHash } from 'node:crypto';
import type { Uncertainty } from './uncertainty.js';

export type JobStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** A batch scoring job as stored and served by `GET /v1/jobs/{jobId}`. */
export interface JobRecord {
  jobId: string;
  status: JobStatus;
  ensemble: string;
  input: { bucket: string; key: string; etag?: string };
  format?: 'csv' | 'jsonl';
  rowsTotal: number;
  rowsOk: number;
  rowsFailed: number;
  rowsDegraded: number;
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
  uncertainty: Uncertainty;
  failedMembers?: string[];
}

/** Progress a finished batch adds to its job. */
export interface JobProgress {
  rowsOk: number;
  rowsFailed: number;
  rowsDegraded: number;
}

/**
 * The job id for an uploaded object: a hash of bucket, key and ETag, so a duplicated S3 event
 * names the same job (and the same Step Functions execution), while re-uploading changed content
 * starts a new one. 40 characters: within the execution-name limit of 80.
 */
export function jobIdFor(bucket: string, key: string, etag: string): string {
  const clean = etag.replaceAll('"', '');
  return `job-${createHash('sha256').update(`${bucket}\n${key}\n${clean}`).digest('hex').slice(0, 36)}`;
}

/** Where a job's files live in the data bucket. */
export const jobKeys = {
  rows: (jobId: string) => `jobs/${jobId}/rows.jsonl`,
  prepareErrors: (jobId: string) => `jobs/${jobId}/prepare-errors.csv`,
  partsPrefix: (jobId: string) => `jobs/${jobId}/parts/`,
  part: (jobId: string, firstLine: number) =>
    `jobs/${jobId}/parts/${String(firstLine).padStart(12, '0')}.csv`,
  batchErrorsPrefix: (jobId: string) => `jobs/${jobId}/batch-errors/`,
  batchErrors: (jobId: string, firstLine: number) =>
    `jobs/${jobId}/batch-errors/${String(firstLine).padStart(12, '0')}.csv`,
  mapResultsPrefix: (jobId: string) => `jobs/${jobId}/map/`,
  results: (jobId: string) => `results/${jobId}.csv`,
  errors: (jobId: string) => `results/${jobId}.errors.csv`,
};

/** `incoming/<ensemble>/<name>` → the ensemble, or undefined if the key is not under incoming/. */
export function ensembleOfKey(key: string): string | undefined {
  const m = /^incoming\/([^/]+)\/[^/]+$/.exec(key);
  return m?.[1];
}

/** The error file's header; one line per rejected row. */
export const ERRORS_HEADER = 'line,id,reason\n';
