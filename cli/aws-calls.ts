import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { DeadLetter, ReplayPorts } from './dead-letters.js';

/** A SigV4-signing fetch for one AWS service and region, credentials from the usual chain. */
export function signedFetch(service: string, region: string, fetcher: typeof fetch = fetch) {
  const signer = new SignatureV4({ service, region, credentials: defaultProvider(), sha256: Sha256 });
  return async (url: string, init: { headers: Record<string, string>; body: string }) => {
    const u = new URL(url);
    const signed = await signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: u.protocol,
        hostname: u.hostname,
        path: u.pathname,
        headers: { host: u.host, ...init.headers },
        body: init.body,
      }),
    );
    return fetcher(url, { method: 'POST', headers: signed.headers, body: init.body });
  };
}

type Signed = ReturnType<typeof signedFetch>;

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
    const res = await sqs(`https://sqs.${options.region}.amazonaws.com/`, {
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${action}` },
      body: JSON.stringify({ QueueUrl: options.queueUrl, ...body }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`SQS ${action} on ${options.queueUrl} failed (HTTP ${res.status}): ${text}`);
    return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
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
