import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoJobStore } from '../../functions/adapters/dynamodb-jobs.js';
import type { RowResult } from '../../functions/core/jobs.js';
import { loadManifest } from '../../functions/core/manifest.js';
import { http, type StackProcess, startStackProcess } from '../support/stack-process.js';

const ROOT = resolve(import.meta.dirname, '../..');
const features = loadManifest('models/manifest.json').ensembles.get('breast-cancer')?.features ?? [];
const rows = readFileSync('models/data/breast_cancer.csv', 'utf8').trim().split('\n').slice(1);
const truth = new Map(rows.map((l, i) => [`p${i}`, l.split(',')[30] === '0' ? 'malignant' : 'benign']));

/** The data set as a batch file: a header of feature names plus an id column, 3 malformed rows mixed in. */
function batchCsv(): string {
  const header = ['id', ...features.map((f) => (f.includes(',') ? `"${f}"` : f))].join(',');
  const out = [header];
  rows.forEach((l, i) => {
    const v = l.split(',').slice(0, 30);
    out.push(`p${i},${v.join(',')}`);
    if (i === 100) out.push('short-row,1,2,3');
    if (i === 200) out.push(`not-a-number,abc,${v.slice(1).join(',')}`);
    if (i === 300) out.push(`empty-value,,${v.slice(1).join(',')}`);
  });
  return `${out.join('\n')}\n`;
}

