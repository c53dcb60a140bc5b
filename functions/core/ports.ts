import type { PredictionRecord } from './combine.js';
import type { ModelSpec } from './manifest.js';

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
  /** Stores `record` unless its id exists; never overwrites. Returns what is stored. */
  putPrediction(record: PredictionRecord): Promise<PutResult>;
  getPrediction(id: string): Promise<PredictionRecord | undefined>;
}

/** The execution input of the inference state machine. */
export interface InferenceInput {
  id: string;
  ensemble: string;
  createdAt: string;
  instances: number[][];
  members: { model: string; timeoutSeconds: number }[];
}

/**
 * Runs one synchronous inference (the Express state machine on AWS and locally). Resolves with the
 * stored record; rejects with QuorumNotMetError (details name the failed members),
 * InferenceFailedError, InferenceTimeoutError or UpstreamError.
 */
export interface InferenceExecutor {
  run(input: InferenceInput): Promise<PredictionRecord>;
}
