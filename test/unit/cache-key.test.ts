import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensembleFingerprint, rowCacheKey, rowCacheKeys } from '../../functions/core/cache-key.js';
import { validateInstances } from '../../functions/core/instances.js';
import {
  type EnsembleSpec,
  loadManifest,
  type Manifest,
  parseManifest,
} from '../../functions/core/manifest.js';
import { servedManifest } from '../../functions/core/served.js';

// Test documents are mutated freely.
type Doc = Record<string, any>;

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-cache-key-'));
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function meta(coef = 0.5): Doc {
  return {
    type: 'softmax-linear',
    members: ['a', 'b'],
    labels: ['no', 'yes'],
    coef: [
      [coef, 0, 0, 0],
      [0, 0, 0, coef],
    ],
    intercept: [0, 0],
    featureMeans: [0.5, 0.5, 0.5, 0.5],
  };
}

/** A manifest made here: two members, a weighted ensemble and a stacked one, both cached. */
function doc(): Doc {
  const model = (id: string) => ({
    id,
    kind: 'onnx',
    file: `${id}.onnx`,
    version: '1.0.0',
    features: ['x', 'y', 'z'],
    labels: ['no', 'yes'],
  });
  return {
    models: [model('a'), model('b')],
    ensembles: [
      {
        name: 'pair',
        members: ['a', 'b'],
        strategy: 'weighted-mean',
        weights: { a: 2, b: 1 },
        cache: { ttlSeconds: 60 },
      },
      {
        name: 'stacked',
        members: ['a', 'b'],
        strategy: 'stacking',
        stacking: { file: 'meta.json' },
        cache: { ttlSeconds: 60 },
      },
    ],
  };
}

const load = (d: Doc): Manifest => parseManifest(d, join(dir, 'manifest.json'));
const ensemble = (m: Manifest, name: string) => m.ensembles.get(name) as EnsembleSpec;
const keyOf = (m: Manifest, name: string, row: number[]) =>
  rowCacheKeys(ensemble(m, name), m.models, [row])[0] as string;

const ROW = [1, 0.1, -2.5];

