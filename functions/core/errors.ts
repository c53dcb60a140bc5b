/**
 * One error hierarchy for the whole service. Every subclass sets an explicit `name` because Step
 * Functions matches `ErrorEquals` on the Lambda `errorType`, which is the error's name, and a
 * minifier would otherwise rename the class. `code` is the stable machine-readable code the HTTP
 * API returns; `status` is the HTTP status it maps to.
 */
export class FanoutError extends Error {
  override name = 'FanoutError';
  readonly code: string = 'internal_error';
  readonly status: number = 500;
  readonly details?: unknown;
  /** HTTP headers the answer carries (`allow` on a 405, `retry-after` on a retryable 409). */
  readonly headers?: Record<string, string>;

  constructor(
    message: string,
    options?: { cause?: unknown; details?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.details = options?.details;
    this.headers = options?.headers;
  }
}

/**
 * A batch upload that was overwritten between its event and the job reading it: the bucket now
 * holds other bytes under the key (a newer upload, which starts a job of its own).
 */
export class UploadReplacedError extends FanoutError {
  override name = 'UploadReplacedError';
  override readonly code = 'upload_replaced';
  override readonly status = 409;
}

/** A manifest file that cannot be read or does not match its schema. */
export class ManifestError extends FanoutError {
  override name = 'ManifestError';
  override readonly code = 'invalid_manifest';
}

/** Client input that cannot be scored: names the instance and the field. */
export class ValidationError extends FanoutError {
  override name = 'ValidationError';
  override readonly code = 'invalid_request';
  override readonly status = 400;
}

/** An ensemble, model, prediction or job that does not exist. */
export class NotFoundError extends FanoutError {
  override name = 'NotFoundError';
  override readonly code = 'not_found';
  override readonly status = 404;
}

/** A request larger than the synchronous path accepts. */
export class PayloadTooLargeError extends FanoutError {
  override name = 'PayloadTooLargeError';
  override readonly code = 'payload_too_large';
  override readonly status = 413;
}

/** A request body that is not JSON. */
export class UnsupportedMediaTypeError extends FanoutError {
  override name = 'UnsupportedMediaTypeError';
  override readonly code = 'unsupported_media_type';
  override readonly status = 415;
}

/** A route that exists but not for this HTTP method. */
export class MethodNotAllowedError extends FanoutError {
  override name = 'MethodNotAllowedError';
  override readonly code = 'method_not_allowed';
  override readonly status = 405;
}

/** Fewer members answered than the ensemble's quorum requires. */
export class QuorumNotMetError extends FanoutError {
  override name = 'QuorumNotMetError';
  override readonly code = 'quorum_not_met';
  override readonly status = 503;
}

/** A member's model file could not be loaded into a session. */
export class ModelLoadError extends FanoutError {
  override name = 'ModelLoadError';
  override readonly code = 'model_load_failed';
}

/**
 * A member that failed the start check: its file is missing or unreadable, or its graph does not
 * take the manifest's features or give its labels (signature.ts). It is not run.
 */
export class ModelNotReadyError extends FanoutError {
  override name = 'ModelNotReadyError';
  override readonly code = 'model_not_ready';
}

/** A member's model loaded but failed while scoring, or returned an unusable output. */
export class ModelRunError extends FanoutError {
  override name = 'ModelRunError';
  override readonly code = 'model_run_failed';
}

/** Required configuration is missing or malformed. */
export class ConfigError extends FanoutError {
  override name = 'ConfigError';
  override readonly code = 'invalid_configuration';
}

/** A backing service (store, state machine) did not answer as expected. */
export class UpstreamError extends FanoutError {
  override name = 'UpstreamError';
  override readonly code = 'upstream_unavailable';
  override readonly status = 502;
}

/** A client id already used for a different request (another ensemble or other instances). */
export class ConflictError extends FanoutError {
  override name = 'ConflictError';
  override readonly code: string = 'conflict';
  override readonly status = 409;
}

/** A client id whose first request is still running: retry after a moment for its answer. */
export class RequestInProgressError extends ConflictError {
  override name = 'RequestInProgressError';
  override readonly code = 'request_in_progress';
}

/** The inference workflow ran but did not finish (failed for a reason other than the quorum). */
export class InferenceFailedError extends FanoutError {
  override name = 'InferenceFailedError';
  override readonly code = 'inference_failed';
  override readonly status = 502;
}

/** The inference workflow did not finish in time. */
export class InferenceTimeoutError extends FanoutError {
  override name = 'InferenceTimeoutError';
  override readonly code = 'inference_timeout';
  override readonly status = 504;
}

/** An uploaded batch file that cannot be scored at all (empty, binary, bad header). */
export class BatchInputError extends FanoutError {
  override name = 'BatchInputError';
  override readonly code = 'invalid_batch_file';
  override readonly status = 400;
}
