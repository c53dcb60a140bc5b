import { createServer, type Server } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoResultCache, TTL_ATTRIBUTE } from '../../functions/adapters/dynamodb-cache.js';
import { UpstreamError } from '../../functions/core/errors.js';
import type { EnsembleSpec } from '../../functions/core/manifest.js';
import { type CacheEntry, lookupFresh } from '../../functions/core/result-cache.js';
import { type DynaliteTable, startDynaliteTable, TABLE } from '../support/dynalite-table.js';

const ENSEMBLE = {
  name: 'pair',
  members: ['a', 'b'],
  weights: [1, 1],
  strategy: 'soft-vote',
  quorum: 2,
  features: ['x'],
  labels: ['no', 'yes'],
  cache: { ttlSeconds: 600 },
} satisfies EnsembleSpec;

const prediction = (yes: number) => ({
  label: yes > 0.5 ? 'yes' : 'no',
  probabilities: { no: 1 - yes, yes },
  uncertainty: { agreement: 1, margin: Math.abs(2 * yes - 1), entropy: 0.811, spread: 0.05 },
});

function entry(key: string, cachedAt: Date, ttlSeconds = 600): CacheEntry {
  return {
    key,
    ensemble: 'pair',
    prediction: prediction(0.75),
    members: [
      { model: 'a', probabilities: [0.3, 0.7] },
      { model: 'b', probabilities: [0.2, 0.8] },
    ],
    cachedAt: cachedAt.toISOString(),
    expiresAt: Math.floor(cachedAt.getTime() / 1000) + ttlSeconds,
  };
}

let table: DynaliteTable;
let doc: DynamoDBDocumentClient;
let cache: DynamoResultCache;

beforeAll(async () => {
  // No sweeping during the test: expired entries must stay stored, as on AWS before its deletion.
  table = await startDynaliteTable('fanout-cache-ddb-', {
    ttlSweepMs: 3_600_000,
    marshallOptions: { removeUndefinedValues: true },
  });
  doc = table.doc;
  cache = new DynamoResultCache(doc, TABLE);
});

afterAll(() => table?.close());

describe('result cache in DynamoDB (dynalite, the serverless.yml table)', () => {
  it('stores one item per entry under CACHE#<key>, with the TTL attribute in epoch seconds', async () => {
    const at = new Date('2026-04-01T08:00:00.000Z');
    await cache.put([entry('k-one', at)]);
    const out = await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: 'CACHE#k-one', sk: 'CACHE' } }));
    expect(out.Item).toMatchObject({ type: 'cache', [TTL_ATTRIBUTE]: at.getTime() / 1000 + 600 });
    // The partition key holds the key: not stored twice, so an entry stays within one write unit.
    expect(out.Item?.key).toBeUndefined();
    expect(JSON.stringify(out.Item).length).toBeLessThan(1024);
    expect((await cache.get(['k-one'])).get('k-one')).toEqual(entry('k-one', at));
  });

  it('reads many keys at once (over the 100 keys of one BatchGetItem) and skips absent ones', async () => {
    const at = new Date();
    const keys = Array.from({ length: 130 }, (_, i) => `many-${i}`);
    await cache.put(keys.map((k) => entry(k, at)));
    const found = await cache.get([...keys, 'absent-1', 'absent-2']);
    expect(found.size).toBe(130);
    expect([...found.keys()].sort()).toEqual([...keys].sort());
  });

  it('replaces an entry written again for the same key', async () => {
    const at = new Date();
    await cache.put([entry('again', at)]);
    await cache.put([{ ...entry('again', at), prediction: prediction(0.1) }]);
    expect((await cache.get(['again'])).get('again')?.prediction).toEqual(prediction(0.1));
  });

  it('returns expired items as stored, and lookupFresh leaves them out (dynalite never deletes them)', async () => {
    const now = new Date();
    await cache.put([entry('stale', new Date(now.getTime() - 700_000)), entry('fresh', now)]);
    const raw = await cache.get(['stale', 'fresh']);
    expect(raw.size).toBe(2);
    const found = await lookupFresh(cache, ENSEMBLE, ['stale', 'fresh'], now);
    expect([...found.entries.keys()]).toEqual(['fresh']);
  });

  it('fails with an UpstreamError naming the table when the table is not there', async () => {
    const missing = new DynamoResultCache(doc, 'no-such-table');
    const err = await missing.get(['k']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as Error).message).toMatch(/^reading result-cache entries in table no-such-table failed: /);
    await expect(missing.put([entry('k', new Date())])).rejects.toThrow(
      /^writing result-cache entries in table no-such-table failed: /,
    );
    // ...which the lookup turns into a miss with the reason, never an exception.
    const found = await lookupFresh(missing, ENSEMBLE, ['k'], new Date());
    expect(found).toMatchObject({ entries: new Map(), error: expect.stringContaining('no-such-table') });
  });

  it('gives up on a read that gets no answer within its time limit, without waiting for the SDK', async () => {
    // A "DynamoDB" that accepts connections and never answers.
    const sockets: import('node:net').Socket[] = [];
    const silent: Server = createServer((socket) => {
      sockets.push(socket);
    });
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    const port = (silent.address() as { port: number }).port;
    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      }),
    );
    try {
      const slow = new DynamoResultCache(client, TABLE, { readTimeoutMs: 150 });
      const found = await lookupFresh(slow, ENSEMBLE, ['k'], new Date());
      // Without the limit this read would wait for ever (the SDK sets no socket timeout) and the
      // test would time out.
      expect(found.error).toBe(`reading result-cache entries in table ${TABLE}: no answer within 150 ms`);
    } finally {
      client.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((done) => silent.close(() => done()));
    }
  });
});
