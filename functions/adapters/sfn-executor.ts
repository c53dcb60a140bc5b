import {
  type SFNClient,
  StartSyncExecutionCommand,
  type StartSyncExecutionCommandOutput,
} from '@aws-sdk/client-sfn';
import type { PredictionRecord } from '../core/combine.js';
import {
  type FanoutError,
  InferenceFailedError,
  InferenceTimeoutError,
  QuorumNotMetError,
  UpstreamError,
} from '../core/errors.js';
import { causeMessage } from '../core/outcomes.js';
import type { InferenceExecutor, InferenceInput } from '../core/ports.js';

/**
 * Runs the Express inference state machine with StartSyncExecution. That API answers HTTP 200
 * even when the execution failed, so the execution's `status`, `error` and `cause` decide.
 */
export class SfnInferenceExecutor implements InferenceExecutor {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  async run(input: InferenceInput): Promise<PredictionRecord> {
    let out: StartSyncExecutionCommandOutput;
    try {
      out = await this.client.send(
        new StartSyncExecutionCommand({
          stateMachineArn: this.stateMachineArn,
          input: JSON.stringify(input),
        }),
      );
    } catch (err) {
      throw new UpstreamError(`the inference state machine could not be started: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (out.status === 'SUCCEEDED' && out.output) return JSON.parse(out.output) as PredictionRecord;
    throw executionError(out.status, out.error, out.cause);
  }
}

/** Maps a finished execution that did not succeed to the service's error for it. */
export function executionError(status?: string, error?: string, cause?: string): FanoutError {
  if (status === 'TIMED_OUT') return new InferenceTimeoutError('the inference state machine timed out');
  if (error === 'QuorumNotMetError' && cause) {
    try {
      const parsed = JSON.parse(cause) as { message?: string; details?: unknown };
      return new QuorumNotMetError(parsed.message ?? 'quorum not met', { details: parsed.details });
    } catch {
      return new QuorumNotMetError(cause);
    }
  }
  const why = cause ? `: ${causeMessage(cause)}` : '';
  return new InferenceFailedError(
    `inference ${String(status ?? 'FAILED').toLowerCase()} (${error ?? 'unknown error'})${why}`,
  );
}
