import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { awsReplayPorts, signedFetch } from '../../cli/aws-calls.js';
import {
  type DeadLetter,
  type ReplayOutcome,
  type ReplayPorts,
  replayDeadLetters,
} from '../../cli/dead-letters.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** A dead letter as Lambda's on-failure destination writes it for an S3 event. */
function destinationRecord(key: string, error = 'UpstreamError') {
  return JSON.stringify({
    version: '1.0',
    timestamp: '2026-11-28T12:00:00.000Z',
    requestContext: {
      requestId: 'r-1',
      functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fanout-dev-batchTrigger:$LATEST',
      condition: 'RetriesExhausted',
      approximateInvokeCount: 3,
    },
    requestPayload: {
      Records: [
        {
          eventSource: 'aws:s3',
          s3: { bucket: { name: 'fanout-dev-data' }, object: { key, size: 10, eTag: 'e' } },
        },
      ],
    },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    responsePayload: { errorType: error, errorMessage: 'starting batch execution failed: throttled' },
  });
}

/** An in-memory queue with SQS's visibility semantics (received messages hide until released). */
class FakeQueue implements ReplayPorts {
  readonly messages = new Map<string, { body: string; hidden: boolean }>();
  readonly invoked: unknown[] = [];
  failing = new Set<string>();
  private receipts = 0;
  constructor(bodies: string[]) {
    for (const [i, body] of bodies.entries()) this.messages.set(`m${i}`, { body, hidden: false });
  }
  async receive(): Promise<DeadLetter[]> {
    const visible = [...this.messages].filter(([, m]) => !m.hidden).slice(0, 2);
    return visible.map(([id, m]) => {
      m.hidden = true;
      return { messageId: id, receiptHandle: `${id}#${this.receipts++}`, body: m.body };
    });
  }
  async delete(handle: string) {
    this.messages.delete(handle.split('#')[0] as string);
  }
  async release(handle: string) {
    const m = this.messages.get(handle.split('#')[0] as string);
    if (m) m.hidden = false;
  }
  async invoke(payload: any) {
    this.invoked.push(payload);
    const key = payload.Records[0].s3.object.key as string;
    return this.failing.has(key) ? { error: 'UpstreamError: still throttled' } : {};
  }
}

describe("replaying the batch trigger's dead letters", () => {
  it('invokes the trigger with each original S3 event, deletes what it handled and keeps what failed again', async () => {
    const queue = new FakeQueue([
      destinationRecord('incoming/breast-cancer/my+rows.csv'),
      destinationRecord('incoming/wine/b.csv'),
      'not a destination record',
    ]);
    queue.failing.add('incoming/wine/b.csv');
    const reported: ReplayOutcome[] = [];
    const outcomes = await replayDeadLetters(queue, {
      max: 100,
      dryRun: false,
      report: (o) => reported.push(o),
    });
    expect(outcomes).toEqual(reported);
    expect(outcomes.map((o) => [o.result, o.uploads])).toEqual([
      ['replayed', ['s3://fanout-dev-data/incoming/breast-cancer/my rows.csv']],
      ['failed again', ['s3://fanout-dev-data/incoming/wine/b.csv']],
      ['unreadable', []],
    ]);
    expect(outcomes[1]).toMatchObject({
      firstError:
        'UpstreamError: starting batch execution failed: throttled (after 3 attempts, 2026-11-28T12:00:00.000Z)',
      error: 'UpstreamError: still throttled',
    });
    expect(queue.invoked).toEqual([
      JSON.parse(destinationRecord('incoming/breast-cancer/my+rows.csv')).requestPayload,
      expect.anything(),
    ]);
    // The failed and the unreadable stay, visible again for the next replay.
    expect([...queue.messages].map(([id, m]) => [id, m.hidden])).toEqual([
      ['m1', false],
      ['m2', false],
    ]);
  });

  it('only lists with a dry run, and leaves every message in the queue, visible', async () => {
    const queue = new FakeQueue([
      destinationRecord('incoming/wine/a.csv'),
      destinationRecord('incoming/wine/b.csv'),
      destinationRecord('incoming/wine/c.csv'),
    ]);
    const outcomes = await replayDeadLetters(queue, { max: 100, dryRun: true, report: () => {} });
    expect(outcomes.map((o) => o.result)).toEqual(['listed', 'listed', 'listed']);
    expect(queue.invoked).toEqual([]);
    expect([...queue.messages.values()].every((m) => !m.hidden)).toBe(true);
  });

  it('stops at --max', async () => {
    const queue = new FakeQueue(['a', 'b', 'c'].map((k) => destinationRecord(`incoming/wine/${k}.csv`)));
    const outcomes = await replayDeadLetters(queue, { max: 2, dryRun: false, report: () => {} });
    expect(outcomes).toHaveLength(2);
    expect([...queue.messages.keys()]).toEqual(['m2']);
    expect(queue.messages.get('m2')?.hidden).toBe(false);
  });
});

