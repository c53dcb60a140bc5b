import type { DeadLetter, ReplayPorts } from './dead-letters.js';
import { sigV4Fetch } from './signed-fetch.js';

/** A SigV4-signing POST for one AWS service and region, credentials from the usual chain. */
export function signedFetch(service: string, region: string, fetcher: typeof fetch = fetch) {
  const signed = sigV4Fetch(service, region, fetcher);
  return (url: string, init: { headers: Record<string, string>; body: string }) =>
    signed(url, { method: 'POST', ...init });
}

/** The queue's URL from its name (SQS GetQueueUrl). */
export async function queueUrlOf(
  region: string,
  name: string,
  sqs: Signed = signedFetch('sqs', region),
): Promise<string> {
  const res = await sqsJson(sqs, region, 'GetQueueUrl', { QueueName: name });
  if (!res.ok) throw new Error(`no queue ${name} in ${region} (HTTP ${res.status}): ${res.text}`);
  return (JSON.parse(res.text) as { QueueUrl: string }).QueueUrl;
}

type Signed = ReturnType<typeof signedFetch>;

/**
 * One SQS call in its JSON protocol. The body is read whatever the status, since SQS explains a
 * failure in it; each caller words its own error, naming what it was after.
 */
async function sqsJson(
  sqs: Signed,
  region: string,
  action: string,
  body: Record<string, unknown>,
): Promise<{ ok: boolean; status: number; text: string }> {
  const res = await sqs(`https://sqs.${region}.amazonaws.com/`, {
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${action}` },
    body: JSON.stringify(body),
  });
  return { ok: res.ok, status: res.status, text: await res.text() };
}

/**
 * The dead-letter queue (SQS, JSON protocol) and the trigger function (Lambda Invoke), called with
 * signed requests: this needs no more of the AWS SDK than the CLI already has.
 */
export function awsReplayPorts(options: {
  region: string;
  queueUrl: string;
  functionName: string;
  visibilitySeconds?: number;
  sqs?: Signed;
  lambda?: Signed;
}): ReplayPorts {
  const sqs = options.sqs ?? signedFetch('sqs', options.region);
  const lambda = options.lambda ?? signedFetch('lambda', options.region);
  const call = async (action: string, body: Record<string, unknown>) => {
    const res = await sqsJson(sqs, options.region, action, { QueueUrl: options.queueUrl, ...body });
    if (!res.ok)
      throw new Error(`SQS ${action} on ${options.queueUrl} failed (HTTP ${res.status}): ${res.text}`);
    return (res.text ? JSON.parse(res.text) : {}) as Record<string, unknown>;
  };
  return {
    async receive(): Promise<DeadLetter[]> {
      const out = await call('ReceiveMessage', {
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: options.visibilitySeconds ?? 120,
      });
      const messages = (out.Messages ?? []) as { MessageId: string; ReceiptHandle: string; Body: string }[];
      return messages.map((m) => ({ messageId: m.MessageId, receiptHandle: m.ReceiptHandle, body: m.Body }));
    },
    async delete(receiptHandle) {
      await call('DeleteMessage', { ReceiptHandle: receiptHandle });
    },
    async release(receiptHandle) {
      await call('ChangeMessageVisibility', { ReceiptHandle: receiptHandle, VisibilityTimeout: 0 });
    },
    async invoke(payload) {
      const name = encodeURIComponent(options.functionName);
      const res = await lambda(
        `https://lambda.${options.region}.amazonaws.com/2015-03-31/functions/${name}/invocations`,
        {
          headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'RequestResponse' },
          body: JSON.stringify(payload),
        },
      );
      const text = await res.text();
      if (!res.ok) throw new Error(`invoking ${options.functionName} failed (HTTP ${res.status}): ${text}`);
      const functionError = res.headers.get('x-amz-function-error');
      if (!functionError) return {};
      try {
        const e = JSON.parse(text) as { errorType?: string; errorMessage?: string };
        return { error: `${e.errorType ?? functionError}: ${e.errorMessage ?? text}` };
      } catch {
        return { error: `${functionError}: ${text}` };
      }
    },
  };
}
