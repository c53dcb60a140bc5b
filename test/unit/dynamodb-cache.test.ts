import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoResultCache } from '../../functions/adapters/dynamodb-cache.js';
import { UpstreamError } from '../../functions/core/errors.js';
import type { CacheEntry } from '../../functions/core/result-cache.js';

const TABLE = 'fanout-test';
type Command = { input: Record<string, any> };

/** A DocumentClient stand-in that answers each call from a script and records what it was sent. */
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
}

const entry = (key: string): CacheEntry => ({
  key,
  ensemble: 'e',
  prediction: {
    label: 'yes',
    probabilities: { no: 0.2, yes: 0.8 },
    uncertainty: { agreement: 1, margin: 0.6, entropy: 0.722, spread: 0 },
  },
  members: [],
  cachedAt: '2026-01-01T00:00:00.000Z',
  expiresAt: 1_767_225_600,
});
// As stored: the key in the partition key, the expiry in the table's TTL attribute.
const item = (key: string) => {
  const { key: _key, expiresAt, ...stored } = entry(key);
  return { pk: `CACHE#${key}`, sk: 'CACHE', type: 'cache', ...stored, ttl: expiresAt };
};
const noSleep = { maxAttempts: 3, baseDelayMs: 1, sleep: async () => {} };

describe('DynamoResultCache', () => {
  it('asks again for the keys DynamoDB left unprocessed (throttling), and returns clean entries', async () => {
    const client = new FakeClient((command, call) => {
      const keys = command.input.RequestItems[TABLE].Keys as { pk: string }[];
      if (call === 1) {
        return { Responses: { [TABLE]: [item('a')] }, UnprocessedKeys: { [TABLE]: { Keys: keys.slice(1) } } };
      }
      return { Responses: { [TABLE]: keys.map((k) => item(k.pk.slice('CACHE#'.length))) } };
    });
    const found = await new DynamoResultCache(client.asClient(), TABLE, noSleep).get(['a', 'b', 'c']);
    expect([...found.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(found.get('b')).toEqual(entry('b'));
    expect(client.sent[1]?.input.RequestItems[TABLE].Keys).toEqual([
      { pk: 'CACHE#b', sk: 'CACHE' },
      { pk: 'CACHE#c', sk: 'CACHE' },
    ]);
    // Eventually consistent: a cache does not need the latest write, and it costs half.
    expect(client.sent[0]?.input.RequestItems[TABLE].ConsistentRead).toBeUndefined();
  });

  it('gives up after its attempts with an UpstreamError saying how many were left', async () => {
    const client = new FakeClient((command) => ({
      Responses: { [TABLE]: [] },
      UnprocessedKeys: { [TABLE]: { Keys: command.input.RequestItems[TABLE].Keys } },
    }));
    const err = await new DynamoResultCache(client.asClient(), TABLE, noSleep).get(['a']).catch((e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.message).toBe(
      'reading 1 result-cache entries in table fanout-test: still unprocessed after 3 attempts',
    );
    expect(client.sent).toHaveLength(3);
  });

  it('ignores an item that is not a well-formed entry', async () => {
    const client = new FakeClient(() => ({
      Responses: { [TABLE]: [{ pk: 'CACHE#x', sk: 'CACHE', key: 'x' }] },
    }));
    expect((await new DynamoResultCache(client.asClient(), TABLE, noSleep).get(['x'])).size).toBe(0);
  });

  it('writes 25 entries per BatchWriteItem and retries the unprocessed ones', async () => {
    const client = new FakeClient((command, call) =>
      call === 1 ? { UnprocessedItems: { [TABLE]: command.input.RequestItems[TABLE].slice(0, 2) } } : {},
    );
    await new DynamoResultCache(client.asClient(), TABLE, noSleep).put(
      Array.from({ length: 30 }, (_, i) => entry(`k${i}`)),
    );
    expect(client.sent.map((c) => c.input.RequestItems[TABLE].length)).toEqual([25, 2, 5]);
    expect(client.sent[0]?.input.RequestItems[TABLE][0]).toEqual({ PutRequest: { Item: item('k0') } });
  });
});