describe('the AWS calls behind it', () => {
  const calls: { url: string; headers: Record<string, string>; body: any }[] = [];
  const answer = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers });
  const sqs = async (url: string, init: { headers: Record<string, string>; body: string }) => {
    calls.push({ url, headers: init.headers, body: JSON.parse(init.body) });
    if (init.headers['x-amz-target'] === 'AmazonSQS.ReceiveMessage') {
      return answer(200, { Messages: [{ MessageId: 'id-1', ReceiptHandle: 'rh-1', Body: 'x' }] });
    }
    return answer(200, '');
  };
  const lambda = async (url: string, init: { headers: Record<string, string>; body: string }) => {
    calls.push({ url, headers: init.headers, body: JSON.parse(init.body) });
    return JSON.parse(init.body).fail
      ? answer(
          200,
          { errorType: 'UpstreamError', errorMessage: 'nope' },
          { 'x-amz-function-error': 'Unhandled' },
        )
      : answer(200, 'null');
  };
  const ports = awsReplayPorts({
    region: 'eu-west-1',
    queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/fanout-dev-batch-trigger-dlq',
    functionName: 'fanout-dev-batchTrigger',
    sqs,
    lambda,
  });

  beforeEach(() => {
    calls.length = 0;
  });

  it('reads, deletes and releases messages with SQS JSON-protocol calls on the queue', async () => {
    expect(await ports.receive()).toEqual([{ messageId: 'id-1', receiptHandle: 'rh-1', body: 'x' }]);
    await ports.delete('rh-1');
    await ports.release('rh-2');
    expect(calls.map((c) => [c.url, c.headers['x-amz-target'], c.headers['content-type']])).toEqual([
      ['https://sqs.eu-west-1.amazonaws.com/', 'AmazonSQS.ReceiveMessage', 'application/x-amz-json-1.0'],
      ['https://sqs.eu-west-1.amazonaws.com/', 'AmazonSQS.DeleteMessage', 'application/x-amz-json-1.0'],
      [
        'https://sqs.eu-west-1.amazonaws.com/',
        'AmazonSQS.ChangeMessageVisibility',
        'application/x-amz-json-1.0',
      ],
    ]);
    const queueUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/fanout-dev-batch-trigger-dlq';
    expect(calls[0]?.body).toEqual({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      VisibilityTimeout: 120,
    });
    expect(calls[2]?.body).toEqual({ QueueUrl: queueUrl, ReceiptHandle: 'rh-2', VisibilityTimeout: 0 });
  });

  it('invokes the trigger synchronously and tells a function error from a success', async () => {
    expect(await ports.invoke({ Records: [] })).toEqual({});
    expect(await ports.invoke({ fail: true })).toEqual({ error: 'UpstreamError: nope' });
    expect(calls[0]).toMatchObject({
      url: 'https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/fanout-dev-batchTrigger/invocations',
      headers: { 'x-amz-invocation-type': 'RequestResponse' },
    });
  });

  it('signs each request with SigV4 for the service and region', async () => {
    let seen: Record<string, string> = {};
    const fetcher = (async (_url: string, init: { headers: Record<string, string> }) => {
      seen = init.headers;
      return answer(200, '{}');
    }) as unknown as typeof fetch;
    await signedFetch(
      'sqs',
      'eu-west-1',
      fetcher,
    )('https://sqs.eu-west-1.amazonaws.com/', {
      headers: { 'x-amz-target': 'AmazonSQS.GetQueueUrl' },
      body: '{}',
    });
    expect(seen.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=\w+\/\d{8}\/eu-west-1\/sqs\/aws4_request, SignedHeaders=.*x-amz-target/,
    );
  });
});

describe('npm run replay-uploads', () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((done) => {
      const child = spawn(
        resolve(ROOT, 'node_modules/.bin/node'),
        ['--import', 'tsx', 'cli/replay-uploads.ts', ...args],
        {
          cwd: ROOT,
          env: { ...process.env, NODE_OPTIONS: '' },
        },
      );
      let out = '';
      child.stdout.on('data', (c) => {
        out += c;
      });
      child.stderr.on('data', (c) => {
        out += c;
      });
      child.on('exit', (code) => done({ code, out }));
    });

  it.each([
    [[], '--stage (or --queue-url) is required'],
    [['--stage', 'dev', '--max', 'lots'], '--max must be a positive whole number'],
    [['--stagee', 'dev'], "Unknown option '--stagee'"],
  ])(
    'refuses %j, saying why',
    async (args, message) => {
      const { code, out } = await run(args);
      expect(code).toBe(2);
      expect(out).toContain(message);
    },
    30_000,
  );
});
