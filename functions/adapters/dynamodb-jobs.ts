import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandOutput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { UpstreamError } from '../core/errors.js';
import type { BatchCounts, JobProgress, JobRecord, RowResult } from '../core/jobs.js';
import type { JobStore } from '../core/ports.js';
import { type RetryOptions, writeBatch } from './dynamodb-batch.js';

const jobKey = (jobId: string) => ({ pk: `JOB#${jobId}`, sk: 'JOB' });
const rowKey = (jobId: string, rowId: string) => ({ pk: `JOB#${jobId}`, sk: `ROW#${rowId}` });
// Zero-padded so a job's batches sort by line.
const batchKey = (jobId: string, firstLine: number) => ({
  pk: `JOB#${jobId}`,
  sk: `BATCH#${String(firstLine).padStart(12, '0')}`,
});

const defaultRetry: RetryOptions = { maxAttempts: 8, baseDelayMs: 50 };

/** BatchWriteItem requests one putRows keeps in flight. */
const PARALLEL_WRITES = 4;

/**
 * Jobs, row results and batch counts in the single table: `JOB#<id>` with `JOB`, `ROW#<rowId>` and
 * `BATCH#<first line>`.
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
   * Writes rows 25 at a time (BatchWriteItem's limit), up to {@link PARALLEL_WRITES} requests in
   * flight (one round trip per group one after another made a 250-row batch wait for ten), each
   * group retrying its UnprocessedItems on its own with exponential backoff and full jitter; gives
   * up after `maxAttempts` naming how many rows were left.
   */
  async putRows(jobId: string, rows: readonly RowResult[]): Promise<void> {
    const groups: Record<string, unknown>[][] = [];
    for (let i = 0; i < rows.length; i += 25) {
      groups.push(
        rows.slice(i, i + 25).map((r) => ({
          PutRequest: { Item: { ...rowKey(jobId, r.rowId), type: 'row', jobId, ...r } },
        })),
      );
    }
    let next = 0;
    const lane = async () => {
      while (next < groups.length) await this.writeGroup(jobId, groups[next++] as Record<string, unknown>[]);
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_WRITES, groups.length) }, lane));
  }

  /** One item per batch, written with BatchWriteItem (the permission the store already has). */
  async putBatchCounts(jobId: string, counts: BatchCounts): Promise<void> {
    await this.writeGroup(jobId, [
      {
        PutRequest: {
          Item: {
            ...batchKey(jobId, counts.firstLine),
            type: 'batch',
            jobId,
            firstLine: counts.firstLine,
            cached: counts.cached,
            scored: counts.scored,
          },
        },
      },
    ]);
  }

  async batchCounts(jobId: string): Promise<BatchCounts[]> {
    const counts: BatchCounts[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      let page: QueryCommandOutput;
      try {
        page = await this.client.send(
          new QueryCommand({
            TableName: this.table,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :batch)',
            ExpressionAttributeValues: { ':pk': `JOB#${jobId}`, ':batch': 'BATCH#' },
            ProjectionExpression: 'firstLine, cached, scored',
            ExclusiveStartKey: start,
          }),
        );
      } catch (err) {
        throw this.fail(`reading the batch counts of job ${jobId}`, err);
      }
      for (const item of page.Items ?? []) {
        counts.push({
          firstLine: Number(item.firstLine),
          cached: Number(item.cached ?? 0),
          scored: Number(item.scored ?? 0),
        });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return counts;
  }

  private writeGroup(jobId: string, group: Record<string, unknown>[]): Promise<void> {
    return writeBatch(this.client, this.table, group, this.retry, {
      exhausted: (left) =>
        new UpstreamError(
          `writing rows of job ${jobId}: ${left} rows still unprocessed after ${this.retry.maxAttempts} attempts`,
        ),
      failed: (err) => this.fail(`writing rows of job ${jobId}`, err),
    });
  }

  private fail(what: string, err: unknown): UpstreamError {
    return new UpstreamError(`${what} in table ${this.table} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
