import {
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';

/** BatchWriteItem's limit: requests per call. */
export const BATCH_WRITE_LIMIT = 25;

/** Items as BatchWriteItem put requests, in groups of at most {@link BATCH_WRITE_LIMIT}. */
export function putRequestGroups(items: readonly Record<string, unknown>[]): Record<string, unknown>[][] {
  const groups: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += BATCH_WRITE_LIMIT) {
    groups.push(items.slice(i, i + BATCH_WRITE_LIMIT).map((Item) => ({ PutRequest: { Item } })));
  }
  return groups;
}

/** Retrying what a batch call leaves unprocessed (throttling returns items instead of failing). */
export interface RetryOptions {
  maxAttempts: number;
  baseDelayMs: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Before attempt `attempt` (1-based) of a batch call: nothing before the first; past
 * `maxAttempts`, the error `exhausted` makes; else a wait with exponential backoff and full jitter.
 */
export async function beforeAttempt(
  attempt: number,
  retry: RetryOptions,
  exhausted: () => Error,
): Promise<void> {
  if (attempt === 1) return;
  if (attempt > retry.maxAttempts) throw exhausted();
  const cap = retry.baseDelayMs * 2 ** (attempt - 2);
  await (retry.sleep ?? sleep)(Math.random() * cap);
}

/**
 * One BatchWriteItem (at most {@link BATCH_WRITE_LIMIT} requests) and its retries until every item is written. The
 * callers name what they write: `exhausted(left)` when items are still unprocessed after the last
 * attempt, `failed(err)` when the call itself fails.
 */
export async function writeBatch(
  client: DynamoDBDocumentClient,
  table: string,
  requests: Record<string, unknown>[],
  retry: RetryOptions,
  errors: { exhausted: (left: number) => Error; failed: (err: unknown) => Error },
): Promise<void> {
  let pending = requests;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const left = pending.length;
    await beforeAttempt(attempt, retry, () => errors.exhausted(left));
    let out: BatchWriteCommandOutput;
    try {
      out = await client.send(new BatchWriteCommand({ RequestItems: { [table]: pending as never } }));
    } catch (err) {
      throw errors.failed(err);
    }
    pending = (out.UnprocessedItems?.[table] ?? []) as Record<string, unknown>[];
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
