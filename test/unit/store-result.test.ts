import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { rowCacheKeys } from '../../functions/core/cache-key.js';
import type { PredictionRecord } from '../../functions/core/combine.js';
import { NotFoundError, ValidationError } from '../../functions/core/errors.js';
import { loadManifest, type Manifest, parseManifest } from '../../functions/core/manifest.js';
import type { PredictionStore, PutResult } from '../../functions/core/ports.js';
import { type EnsembleEvent, storeResult } from '../../functions/ensemble/store-result.js';
import { MemoryResultCache } from '../support/memory-stores.js';

const REAL = fileURLToPath(new URL('../../models/manifest.json', import.meta.url));

/** An in-memory PredictionStore with DynamoDB's conditional-put semantics: the first write wins. */
class FakeStore implements PredictionStore {
  readonly records = new Map<string, PredictionRecord>();
  puts = 0;
  async putPrediction(record: PredictionRecord): Promise<PutResult> {
    this.puts++;
    const existing = this.records.get(record.id);
    if (existing) return { record: existing, created: false };
    this.records.set(record.id, structuredClone(record));
    return { record, created: true };
  }
  async getPrediction(id: string): Promise<PredictionRecord | undefined> {
    return this.records.get(id);
  }
}

const BC = ['bc-logreg', 'bc-random-forest', 'bc-gradient-boosting', 'bc-mlp', 'bc-torch-mlp'];
/** The breast-cancer ensemble's shadow members, as the manifest lists them. */
const SHADOWS = loadManifest(REAL).ensembles.get('breast-cancer')?.shadow ?? [];

const ok = (model: string, probabilities: number[][]) => ({
  model,
  version: '1.0.0',
  kind: 'onnx',
  status: 'ok',
  latencyMs: 2,
  probabilities,
});

const failed = (model: string, errorType: string, errorMessage: string) => ({
  model,
  status: 'failed',
  error: {
    Error: errorType,
    Cause: JSON.stringify({ errorType, errorMessage, trace: ['at /var/task/x.js'] }),
  },
});

function event(overrides: Partial<EnsembleEvent> = {}): EnsembleEvent {
  return {
    id: 'client-key-1',
    ensemble: 'breast-cancer',
    createdAt: '2026-11-27T12:00:00.000Z',
    rows: 1,
    members: BC.map((m) => ok(m, [[0.2, 0.8]])),
    ...overrides,
  };
}

let manifest: Manifest;
let store: FakeStore;

beforeAll(() => {
  // The bundled models under a fixed five-member ensemble, so the exact expectations below hold
  // whatever else models/manifest.json's breast-cancer ensemble grows to.
  const real = loadManifest(REAL);
  const bc = real.ensembles.get('breast-cancer');
  const wine = real.ensembles.get('wine');
  if (!bc || !wine) throw new Error(`${REAL} has no breast-cancer or wine ensemble`);
  const WINE = ['wine-logreg', 'wine-random-forest', 'wine-mlp'];
  manifest = {
    ...real,
    ensembles: new Map([
      ['breast-cancer', { ...bc, members: BC, weights: BC.map(() => 1), quorum: 3 }],
      ['wine', { ...wine, strategy: 'weighted-mean', members: WINE, weights: [2, 2, 1], quorum: 2 }],
    ]),
  };
});

beforeEach(() => {
  store = new FakeStore();
});

