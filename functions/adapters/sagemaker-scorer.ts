import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { ModelRunError } from '../core/errors.js';
import type { ModelSpec } from '../core/manifest.js';
import type { Scorer } from '../core/ports.js';
import { decodeScores, encodeRows } from '../core/sagemaker-codec.js';
import { captureClient } from './tracing.js';

/** Options for the SageMaker runtime client. */
export interface SageMakerScorerOptions {
  region: string;
  endpoint?: string;
  /** Endpoint names by model id, overriding the manifest's (deploy parameters). */
  endpointNames?: ReadonlyMap<string, string>;
}

/**
 * Scores members served by SageMaker real-time endpoints through InvokeEndpoint. One client per
 * process; the SDK's standard retry mode retries throttling and 5xx answers with backoff. Every
 * failure names the member, the endpoint and SageMaker's error.
 */
export class SageMakerScorer implements Scorer {
  private readonly clients = new Map<number, SageMakerRuntimeClient>();

  constructor(private readonly options: SageMakerScorerOptions) {}

  /** A client whose socket timeout fits the member's own timeout, so a slow endpoint is named. */
  private client(timeoutSeconds: number): SageMakerRuntimeClient {
    let c = this.clients.get(timeoutSeconds);
    if (!c) {
      // Captured: on Lambda each InvokeEndpoint is an X-Ray subsegment naming the endpoint.
      c = captureClient(
        new SageMakerRuntimeClient({
          region: this.options.region,
          endpoint: this.options.endpoint,
          maxAttempts: 3,
          requestHandler: {
            requestTimeout: Math.max(500, timeoutSeconds * 1000 - 250),
            // Without this, @smithy/node-http-handler only logs a warning when requestTimeout passes.
            throwOnRequestTimeout: true,
            connectionTimeout: 2000,
          },
        }),
      );
      this.clients.set(timeoutSeconds, c);
    }
    return c;
  }

  async score(model: ModelSpec, rows: readonly (readonly number[])[]): Promise<number[][]> {
    if (model.kind !== 'sagemaker')
      throw new ModelRunError(`${model.id}: is a ${model.kind} model, not sagemaker`);
    const name = this.options.endpointNames?.get(model.id) ?? model.endpoint.name;
    const where = `${model.id}: SageMaker endpoint "${name}"`;
    let text: string;
    try {
      const out = await this.client(model.timeoutSeconds).send(
        new InvokeEndpointCommand({
          EndpointName: name,
          TargetVariant: model.endpoint.targetVariant,
          ContentType: model.endpoint.contentType,
          Accept: 'application/json',
          Body: new TextEncoder().encode(encodeRows(rows, model.endpoint.contentType)),
        }),
      );
      text = new TextDecoder().decode(out.Body);
    } catch (err) {
      throw new ModelRunError(`${where} failed: ${describeError(err)}`, { cause: err });
    }
    const decoded = decodeScores(text, model, rows.length);
    if (typeof decoded === 'string') {
      const { format } = model.endpoint.response;
      throw new ModelRunError(
        `${where}: ${decoded} (the manifest expects ${model.labels.length} probabilities per row, labels ${model.labels.join(', ')}, "endpoint.response.format": "${format}")`,
        { details: { answer: 'shape' } },
      );
    }
    return decoded;
  }
}

/** SageMaker's error name and message, or the network error's code (ECONNREFUSED, timeouts). */
function describeError(err: unknown): string {
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    Message?: string;
    OriginalMessage?: string;
  };
  if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT' || e.name === 'RequestTimeout') {
    return `timed out (${e.message ?? e.name})`;
  }
  const message = e.OriginalMessage ?? e.Message ?? e.message ?? '';
  const code = e.code && e.code !== e.name ? ` (${e.code})` : '';
  return `${e.name ?? 'Error'}${code}: ${message}`;
}
