import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import {
  getEnsemble,
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
  MODELS_DIR,
  maxAbsDiff,
  readDataset,
  readModelsJson,
  type Split,
} from './data.js';

const manifest = loadManifest(`${MODELS_DIR}manifest.json`);
const scorer = new OnnxScorer();

afterAll(async () => {
  await scorer.close();
});

/** Scores `rows` with every member, in the members' order. */
async function scoreAll(members: readonly string[], rows: number[][]): Promise<Map<string, number[][]>> {
  const out = new Map<string, number[][]>();
  for (const id of members) out.set(id, await scorer.score(onnxOf(getModel(manifest, id)), rows));
  return out;
}

/** Combines member outputs with the ensemble's own strategy, weights and meta-model (the core code). */
function ensembleScores(name: string, byMember: Map<string, number[][]>, rows: number): number[][] {
  const e = getEnsemble(manifest, name);
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

/** SageMaker members are scored from the same ONNX file the local endpoint serves. */
function onnxOf(model: ModelSpec): OnnxModelSpec {
  const spec = localOnnx(model);
  if (!spec) throw new Error(`${model.id} has no ONNX file here`);
  return spec;
}

const pick = <T>(items: readonly T[], indices: readonly number[]) => indices.map((i) => items[i] as T);

interface Case {
  dataset: string;
  csv: string;
  split: string;
  golden: string;
}

const CASES: Case[] = [
  {
    dataset: 'breast-cancer',
    csv: 'data/breast_cancer.csv',
    split: 'breast-cancer/split.json',
    golden: 'breast-cancer/golden/ensemble.json',
  },
  {
    dataset: 'wine',
    csv: 'data/wine_data.csv',
    split: 'wine/split.json',
    golden: 'wine/golden/ensemble.json',
  },
];

const sameNames = (a: readonly string[], b: readonly string[]) => a.join('\u0000') === b.join('\u0000');

/**
 * What the manifest serves on a data set: every model and ensemble with the features and labels of
 * the golden file's first member (shadow members and canaries included), and its stacked ensemble.
 */
function served(golden: EnsembleGolden) {
  const first = getModel(manifest, golden.members[0] as string);
  const fits = (x: { features: string[]; labels: string[] }) =>
    sameNames(x.features, first.features) && sameNames(x.labels, first.labels);
  const ensembles = [...manifest.ensembles.values()].filter(fits);
  const stacked = ensembles.find((e) => e.strategy === 'stacking');
  if (!stacked) throw new Error(`no stacking ensemble serves ${golden.members.join(', ')}`);
  return {
    models: [...manifest.models.values()].filter(fits).map((m) => m.id),
    ensembles: ensembles.map((e) => e.name),
    stacked: stacked.name,
  };
}

describe.each(CASES)('$dataset models on the vendored data', (c) => {
  const data: Dataset = readDataset(c.csv);
  const split = readModelsJson<Split>(c.split);
  const golden = readModelsJson<EnsembleGolden>(c.golden);
  const { models, ensembles, stacked } = served(golden);
  const members = getEnsemble(manifest, stacked).members;
  let whole: Map<string, number[][]>;

  beforeAll(async () => {
    whole = await scoreAll(models, data.rows);
  });

  it('reads every row of the CSV with the manifest’s feature count and labels', () => {
    const e = getEnsemble(manifest, stacked);
    expect(data.rows.length).toBe(split.rows);
    expect(data.rows[0]).toHaveLength(e.features.length);
    expect(data.labels).toEqual(e.labels);
  });

  it('has a split that covers every row exactly once', () => {
    const all = [...split.train, ...split.test].sort((a, b) => a - b);
    expect(all).toEqual(data.rows.map((_, i) => i));
  });

  it.each(models)('model %s is at least 0.93 accurate on every row, fed raw features', (id) => {
    const acc = accuracy(whole.get(id) as number[][], data.targets);
    expect(acc).toBeGreaterThanOrEqual(0.93);
  });

  it.each(ensembles)('ensemble %s is at least 0.95 accurate on the held-out split', (name) => {
    const byMember = new Map([...whole].map(([id, p]) => [id, pick(p, split.test)]));
    const probs = ensembleScores(name, byMember, split.test.length);
    expect(accuracy(probs, pick(data.targets, split.test))).toBeGreaterThanOrEqual(0.95);
  });

  it('soft vote over onnxruntime outputs matches the golden ensemble file within 1e-5', async () => {
    expect(golden.members).toEqual(members);
    const byMember = await scoreAll(members, golden.rows);
    const probs = strategies['soft-vote'](
      members.map((model) => ({ model, weight: 1, probabilities: byMember.get(model) as number[][] })),
      { classes: golden.labels.length, rows: golden.rows.length, members },
    ).probabilities;
    expect(maxAbsDiff(probs, golden.softVote)).toBeLessThan(1e-5);
  });

  it('stacking over onnxruntime outputs matches the golden ensemble file within 1e-5', async () => {
    const byMember = await scoreAll(members, golden.rows);
    const probs = ensembleScores(stacked, byMember, golden.rows.length);
    expect(maxAbsDiff(probs, golden.stacking)).toBeLessThan(1e-5);
  });
});

describe('model files match metrics.json and the model card', () => {
  interface Metrics {
    models: { id: string; file: string; sha256: string; bytes: number }[];
  }
  const metrics = readModelsJson<Metrics>('metrics.json');
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
