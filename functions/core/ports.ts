import type { PredictionRecord } from './combine.js';
import type { BatchCounts, JobProgress, JobRecord, StoredRows } from './jobs.js';
import type { ModelSpec } from './manifest.js';
import type { CacheEntry } from './result-cache.js';
import type { FanOutMember } from './targets.js';

/** Scores rows (already in feature order) with one model: `probabilities[row][class]`. */
export interface Scorer {
  score(model: ModelSpec, rows: readonly (readonly number[])[]): Promise<number[][]>;
}

/** Result of storing a prediction: the stored record, which is the earlier one on a repeat id. */
export interface PutResult {
  record: PredictionRecord;
  created: boolean;
}

/** Where prediction records live (DynamoDB on AWS and in the local stack). */
export interface PredictionStore {
  /**
   * Stores `record` unless a record with its id exists (never overwrites one). It completes an
   * in-progress claim on the id, keeping the claim's request hash. Returns what is stored.
   */
  putPrediction(record: PredictionRecord): Promise<PutResult>;
  getPrediction(id: string): Promise<PredictionRecord | undefined>;
}

/** A client id's claim on running one request: the in-progress marker the first request writes. */
export interface Claim {
  id: string;
  /** Unique per claim: only its owner may release it. */
  token: string;
  requestHash: string;
  ensemble: string;
  /** Epoch milliseconds after which another request may take the id over. */
  expiresAt: number;
}

/** What a client id holds: a finished record, or a claim whose request is still running. */
export type IdEntry =
  | { state: 'completed'; record: PredictionRecord; requestHash?: string }
  | { state: 'in-progress'; ensemble: string; requestHash: string; expiresAt: number };

/**
 * Idempotency of client ids (as Powertools Idempotency does it): a conditional write claims an
 * id before its request runs, so concurrent first requests run it once.
 */
export interface IdempotencyStore {
  /**
   * Claims the id when it is free or its claim expired (`nowMs` past `expiresAt`); otherwise
   * answers what it holds (undefined when it vanished meanwhile: try again).
   */
  claim(claim: Claim, nowMs: number): Promise<{ claimed: true } | { claimed: false; existing?: IdEntry }>;
  getEntry(id: string): Promise<IdEntry | undefined>;
  /** Drops a claim whose request failed, if `token` still holds it, so the id can be retried. */
  release(id: string, token: string): Promise<void>;
}

/** The execution input of the inference state machine. */
export interface InferenceInput {
  id: string;
  /** The ensemble that serves: the one requested, or its canary. */
  ensemble: string;
  /** The ensemble the request named (equal to `ensemble` unless its canary serves). */
  requested: string;
  createdAt: string;
  instances: number[][];
  /** Counted members, then shadows (`shadow: true`): all run in the same fan-out. */
  members: FanOutMember[];
}

/**
 * Runs one synchronous inference (the Express state machine on AWS and locally). Resolves with the
 * stored record; rejects with QuorumNotMetError (details name the failed members),
 * InferenceFailedError, InferenceTimeoutError or UpstreamError.
 */
export interface InferenceExecutor {
  run(input: InferenceInput): Promise<PredictionRecord>;
}

/** Batch jobs and their per-row results (DynamoDB on AWS and in the local stack). */
export interface JobStore {
  /** Creates the job unless it exists; false when it already did (a duplicated event). */
  createJob(job: JobRecord): Promise<boolean>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  updateJob(jobId: string, patch: Partial<JobRecord>): Promise<void>;
  /** Live progress: added as batches are stored (a retried batch adds twice; finalize corrects). */
  addProgress(jobId: string, progress: JobProgress): Promise<void>;
  /**
   * Stores one batch's rows and counts, replacing an earlier copy of the same batch (its first
   * line): a retried batch is stored once.
   */
  putBatch(jobId: string, batch: StoredRows): Promise<void>;
  /** Every stored batch's counts, once per batch. */
  batchCounts(jobId: string): Promise<BatchCounts[]>;
}

/** The data bucket, as the batch functions use it. */
export interface ObjectStore {
  /**
   * The object's bytes as a stream; never buffered whole. With `etag`, the object must still be
   * the one with that ETag (quotes optional): another is an UploadReplacedError (core/errors).
   */
  read(key: string, expect?: { etag?: string }): Promise<AsyncIterable<Uint8Array>>;
  /** The first `bytes` bytes (fewer for a smaller object). */
  head(key: string, bytes: number): Promise<Uint8Array>;
  /** The object's user metadata (`x-amz-meta-*`, names lower-cased); undefined when it is gone. */
  metadata(key: string): Promise<Record<string, string> | undefined>;
  /** Writes a stream as one object (multipart for large ones), with user metadata if given. */
  write(
    key: string,
    body: AsyncIterable<string | Uint8Array> | string,
    contentType: string,
    metadata?: Record<string, string>,
  ): Promise<void>;
  /** Keys under a prefix, in lexicographic order. */
  list(prefix: string): Promise<string[]>;
  /** An `s3://bucket/key` location for records and messages. */
  location(key: string): string;
}

/** Starts a batch execution; the name makes a duplicated start a no-op. */
export interface BatchStarter {
  start(name: string, input: unknown): Promise<'started' | 'exists'>;
}

/** Where result-cache entries live (DynamoDB on AWS and in the local stack), one per row. */
export interface ResultCache {
  /** The stored entries among `keys`, expired ones included (callers use `lookupFresh`). */
  get(keys: readonly string[]): Promise<Map<string, CacheEntry>>;
  /** Stores entries, replacing any with the same key. */
  put(entries: readonly CacheEntry[]): Promise<void>;
}
