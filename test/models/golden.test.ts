import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import { loadManifest, localOnnx, type OnnxModelSpec } from '../../functions/core/manifest.js';
import { type MemberGolden, MODELS_DIR, maxAbsDiff } from './data.js';

const manifest = loadManifest(join(MODELS_DIR, 'manifest.json'));

/**
 * Every model with its golden file, `<model dir>/golden/<id>.json`, when there is one. SageMaker
 * members are checked through the ONNX file the local endpoint serves.
 */
const withGolden = [...manifest.models.values()]
  .map(localOnnx)
  .filter((m): m is OnnxModelSpec => m !== undefined)
  .map((model) => ({ model, golden: join(dirname(model.file), 'golden', `${model.id}.json`) }))
  .filter((g) => existsSync(g.golden));

const scorer = new OnnxScorer();

afterAll(async () => {
  await scorer.close();
});

describe('golden files', () => {
  it('exist for every model in the manifest', () => {
    expect(withGolden.map((g) => g.model.id)).toEqual([...manifest.models.keys()]);
  });

  it.each(
    withGolden.map((g) => [g.model.id, g] as const),
  )('onnxruntime-node reproduces the golden probabilities of %s within 1e-5', async (id, {
    model,
    golden,
  }) => {
    const expected = JSON.parse(readFileSync(golden, 'utf8')) as MemberGolden;
    expect(expected.model).toBe(id);
    expect(expected.labels).toEqual(model.labels);
    expect(expected.rows.length).toBeGreaterThanOrEqual(40);
    expect(expected.rows.every((r) => r.length === model.features.length)).toBe(true);

    const actual = await scorer.score(model, expected.rows);
    expect(maxAbsDiff(actual, expected.probabilities)).toBeLessThan(1e-5);
    // Probabilities sum to one per row, as the strategies assume.
    for (const row of actual) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });
});
