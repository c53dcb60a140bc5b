import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { jest } from '@jest/globals';
import { DynamoJobStore, MAX_PART_BYTES } from '../../functions/adapters/dynamodb-jobs.js';
import { ConfigError, UpstreamError } from '../../functions/core/errors.js';
import type { JobRecord, RowResult } from '../../functions/core/jobs.js';
import { rejection } from '../support/rejection.js';

const TABLE = 'fanout-test';
const JOB = 'job-1';

type Command = { constructor: { name: string }; input: Record<string, unknown> };
type WriteRequest = { PutRequest: { Item: Record<string, unknown> } };

/** A DynamoDBDocumentClient stand-in: records each command and answers with `answer`. */
class FakeClient {
  readonly sent: Command[] = [];
  constructor(private readonly answer: (command: Command, call: number) => unknown) {}
  async send(command: Command) {
    this.sent.push(command);
    return this.answer(command, this.sent.length);
  }
  asClient() {
    return this as unknown as DynamoDBDocumentClient;
  }
  /** The PutRequests of the n-th BatchWriteItem call (0-based). */
  requests(n: number): WriteRequest[] {
    const items = this.sent[n]?.input.RequestItems as Record<string, WriteRequest[]>;
    return items[TABLE] as WriteRequest[];
  }
}

function rowsOf(n: number): RowResult[] {
  return Array.from({ length: n }, (_, i) => ({
    rowId: `r${i}`,
    line: i + 2,
    label: 'benign',
    probabilities: { malignant: 0.1, benign: 0.9 },
    degraded: i % 2 === 0,
    uncertainty: { agreement: 1, margin: 0.8, entropy: 0.469, spread: 0.05 },
    ...(i % 2 === 0 ? { failedMembers: ['bc-mlp'] } : {}),
  }));
}

/** Answers the first `times` calls by leaving their last `left` items unprocessed. */
const unprocessedFor = (times: number, left: number) => (command: Command, call: number) => {
  if (call > times) return {};
  const pending = (command.input.RequestItems as Record<string, WriteRequest[]>)[TABLE] as WriteRequest[];
  return { UnprocessedItems: { [TABLE]: pending.slice(-left) } };
};

afterEach(() => {
  jest.restoreAllMocks();
});

/** Rows of about `bytes` bytes of JSON each: many labels, as a user's large-vocabulary model has. */
function bigRows(n: number, bytes: number): RowResult[] {
  const labels = Math.ceil(bytes / 22);
  const probabilities = Object.fromEntries(
    Array.from({ length: labels }, (_, k) => [`label-${k}`, 1 / labels]),
  );
  return rowsOf(n).map((r) => ({ ...r, probabilities }));
}

const items = (client: FakeClient) =>
  client.sent.flatMap((_, n) => client.requests(n).map((r) => r.PutRequest.Item));
const rowItems = (client: FakeClient) => items(client).filter((i) => i.type === 'rows');
const batchOf = (rows: RowResult[], firstLine = 2) => ({ firstLine, cached: 1, scored: rows.length, rows });

