import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  ScanCommand,
  type ScanCommandOutput,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { listen, type RunningServer } from './http-util.js';
import type { TableConfig } from './serverless-config.js';

/** Options for {@link startDynamo}. */
export interface DynamoOptions {
  /** Folder for the data; the LevelDB files go under `<dataDir>/dynamodb`. */
  dataDir: string;
  port?: number;
  region: string;
  tables: readonly TableConfig[];
  /** How often expired items (tables with TTL) are deleted; the first sweep runs at start. */
  ttlSweepMs?: number;
  /** Where a failed sweep is reported (the stack's own log lines). */
  log?: (line: string) => void;
}

/** A running dynalite, and (for tests) a way to run the expired-item sweep now. */
export interface LocalDynamo extends RunningServer {
  /** Deletes items whose TTL attribute is in the past; answers how many. */
  sweepExpired(): Promise<number>;
}

/** A data folder that another running local stack holds. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
}

/**
 * Starts dynalite on 127.0.0.1 with its data on disk (a restart keeps every record) and creates
 * each table of serverless.yml that does not exist yet, waiting until it is ACTIVE.
 */
export async function startDynamo(options: DynamoOptions): Promise<LocalDynamo> {
  const folder = join(options.dataDir, 'dynamodb');
  mkdirSync(folder, { recursive: true });
  const releaseLock = lock(options.dataDir);
  let running: RunningServer | undefined;
  try {
    // Tables are created in no time: nothing here waits for CREATING like AWS would.
    const server = dynalite({ path: folder, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    running = await listen(server, options.port ?? 0, 'DynamoDB (dynalite)');
    await ensureTables(running.url, options.region, options.tables);
  } catch (err) {
    await running?.close().catch(() => undefined);
    releaseLock();
    throw err;
  }
  const started = running;
  const sweeper = new ExpiredSweeper(started.url, options.region, options.tables);
  // Not awaited: a large table must not hold up the stack's start; reads check expiry anyway.
  // A failed sweep only leaves expired items until the next one.
  const sweep = () =>
    void sweeper.sweep().catch((err: unknown) => {
      options.log?.(`fanout local stack: deleting expired DynamoDB items failed: ${(err as Error).message}`);
    });
  sweep();
  const timer = setInterval(sweep, options.ttlSweepMs ?? 600_000);
  timer.unref();
  return {
    ...started,
    sweepExpired: () => sweeper.sweep(),
    close: async () => {
      clearInterval(timer);
      await sweeper.close();
      try {
        await started.close();
      } finally {
        releaseLock();
      }
    },
  };
}

/**
 * DynamoDB's TTL deletion, which dynalite lacks (it has no UpdateTimeToLive): items whose TTL
 * attribute (epoch seconds) has passed are deleted, so the local data folder does not keep every
 * result-cache entry forever. Like AWS's, this deletion is lazy; readers check the expiry on read.
 */
class ExpiredSweeper {
  private readonly client: DynamoDBClient;
  private running: Promise<number> | undefined;

  constructor(
    endpoint: string,
    region: string,
    private readonly tables: readonly TableConfig[],
  ) {
    this.client = new DynamoDBClient({
      endpoint,
      region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  }

  /** One pass over every table with TTL; a pass already running is joined, not doubled. */
  sweep(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Waits for a pass in progress, then releases the client. */
  async close(): Promise<void> {
    await this.running?.catch(() => 0);
    this.client.destroy();
  }

  private async pass(): Promise<number> {
    let deleted = 0;
    for (const table of this.tables) {
      if (!table.ttlAttribute) continue;
      const keyNames = table.keySchema.map((k) => k.AttributeName);
      let start: ScanCommandOutput['LastEvaluatedKey'];
      do {
        const page: ScanCommandOutput = await this.client.send(
          new ScanCommand({
            TableName: table.tableName,
            FilterExpression: '#ttl < :now',
            ExpressionAttributeNames: { '#ttl': table.ttlAttribute },
            ExpressionAttributeValues: { ':now': { N: String(Math.floor(Date.now() / 1000)) } },
            ExclusiveStartKey: start,
          }),
        );
        const keys = (page.Items ?? []).map((item) =>
          Object.fromEntries(keyNames.map((k) => [k, item[k] as NonNullable<(typeof item)[string]>])),
        );
        for (let i = 0; i < keys.length; i += 25) {
          await this.client.send(
            new BatchWriteItemCommand({
              RequestItems: {
                [table.tableName]: keys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } })),
              },
            }),
          );
        }
        deleted += keys.length;
        start = page.LastEvaluatedKey;
      } while (start);
    }
    return deleted;
  }
}

/**
 * LevelDB allows one process per folder, and dynalite turns a second one into an uncaught error
 * on first use; a pid file lets us say clearly which data folder is busy instead.
 */
function lock(dataDir: string): () => void {
  const file = join(dataDir, 'dynamodb.pid');
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch {
    const pid = Number(readFileSync(file, 'utf8'));
    if (pid && isAlive(pid)) {
      throw new DataDirInUseError(`data folder ${dataDir} is in use by another local stack (pid ${pid})`);
    }
    writeFileSync(file, String(process.pid));
  }
  return () => rmSync(file, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function ensureTables(endpoint: string, region: string, tables: readonly TableConfig[]): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    for (const table of tables) {
      if ((await status(client, table.tableName)) === undefined) {
        await client.send(new CreateTableCommand(createInput(table)));
      }
      for (let i = 0; (await status(client, table.tableName)) !== 'ACTIVE'; i++) {
        if (i > 500) throw new Error(`table ${table.tableName} did not become ACTIVE`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  } finally {
    client.destroy();
  }
}

async function status(client: DynamoDBClient, name: string): Promise<string | undefined> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: name }));
    return out.Table?.TableStatus;
  } catch (err) {
    if (err instanceof ResourceNotFoundException || (err as Error).name === 'ResourceNotFoundException') {
      return undefined;
    }
    throw err;
  }
}

function createInput(table: TableConfig): CreateTableCommandInput {
  const input: CreateTableCommandInput = {
    TableName: table.tableName,
    KeySchema: table.keySchema,
    AttributeDefinitions: table.attributeDefinitions,
    BillingMode: 'PAY_PER_REQUEST',
  };
  if (table.globalSecondaryIndexes?.length) {
    input.GlobalSecondaryIndexes =
      table.globalSecondaryIndexes as CreateTableCommandInput['GlobalSecondaryIndexes'];
  }
  if (table.localSecondaryIndexes?.length) {
    input.LocalSecondaryIndexes =
      table.localSecondaryIndexes as CreateTableCommandInput['LocalSecondaryIndexes'];
  }
  return input;
}
