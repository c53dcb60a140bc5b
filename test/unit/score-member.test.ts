import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import {
  ModelLoadError,
  ModelNotReadyError,
  ModelRunError,
  NotFoundError,
  ValidationError,
} from '../../functions/core/errors.js';
import { getModel, loadManifest, type Manifest, type ModelSpec } from '../../functions/core/manifest.js';
import type { Scorer } from '../../functions/core/ports.js';
import { PROBABILITIES_HINT } from '../../functions/core/probabilities.js';
import { answersNotProbabilities } from '../../functions/runner/probe.js';
import { scoreMember } from '../../functions/runner/score-member.js';
import { linearOnnx } from '../support/onnx-graphs.js';

const MODELS = fileURLToPath(new URL('../../models/', import.meta.url));
const REAL = join(MODELS, 'manifest.json');
const LOGREG = join(MODELS, 'breast-cancer/logreg.onnx');

/** A Scorer that records what it was asked and answers with fixed probabilities. */
class FakeScorer implements Scorer {
  readonly calls: { model: string; rows: number[][] }[] = [];
  constructor(private readonly answer: (rows: readonly (readonly number[])[]) => number[][]) {}
  async score(model: ModelSpec, rows: readonly (readonly number[])[]): Promise<number[][]> {
    this.calls.push({ model: model.id, rows: rows.map((r) => [...r]) });
    return this.answer(rows);
  }
}

const half = (rows: readonly (readonly number[])[]) => rows.map(() => [0.25, 0.75]);

let real: Manifest;
let golden: { rows: number[][]; probabilities: number[][] };
let dir: string;
let counter = 0;