describe('DynamoJobStore.putBatch', () => {
  it("writes a batch's counts and its 250 rows as two items in one BatchWriteItem", async () => {
    const client = new FakeClient(() => ({}));
    const store = new DynamoJobStore(client.asClient(), TABLE, { maxAttempts: 3, baseDelayMs: 10 });
    const rows = rowsOf(250);
    await store.putBatch(JOB, batchOf(rows));

    expect(client.sent.map((c) => c.constructor.name)).toEqual(['BatchWriteCommand']);
    const [counts, part] = client.requests(0).map((r) => r.PutRequest.Item);
    expect(counts).toEqual({
      pk: `JOB#${JOB}`,
      sk: 'BATCH#000000000002',
      type: 'batch',
      jobId: JOB,
      firstLine: 2,
      cached: 1,
      scored: 250,
      rowItems: 1,
    });
    expect(part).toMatchObject({
      pk: `JOB#${JOB}`,
      sk: 'ROWS#000000000002#000',
      type: 'rows',
      part: 0,
      count: 250,
    });
    expect(JSON.parse(part?.rows as string)).toEqual(rows);
  });

  it('splits rows over items of at most MAX_PART_BYTES, in line order', async () => {
    const client = new FakeClient(() => ({}));
    const rows = bigRows(40, 60_000);
    await new DynamoJobStore(client.asClient(), TABLE).putBatch(JOB, batchOf(rows, 1002));

    const parts = rowItems(client);
    expect(parts.length).toBeGreaterThan(5);
    expect(parts.map((p) => p.sk)).toEqual(
      parts.map((_, k) => `ROWS#000000001002#${String(k).padStart(3, '0')}`),
    );
    for (const p of parts) expect(Buffer.byteLength(p.rows as string)).toBeLessThanOrEqual(MAX_PART_BYTES);
    expect(parts.flatMap((p) => JSON.parse(p.rows as string))).toEqual(rows);
    expect(parts.reduce((n, p) => n + (p.count as number), 0)).toBe(40);
    expect(items(client).find((i) => i.type === 'batch')?.rowItems).toBe(parts.length);
  });

  it('stores a batch without rows (every row failed) as its counts alone', async () => {
    const client = new FakeClient(() => ({}));
    await new DynamoJobStore(client.asClient(), TABLE).putBatch(JOB, batchOf([]));
    expect(items(client)).toEqual([expect.objectContaining({ type: 'batch', rowItems: 0, scored: 0 })]);
  });

  it('names the row too large for any item, and writes nothing of its batch', async () => {
    const client = new FakeClient(() => ({}));
    const rows = [
      ...rowsOf(2),
      { ...bigRows(1, MAX_PART_BYTES + 1000)[0], rowId: 'huge', line: 9 } as RowResult,
    ];
    const err = await rejection(new DynamoJobStore(client.asClient(), TABLE).putBatch(JOB, batchOf(rows)));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^storing job ${JOB}: row huge \\(line 9\\) is \\d+ bytes as JSON, more than the ${MAX_PART_BYTES}`,
      ),
    );
    expect(client.sent).toEqual([]);
  });

  it('retries the unprocessed items only, with exponential backoff and full jitter, until written', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const sleeps: number[] = [];
    const client = new FakeClient(unprocessedFor(3, 2));
    const store = new DynamoJobStore(client.asClient(), TABLE, {
      maxAttempts: 8,
      baseDelayMs: 40,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const rows = bigRows(8, 100_000);
    await store.putBatch(JOB, batchOf(rows));

    expect(client.sent).toHaveLength(4);
    const first = client.requests(0).map((r) => r.PutRequest.Item.sk);
    for (const n of [1, 2, 3]) {
      expect(client.requests(n).map((r) => r.PutRequest.Item.sk)).toEqual(first.slice(-2));
    }
    // Half of a cap that doubles from the base delay: 40, 80, 160.
    expect(sleeps).toEqual([20, 40, 80]);
  });

  it('keeps every backoff within its cap whatever the jitter', async () => {
    const sleeps: number[] = [];
    const client = new FakeClient(unprocessedFor(5, 1));
    const store = new DynamoJobStore(client.asClient(), TABLE, {
      maxAttempts: 8,
      baseDelayMs: 100,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    await store.putBatch(JOB, batchOf(rowsOf(3)));
    expect(sleeps).toHaveLength(5);
    sleeps.forEach((ms, k) => {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(100 * 2 ** k);
    });
  });

  it('sends groups of 25 items together, each retried on its own, at most four in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const client = new FakeClient(async (command, call) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      // The first request is throttled once.
      return unprocessedFor(1, 2)(command, call);
    });
    const store = new DynamoJobStore(client.asClient(), TABLE, {
      maxAttempts: 3,
      baseDelayMs: 10,
      sleep: async () => {},
    });
    // One row per item: 80 rows items and the counts, 81 items in four groups.
    await store.putBatch(JOB, batchOf(bigRows(80, 180_000)));
    const sizes = client.sent.map((_, n) => client.requests(n).length);
    // The retry of two items goes out whenever a lane is free.
    expect(sizes.sort((x, y) => x - y)).toEqual([2, 6, 25, 25, 25]);
    expect(most).toBe(4);
  });

  it('gives up after maxAttempts, naming the batch and how many items were left', async () => {
    const sleep = jest.fn(async (_ms: number) => {});
    const client = new FakeClient(unprocessedFor(Number.POSITIVE_INFINITY, 1));
    const store = new DynamoJobStore(client.asClient(), TABLE, { maxAttempts: 4, baseDelayMs: 10, sleep });

    const err = await rejection(store.putBatch(JOB, batchOf(rowsOf(10), 252)));
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as Error).message).toBe(
      `writing the batch at line 252 of job ${JOB}: 1 items still unprocessed after 4 attempts`,
    );
    expect(client.sent).toHaveLength(4);
    expect(sleep).toHaveBeenCalledTimes(3);
  });

  it('reports a failed BatchWriteItem as an UpstreamError naming the batch and the table', async () => {
    const client = new FakeClient(() => {
      throw new Error('ProvisionedThroughputExceededException');
    });
    const store = new DynamoJobStore(client.asClient(), TABLE, { maxAttempts: 3, baseDelayMs: 10 });
    await expect(store.putBatch(JOB, batchOf(rowsOf(1)))).rejects.toThrow(
      `writing the batch at line 2 of job ${JOB} in table ${TABLE} failed: ProvisionedThroughputExceededException`,
    );
  });
});

describe('DynamoJobStore.rows', () => {
  it('reads the rows items each batch counts, page by page, and skips parts a longer earlier copy left', async () => {
    const [a, b, c] = [rowsOf(2), rowsOf(3), rowsOf(1)];
    const answers = [
      // The batches: the one at line 2 was stored again with one part where it had two.
      { Items: [{ firstLine: 2, rowItems: 1 }], LastEvaluatedKey: { sk: 'BATCH#000000000002' } },
      { Items: [{ firstLine: 252, rowItems: 1 }] },
      // The rows items.
      {
        Items: [
          { firstLine: 2, part: 0, rows: JSON.stringify(a) },
          { firstLine: 2, part: 1, rows: JSON.stringify(c) },
        ],
        LastEvaluatedKey: { sk: 'ROWS#000000000002#001' },
      },
      { Items: [{ firstLine: 252, part: 0, rows: JSON.stringify(b) }] },
    ];
    const client = new FakeClient((_command, call) => answers[call - 1]);
    const got: RowResult[] = [];
    for await (const row of new DynamoJobStore(client.asClient(), TABLE).rows(JOB)) got.push(row);

    expect(got).toEqual([...a, ...b]);
    expect(client.sent.map((s) => s.input.ExpressionAttributeValues)).toEqual([
      { ':pk': `JOB#${JOB}`, ':prefix': 'BATCH#' },
      { ':pk': `JOB#${JOB}`, ':prefix': 'BATCH#' },
      { ':pk': `JOB#${JOB}`, ':prefix': 'ROWS#' },
      { ':pk': `JOB#${JOB}`, ':prefix': 'ROWS#' },
    ]);
    expect(client.sent[3]?.input.ExclusiveStartKey).toEqual({ sk: 'ROWS#000000000002#001' });
  });

  it('names the job and the table when reading fails', async () => {
    const client = new FakeClient(() => {
      throw new Error('throttled');
    });
    const read = async () => {
      for await (const _ of new DynamoJobStore(client.asClient(), TABLE).rows(JOB)) void _;
    };
    await expect(read()).rejects.toThrow(
      `reading the batches of job ${JOB} in table ${TABLE} failed: throttled`,
    );
  });
});

