import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import {
  type EnsembleSpec,
  getModel,
  loadManifest,
  localOnnx,
  type ModelSpec,
  type OnnxModelSpec,
} from '../../functions/core/manifest.js';
import { strategies } from '../../functions/core/strategies.js';
import {
  accuracy,
  type Dataset,
  type EnsembleGolden,
  type Metrics,
  MODELS_DIR,
  maxAbsDiff,
  readDataset,
  readModelsJson,
  type Split,
} from './data.js';

// Everything below is derived from the manifest and metrics.json: a model added with
// `fanout models add` is scored, hashed and listed here like the bundled ones.
const manifest = loadManifest(`${MODELS_DIR}manifest.json`);
const metrics = readModelsJson<Metrics>('metrics.json');
const scorer = new OnnxScorer();

afterAll(async () => {
  await scorer.close();
});

/** SageMaker members are scored from the same ONNX file the local endpoint serves. */
function onnxOf(model: ModelSpec): OnnxModelSpec {
  const spec = localOnnx(model);
  if (!spec) throw new Error(`${model.id} has no ONNX file here`);
  return spec;
}

const sameList = (a: readonly string[], b: readonly string[]) => a.join('\u0000') === b.join('\u0000');
const pick = <T>(items: readonly T[], indices: readonly number[]) => indices.map((i) => items[i] as T);

/** Combines member outputs with the ensemble's own strategy, weights and meta-model (the core code). */
function ensembleScores(e: EnsembleSpec, byMember: Map<string, number[][]>, rows: number): number[][] {
  const scores = e.members.map((model, i) => ({
    model,
    weight: e.weights[i] as number,
    probabilities: byMember.get(model) as number[][],
  }));
  return strategies[e.strategy](scores, {
    classes: e.labels.length,
    rows,
    members: e.members,
    stacking: e.stacking,
  }).probabilities;
}

/** Each bundled data set with the models and ensembles of the manifest that take its features. */
const CASES = Object.entries(metrics.datasets).map(([name, d]) => {
  const fits = (m: { features: string[]; labels: string[] }) =>
    sameList(m.features, d.features) && sameList(m.labels, d.labels);
  const golden = join(name, 'golden', 'ensemble.json');
  return {
    dataset: name,
    csv: d.file,
    split: d.split.file,
    golden: existsSync(join(MODELS_DIR, golden)) ? golden : undefined,
    models: [...manifest.models.values()].filter((m) => fits(m) && localOnnx(m)).map((m) => m.id),
    ensembles: [...manifest.ensembles.values()].filter(fits),
  };
});