beforeAll(() => {
  real = loadManifest(REAL);
  golden = JSON.parse(readFileSync(join(MODELS, 'breast-cancer/golden/bc-logreg.json'), 'utf8'));
  dir = mkdtempSync(join(tmpdir(), 'fanout-runner-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Writes a manifest (in its own folder: loadManifest caches by path) with one breast-cancer-shaped
 * ONNX model `probe` pointing at `file`, plus extra models, and loads it.
 */
function tempManifest(
  file: string,
  probe: Record<string, unknown> = {},
  extraModels: object[] = [],
): { manifest: Manifest } {
  const folder = join(dir, `m${++counter}`);
  const features = getModel(real, 'bc-logreg').features;
  const doc = {
    featureSets: { bc: features },
    labelSets: { bc: ['malignant', 'benign'] },
    models: [
      { id: 'probe', kind: 'onnx', file, version: '9.9.9', features: 'bc', labels: 'bc', ...probe },
      ...extraModels,
    ],
    ensembles: [{ name: 'probe-ensemble', members: ['probe'], strategy: 'soft-vote' }],
  };
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'manifest.json'), JSON.stringify(doc));
  return { manifest: loadManifest(join(folder, 'manifest.json')) };
}

describe('scoreMember with a fake scorer', () => {
  it('scores the rows with the named member and reports model, version, kind and latency', async () => {
    const scorer = new FakeScorer(half);
    const outcome = await scoreMember({ model: 'bc-mlp', instances: golden.rows.slice(0, 2) }, real, {
      onnx: scorer,
    });
    expect(outcome).toMatchObject({
      model: 'bc-mlp',
      version: '1.0.0',
      kind: 'onnx',
      status: 'ok',
      probabilities: [
        [0.25, 0.75],
        [0.25, 0.75],
      ],
    });
    expect(typeof outcome.latencyMs).toBe('number');
    expect(scorer.calls).toEqual([{ model: 'bc-mlp', rows: golden.rows.slice(0, 2) }]);
  });

  it('hands the scorer object instances as rows in feature order', async () => {
    const scorer = new FakeScorer(half);
    const features = getModel(real, 'bc-logreg').features;
    const row = golden.rows[0] as number[];
    const byName = Object.fromEntries([...features].reverse().map((f) => [f, row[features.indexOf(f)]]));
    await scoreMember({ model: 'bc-logreg', instances: [byName] }, real, { onnx: scorer });
    expect(scorer.calls[0]?.rows).toEqual([row]);
  });

  it('answers an unknown model with a NotFoundError naming it and the manifest', async () => {
    const scorer = new FakeScorer(half);
    const run = scoreMember({ model: 'bc-knn', instances: [[1]] }, real, { onnx: scorer });
    await expect(run).rejects.toThrow(NotFoundError);
    await expect(scoreMember({ model: 'bc-knn', instances: [[1]] }, real, { onnx: scorer })).rejects.toThrow(
      `bc-knn: not in the manifest ${REAL}`,
    );
    expect(scorer.calls).toHaveLength(0);
  });

  it('rejects invalid instances with a ValidationError naming the instance and field, scoring nothing', async () => {
    const scorer = new FakeScorer(half);
    const bad = [golden.rows[0], [...(golden.rows[1] as number[]).slice(0, 29), 'x']];
    const err = await scoreMember({ model: 'bc-logreg', instances: bad }, real, { onnx: scorer }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toBe(
      'instances[1] field "worst fractal dimension": expected a number, got the string "x"',
    );
    expect(scorer.calls).toHaveLength(0);
  });

  it.each([
    ['no event', undefined],
    ['an event without a model', { instances: [[1]] }],
    ['a model that is not a string', { model: 3, instances: [[1]] }],
  ])('rejects %s with a ValidationError asking for the model', async (_what, event) => {
    await expect(scoreMember(event as never, real, { onnx: new FakeScorer(half) })).rejects.toThrow(
      new ValidationError('runner event needs a "model" string naming the member to run'),
    );
  });

  it('refuses a model kind for which no scorer is configured, naming the model', async () => {
    const { manifest } = tempManifest(LOGREG, {}, [
      {
        id: 'sm',
        kind: 'sagemaker',
        version: '2',
        features: 'bc',
        labels: 'bc',
        endpoint: { name: 'bc-endpoint' },
      },
    ]);
    await expect(
      scoreMember({ model: 'sm', instances: [golden.rows[0]] }, manifest, { onnx: new FakeScorer(half) }),
    ).rejects.toThrow('sm: no scorer is configured for sagemaker models here');
  });

  it('lets the scorer’s error through unchanged, so Step Functions sees its name', async () => {
    const failing: Scorer = {
      score: async () => {
        throw new ModelRunError('bc-mlp: inference failed: boom');
      },
    };
    await expect(
      scoreMember({ model: 'bc-mlp', instances: [golden.rows[0]] }, real, { onnx: failing }),
    ).rejects.toMatchObject({ name: 'ModelRunError', message: 'bc-mlp: inference failed: boom' });
  });
});

describe('scoreMember with the real OnnxScorer', () => {
  let scorer: OnnxScorer;

  beforeEach(() => {
    scorer = new OnnxScorer();
  });

  afterEach(async () => {
    await scorer.close();
  });

  it('reproduces the golden probabilities of bc-logreg', async () => {
    const outcome = await scoreMember({ model: 'bc-logreg', instances: golden.rows }, real, { onnx: scorer });
    expect(outcome.probabilities).toHaveLength(golden.rows.length);
    outcome.probabilities?.forEach((row, i) => {
      row.forEach((p, j) => {
        expect(Math.abs(p - (golden.probabilities[i]?.[j] as number))).toBeLessThan(1e-5);
      });
    });
  });

  it('reuses one InferenceSession per model', async () => {
    const spec = getModel(real, 'bc-logreg');
    if (spec.kind !== 'onnx') throw new Error('bc-logreg should be an onnx model');
    const first = await scorer.session(spec);
    await scorer.score(spec, [golden.rows[0] as number[]]);
    const second = await scorer.session(spec);
    expect(second).toBe(first);
  });

  it('fails to load a garbage .onnx file with a ModelLoadError naming the model and file', async () => {
    const file = join(dir, `garbage-${++counter}.onnx`);
    const { manifest } = tempManifest(file);
    writeFileSync(file, 'this is not a protobuf');
    const event = { model: 'probe', instances: [golden.rows[0]] };

    const err = await scoreMember(event, manifest, { onnx: scorer }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).name).toBe('ModelLoadError');
    expect((err as Error).message).toMatch(new RegExp(`^probe: cannot load ${escapeRegExp(file)}: `));
    expect((err as ModelLoadError).cause).toBeDefined();

    // The failed load is not cached: a second call tries again and fails the same way...
    const again = await scoreMember(event, manifest, { onnx: scorer }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(ModelLoadError);
    expect((again as Error).message).toMatch(new RegExp(`^probe: cannot load ${escapeRegExp(file)}: `));

    // ...and succeeds once the file is fixed, with the same scorer.
    copyFileSync(LOGREG, file);
    const fixed = await scoreMember(event, manifest, { onnx: scorer });
    expect(fixed.status).toBe('ok');
    expect(fixed.version).toBe('9.9.9');
    expect(fixed.probabilities?.[0]?.[1]).toBeCloseTo(golden.probabilities[0]?.[1] as number, 5);
  });

  it('preloads the sessions it is given, naming a model that fails to load instead of throwing', async () => {
    const file = join(dir, `preload-${++counter}.onnx`);
    writeFileSync(file, 'this is not a protobuf');
    const { manifest } = tempManifest(file);
    const probe = getModel(manifest, 'probe');
    const served = [...real.models.values()].filter((m) => m.kind === 'onnx');
    if (probe.kind !== 'onnx') throw new Error('expected an onnx model');
    const out = await scorer.preload([...served, probe] as never);
    expect(out.loaded).toEqual(served.map((m) => m.id));
    expect(Object.keys(out.failed)).toEqual(['probe']);
    expect(out.failed.probe).toMatch(new RegExp(`^probe: cannot load ${escapeRegExp(file)}: `));

    // Fixed, it loads on the next preload; from then on its calls need no file at all.
    copyFileSync(LOGREG, file);
    expect(await scorer.preload([probe])).toEqual({ loaded: ['probe'], failed: {} });
    rmSync(file);
    const event = { model: 'probe', instances: [golden.rows[0]] };
    await expect(scoreMember(event, manifest, { onnx: scorer })).resolves.toMatchObject({ status: 'ok' });
  });

  it('fails to load a missing .onnx file with a ModelLoadError naming the model and file, then recovers', async () => {
    const file = join(dir, `missing-${++counter}.onnx`);
    const { manifest } = tempManifest(file);
    const event = { model: 'probe', instances: [golden.rows[0]] };

    const err = await scoreMember(event, manifest, { onnx: scorer }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).message).toContain(`probe: cannot load ${file}`);

    copyFileSync(LOGREG, file);
    await expect(scoreMember(event, manifest, { onnx: scorer })).resolves.toMatchObject({ status: 'ok' });
  });

  // The session's own metadata goes through the start check: a mismatch never reaches a run.
  it('refuses a model whose output does not give the labels, naming the model, the file and both counts', async () => {
    const { manifest } = tempManifest(LOGREG, { labels: ['a', 'b', 'c'] });
    const err = await scoreMember({ model: 'probe', instances: golden.rows.slice(0, 2) }, manifest, {
      onnx: scorer,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotReadyError);
    expect((err as Error).message).toBe(
      `probe: output "probabilities" of the model ${LOGREG} gives 2 classes (shape [N, 2]), the manifest's labels has 3: fix "labels" in the manifest or re-export the model`,
    );
  });

  it('refuses a wrong output name, saying which outputs the model has and what to set', async () => {
    const { manifest } = tempManifest(LOGREG, { output: 'scores' });
    const err = await scoreMember({ model: 'probe', instances: [golden.rows[0]] }, manifest, {
      onnx: scorer,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotReadyError);
    expect((err as Error).message).toBe(
      `probe: output "scores" not in the model ${LOGREG} (it has "probabilities"): set "output": "probabilities" in the manifest`,
    );
  });

  it('refuses a wrong input name, saying which input the model has and what to set', async () => {
    const { manifest } = tempManifest(LOGREG, { input: 'features' });
    const err = await scoreMember({ model: 'probe', instances: [golden.rows[0]] }, manifest, {
      onnx: scorer,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotReadyError);
    expect((err as Error).message).toBe(
      `probe: input "features" not in the model ${LOGREG} (it has "input"): set "input": "input" in the manifest`,
    );
  });

  it('scores a model laid out as skl2onnx writes it, with no input or output in the manifest', async () => {
    const file = join(dir, `skl2onnx-${++counter}.onnx`);
    const weights = getModel(real, 'bc-logreg').features.map((_, j) => [j % 2 ? 0.001 : -0.001, 0]);
    writeFileSync(file, linearOnnx({ weights, bias: [0, 0.5] }, { input: 'float_input', label: true }));
    const { manifest } = tempManifest(file);
    const outcome = await scoreMember({ model: 'probe', instances: golden.rows.slice(0, 3) }, manifest, {
      onnx: scorer,
    });
    expect(outcome.status).toBe('ok');
    expect(outcome.probabilities).toHaveLength(3);
    for (const row of outcome.probabilities ?? [])
      expect(row[0] as number).toBeCloseTo(1 - (row[1] as number), 6);
  });

  it('names, from one row of zeros, a member whose answers are not probabilities, and only that one', async () => {
    const file = join(dir, `logits-${++counter}.onnx`);
    const weights = getModel(real, 'bc-logreg').features.map((_, j) => [j % 2 ? 0.001 : -0.001, 0]);
    writeFileSync(
      file,
      linearOnnx({ weights, bias: [-3, 5] }, { input: 'float_input', label: true, noSoftmax: true }),
    );
    const { manifest } = tempManifest(file);
    const served = [...real.models.values()].filter((m) => m.kind === 'onnx');
    const bad = await answersNotProbabilities([...served, getModel(manifest, 'probe')] as never, scorer);
    expect(bad).toEqual({
      probe: `its answer to a row of zeros has -3, outside 0..1 (-3, 5); ${PROBABILITIES_HINT}`,
    });
  });

  it('does not run a member that failed the start check: it fails at once with the reason', async () => {
    const fake = new FakeScorer(half);
    const reason = 'bc-mlp: input "x" not in the model breast-cancer/mlp.onnx (it has "input")';
    const err = await scoreMember(
      { model: 'bc-mlp', instances: [golden.rows[0]] },
      real,
      { onnx: fake },
      new Map([['bc-mlp', reason]]),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotReadyError);
    expect((err as Error).message).toBe(reason);
    expect(fake.calls).toEqual([]);
  });

  it('refuses to score a SageMaker model', async () => {
    const { manifest } = tempManifest(LOGREG, {}, [
      { id: 'sm', kind: 'sagemaker', version: '2', features: 'bc', labels: 'bc', endpoint: { name: 'e' } },
    ]);
    await expect(scorer.score(getModel(manifest, 'sm'), [golden.rows[0] as number[]])).rejects.toThrow(
      new ModelRunError('sm: is a sagemaker model, not onnx'),
    );
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