/** Runs `fanout batch ...` as a user would (`npx fanout` runs bin/fanout.js). */
function fanout(
  args: string[],
  port: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(resolve(ROOT, 'node_modules/.bin/node'), ['bin/fanout.js', ...args], {
      cwd: ROOT,
      env: { ...process.env, PORT: port },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

let dir: string;
let stack: StackProcess;
let port: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-batch-e2e-'));
  stack = await startStackProcess(join(dir, 'data'));
  port = new URL(stack.api).port;
}, 90_000);

afterAll(async () => {
  if (stack) await stack.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('fanout batch against the local stack', () => {
  let job: Record<string, unknown>;

  it('scores the 569 rows, reports the 3 malformed ones, and writes the results file', async () => {
    const file = join(dir, 'breast-cancer.csv');
    writeFileSync(file, batchCsv());
    const out = join(dir, 'results.csv');
    const run = await fanout(['batch', file, '--ensemble', 'breast-cancer', '--out', out, '--json'], port);
    expect(run.code).toBe(0);
    job = JSON.parse(run.stdout.trim().split('\n').pop() as string);
    expect(job).toMatchObject({ status: 'SUCCEEDED', rowsTotal: 572, rowsOk: 569, rowsFailed: 3 });
    expect(run.stderr).toContain('rows/s');
    const results = readFileSync(out, 'utf8').trim().split('\n');
    expect(results[0]).toBe(
      'id,label,probability_malignant,probability_benign,degraded,agreement,margin,entropy,spread',
    );
    const scored = results.slice(1).map((l) => l.split(','));
    expect(scored).toHaveLength(569);
    // Every row says how sure the ensemble is; most rows of this data set are unanimous.
    for (const r of scored) {
      const [agreement, margin, entropy, spread] = r.slice(5).map(Number);
      for (const v of [agreement, margin, entropy, spread]) expect(v).toBeGreaterThanOrEqual(0);
      expect(Math.abs((margin as number) - Math.abs(Number(r[2]) - Number(r[3])))).toBeLessThan(1e-9);
    }
    expect(scored.filter((r) => r[5] === '1').length / scored.length).toBeGreaterThan(0.9);
    const right = scored.filter(([id, label]) => truth.get(id as string) === label).length;
    expect(right / scored.length).toBeGreaterThanOrEqual(0.95);
    // The rejected rows are saved next to the results, and both places are printed as s3:// and
    // local paths (no emulator address, whose port changes from run to run).
    const errors = readFileSync(join(dir, 'results.errors.csv'), 'utf8').trim().split('\n');
    expect(errors[0]).toBe('line,id,reason');
    expect(errors.slice(1).map((l) => l.split(',')[1])).toEqual(['short-row', 'not-a-number', 'empty-value']);
    expect(run.stderr).toContain(`results  s3://fanout-local-data/results/${job.jobId}.csv`);
    expect(run.stderr).toContain(`errors   s3://fanout-local-data/results/${job.jobId}.errors.csv`);
    expect(run.stderr).toContain(`results saved to ${out}`);
    expect(run.stderr).toContain(
      `errors saved to ${join(dir, 'results.errors.csv')} (3 rows: line,id,reason)`,
    );
    expect(run.stderr).not.toMatch(/127\.0\.0\.1/);
  }, 120_000);

  it('serves the same job record at GET /v1/jobs/{jobId}, with the error file holding the 3 rows', async () => {
    const got = await http('GET', `${stack.api}/v1/jobs/${job.jobId}`);
    expect(got.body).toMatchObject({ jobId: job.jobId, status: 'SUCCEEDED', rowsOk: 569, rowsFailed: 3 });
    expect(got.body.errorsLocation).toBe(job.errorsLocation);
  });

  it('stores every scored row in DynamoDB, one item per batch, in line order', async () => {
    const doc = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: stack.dynamodb,
        region: 'us-east-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      }),
    );
    const rows: RowResult[] = [];
    for await (const row of new DynamoJobStore(doc, 'fanout-local').rows(job.jobId as string)) rows.push(row);
    const items = await doc.send(
      new QueryCommand({
        TableName: 'fanout-local',
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :rows)',
        ExpressionAttributeValues: { ':pk': `JOB#${job.jobId as string}`, ':rows': 'ROWS#' },
        Select: 'COUNT',
      }),
    );
    doc.destroy();
    expect(rows).toHaveLength(569);
    expect(rows.every((r, i) => i === 0 || r.line > (rows[i - 1] as RowResult).line)).toBe(true);
    expect(items.Count).toBe(Math.ceil(569 / 250));
  });

  it('scores the same file uploaded again as a new job (the manifest may have changed since)', async () => {
    const file = join(dir, 'breast-cancer.csv');
    const errors = join(dir, 'only-errors.csv');
    const again = await fanout(
      ['batch', file, '--ensemble', 'breast-cancer', '--errors', errors, '--json'],
      port,
    );
    expect(again.code).toBe(0);
    const second = JSON.parse(again.stdout.trim().split('\n').pop() as string);
    expect(second.jobId).not.toBe(job.jobId);
    expect(second).toMatchObject({ status: 'SUCCEEDED', rowsOk: 569, rowsFailed: 3 });
    expect(readFileSync(errors, 'utf8').trim().split('\n')).toHaveLength(4);
  }, 60_000);

  it.each([
    ['a header-only file', 'header-only.csv', () => `id,${features.join(',')}\n`, 'header but no rows'],
    ['an empty file', 'empty.csv', () => '', 'empty'],
    ['a binary file', 'binary.csv', () => Buffer.from([0x50, 0x4b, 3, 4, 0, 0, 1, 2]), 'not text'],
    ['a bad header', 'bad-header.csv', () => 'id,a,b\n1,2,3\n', 'missing feature column'],
  ])(
    'ends the job with a clear error for %s',
    async (_what, name, content, reason) => {
      const file = join(dir, name);
      writeFileSync(file, content());
      const run = await fanout(['batch', file, '--ensemble', 'breast-cancer', '--json'], port);
      expect(run.code).toBe(1);
      const last = JSON.parse(run.stdout.trim().split('\n').pop() as string);
      expect(last.status).toBe('FAILED');
      expect(run.stderr).toContain(reason);
    },
    60_000,
  );

  it('checks the ensemble before uploading: an unknown one is named, with what is served, and nothing is uploaded', async () => {
    const file = join(dir, 'some.csv');
    writeFileSync(file, batchCsv());
    const run = await fanout(['batch', file, '--ensemble', 'no-such-ensemble', '--json'], port);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'fanout: nothing uploaded: unknown ensemble or model "no-such-ensemble"; ensembles served: breast-cancer, ',
    );
    expect(run.stderr).not.toContain('uploaded some.csv');
  }, 60_000);

  it('answers a usage error with exit code 2 and the usage', async () => {
    const run = await fanout(['batch'], port);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('usage: fanout batch');
  });
});
