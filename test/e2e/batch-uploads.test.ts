import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import type { TriggerOutcome } from '../../functions/batch-trigger/start-job.js';
import { loadManifest } from '../../functions/core/manifest.js';
import type { LambdaHandler } from '../../local/lambda-dispatch.js';
import { type LocalStack, REPO_ROOT, startLocalStack } from '../../local/stack.js';
import { finishedJob, stackS3Client } from '../support/stack-s3.js';

// Uploads through the real local S3, its upload events through the real batch trigger: the same
// bytes uploaded twice are two jobs, one event delivered twice is one.
const features = loadManifest(join(REPO_ROOT, 'models/manifest.json')).ensembles.get('wine')?.features ?? [];
const CSV = `id,${features.join(',')}\nw1,13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050\n`;

let dir: string;
let stack: LocalStack;
let s3: S3Client;
const events: S3Event[] = [];
const outcomes: TriggerOutcome[][] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-uploads-'));
  const trigger = (await import('../../functions/batch-trigger/handler.js')) as { handler: LambdaHandler };
  // The real trigger, with each event and outcome kept to look at (and to deliver again).
  const batchTrigger: LambdaHandler = async (event, context) => {
    events.push(structuredClone(event as S3Event));
    const out = (await trigger.handler(event, context)) as TriggerOutcome[];
    outcomes.push(out);
    return out;
  };
  stack = await startLocalStack({ port: 0, dataDir: dir, quiet: true, handlers: { batchTrigger } });
  s3 = stackS3Client(stack.urls.s3);
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const upload = (key: string) => s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: CSV }));

async function outcomeCount(n: number): Promise<void> {
  for (let i = 0; i < 400 && outcomes.length < n; i++) await new Promise((r) => setTimeout(r, 25));
  expect(outcomes).toHaveLength(n);
}

describe('batch uploads through the local S3', () => {
  it('starts two jobs for the same file uploaded twice, each scoring it', async () => {
    await upload('incoming/wine/twice.csv');
    await outcomeCount(1);
    await upload('incoming/wine/twice.csv');
    await outcomeCount(2);
    const [first, second] = outcomes.map((o) => o[0] as TriggerOutcome);
    expect([first?.result, second?.result]).toEqual(['started', 'started']);
    expect(second?.jobId).not.toBe(first?.jobId);
    const [a, b] = events.map((e) => e.Records[0]?.s3.object);
    expect(a?.eTag).toBe(b?.eTag);
    expect(a?.sequencer).not.toBe(b?.sequencer);
    for (const o of [first, second]) {
      const { status, rowsOk, error } = await finishedJob(stack.urls.api, o?.jobId as string);
      // The error, if any, is in the diff: a failed job says why.
      expect({ status, rowsOk, error }).toEqual({ status: 'SUCCEEDED', rowsOk: 1, error: undefined });
    }
  });

  it('starts one job when the same event is delivered twice', async () => {
    const again = (await stack.dispatcher.invoke('batchTrigger', events[0])) as TriggerOutcome[];
    expect(again).toEqual([{ jobId: outcomes[0]?.[0]?.jobId, result: 'duplicate' }]);
    const job = await finishedJob(stack.urls.api, outcomes[0]?.[0]?.jobId as string);
    expect({ status: job.status, rowsTotal: job.rowsTotal, rowsOk: job.rowsOk, error: job.error }).toEqual({
      status: 'SUCCEEDED',
      rowsTotal: 1,
      rowsOk: 1,
      error: undefined,
    });
  });
});