describe('DynamoJobStore job records', () => {
  const job: JobRecord = {
    jobId: JOB,
    status: 'QUEUED',
    ensemble: 'wine',
    input: { bucket: 'b', key: 'incoming/wine/a.csv', etag: 'e' },
    format: 'csv',
    rowsTotal: 0,
    rowsOk: 0,
    rowsFailed: 0,
    rowsDegraded: 0,
    createdAt: '2026-12-01T10:00:00.000Z',
  };

  it('creates a job only if it does not exist', async () => {
    const client = new FakeClient(() => ({}));
    expect(await new DynamoJobStore(client.asClient(), TABLE).createJob(job)).toBe(true);
    expect(client.sent[0]?.input).toMatchObject({
      TableName: TABLE,
      Item: { pk: `JOB#${JOB}`, sk: 'JOB', type: 'job', ...job },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
  });

  it('answers false for a job that already exists (a duplicated event)', async () => {
    const client = new FakeClient(() => {
      throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    });
    expect(await new DynamoJobStore(client.asClient(), TABLE).createJob(job)).toBe(false);
  });

  it('names the job even when its record was first written by an update (Prepare before the trigger)', async () => {
    const { jobId: _id, ...fields } = job;
    const client = new FakeClient(() => ({ Item: { pk: `JOB#${JOB}`, sk: 'JOB', ...fields } }));
    expect(await new DynamoJobStore(client.asClient(), TABLE).getJob(JOB)).toEqual(job);
  });

  it('returns a stored job without its table keys', async () => {
    const client = new FakeClient(() => ({ Item: { pk: `JOB#${JOB}`, sk: 'JOB', type: 'job', ...job } }));
    expect(await new DynamoJobStore(client.asClient(), TABLE).getJob(JOB)).toEqual(job);
    expect(client.sent[0]?.input).toMatchObject({
      Key: { pk: `JOB#${JOB}`, sk: 'JOB' },
      ConsistentRead: true,
    });
  });

  it('answers the job id of a record an update created first (Prepare may run before the trigger writes it)', async () => {
    const { jobId: _id, ...withoutId } = job;
    const client = new FakeClient(() => ({ Item: { pk: `JOB#${JOB}`, sk: 'JOB', ...withoutId } }));
    expect(await new DynamoJobStore(client.asClient(), TABLE).getJob(JOB)).toEqual(job);
  });

  it('updates only the defined fields, never the job id', async () => {
    const client = new FakeClient(() => ({}));
    const store = new DynamoJobStore(client.asClient(), TABLE);
    await store.updateJob(JOB, { jobId: 'other', status: 'RUNNING', rowsTotal: 5, error: undefined });
    expect(client.sent[0]?.input).toMatchObject({
      UpdateExpression: 'SET #f0 = :v0, #f1 = :v1',
      ExpressionAttributeNames: { '#f0': 'status', '#f1': 'rowsTotal' },
      ExpressionAttributeValues: { ':v0': 'RUNNING', ':v1': 5 },
    });
    await store.updateJob(JOB, { error: undefined });
    expect(client.sent).toHaveLength(1);
  });

  it('adds progress atomically, the result-cache counters included', async () => {
    const client = new FakeClient(() => ({}));
    const store = new DynamoJobStore(client.asClient(), TABLE);
    await store.addProgress(JOB, { rowsOk: 3, rowsFailed: 1, rowsDegraded: 2, rowsCached: 2, rowsScored: 1 });
    await store.addProgress(JOB, { rowsOk: 3, rowsFailed: 1, rowsDegraded: 2 });
    const add =
      'ADD rowsOk :ok, rowsFailed :failed, rowsDegraded :degraded, rowsCached :cached, rowsScored :scored';
    expect(client.sent[0]?.input).toMatchObject({
      UpdateExpression: add,
      ExpressionAttributeValues: { ':ok': 3, ':failed': 1, ':degraded': 2, ':cached': 2, ':scored': 1 },
    });
    expect(client.sent[1]?.input).toMatchObject({
      ExpressionAttributeValues: { ':cached': 0, ':scored': 0 },
    });
  });
});

describe('DynamoJobStore batch counts', () => {
  it('follows LastEvaluatedKey until the last page, with the key condition on the job', async () => {
    const pages = [
      {
        Items: [{ firstLine: 2, cached: 1, scored: 249 }],
        LastEvaluatedKey: { pk: 'JOB#job-1', sk: 'BATCH#2' },
      },
      { Items: [{ firstLine: 252, cached: 0, scored: 250 }] },
    ];
    const client = new FakeClient((_command, call) => pages[call - 1]);
    const counts = await new DynamoJobStore(client.asClient(), TABLE).batchCounts(JOB);
    expect(counts).toEqual([
      { firstLine: 2, cached: 1, scored: 249 },
      { firstLine: 252, cached: 0, scored: 250 },
    ]);
    expect(client.sent.map((c) => c.constructor.name)).toEqual(['QueryCommand', 'QueryCommand']);
    expect(client.sent[0]?.input).toMatchObject({
      TableName: TABLE,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': `JOB#${JOB}`, ':prefix': 'BATCH#' },
    });
    expect(client.sent[1]?.input.ExclusiveStartKey).toEqual({ pk: 'JOB#job-1', sk: 'BATCH#2' });
  });

  it('names the job and the table when the Query fails', async () => {
    const client = new FakeClient(() => {
      throw new Error('throttled');
    });
    await expect(new DynamoJobStore(client.asClient(), TABLE).batchCounts(JOB)).rejects.toThrow(
      `reading the batch counts of job ${JOB} in table ${TABLE} failed: throttled`,
    );
  });
});
