import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { spedUpDynaliteStores, speedUpDynalite } from '../../local/dynalite-speedup.js';
import { listen, type RunningServer } from '../../local/http-util.js';

/** The same DynamoDB calls against a plain dynalite and a sped-up one, both on disk. */
describe('speedUpDynalite', () => {
  const dirs: string[] = [];
  const servers: RunningServer[] = [];
  const clients: DynamoDBClient[] = [];

  async function start(): Promise<DynamoDBClient> {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-dynalite-'));
    dirs.push(dir);
    const server = dynalite({ path: dir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }) as Server;
    const running = await listen(server, 0, 'dynalite');
    servers.push(running);
    const client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: running.url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    clients.push(client);
    return client;
  }

  let plain: DynamoDBClient;
  let fast: DynamoDBClient;

  beforeAll(async () => {
    plain = await start();
    const before = spedUpDynaliteStores();
    speedUpDynalite();
    fast = await start();
    // The patched module is the one dynalite itself uses.
    expect(spedUpDynaliteStores()).toBe(before + 1);
  });

  afterAll(async () => {
    for (const c of clients) c.destroy();
    for (const s of servers) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Runs `call` on both and expects the same outcome: the answer without request metadata, or the error. */
  async function same(call: (c: DynamoDBClient) => Promise<unknown>): Promise<unknown> {
    const outcome = async (c: DynamoDBClient) => {
      try {
        const { $metadata: _m, ...rest } = (await call(c)) as { $metadata?: unknown };
        return { ok: strip(rest) };
      } catch (err) {
        return { error: (err as Error).name, message: (err as Error).message };
      }
    };
    const [a, b] = [await outcome(plain), await outcome(fast)];
    expect(b).toEqual(a);
    return b;
  }

  const waitActive = async (c: DynamoDBClient, name: string) => {
    for (let i = 0; i < 200; i++) {
      const t = await c.send(new DescribeTableCommand({ TableName: name })).catch(() => undefined);
      if (t?.Table?.TableStatus === 'ACTIVE') return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`${name} never became ACTIVE`);
  };

  const createTable = (name: string, hash: string) => async (c: DynamoDBClient) => {
    const out = await c.send(
      new CreateTableCommand({
        TableName: name,
        KeySchema: [
          { AttributeName: hash, KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: hash, AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await waitActive(c, name);
    return { status: out.TableDescription?.TableName };
  };

  it('answers items, conditions, updates, batches, queries and scans as plain dynalite does', async () => {
    await same(createTable('jobs', 'pk'));
    await same((c) =>
      c.send(
        new PutItemCommand({
          TableName: 'jobs',
          Item: { pk: { S: 'J#1' }, sk: { S: 'JOB' }, n: { N: '1' } },
        }),
      ),
    );
    await same((c) =>
      c.send(
        new PutItemCommand({
          TableName: 'jobs',
          Item: { pk: { S: 'J#1' }, sk: { S: 'JOB' } },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    await same((c) =>
      c.send(
        new UpdateItemCommand({
          TableName: 'jobs',
          Key: { pk: { S: 'J#1' }, sk: { S: 'JOB' } },
          UpdateExpression: 'ADD n :one',
          ExpressionAttributeValues: { ':one': { N: '1' } },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    await same((c) =>
      c.send(
        new BatchWriteItemCommand({
          RequestItems: {
            jobs: [
              ...Array.from({ length: 24 }, (_, i) => ({
                PutRequest: { Item: { pk: { S: 'J#1' }, sk: { S: `ROW#${String(i).padStart(2, '0')}` } } },
              })),
              { DeleteRequest: { Key: { pk: { S: 'J#1' }, sk: { S: 'JOB' } } } },
            ],
          },
        }),
      ),
    );
    await same((c) =>
      c.send(
        new QueryCommand({
          TableName: 'jobs',
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :row)',
          ExpressionAttributeValues: { ':pk': { S: 'J#1' }, ':row': { S: 'ROW#' } },
        }),
      ),
    );
    await same((c) =>
      c.send(new GetItemCommand({ TableName: 'jobs', Key: { pk: { S: 'J#1' }, sk: { S: 'JOB' } } })),
    );
    await same((c) =>
      c.send(new DeleteItemCommand({ TableName: 'jobs', Key: { pk: { S: 'J#1' }, sk: { S: 'ROW#03' } } })),
    );
    const scanned = (await same((c) => c.send(new ScanCommand({ TableName: 'jobs' })))) as {
      ok: { Count: number };
    };
    expect(scanned.ok.Count).toBe(23);
  });

  it('sees a table dropped and created again with another key (no stale description)', async () => {
    await same(createTable('again', 'pk'));
    await same((c) => c.send(new DeleteTableCommand({ TableName: 'again' })));
    await same((c) =>
      c.send(new GetItemCommand({ TableName: 'again', Key: { pk: { S: 'x' }, sk: { S: 'y' } } })),
    );
    await same(createTable('again', 'id'));
    await same((c) =>
      c.send(new PutItemCommand({ TableName: 'again', Item: { pk: { S: 'x' }, sk: { S: 'y' } } })),
    );
    await same((c) =>
      c.send(new PutItemCommand({ TableName: 'again', Item: { id: { S: 'x' }, sk: { S: 'y' } } })),
    );
  });

  it('lets exactly one of many concurrent conditional puts of one key win, as plain dynalite does', async () => {
    await same(createTable('race', 'pk'));
    for (const c of [plain, fast]) {
      const puts = Array.from({ length: 12 }, (_, i) =>
        c.send(
          new PutItemCommand({
            TableName: 'race',
            Item: { pk: { S: 'same' }, sk: { S: 'id' }, who: { N: String(i) } },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
      const settled = await Promise.allSettled(puts);
      expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
      for (const s of settled) {
        if (s.status === 'rejected') expect(s.reason).toBeInstanceOf(ConditionalCheckFailedException);
      }
    }
  });

  it('keeps what it wrote across a restart of the same data folder', async () => {
    await same((c) =>
      c.send(new PutItemCommand({ TableName: 'jobs', Item: { pk: { S: 'KEEP' }, sk: { S: 'ME' } } })),
    );
    const dir = dirs[1] as string;
    await (servers[1] as RunningServer).close();
    const again = await listen(dynalite({ path: dir, createTableMs: 0 }) as Server, 0, 'dynalite again');
    servers[1] = again;
    const client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: again.url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    clients.push(client);
    const out = await client.send(
      new GetItemCommand({ TableName: 'jobs', Key: { pk: { S: 'KEEP' }, sk: { S: 'ME' } } }),
    );
    expect(out.Item).toEqual({ pk: { S: 'KEEP' }, sk: { S: 'ME' } });
  });
});

/** Drops what differs between any two servers: creation times, request ids. */
function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'CreationDateTime' || k === 'TableArn' || k === 'TableId' || k === 'LastIncreaseDateTime')
        continue;
      out[k] = strip(v);
    }
    return out;
  }
  return value;
}
