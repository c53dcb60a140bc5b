import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { jest } from '@jest/globals';
import { DynamoJobStore } from '../../functions/adapters/dynamodb-jobs.js';
import { UpstreamError } from '../../functions/core/errors.js';
import type { JobRecord, RowResult } from '../../functions/core/jobs.js';

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

describe('DynamoJobStore.putRows', () => {
  it('writes one item per row, 25 per BatchWriteItem, keyed by job and row id', async () => {
    const client = new FakeClient(() => ({}));
    const store = new DynamoJobStore(client.asClient(), TABLE, { maxAttempts: 3, baseDelayMs: 10 });
    const rows = rowsOf(60);
    await store.putRows(JOB, rows);

    expect(client.sent.map((c) => c.constructor.name)).toEqual(Array(3).fill('BatchWriteCommand'));
    expect([0, 1, 2].map((n) => client.requests(n).length)).toEqual([25, 25, 10]);
    const items = [0, 1, 2].flatMap((n) => client.requests(n).map((r) => r.PutRequest.Item));
    expect(items).toHaveLength(60);
    expect(items[0]).toEqual({ pk: `JOB#${JOB}`, sk: 'ROW#r0', type: 'row', jobId: JOB, ...rows[0] });
    expect(new Set(items.map((i) => i.sk)).size).toBe(60);
  });

  it('retries the unprocessed items only, with exponential backoff and full jitter, until written', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const sleeps: number[] = [];
    const client = new FakeClient(unprocessedFor(3, 5));
    const store = new DynamoJobStore(client.asClient(), TABLE, {
      maxAttempts: 8,
      baseDelayMs: 40,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const rows = rowsOf(20);
    await store.putRows(JOB, rows);

    expect(client.sent).toHaveLength(4);
    expect(client.requests(0)).toHaveLength(20);
    for (const n of [1, 2, 3]) {
      expect(client.requests(n).map((r) => r.PutRequest.Item.rowId)).toEqual([
        'r15',
        'r16',
        'r17',
        'r18',
        'r19',
      ]);
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
    await store.putRows(JOB, rowsOf(3));
    expect(sleeps).toHaveLength(5);
    sleeps.forEach((ms, k) => {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(100 * 2 ** k);
    });
  });

  it('sends the groups of 25 together and retries each on its own', async () => {
    const sleeps: number[] = [];
    // The first group is throttled once, the second group goes through at once.
    const client = new FakeClient(unprocessedFor(1, 2));
    const store = new DynamoJobStore(client.asClient(), TABLE, {
      maxAttempts: 3,
      baseDelayMs: 10,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    await store.putRows(JOB, rowsOf(30));
    // Both groups go out before the throttled one's retry.
    expect(client.sent.map((_, n) => client.requests(n).length)).toEqual([25, 5, 2]);
    expect(sleeps).toHaveLength(1);
  });

  it('keeps at most four BatchWriteItem requests in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const client = new FakeClient(async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return {};
    });
    const store = new DynamoJobStore(client.asClient(), TABLE, { maxAttempts: 3, baseDelayMs: 10 });
    await store.putRows(JOB, rowsOf(250));
    expect(client.sent).toHaveLength(10);
    expect(most).toBe(4);
  });

  it('gives up after maxAttempts, naming how many rows were left', async () => {
    const sleep = jest.fn(async (_ms: number) => {});
    const client = new FakeClient(unprocessedFor(Number.POSITIVE_INFINITY, 7));
    const store = new DynamoJobStore(client.asClient(), TABLE, { maxAttempts: 4, baseDelayMs: 10, sleep });

    const err = await store.putRows(JOB, rowsOf(10)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as Error).message).toBe(
      `writing rows of job ${JOB}: 7 rows still unprocessed after 4 attempts`,
    );
    expect(client.sent).toHaveLength(4);
    expect(sleep).toHaveBeenCalledTimes(3);
  });

  it('reports a failed BatchWriteItem as an UpstreamError naming the table', async () => {
    const client = new FakeClient(() => {
      throw new Error('ProvisionedThroughputExceededException');
    });
    const store = new DynamoJobStore(client.asClient(), TABLE, { maxAttempts: 3, baseDelayMs: 10 });
    await expect(store.putRows(JOB, rowsOf(1))).rejects.toThrow(
      `writing rows of job ${JOB} in table ${TABLE} failed: ProvisionedThroughputExceededException`,
    );
  });

  it('sends nothing for no rows', async () => {
    const client = new FakeClient(() => ({}));
    await new DynamoJobStore(client.asClient(), TABLE).putRows(JOB, []);
    expect(client.sent).toEqual([]);
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
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :batch)',
      ExpressionAttributeValues: { ':pk': `JOB#${JOB}`, ':batch': 'BATCH#' },
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
