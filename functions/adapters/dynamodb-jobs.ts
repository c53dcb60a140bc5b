import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandOutput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConfigError, UpstreamError } from '../core/errors.js';
import {
  type BatchCounts,
  type JobProgress,
  type JobRecord,
  lineKey,
  type RowResult,
  type StoredRows,
} from '../core/jobs.js';
import type { JobStore } from '../core/ports.js';
import { putRequestGroups, type RetryOptions, writeBatch } from './dynamodb-batch.js';

const jobPk = (jobId: string) => `JOB#${jobId}`;
const jobKey = (jobId: string) => ({ pk: jobPk(jobId), sk: 'JOB' });
const batchKey = (jobId: string, firstLine: number) => ({
  pk: jobPk(jobId),
  sk: `BATCH#${lineKey(firstLine)}`,
});
// Zero-padded parts sort in order within their batch.
const rowsKey = (jobId: string, firstLine: number, part: number) => ({
  pk: jobPk(jobId),
  sk: `ROWS#${lineKey(firstLine)}#${String(part).padStart(3, '0')}`,
});

const defaultRetry: RetryOptions = { maxAttempts: 8, baseDelayMs: 50 };

/** BatchWriteItem requests one putBatch keeps in flight (a batch of huge rows has many parts). */
const PARALLEL_WRITES = 4;

/**
 * The most JSON one rows item holds: DynamoDB's item limit is 400 KB, names and keys included. A
 * 250-row batch of a two-label ensemble is about 80 KB, one item.
 */
export const MAX_PART_BYTES = 350_000;

/**
 * Jobs, their rows and batch counts in the single table, under `JOB#<id>`: `JOB` (the job),
 * `BATCH#<first line>` (a batch's counts and how many rows items it has) and
 * `ROWS#<first line>#<part>` (a batch's rows as a JSON array, in line order).
 *
 * A batch's rows are one item, not one item per row: a 250-row batch is one write of about 80 write
 * units instead of 250 requests of one unit each (a row is about 320 bytes and a unit is 1 KB), and
 * the row-level output is the job's results file in S3 anyway.
 */