describe('result cache key', () => {
  it('is the same for a row given as an array and by feature names (validated into feature order)', () => {
    const m = load(doc());
    const e = ensemble(m, 'pair');
    const rows = validateInstances([ROW, { z: -2.5, x: 1, y: 0.1 }], e.features);
    const [byArray, byName] = rowCacheKeys(e, m.models, rows);
    expect(byArray).toMatch(/^[0-9a-f]{64}$/);
    expect(byName).toBe(byArray);
  });

  it('treats 1 and 1.0 (and 1e0 from JSON text) as one value', () => {
    const m = load(doc());
    const parsed = JSON.parse('[[1, 0.1, -2.5], [1.0, 0.10, -25e-1], [1e0, 1e-1, -2.50]]') as number[][];
    const keys = rowCacheKeys(ensemble(m, 'pair'), m.models, parsed);
    expect(new Set(keys).size).toBe(1);
  });

  it('gives one key to doubles that round to the same float32, another to those that do not', () => {
    const m = load(doc());
    const f32 = Math.fround(0.1); // 0.10000000149011612
    expect(f32).not.toBe(0.1);
    expect(keyOf(m, 'pair', [1, f32, -2.5])).toBe(keyOf(m, 'pair', ROW));
    // Half a float32 step away from 0.1 still rounds to it; a whole step does not.
    const step = 2 ** -27;
    expect(Math.fround(0.1 + step / 4)).toBe(f32);
    expect(keyOf(m, 'pair', [1, 0.1 + step / 4, -2.5])).toBe(keyOf(m, 'pair', ROW));
    expect(Math.fround(0.1 + step)).not.toBe(f32);
    expect(keyOf(m, 'pair', [1, 0.1 + step, -2.5])).not.toBe(keyOf(m, 'pair', ROW));
  });

  it('counts -0 as 0, and tells other rows, orders and ensembles apart', () => {
    const m = load(doc());
    expect(keyOf(m, 'pair', [-0, 0.1, -2.5])).toBe(keyOf(m, 'pair', [0, 0.1, -2.5]));
    expect(keyOf(m, 'pair', [0.1, 1, -2.5])).not.toBe(keyOf(m, 'pair', ROW));
    expect(keyOf(m, 'pair', [1, 0.1, 2.5])).not.toBe(keyOf(m, 'pair', ROW));
    expect(keyOf(m, 'stacked', ROW)).not.toBe(keyOf(m, 'pair', ROW));
  });

  it('is stable: the same manifest loaded twice gives the same keys', () => {
    expect(keyOf(load(doc()), 'pair', ROW)).toBe(keyOf(load(doc()), 'pair', ROW));
    expect(
      rowCacheKey('pair', ensembleFingerprint(ensemble(load(doc()), 'pair'), load(doc()).models), ROW),
    ).toBe(keyOf(load(doc()), 'pair', ROW));
  });

  describe('changes with anything that decides the answer', () => {
    const base = () => keyOf(load(doc()), 'pair', ROW);
    const changed = (edit: (d: Doc) => void, name = 'pair') => {
      const d = doc();
      edit(d);
      // Edits to the pair would often make the stacked one invalid (its meta-model names members).
      if (name === 'pair') d.ensembles = [d.ensembles[0]];
      return keyOf(load(d), name, ROW);
    };

    it('a member version', () =>
      expect(
        changed((d) => {
          d.models[1].version = '1.0.1';
        }),
      ).not.toBe(base()));
    it('a weight', () =>
      expect(
        changed((d) => {
          d.ensembles[0].weights.b = 1.5;
        }),
      ).not.toBe(base()));
    it('the strategy', () =>
      expect(
        changed((d) => {
          d.ensembles[0].strategy = 'soft-vote';
          delete d.ensembles[0].weights;
        }),
      ).not.toBe(base()));
    it('the quorum', () =>
      expect(
        changed((d) => {
          d.ensembles[0].quorum = 1;
        }),
      ).not.toBe(base()));
    it('the member list and its order', () => {
      expect(
        changed((d) => {
          d.ensembles[0].members = ['a'];
          d.ensembles[0].weights = { a: 2 };
        }),
      ).not.toBe(base());
      expect(
        changed((d) => {
          d.ensembles[0].members = ['b', 'a'];
        }),
      ).not.toBe(base());
    });
    it('a member kind or its output tensor', () => {
      expect(
        changed((d) => {
          d.models[0].output = 'scores';
        }),
      ).not.toBe(base());
      expect(
        changed((d) => {
          d.models[0] = { ...d.models[0], kind: 'sagemaker', endpoint: { name: 'a-endpoint' } };
          delete d.models[0].file;
        }),
      ).not.toBe(base());
    });
    it('the labels or the feature order', () => {
      expect(
        changed((d) => {
          for (const m of d.models) m.labels = ['yes', 'no'];
        }),
      ).not.toBe(base());
      expect(
        changed((d) => {
          for (const m of d.models) m.features = ['y', 'x', 'z'];
        }),
      ).not.toBe(base());
    });
    it("the stacking meta-model's content, not only its file name", () => {
      const before = keyOf(load(doc()), 'stacked', ROW);
      writeFileSync(join(dir, 'meta-2.json'), JSON.stringify(meta(0.75)));
      const withMeta = (file: string) =>
        changed((d) => {
          d.ensembles[1].stacking.file = file;
        }, 'stacked');
      expect(withMeta('meta-2.json')).not.toBe(before);
      writeFileSync(join(dir, 'meta-same.json'), JSON.stringify(meta()));
      expect(withMeta('meta-same.json')).toBe(before);
    });
    it('not the TTL, the timeouts or the descriptions', () => {
      expect(
        changed((d) => {
          d.ensembles[0].cache.ttlSeconds = 5;
          d.ensembles[0].description = 'new words';
          d.models[0].timeoutSeconds = 3;
        }),
      ).toBe(base());
    });
  });

  it('changes when a deployment leaves a SageMaker member out (the served ensemble is another)', () => {
    const d = doc();
    d.models.push({
      id: 'sm',
      kind: 'sagemaker',
      endpoint: { name: 'sm-endpoint' },
      version: '1',
      features: ['x', 'y', 'z'],
      labels: ['no', 'yes'],
    });
    d.ensembles[0].members.push('sm');
    const full = load(d);
    const served = servedManifest(full, new Map()).manifest;
    expect(keyOf(served, 'pair', ROW)).not.toBe(keyOf(full, 'pair', ROW));
    expect(keyOf(served, 'pair', ROW)).toBe(
      keyOf(
        load({
          ...d,
          ensembles: [{ ...d.ensembles[0], members: ['a', 'b'], quorum: 2 }],
          models: d.models,
        }),
        'pair',
        ROW,
      ),
    );
  });

  it('keys the bundled ensembles apart from one another', () => {
    const m = loadManifest('models/manifest.json');
    const keys = [...m.ensembles.values()].map((e) =>
      rowCacheKeys(e, m.models, [new Array(e.features.length).fill(1)]),
    );
    expect(new Set(keys.flat()).size).toBe(m.ensembles.size);
  });
});
