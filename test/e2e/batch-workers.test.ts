import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { jobIdFor, UPLOAD_ID_METADATA, uploadKeyOf } from '../../functions/core/jobs.js';
import { loadManifest } from '../../functions/core/manifest.js';
import { type LocalStack, REPO_ROOT, startLocalStack } from '../../local/stack.js';
import { finishedJob, stackS3Client } from '../support/stack-s3.js';

// Every function in worker instances (FANOUT_LOCAL_ISOLATION=workers): their S3 calls keep the
// socket and SigV4 (an object does not cross threads), their DynamoDB and Step Functions calls go
// over the instance's port. A batch job must come out the same as with the default placement.
const ENSEMBLE = 'breast-cancer';
const manifest = loadManifest(join(REPO_ROOT, 'models/manifest.json'));
const features = manifest.ensembles.get(ENSEMBLE)?.features ?? [];
const labels = manifest.ensembles.get(ENSEMBLE)?.labels ?? [];
const ROWS = readFileSync(join(REPO_ROOT, 'models/data/breast_cancer.csv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1, 41)
  .map((l) => l.split(',').slice(0, features.length).join(','));
const CSV = `id,${features.map((f) => (f.includes(',') ? `"${f}"` : f)).join(',')}\n${ROWS.map((r, i) => `r${i},${r}`).join('\n')}\n`;

let dir: string;
let stack: LocalStack;
let s3: S3Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-batch-workers-'));
  stack = await startLocalStack({ port: 0, dataDir: dir, quiet: true, isolation: 'workers' });
  s3 = stackS3Client(stack.urls.s3);
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a batch job with every function in worker instances', () => {
  it('scores every row of an upload and writes the results file, as with the default placement', async () => {
    const key = `incoming/${ENSEMBLE}/in-workers.csv`;
    // Named by the uploader, as the CLI does: the job id is known before the upload event.
    const uploadId = 'batch-workers-test';
    await s3.send(
      new PutObjectCommand({
        Bucket: stack.bucket,
        Key: key,
        Body: CSV,
        Metadata: { [UPLOAD_ID_METADATA]: uploadId },
      }),
    );
    const job = await finishedJob(stack.urls.api, jobIdFor(stack.bucket, key, uploadKeyOf({ uploadId })), {
      tries: 600,
      everyMs: 50,
    });
    expect({ status: job.status, rowsOk: job.rowsOk, rowsFailed: job.rowsFailed }).toEqual({
      status: 'SUCCEEDED',
      rowsOk: ROWS.length,
      rowsFailed: 0,
    });
    const location = String(job.resultsLocation);
    const [, bucket, ...path] = /^s3:\/\/([^/]+)\/(.+)$/.exec(location) ?? [];
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: path.join('/') }));
    const lines = (await out.Body?.transformToString())?.trim().split('\n') ?? [];
    expect(lines).toHaveLength(ROWS.length + 1);
    for (const [i, line] of lines.slice(1).entries()) {
      const cells = line.split(',');
      expect(cells[0]).toBe(`r${i}`);
      expect(labels).toContain(cells[1]);
      const p = cells.slice(2, 2 + labels.length).map(Number);
      expect(Math.abs(p.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-3);
    }
  });
});
