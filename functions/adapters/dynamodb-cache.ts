import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { UpstreamError } from '../core/errors.js';
import type { Manifest } from '../core/manifest.js';
import { MemoryTier } from '../core/memory-tier.js';
import type { ResultCache } from '../core/ports.js';
import type { CacheEntry } from '../core/result-cache.js';
import { beforeAttempt, putRequestGroups, type RetryOptions, writeBatch } from './dynamodb-batch.js';

/** Key layout of the single table: one result-cache entry per row under `CACHE#<sha256>`. */
export const cacheKey = (key: string) => ({ pk: `CACHE#${key}`, sk: 'CACHE' });

/** The attribute the table's TimeToLiveSpecification names (serverless.yml). */
// Not `expiresAt`: prediction items use that name for a client id's claim, in milliseconds.
export const TTL_ATTRIBUTE = 'ttl';

/** Options for retrying unprocessed keys and items (throttling returns them instead of failing). */
export interface CacheRetryOptions extends RetryOptions {
  /**
   * How long one read may take before it is abandoned (a failed read: the caller answers
   * uncached). Set where a read sits in front of a synchronous answer, so a slow or unreachable
   * table (the SDK's own retries included) delays an answer by at most this much.
   */
  readTimeoutMs?: number;
}

// Few, short retries: a cache read sits in front of a synchronous answer, and a miss is cheap.
const defaultRetry: CacheRetryOptions = { maxAttempts: 3, baseDelayMs: 20 };

const GET_LIMIT = 100; // BatchGetItem's keys per call

/**
 * Result-cache entries in the single DynamoDB table. Reads are eventually consistent (half the
 * price; an entry written a moment ago that is not seen yet is just a miss). Expired items are
 * returned as stored: DynamoDB deletes them lazily (days later on AWS, never in dynalite), so the
 * caller checks the expiry on every read.
 */
export class DynamoResultCache implements ResultCache {
  private readonly retry: CacheRetryOptions;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
    retry: Partial<CacheRetryOptions> = {},
  ) {
    this.retry = { ...defaultRetry, ...retry };
  }

  async get(keys: readonly string[]): Promise<Map<string, CacheEntry>> {
    const found = new Map<string, CacheEntry>();
    const chunks: string[][] = [];
    for (let i = 0; i < keys.length; i += GET_LIMIT) chunks.push(keys.slice(i, i + GET_LIMIT));
    await Promise.all(
      chunks.map(async (chunk) => {
        let pending: Record<string, unknown>[] = chunk.map(cacheKey);
        for (let attempt = 1; pending.length > 0; attempt++) {
          const left = pending.length;
          await beforeAttempt(attempt, this.retry, () =>
            this.exhausted(`reading ${left} result-cache entries`),
          );
          let out: BatchGetCommandOutput;
          const limit = this.retry.readTimeoutMs;
          try {
            out = await this.client.send(
              new BatchGetCommand({ RequestItems: { [this.table]: { Keys: pending } } }),
              limit === undefined ? {} : { abortSignal: AbortSignal.timeout(limit) },
            );
          } catch (err) {
            const timedOut = (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError';
            throw timedOut
              ? new UpstreamError(
                  `reading result-cache entries in table ${this.table}: no answer within ${limit} ms`,
                  { cause: err },
                )
              : this.fail('reading result-cache entries', err);
          }
          for (const item of out.Responses?.[this.table] ?? []) {
            const entry = entryOf(item);
            if (entry) found.set(entry.key, entry);
          }
          pending = (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
        }
      }),
    );
    return found;
  }

  async put(entries: readonly CacheEntry[]): Promise<void> {
    for (const requests of putRequestGroups(entries.map(toItem))) {
      await writeBatch(this.client, this.table, requests, this.retry, {
        exhausted: (left) => this.exhausted(`writing ${left} result-cache entries`),
        failed: (err) => this.fail('writing result-cache entries', err),
      });
    }
  }

  private exhausted(what: string): UpstreamError {
    return new UpstreamError(
      `${what} in table ${this.table}: still unprocessed after ${this.retry.maxAttempts} attempts`,
    );
  }

  private fail(what: string, err: unknown): UpstreamError {
    return new UpstreamError(`${what} in table ${this.table} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The key is the partition key already: not stored twice (an entry stays under 1 KB). */
function toItem(entry: CacheEntry): Record<string, unknown> {
  const { key, expiresAt, ...rest } = entry;
  return { ...cacheKey(key), type: 'cache', ...rest, [TTL_ATTRIBUTE]: expiresAt };
}

/** The entry an item holds, or undefined for an item that is not a well-formed entry. */
function entryOf(item: Record<string, unknown>): CacheEntry | undefined {
  const { pk, ensemble, prediction, members, cachedAt, [TTL_ATTRIBUTE]: expiresAt } = item;
  const key = typeof pk === 'string' && pk.startsWith('CACHE#') ? pk.slice('CACHE#'.length) : undefined;
  if (
    key === undefined ||
    typeof ensemble !== 'string' ||
    typeof cachedAt !== 'string' ||
    typeof expiresAt !== 'number' ||
    prediction === null ||
    typeof prediction !== 'object' ||
    !Array.isArray(members)
  ) {
    return undefined;
  }
  return { key, ensemble, prediction, members, cachedAt, expiresAt } as CacheEntry;
}

/**
 * The table behind this instance's memory tier (core/memory-tier.ts), bounded by the configuration;
 * the table alone when the tier is off (`FANOUT_CACHE_MEMORY_ENTRIES=0`).
 */
export function withMemoryTier(
  table: ResultCache,
  manifest: Manifest,
  memory: { maxEntries: number; maxAgeSeconds: number },
): ResultCache {
  if (memory.maxEntries <= 0) return table;
  return new MemoryTier(table, {
    ...memory,
    ttlSeconds: (ensemble) => manifest.ensembles.get(ensemble)?.cache?.ttlSeconds,
  });
}