export class DynamoJobStore implements JobStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly retry: RetryOptions = defaultRetry,
  ) {}

  async createJob(job: JobRecord): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...jobKey(job.jobId), type: 'job', ...job },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (
        err instanceof ConditionalCheckFailedException ||
        (err as Error).name === 'ConditionalCheckFailedException'
      ) {
        return false;
      }
      throw this.fail(`creating job ${job.jobId}`, err);
    }
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    try {
      const out = await this.client.send(
        new GetCommand({ TableName: this.table, Key: jobKey(jobId), ConsistentRead: true }),
      );
      if (!out.Item) return undefined;
      const { pk: _pk, sk: _sk, type: _type, ...job } = out.Item;
      // A job that Prepare (an update) reached before the trigger's create has no jobId attribute.
      return { ...job, jobId } as JobRecord;
    } catch (err) {
      throw this.fail(`reading job ${jobId}`, err);
    }
  }

  async updateJob(jobId: string, patch: Partial<JobRecord>): Promise<void> {
    const entries = Object.entries(patch).filter(([k, v]) => v !== undefined && k !== 'jobId');
    if (entries.length === 0) return;
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = entries.map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      return `#f${i} = :v${i}`;
    });
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobKey(jobId),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      throw this.fail(`updating job ${jobId}`, err);
    }
  }

  async addProgress(jobId: string, p: JobProgress): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobKey(jobId),
          UpdateExpression:
            'ADD rowsOk :ok, rowsFailed :failed, rowsDegraded :degraded, rowsCached :cached, rowsScored :scored',
          ExpressionAttributeValues: {
            ':ok': p.rowsOk,
            ':failed': p.rowsFailed,
            ':degraded': p.rowsDegraded,
            ':cached': p.rowsCached ?? 0,
            ':scored': p.rowsScored ?? 0,
          },
        }),
      );
    } catch (err) {
      throw this.fail(`updating progress of job ${jobId}`, err);
    }
  }

  /**
   * Writes the batch's counts and its rows items together, 25 items per BatchWriteItem (its
   * limit; one request for any batch of ordinary rows), up to {@link PARALLEL_WRITES} requests in
   * flight, each retrying its UnprocessedItems on its own with exponential backoff and full jitter;
   * gives up after `maxAttempts` naming how many items were left. The counts item says how many
   * rows items the batch has, so parts left by an earlier, longer copy of the batch are not read.
   */
  async putBatch(jobId: string, batch: StoredRows): Promise<void> {
    const parts = rowParts(jobId, batch);
    const items: Record<string, unknown>[] = [
      {
        ...batchKey(jobId, batch.firstLine),
        type: 'batch',
        jobId,
        firstLine: batch.firstLine,
        cached: batch.cached,
        scored: batch.scored,
        rowItems: parts.length,
      },
      ...parts.map((rows, part) => ({
        ...rowsKey(jobId, batch.firstLine, part),
        type: 'rows',
        jobId,
        firstLine: batch.firstLine,
        part,
        count: rows.count,
        rows: rows.json,
      })),
    ];
    const groups = putRequestGroups(items);
    let next = 0;
    const lane = async () => {
      while (next < groups.length) {
        await this.writeGroup(jobId, batch.firstLine, groups[next++] as Record<string, unknown>[]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_WRITES, groups.length) }, lane));
  }

  /** Every stored row of the job, batch by batch in line order (for readers of the table). */
  async *rows(jobId: string): AsyncGenerator<RowResult> {
    const partsOf = new Map<number, number>();
    for await (const item of this.items(jobId, 'BATCH#', 'firstLine, rowItems', 'the batches')) {
      partsOf.set(Number(item.firstLine), Number(item.rowItems ?? 0));
    }
    for await (const item of this.items(jobId, 'ROWS#', undefined, 'the rows')) {
      if (Number(item.part) >= (partsOf.get(Number(item.firstLine)) ?? 0)) continue;
      yield* JSON.parse(String(item.rows)) as RowResult[];
    }
  }

  async batchCounts(jobId: string): Promise<BatchCounts[]> {
    const counts: BatchCounts[] = [];
    for await (const item of this.items(jobId, 'BATCH#', 'firstLine, cached, scored', 'the batch counts')) {
      counts.push({
        firstLine: Number(item.firstLine),
        cached: Number(item.cached ?? 0),
        scored: Number(item.scored ?? 0),
      });
    }
    return counts;
  }

  /** The job's items under a sort-key prefix, page by page (following LastEvaluatedKey). */
  private async *items(
    jobId: string,
    prefix: string,
    projection: string | undefined,
    what: string,
  ): AsyncGenerator<Record<string, unknown>> {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.query(jobId, prefix, projection, start, what);
      yield* page.Items ?? [];
      start = page.LastEvaluatedKey;
    } while (start);
  }

  private async query(
    jobId: string,
    prefix: string,
    projection: string | undefined,
    start: Record<string, unknown> | undefined,
    what: string,
  ): Promise<QueryCommandOutput> {
    try {
      return await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': jobPk(jobId), ':prefix': prefix },
          ...(projection ? { ProjectionExpression: projection } : {}),
          ExclusiveStartKey: start,
        }),
      );
    } catch (err) {
      throw this.fail(`reading ${what} of job ${jobId}`, err);
    }
  }

  private writeGroup(jobId: string, firstLine: number, group: Record<string, unknown>[]): Promise<void> {
    return writeBatch(this.client, this.table, group, this.retry, {
      exhausted: (left) =>
        new UpstreamError(
          `writing the batch at line ${firstLine} of job ${jobId}: ${left} items still unprocessed after ${this.retry.maxAttempts} attempts`,
        ),
      failed: (err) => this.fail(`writing the batch at line ${firstLine} of job ${jobId}`, err),
    });
  }

  private fail(what: string, err: unknown): UpstreamError {
    return new UpstreamError(`${what} in table ${this.table} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * A batch's rows as JSON arrays of at most {@link MAX_PART_BYTES} bytes each (one for ordinary
 * rows). A single row over the limit cannot be stored: the error names it.
 */
function rowParts(jobId: string, batch: StoredRows): { json: string; count: number }[] {
  const parts: { json: string; count: number }[] = [];
  let current: string[] = [];
  let bytes = 2;
  for (const row of batch.rows) {
    const json = JSON.stringify(row);
    const size = Buffer.byteLength(json) + 1;
    if (size + 2 > MAX_PART_BYTES) {
      // No retry makes it fit: the ensemble's answers are too wide (tens of thousands of labels).
      throw new ConfigError(
        `storing job ${jobId}: row ${row.rowId} (line ${row.line}) is ${size} bytes as JSON, more than the ${MAX_PART_BYTES} a DynamoDB item can hold`,
      );
    }
    if (current.length && bytes + size > MAX_PART_BYTES) {
      parts.push({ json: `[${current.join(',')}]`, count: current.length });
      current = [];
      bytes = 2;
    }
    current.push(json);
    bytes += size;
  }
  if (current.length) parts.push({ json: `[${current.join(',')}]`, count: current.length });
  return parts;
}
