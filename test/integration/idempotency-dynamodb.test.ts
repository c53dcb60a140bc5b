import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoPredictionStore, predictionKey } from '../../functions/adapters/dynamodb-store.js';
import type { PredictionRecord } from '../../functions/core/combine.js';
import { type DynaliteTable, startDynaliteTable, TABLE } from '../support/dynalite-table.js';

// The real table (from serverless.yml) in dynalite, through the real SDK: the conditional writes
// that make client ids idempotent, as the API and the ensemble step use them.
const T0 = Date.parse('2026-11-28T12:00:00Z');

let table: DynaliteTable;
let doc: DynamoDBDocumentClient;
let store: DynamoPredictionStore;

beforeAll(async () => {
  table = await startDynaliteTable('fanout-idem-');
  doc = table.doc;
  store = new DynamoPredictionStore(doc, TABLE);
});

afterAll(() => table.close());

const record = (id: string, ensemble = 'breast-cancer'): PredictionRecord => ({
  id,
  ensemble,
  strategy: 'soft-vote',
  degraded: false,
  predictions: [
    {
      label: 'benign',
      probabilities: { malignant: 0.1, benign: 0.9 },
      uncertainty: { agreement: 1, margin: 0.8, entropy: 0.469, spread: 0 },
    },
  ],
  members: [],
  createdAt: new Date(T0).toISOString(),
});
const claim = (id: string, token: string, requestHash = 'h1', expiresAt = T0 + 70_000) => ({
  id,
  token,
  requestHash,
  ensemble: 'breast-cancer',
  expiresAt,
});

describe('client id claims in DynamoDB', () => {
  it('lets exactly one of eight concurrent claims on a new id through', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.claim(claim('race', `t${i}`), T0)),
    );
    expect(results.filter((r) => r.claimed)).toHaveLength(1);
    for (const r of results.filter((x) => !x.claimed)) {
      expect(r).toEqual({
        claimed: false,
        existing: {
          state: 'in-progress',
          ensemble: 'breast-cancer',
          requestHash: 'h1',
          expiresAt: T0 + 70_000,
        },
      });
    }
  });

  it('completes a claim with the record, keeping its request hash; a record is never overwritten', async () => {
    expect(await store.claim(claim('done', 'a', 'hash-a'), T0)).toEqual({ claimed: true });
    expect(await store.putPrediction(record('done'))).toEqual({ record: record('done'), created: true });
    expect(await store.getEntry('done')).toEqual({
      state: 'completed',
      record: record('done'),
      requestHash: 'hash-a',
    });
    const item = (await doc.send(new GetCommand({ TableName: TABLE, Key: predictionKey('done') }))).Item;
    expect(item).not.toHaveProperty('claimToken');
    expect(item).not.toHaveProperty('expiresAt');
    // A second completion (a concurrent run) gets the first record back.
    const other = { ...record('done'), degraded: true };
    expect(await store.putPrediction(other)).toEqual({ record: record('done'), created: false });
    // And a claim on a completed id, even long after, answers the record.
    expect(await store.claim(claim('done', 'b', 'hash-b'), T0 + 10_000_000)).toEqual({
      claimed: false,
      existing: { state: 'completed', record: record('done'), requestHash: 'hash-a' },
    });
  });

  it('lets an expired claim be taken over, and only its holder release it', async () => {
    expect((await store.claim(claim('stale', 'old', 'h', T0 + 1000), T0)).claimed).toBe(true);
    expect((await store.claim(claim('stale', 'new', 'h'), T0 + 500)).claimed).toBe(false);
    expect((await store.claim(claim('stale', 'new', 'h', T0 + 90_000), T0 + 1001)).claimed).toBe(true);
    await store.release('stale', 'old');
    expect((await store.getEntry('stale'))?.state).toBe('in-progress');
    await store.release('stale', 'new');
    expect(await store.getEntry('stale')).toBeUndefined();
  });

  it('never releases a completed id', async () => {
    await store.claim(claim('kept', 'k'), T0);
    await store.putPrediction(record('kept'));
    await store.release('kept', 'k');
    expect(await store.getPrediction('kept')).toEqual(record('kept'));
  });

  it('stores a record without a claim (server-made ids) once, and reads no record for a bare claim', async () => {
    expect((await store.putPrediction(record('plain'))).created).toBe(true);
    expect((await store.putPrediction(record('plain', 'wine'))).record.ensemble).toBe('breast-cancer');
    await store.claim(claim('running', 'r'), T0);
    expect(await store.getPrediction('running')).toBeUndefined();
  });
});
