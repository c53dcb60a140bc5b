import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { loadManifest } from '../../functions/core/manifest.js';
import { REPO_ROOT, startLocalStack } from '../../local/stack.js';
import { readDataset } from '../models/data.js';
import { fitDiagonalLda, linearOnnx } from '../support/onnx-graphs.js';

// The runner's worker instances start with the stack, ahead of any request: each loads every ONNX
// member of the manifest at init (FANOUT_PRELOAD_MODELS, on by default locally), as an instance of
// provisioned concurrency would, unless the user turns it off.
const onnxMembers = [...loadManifest(join(REPO_ROOT, 'models/manifest.json')).models.values()]
  .filter((m) => m.kind === 'onnx')
  .map((m) => m.id);

async function preloadLines(
  env: Record<string, string>,
  message = 'models preloaded',
): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-preload-'));
  const saved = { ...process.env };
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'INFO' }, env);
  const lines: Record<string, unknown>[] = [];
  try {
    const stack = await startLocalStack({
      port: 0,
      dataDir: dir,
      quiet: true,
      onOutput: (line, _stream, key) => {
        if (key === 'runner' && line.includes(`"${message}"`)) lines.push(JSON.parse(line));
      },
    });
    await stack.stop();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

describe("the local stack's runner instances", () => {
  it('load every ONNX member of the manifest before the first request', async () => {
    const lines = await preloadLines({});
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect((line.loaded as string[]).sort()).toEqual([...onnxMembers].sort());
      expect(line.failed).toBeUndefined();
    }
  }, 60_000);

  it('load none when the user sets FANOUT_PRELOAD_MODELS=false', async () => {
    expect(await preloadLines({ FANOUT_PRELOAD_MODELS: 'false' })).toEqual([]);
  }, 60_000);

  it('name a member brought by hand whose answers are not probabilities, before any request', async () => {
    // The bundled manifest plus a model added by hand (not through `fanout models add`, which
    // would refuse it): an LDA exported without its softmax, so it answers logits.
    const dir = mkdtempSync(join(tmpdir(), 'fanout-preload-logits-'));
    try {
      const source = join(REPO_ROOT, 'models/manifest.json');
      const doc = JSON.parse(readFileSync(source, 'utf8'));
      const abs = (p: string) => (isAbsolute(p) ? p : resolve(dirname(source), p));
      for (const m of doc.models) {
        if (m.file) m.file = abs(m.file);
        if (m.localFile) m.localFile = abs(m.localFile);
      }
      for (const e of doc.ensembles) if (e.stacking?.file) e.stacking.file = abs(e.stacking.file);
      const data = readDataset('data/breast_cancer.csv');
      const lda = fitDiagonalLda(data.rows, data.targets, 2);
      const file = join(dir, 'logits.onnx');
      writeFileSync(file, linearOnnx(lda, { input: 'float_input', label: true, noSoftmax: true }));
      const template = doc.models.find((m: { id: string }) => m.id === 'bc-logreg');
      doc.models.push({ ...template, id: 'bc-handmade-logits', file, version: '0.1.0' });
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(doc));
      const lines = await preloadLines(
        { FANOUT_MANIFEST: join(dir, 'manifest.json') },
        'model answers are not probabilities',
      );
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) {
        expect(line.model).toBe('bc-handmade-logits');
        expect(line.reason).toMatch(/^its answer to a row of zeros (has|sums to) /);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