describe('storeResult', () => {
  it('combines the members and stores the record', async () => {
    const result = await storeResult(event(), manifest, store);
    expect(result.outcome).toBe('ok');
    if (result.outcome !== 'ok') return;
    expect(result.created).toBe(true);
    expect(result.record).toMatchObject({
      id: 'client-key-1',
      ensemble: 'breast-cancer',
      strategy: 'soft-vote',
      degraded: false,
      createdAt: '2026-11-27T12:00:00.000Z',
    });
    expect(result.record.predictions).toHaveLength(1);
    expect(result.record.predictions[0]?.label).toBe('benign');
    expect(result.record.predictions[0]?.probabilities.benign).toBeCloseTo(0.8, 12);
    // The manifest's shadows follow the counted members; this event carries no result for them,
    // which the record says without degrading the answer.
    const shadows = manifest.ensembles.get('breast-cancer')?.shadow ?? [];
    expect(result.record.members.map((m) => m.model)).toEqual([...BC, ...shadows]);
    for (const s of result.record.members.slice(BC.length)) {
      expect(s).toMatchObject({ shadow: true, status: 'failed', error: { name: 'MissingMemberResult' } });
    }
    expect(store.records.get('client-key-1')).toEqual(result.record);
  });

  it('stores a degraded record when members failed above the quorum', async () => {
    const members = [
      ok('bc-logreg', [[0.2, 0.8]]),
      failed('bc-random-forest', 'ModelLoadError', 'bc-random-forest: cannot load'),
      ok('bc-gradient-boosting', [[0.2, 0.8]]),
      ok('bc-mlp', [[0.2, 0.8]]),
    ];
    const result = await storeResult(event({ members }), manifest, store);
    expect(result.outcome).toBe('ok');
    if (result.outcome !== 'ok') return;
    expect(result.record.degraded).toBe(true);
    expect(result.members).toEqual([
      { model: 'bc-logreg', status: 'ok', latencyMs: 2, rows: 1 },
      { model: 'bc-random-forest', status: 'failed', rows: 0 },
      { model: 'bc-gradient-boosting', status: 'ok', latencyMs: 2, rows: 1 },
      { model: 'bc-mlp', status: 'ok', latencyMs: 2, rows: 1 },
      { model: 'bc-torch-mlp', status: 'failed', rows: 0 },
      // The manifest's shadows are observed too (no result here, so failed; they never degrade).
      ...SHADOWS.map((model) => ({ model, status: 'failed', rows: 0 })),
    ]);
    const byModel = Object.fromEntries(result.record.members.map((m) => [m.model, m]));
    expect(byModel['bc-random-forest']).toMatchObject({
      status: 'failed',
      version: '1.0.0',
      kind: 'onnx',
      error: { name: 'ModelLoadError', message: 'bc-random-forest: cannot load' },
    });
    expect(byModel['bc-torch-mlp']?.error?.name).toBe('MissingMemberResult');
    expect(JSON.stringify(store.records.get('client-key-1'))).not.toContain('/var/task');
  });

  it('returns the stored record, with created false, for a repeated id', async () => {
    const first = await storeResult(event(), manifest, store);
    const repeat = await storeResult(
      event({ createdAt: '2026-11-28T00:00:00.000Z', members: BC.map((m) => ok(m, [[0.9, 0.1]])) }),
      manifest,
      store,
    );
    expect(repeat.outcome).toBe('ok');
    if (repeat.outcome !== 'ok' || first.outcome !== 'ok') return;
    expect(repeat.created).toBe(false);
    expect(repeat.record).toEqual(first.record);
    expect(repeat.record.predictions[0]?.label).toBe('benign');
    expect(store.records.size).toBe(1);
  });

  it('answers a missed quorum as a failed outcome naming the members, storing nothing', async () => {
    const members = [
      ok('bc-logreg', [[0.2, 0.8]]),
      failed('bc-random-forest', 'ModelLoadError', 'bc-random-forest: cannot load random-forest.onnx'),
      { model: 'bc-gradient-boosting', status: 'timeout', error: { Error: 'States.Timeout', Cause: '' } },
      ok('bc-mlp', [[0.2, 0.8, 0.0]]),
    ];
    const result = await storeResult(event({ members }), manifest, store);
    expect(result).toEqual({
      outcome: 'failed',
      error: 'QuorumNotMetError',
      cause: expect.any(String),
      members: [
        { model: 'bc-logreg', status: 'ok', latencyMs: 2, rows: 1 },
        { model: 'bc-random-forest', status: 'failed', rows: 0 },
        { model: 'bc-gradient-boosting', status: 'timeout', rows: 0 },
        { model: 'bc-mlp', status: 'failed', latencyMs: 2, rows: 0 },
        { model: 'bc-torch-mlp', status: 'failed', rows: 0 },
        ...SHADOWS.map((model) => ({ model, status: 'failed', rows: 0 })),
      ],
    });
    if (result.outcome !== 'failed') return;
    const cause = JSON.parse(result.cause);
    expect(cause.code).toBe('quorum_not_met');
    expect(cause.message).toMatch(
      /^ensemble "breast-cancer": 1 of 5 members answered, quorum is 3; failed: /,
    );
    expect(cause.details.answered).toEqual(['bc-logreg']);
    expect(cause.details.failed).toEqual([
      {
        model: 'bc-random-forest',
        status: 'failed',
        error: { name: 'ModelLoadError', message: 'bc-random-forest: cannot load random-forest.onnx' },
      },
      {
        model: 'bc-gradient-boosting',
        status: 'timeout',
        error: { name: 'States.Timeout', message: 'bc-gradient-boosting: did not answer within its timeout' },
      },
      {
        model: 'bc-mlp',
        status: 'failed',
        // It answered (in 2 ms), with the wrong shape.
        latencyMs: 2,
        error: { name: 'ModelRunError', message: 'bc-mlp: row 0 is not 2 finite probabilities' },
      },
      {
        model: 'bc-torch-mlp',
        status: 'failed',
        error: { name: 'MissingMemberResult', message: 'bc-torch-mlp: no result reached the ensemble step' },
      },
    ]);
    expect(result.cause).not.toContain('/var/task');
    expect(store.puts).toBe(0);
    expect(store.records.size).toBe(0);
  });

  it('treats a single model name as an ensemble of one', async () => {
    const result = await storeResult(
      event({ id: 'solo', ensemble: 'bc-logreg', members: [ok('bc-logreg', [[0.7, 0.3]])] }),
      manifest,
      store,
    );
    expect(result.outcome).toBe('ok');
    if (result.outcome !== 'ok') return;
    expect(result.record).toMatchObject({ ensemble: 'bc-logreg', strategy: 'soft-vote', degraded: false });
    // One member: agreement 1, spread 0; margin 0.7 - 0.3 = 0.4;
    // entropy -(0.7 ln 0.7 + 0.3 ln 0.3) / ln 2 = (0.249672 + 0.361192) / 0.693147 = 0.881291.
    expect(result.record.predictions).toEqual([
      {
        label: 'malignant',
        probabilities: { malignant: 0.7, benign: 0.3 },
        uncertainty: {
          agreement: 1,
          margin: expect.closeTo(0.4, 12),
          entropy: expect.closeTo(0.881291, 6),
          spread: 0,
        },
      },
    ]);
    expect(result.record.members).toHaveLength(1);
  });

  it('fails a single model whose member failed, since its quorum is one', async () => {
    const result = await storeResult(
      event({ ensemble: 'wine-mlp', members: [failed('wine-mlp', 'ModelRunError', 'wine-mlp: boom')] }),
      manifest,
      store,
    );
    expect(result).toMatchObject({ outcome: 'failed', error: 'QuorumNotMetError' });
    expect(store.records.size).toBe(0);
  });

  it('combines a three-class ensemble with its manifest weights', async () => {
    const result = await storeResult(
      event({
        ensemble: 'wine',
        members: [
          ok('wine-logreg', [[0.6, 0.3, 0.1]]),
          ok('wine-random-forest', [[0.6, 0.3, 0.1]]),
          ok('wine-mlp', [[0, 0, 1]]),
        ],
      }),
      manifest,
      store,
    );
    if (result.outcome !== 'ok') throw new Error('expected ok');
    // weights 2, 2, 1: class_0 = (1.2 + 1.2) / 5 = 0.48, class_2 = (0.2 + 0.2 + 1) / 5 = 0.28
    expect(result.record.predictions[0]?.label).toBe('class_0');
    expect(result.record.predictions[0]?.probabilities.class_2).toBeCloseTo(0.28, 12);
  });

  it('rejects an unknown ensemble with a NotFoundError', async () => {
    await expect(storeResult(event({ ensemble: 'iris' }), manifest, store)).rejects.toThrow(NotFoundError);
    await expect(storeResult(event({ ensemble: 'iris' }), manifest, store)).rejects.toThrow(
      'unknown ensemble or model "iris"',
    );
  });

  it.each([
    ['id', { id: '' }, '"id" must be a non-empty string'],
    ['id', { id: 42 }, '"id" must be a non-empty string'],
    ['ensemble', { ensemble: undefined }, '"ensemble" must be a string'],
    ['createdAt', { createdAt: 1_700_000_000 }, '"createdAt" must be an ISO timestamp string'],
    ['rows', { rows: 0 }, '"rows" must be a positive integer'],
    ['rows', { rows: 1.5 }, '"rows" must be a positive integer'],
    ['rows', { rows: '1' }, '"rows" must be a positive integer'],
    ['members', { members: { 'bc-logreg': {} } }, '"members" must be an array of member results'],
  ])('rejects an event with a bad %s, naming the field', async (_field, overrides, problem) => {
    const bad = event(overrides as Partial<EnsembleEvent>);
    const err = await storeResult(bad, manifest, store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toBe(`ensemble event: ${problem}`);
    expect(store.puts).toBe(0);
  });

  it('lists every bad field at once', async () => {
    const err = await storeResult({} as EnsembleEvent, manifest, store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    for (const field of ['"id"', '"ensemble"', '"createdAt"', '"rows"', '"members"']) {
      expect((err as Error).message).toContain(field);
    }
  });

  it('rejects a missing event', async () => {
    await expect(storeResult(null as unknown as EnsembleEvent, manifest, store)).rejects.toThrow(
      ValidationError,
    );
  });
});

describe('the ensemble step fills the result cache', () => {
  const NOW = new Date('2026-11-27T12:00:01.000Z');
  const cachedManifest = () => {
    const doc = JSON.parse(readFileSync(REAL, 'utf8'));
    for (const e of doc.ensembles) e.cache = e.name === 'breast-cancer' ? { ttlSeconds: 120 } : undefined;
    return parseManifest(doc, REAL);
  };
  const row = (v: number) => new Array(30).fill(v);
  const setup = () => {
    const m = cachedManifest();
    const cache = new MemoryResultCache();
    const warnings: string[] = [];
    const fill = { cache, warn: (msg: string) => warnings.push(msg), now: () => NOW };
    return { m, cache, warnings, fill, store: new FakeStore() };
  };

  it('with one entry per row of a non-degraded answer, keyed as the API looks them up', async () => {
    const t = setup();
    const instances = [row(1), row(2)];
    const members = BC.map((m) =>
      ok(m, [
        [0.2, 0.8],
        [0.9, 0.1],
      ]),
    );
    const result = await storeResult(event({ rows: 2, members, instances }), t.m, t.store, t.fill);
    expect(result.outcome).toBe('ok');
    const keys = rowCacheKeys(t.m.ensembles.get('breast-cancer')!, t.m.models, instances);
    expect([...t.cache.entries.keys()]).toEqual(keys);
    const first = t.cache.entries.get(keys[0] as string);
    expect(first).toMatchObject({
      ensemble: 'breast-cancer',
      prediction: { label: 'benign' },
      cachedAt: NOW.toISOString(),
      expiresAt: NOW.getTime() / 1000 + 120,
    });
    expect(first?.members.map((x) => x.model)).toEqual(BC);
  });

  it('not for a degraded answer, an ensemble without a cache, or a single model', async () => {
    const t = setup();
    const instances = [row(1)];
    const degraded = [...BC.slice(1).map((m) => ok(m, [[0.2, 0.8]])), failed('bc-logreg', 'Boom', 'x')];
    await storeResult(event({ members: degraded, instances }), t.m, t.store, t.fill);
    await storeResult(
      event({ id: 'b', ensemble: 'breast-cancer-majority', instances }),
      t.m,
      t.store,
      t.fill,
    );
    await storeResult(
      event({ id: 'c', ensemble: 'bc-logreg', members: [ok('bc-logreg', [[0.2, 0.8]])], instances }),
      t.m,
      t.store,
      t.fill,
    );
    expect(t.cache.writes).toEqual([]);
    expect(t.store.records.size).toBe(3);
  });

  it('stores the answer and warns when the event has no usable instances or the write fails', async () => {
    const t = setup();
    await storeResult(event({ instances: undefined }), t.m, t.store, t.fill);
    await storeResult(event({ id: 'x2', instances: [[1, 2]] }), t.m, t.store, t.fill);
    t.cache.failWrites = new Error('throttled');
    const result = await storeResult(event({ id: 'x3', instances: [row(3)] }), t.m, t.store, t.fill);
    expect(result.outcome).toBe('ok');
    expect(t.store.records.size).toBe(3);
    expect(t.warnings).toEqual([
      'result cache not filled: the event carries no valid instances',
      'result cache not filled: the event carries no valid instances',
      'result cache write failed; the answer is stored, not cached',
    ]);
  });
});