describe.each(CASES)('$dataset models on the vendored data', (c) => {
  const data: Dataset = readDataset(c.csv);
  const split = readModelsJson<Split>(c.split);
  const whole = new Map<string, number[][]>();

  beforeAll(async () => {
    for (const id of c.models) whole.set(id, await scorer.score(onnxOf(getModel(manifest, id)), data.rows));
  });

  it('reads every row of the CSV with the feature count and labels of its models', () => {
    expect(data.rows.length).toBe(split.rows);
    expect(c.models.length).toBeGreaterThan(0);
    for (const id of c.models) {
      const m = getModel(manifest, id);
      expect(data.rows[0]).toHaveLength(m.features.length);
      expect(data.labels).toEqual(m.labels);
    }
  });

  it('has a split that covers every row exactly once', () => {
    const all = [...split.train, ...split.test].sort((a, b) => a - b);
    expect(all).toEqual(data.rows.map((_, i) => i));
  });

  // A regression check for serving: onnxruntime reproduces the accuracy recorded when the model was
  // trained (or added), on every row, fed raw features.
  it.each(c.models)('member %s reproduces its recorded whole-data accuracy', (id) => {
    const recorded = metrics.models.find((m) => m.id === id)?.wholeData;
    const acc = accuracy(whole.get(id) as number[][], data.targets);
    expect(recorded?.rows).toBe(data.rows.length);
    expect(Math.abs(acc - (recorded?.accuracy as number))).toBeLessThanOrEqual(0.005);
  });

  it.each(
    c.ensembles.map((e) => [e.name, e] as const),
  )('ensemble %s is at least as accurate on the held-out split as recorded, or as its weakest member', (_name, e) => {
    const byMember = new Map(e.members.map((id) => [id, pick(whole.get(id) as number[][], split.test)]));
    const targets = pick(data.targets, split.test);
    const acc = accuracy(ensembleScores(e, byMember, split.test.length), targets);
    const recorded = metrics.ensembles.find((r) => r.dataset === c.dataset && sameList(r.members, e.members));
    if (recorded && e.strategy === 'soft-vote') {
      expect(acc).toBeGreaterThanOrEqual(recorded.softVote.heldOut.accuracy - 0.01);
    } else {
      const weakest = Math.min(...e.members.map((id) => accuracy(byMember.get(id) as number[][], targets)));
      expect(acc).toBeGreaterThanOrEqual(weakest - 0.02);
    }
  });

  const golden = c.golden ? readModelsJson<EnsembleGolden>(c.golden) : undefined;
  (golden ? it : it.skip)(
    'soft vote over onnxruntime outputs matches the golden ensemble file within 1e-5',
    async () => {
      const g = golden as EnsembleGolden;
      const byMember = new Map<string, number[][]>();
      for (const id of g.members)
        byMember.set(id, await scorer.score(onnxOf(getModel(manifest, id)), g.rows));
      const probs = strategies['soft-vote'](
        g.members.map((model) => ({ model, weight: 1, probabilities: byMember.get(model) as number[][] })),
        { classes: g.labels.length, rows: g.rows.length, members: g.members },
      ).probabilities;
      expect(maxAbsDiff(probs, g.softVote)).toBeLessThan(1e-5);
    },
  );

  // The meta-model was trained on the golden file's member list: the stacked ensembles over it.
  const stacked = c.ensembles.filter(
    (e) => e.strategy === 'stacking' && golden && sameList(e.members, golden.members),
  );
  it.each(
    stacked.map((e) => [e.name, e] as const),
  )('stacking ensemble %s over onnxruntime outputs matches the golden ensemble file within 1e-5', async (_name, e) => {
    const g = golden as EnsembleGolden;
    const byMember = new Map<string, number[][]>();
    for (const id of e.members) byMember.set(id, await scorer.score(onnxOf(getModel(manifest, id)), g.rows));
    expect(maxAbsDiff(ensembleScores(e, byMember, g.rows.length), g.stacking)).toBeLessThan(1e-5);
  });
});

describe('model files match metrics.json and the model card', () => {
  const card = readFileSync(`${MODELS_DIR}MODEL_CARD.md`, 'utf8');

  it('lists every manifest model in metrics.json', () => {
    expect(metrics.models.map((m) => m.id).sort()).toEqual([...manifest.models.keys()].sort());
  });

  it.each([...manifest.models.keys()])('%s has the sha256 and size recorded in metrics.json', (id) => {
    const spec = onnxOf(getModel(manifest, id));
    const entry = metrics.models.find((m) => m.id === id);
    expect(entry?.file).toBe(relative(MODELS_DIR, spec.file));
    const bytes = readFileSync(spec.file);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(entry?.sha256);
    expect(bytes.length).toBe(entry?.bytes);
  });

  it.each(metrics.models.map((m) => [m.id, m] as const))('the model card lists %s with its hash', (id, m) => {
    const row = card.split('\n').find((line) => line.startsWith(`| \`${id}\` |`));
    expect(row).toBeDefined();
    expect(row).toContain(`\`${m.file}\``);
    // The card shows the first 16 hex digits of the hash, followed by an ellipsis.
    expect(row).toContain(`\`${m.sha256.slice(0, 16)}`);
  });
});
