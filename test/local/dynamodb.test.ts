import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DataDirInUseError, startDynamo } from '../../local/dynamodb.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';

const { tables, region } = loadServerlessConfig({
  file: join(import.meta.dirname, '..', '..', 'serverless.yml'),
});
const table = tables[0]?.tableName as string;

const client = (endpoint: string) =>
  DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint, region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  );

describe('local DynamoDB (dynalite on disk)', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'fanout-ddb-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('creates the serverless.yml table and keeps its records across a restart', async () => {
    const first = await startDynamo({ dataDir, region, tables });
    const a = client(first.url);
    await a.send(new PutCommand({ TableName: table, Item: { pk: 'PRED#1', sk: 'PRED', value: 42 } }));
    a.destroy();
    await first.close();

    // Same folder, a new server (and port): the table is found, not created again, and the record is there.
    const second = await startDynamo({ dataDir, region, tables });
    const b = client(second.url);
    const out = await b.send(new GetCommand({ TableName: table, Key: { pk: 'PRED#1', sk: 'PRED' } }));
    b.destroy();
    await second.close();
    expect(out.Item).toEqual({ pk: 'PRED#1', sk: 'PRED', value: 42 });
  });

  it('says so when another running stack holds the data folder', async () => {
    const running = await startDynamo({ dataDir, region, tables });
    try {
      await expect(startDynamo({ dataDir, region, tables })).rejects.toBeInstanceOf(DataDirInUseError);
    } finally {
      await running.close();
    }
    // Released on close: the folder can be used again.
    const again = await startDynamo({ dataDir, region, tables });
    await again.close();
  });

  it('deletes expired items of a table with TTL, as DynamoDB does lazily, and keeps the rest', async () => {
    const ttlTable = tables.find((t) => t.ttlAttribute);
    expect(ttlTable?.ttlAttribute).toBe('ttl');
    const running = await startDynamo({ dataDir, region, tables });
    const c = client(running.url);
    const now = Math.floor(Date.now() / 1000);
    try {
      await c.send(
        new PutCommand({ TableName: table, Item: { pk: 'CACHE#old', sk: 'CACHE', ttl: now - 5 } }),
      );
      await c.send(
        new PutCommand({ TableName: table, Item: { pk: 'CACHE#new', sk: 'CACHE', ttl: now + 600 } }),
      );
      await c.send(new PutCommand({ TableName: table, Item: { pk: 'PRED#1', sk: 'PRED' } }));
      expect(await running.sweepExpired()).toBe(1);
      const get = (pk: string, sk: string) => c.send(new GetCommand({ TableName: table, Key: { pk, sk } }));
      expect((await get('CACHE#old', 'CACHE')).Item).toBeUndefined();
      expect((await get('CACHE#new', 'CACHE')).Item).toBeDefined();
      expect((await get('PRED#1', 'PRED')).Item).toBeDefined();
    } finally {
      c.destroy();
      await running.close();
    }
  });
});
