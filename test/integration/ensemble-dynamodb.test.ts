import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import type { PredictionRecord } from '../../functions/core/combine.js';
import { loadManifest } from '../../functions/core/manifest.js';
import type { EnsembleEvent, EnsembleResult } from '../../functions/ensemble/store-result.js';

/** dynalite ships no types; only the part used here. */
interface DynaliteServer {
  listen(port: number, host: string, cb: (err?: Error) => void): void;
  close(cb: (err?: Error) => void): void;
  address(): AddressInfo;
}
const dynalite = createRequire(import.meta.url)('dynalite') as (options: {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => DynaliteServer;

const TABLE = 'fanout-test';
const MANIFEST = fileURLToPath(new URL('../../models/manifest.json', import.meta.url));
// The members as the manifest lists them (a model added to the ensemble joins them here).
const BC = loadManifest(MANIFEST).ensembles.get('breast-cancer')?.members ?? [];
const LAST = BC.at(-1) as string;

type Handler = (event: EnsembleEvent, context: Context) => Promise<EnsembleResult>;

let server: DynaliteServer;
let doc: DynamoDBDocumentClient;
let handler: Handler;
let resetClients: () => void;
const saved = { ...process.env };

/**
 * A Lambda context without getRemainingTimeInMillis: middy then skips its early-timeout timer,
 * which would otherwise keep the test process alive (see shared/REFERENCE.md).
 */
const context = {
  functionName: 'fanout-test-ensemble',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:fanout-test-ensemble',
  memoryLimitInMB: '512',
  awsRequestId: 'test-request',
  logGroupName: '/aws/lambda/fanout-test-ensemble',
  logStreamName: 'test',
  callbackWaitsForEmptyEventLoop: true,
} as unknown as Context;

const ok = (model: string, probabilities: number[][]) => ({
  model,
  version: '1.0.0',
  kind: 'onnx',
  status: 'ok',
  latencyMs: 3.5,
  probabilities,
});

function event(id: string, overrides: Partial<EnsembleEvent> = {}): EnsembleEvent {
  return {
    id,
    ensemble: 'breast-cancer',
    createdAt: '2026-11-27T12:00:00.000Z',
    rows: 2,
    members: BC.map((m) =>
      ok(m, [
        [0.1, 0.9],
        [0.8, 0.2],
      ]),
    ),
    ...overrides,
  };
}

async function storedItem(id: string) {
  const out = await doc.send(
    new GetCommand({ TableName: TABLE, Key: { pk: `PRED#${id}`, sk: 'PRED' }, ConsistentRead: true }),
  );
  return out.Item;
}

function expectOk(result: EnsembleResult): { created: boolean; record: PredictionRecord } {
  if (result.outcome !== 'ok') throw new Error(`expected an ok outcome, got ${JSON.stringify(result)}`);
  return result;
}

beforeAll(async () => {
  server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.listen(0, '127.0.0.1', (err) => (err ? reject(err) : resolve()));
  });
  const endpoint = `http://127.0.0.1:${server.address().port}`;

  const raw = new DynamoDBClient({ region: 'us-east-1', endpoint });
  // The table as serverless.yml declares it: string partition key pk, string sort key sk.
  await raw.send(
    new CreateTableCommand({
      TableName: TABLE,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  doc = DynamoDBDocumentClient.from(raw);

  process.env.FANOUT_TABLE = TABLE;
  process.env.FANOUT_MANIFEST = MANIFEST;
  process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoint;
  // As in the local stack: the SageMaker member has an endpoint, so all five members are served.
  process.env.FANOUT_SAGEMAKER_MEMBERS = 'bc-gradient-boosting';
  // Imported only now: the handler reads its configuration from the environment once.
  ({ handler } = (await import('../../functions/ensemble/handler.js')) as unknown as { handler: Handler });
  ({ resetClients } = await import('../../functions/adapters/clients.js'));
});

afterAll(async () => {
  resetClients?.();
  doc?.destroy();
  await new Promise<void>((resolve) => {
    if (server) server.close(() => resolve());
    else resolve();
  });
  for (const key of [
    'FANOUT_TABLE',
    'FANOUT_MANIFEST',
    'AWS_ENDPOINT_URL_DYNAMODB',
    'FANOUT_SAGEMAKER_MEMBERS',
  ]) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
});

describe('ensemble handler with DynamoDB (dynalite)', () => {
  it('combines the member results and stores the record under PRED#<id>', async () => {
    const result = expectOk(await handler(event('first'), context));
    expect(result.created).toBe(true);
    expect(result.record).toMatchObject({ id: 'first', ensemble: 'breast-cancer', degraded: false });
    expect(result.record.predictions.map((p) => p.label)).toEqual(['benign', 'malignant']);

    const item = await storedItem('first');
    expect(item).toEqual({
      pk: 'PRED#first',
      sk: 'PRED',
      type: 'prediction',
      status: 'COMPLETED',
      ensemble: 'breast-cancer',
      createdAt: '2026-11-27T12:00:00.000Z',
      record: result.record,
    });
  });

  it('stores a degraded record with the failed member and its reason', async () => {
    const members = [
      ...BC.slice(0, -1).map((m) =>
        ok(m, [
          [0.1, 0.9],
          [0.8, 0.2],
        ]),
      ),
      {
        model: LAST,
        status: 'failed',
        error: {
          Error: 'ModelLoadError',
          Cause: JSON.stringify({
            errorType: 'ModelLoadError',
            errorMessage: `${LAST}: cannot load ${LAST}.onnx`,
            trace: ['ModelLoadError: x', '    at /var/task/index.mjs:1:1'],
          }),
        },
      },
    ];
    const result = expectOk(await handler(event('degraded', { members }), context));
    const item = await storedItem('degraded');
    expect(item?.record).toEqual(result.record);
    expect(item?.record.degraded).toBe(true);
    expect(item?.record.members[BC.length - 1]).toMatchObject({
      model: LAST,
      status: 'failed',
      error: { name: 'ModelLoadError', message: `${LAST}: cannot load ${LAST}.onnx` },
    });
    expect(JSON.stringify(item)).not.toContain('/var/task');
  });

  it('does not overwrite on a repeated id and returns the first record', async () => {
    const first = expectOk(await handler(event('repeat'), context));
    const second = expectOk(
      await handler(
        event('repeat', {
          createdAt: '2026-11-28T09:30:00.000Z',
          members: BC.map((m) =>
            ok(m, [
              [0.9, 0.1],
              [0.9, 0.1],
            ]),
          ),
        }),
        context,
      ),
    );
    expect(second.created).toBe(false);
    expect(second.record).toEqual(first.record);
    const item = await storedItem('repeat');
    expect(item?.createdAt).toBe('2026-11-27T12:00:00.000Z');
    expect(item?.record).toEqual(first.record);
  });

  it('stores exactly one record when five calls with one id race', async () => {
    const calls = [0, 1, 2, 3, 4].map((i) =>
      handler(event('race', { createdAt: `2026-11-27T12:00:0${i}.000Z` }), context),
    );
    const results = (await Promise.all(calls)).map(expectOk);
    expect(results.filter((r) => r.created)).toHaveLength(1);

    const items = await doc.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'PRED#race' },
        ConsistentRead: true,
      }),
    );
    expect(items.Items).toHaveLength(1);
    const stored = items.Items?.[0]?.record as PredictionRecord;
    // Every caller, winner or not, gets the one stored record back.
    for (const r of results) expect(r.record).toEqual(stored);
  });

  it('stores nothing and answers failed when the quorum is not met', async () => {
    const members = [
      ok('bc-logreg', [
        [0.1, 0.9],
        [0.8, 0.2],
      ]),
      { model: 'bc-mlp', status: 'timeout', error: { Error: 'States.Timeout', Cause: '' } },
    ];
    const result = await handler(event('no-quorum', { members }), context);
    expect(result).toMatchObject({ outcome: 'failed', error: 'QuorumNotMetError' });
    if (result.outcome !== 'failed') return;
    const cause = JSON.parse(result.cause);
    // Every member but bc-logreg failed or sent nothing, in the manifest's member order.
    expect(cause.details.failed.map((f: { model: string }) => f.model)).toEqual(
      BC.filter((m) => m !== 'bc-logreg'),
    );
    expect(await storedItem('no-quorum')).toBeUndefined();
  });

  it('stores a single model scored as an ensemble of one', async () => {
    const result = expectOk(
      await handler(
        event('solo', { ensemble: 'wine-mlp', rows: 1, members: [ok('wine-mlp', [[0.1, 0.2, 0.7]])] }),
        context,
      ),
    );
    // margin 0.7 - 0.2 = 0.5; entropy -(0.1 ln 0.1 + 0.2 ln 0.2 + 0.7 ln 0.7) / ln 3
    //   = (0.230259 + 0.321888 + 0.249672) / 1.098612 = 0.729847.
    expect(result.record.predictions).toEqual([
      {
        label: 'class_2',
        probabilities: { class_0: 0.1, class_1: 0.2, class_2: 0.7 },
        uncertainty: {
          agreement: 1,
          margin: expect.closeTo(0.5, 12),
          entropy: expect.closeTo(0.729847, 6),
          spread: 0,
        },
      },
    ]);
    expect((await storedItem('solo'))?.ensemble).toBe('wine-mlp');
  });
});
