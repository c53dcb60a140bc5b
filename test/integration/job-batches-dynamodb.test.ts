import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoJobStore } from '../../functions/adapters/dynamodb-jobs.js';
import type { RowResult } from '../../functions/core/jobs.js';
import { type DynaliteTable, startDynaliteTable, TABLE } from '../support/dynalite-table.js';

// The real table (from serverless.yml) in dynalite, through the real SDK: each stored batch's rows
// and counts, from which a finished job's rowsCached and rowsScored are summed once per batch.
let table: DynaliteTable;
let jobs: DynamoJobStore;

beforeAll(async () => {
  table = await startDynaliteTable('fanout-batches-');
  jobs = new DynamoJobStore(table.doc, TABLE);
});

afterAll(() => table.close());

const row = (rowId: string, line: number, probabilities: Record<string, number>): RowResult => ({
  rowId,
  line,
  label: 'benign',
  probabilities,
  degraded: false,
});
const twoLabels = { malignant: 0.1, benign: 0.9 };
const rowsOf = async (jobId: string) => {
  const got: RowResult[] = [];
  for await (const r of jobs.rows(jobId)) got.push(r);
  return got;
};
const countsOnly = (firstLine: number, cached: number, scored: number) => ({
  firstLine,
  cached,
  scored,
  rows: [],
});

describe('batches in the table', () => {
  it('keeps one counts item per batch: a batch stored again (a retry) replaces its counts', async () => {
    await jobs.putBatch('job-a', countsOnly(252, 9, 200));
    await jobs.putBatch('job-a', countsOnly(2, 5, 245));
    await jobs.putBatch('job-a', countsOnly(252, 9, 200));
    expect(await jobs.batchCounts('job-a')).toEqual([
      { firstLine: 2, cached: 5, scored: 245 },
      { firstLine: 252, cached: 9, scored: 200 },
    ]);
  });

  it("reads only this job's batches, not another job's", async () => {
    await jobs.putBatch('job-b', { firstLine: 2, cached: 0, scored: 1, rows: [row('r1', 2, twoLabels)] });
    await jobs.putBatch('job-bb', countsOnly(2, 7, 7));
    expect(await jobs.batchCounts('job-b')).toEqual([{ firstLine: 2, cached: 0, scored: 1 }]);
    expect(await rowsOf('job-b')).toEqual([row('r1', 2, twoLabels)]);
    expect(await jobs.batchCounts('job-none')).toEqual([]);
    expect(await rowsOf('job-none')).toEqual([]);
  });

  it('reads every batch of a 275,000-row job back in line order (first lines zero-padded)', async () => {
    const lines = Array.from({ length: 1100 }, (_, i) => 2 + i * 250);
    for (let i = 0; i < lines.length; i += 50) {
      await Promise.all(
        lines.slice(i, i + 50).map((firstLine) => jobs.putBatch('job-c', countsOnly(firstLine, 1, 249))),
      );
    }
    const counts = await jobs.batchCounts('job-c');
    expect(counts.map((c) => c.firstLine)).toEqual(lines);
    expect(counts.reduce((s, c) => s + c.scored, 0)).toBe(1100 * 249);
  }, 60_000);

  it('stores rows of a many-label model in items DynamoDB accepts, and reads back only the latest copy', async () => {
    // About 80 KB per row: five rows make two items near the limit.
    const labels = Object.fromEntries(Array.from({ length: 4000 }, (_, k) => [`class-${k}`, 1 / 4000]));
    const big = Array.from({ length: 5 }, (_, i) => row(`big-${i}`, 2 + i, labels));
    await jobs.putBatch('job-d', { firstLine: 2, cached: 0, scored: 5, rows: big });
    await jobs.putBatch('job-d', {
      firstLine: 7,
      cached: 0,
      scored: 2,
      rows: [row('a', 7, twoLabels), row('a', 8, twoLabels)],
    });
    expect(await rowsOf('job-d')).toEqual([...big, row('a', 7, twoLabels), row('a', 8, twoLabels)]);
    // The first batch took two items: the case below leaves one behind.
    const parts = await table.doc.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :rows)',
        ExpressionAttributeValues: { ':pk': 'JOB#job-d', ':rows': 'ROWS#000000000002#' },
        Select: 'COUNT',
      }),
    );
    expect(parts.Count).toBe(2);

    // The first batch stored again, shorter: its second item is left behind, and not read.
    await jobs.putBatch('job-d', { firstLine: 2, cached: 0, scored: 1, rows: [row('small', 2, twoLabels)] });
    expect(await rowsOf('job-d')).toEqual([
      row('small', 2, twoLabels),
      row('a', 7, twoLabels),
      row('a', 8, twoLabels),
    ]);
  });
});
