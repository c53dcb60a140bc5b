import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { UsageError } from '../../cli/args.js';
import { addModel, type ModelsIo } from '../../cli/models.js';
import { type AddArgs, parseModelsArgs } from '../../cli/models-args.js';
import { checkModels } from '../../cli/models-check.js';
import { ModelsError } from '../../cli/models-error.js';
import { loadManifest } from '../../functions/core/manifest.js';
import { accuracy, readDataset } from '../models/data.js';
import { fitDiagonalLda, type LinearModel, linearOnnx } from '../support/onnx-graphs.js';

const ROOT = resolve(import.meta.dirname, '../..');
const bc = readDataset('data/breast_cancer.csv');
const wine = readDataset('data/wine_data.csv');
const bcLda = fitDiagonalLda(bc.rows, bc.targets, 2);
const wineLda = fitDiagonalLda(wine.rows, wine.targets, 3);

let dir: string;
let count = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-models-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An id the repository's manifest does not use yet (a user may have added `bc-lda` already). */
function freeId(base: string): string {
  const taken = loadManifest(join(ROOT, 'models/manifest.json'));
  let id = base;
  for (let i = 2; taken.models.has(id) || taken.ensembles.has(id); i++) id = `${base}-${i}`;
  return id;
}
const LDA = freeId('bc-lda');
const WINE_LDA = freeId('wine-lda');
const SOLO = freeId('bc-lda-solo');
const ALONE = freeId('bc-lda-alone');

/** A copy of the repository's models folder, to add models to. */
function modelsCopy(): string {
  const copy = join(dir, `models-${++count}`);
  cpSync(join(ROOT, 'models'), copy, { recursive: true, filter: (src) => !src.includes('/train') });
  return copy;
}

/** Writes a model made in the test (skl2onnx's layout unless told otherwise) and returns its path. */
function modelFile(
  model: LinearModel,
  layout: Parameters<typeof linearOnnx>[1] = { input: 'float_input', label: true },
) {
  const file = join(dir, `model-${++count}.onnx`);
  writeFileSync(file, linearOnnx(model, layout));
  return file;
}

/** Runs `fanout models add` in-process: its exit code, or the error it stops with, and what it said. */
async function add(
  args: Partial<AddArgs> & { file: string; manifest: string },
  extra: Partial<ModelsIo> = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const full: AddArgs = {
    command: 'add',
    id: LDA,
    features: 'breast-cancer',
    labels: 'breast-cancer',
    replace: false,
    ...args,
  };
  const io = {
    out: (l: string) => out.push(l),
    err: (l: string) => err.push(l),
    now: () => new Date('2026-11-28T00:00:00Z'),
    ...extra,
  };
  try {
    return { code: await addModel(full, io), out, err: err.join('\n') };
  } catch (e) {
    return { code: 1, error: e as Error, out, err: err.join('\n') };
  }
}

const read = (file: string) => readFileSync(file, 'utf8');

describe('fanout models add', () => {
  it('adds a model laid out as skl2onnx writes it, with no manifest input or output, to an ensemble, and keeps every file in step', async () => {
    const models = modelsCopy();
    const manifestFile = join(models, 'manifest.json');
    const before = JSON.parse(read(manifestFile));
    const file = modelFile(bcLda);
    const result = await add({ file, manifest: manifestFile, ensemble: 'breast-cancer' });
    expect(result.code).toBe(0);

    expect(result.err).toContain(
      `${LDA}: input "float_input" [N, 30] -> output "probabilities" [N, 2] (ignored: label)`,
    );
    // The accuracy of the same linear model computed here in float64 (onnxruntime runs float32).
    const expected = accuracy(
      bc.rows.map((r) =>
        bcLda.bias.map((b, c) => b + r.reduce((sum, v, j) => sum + v * (bcLda.weights[j]?.[c] as number), 0)),
      ),
      bc.targets,
    );
    expect(expected).toBeGreaterThan(0.9);
    expect(result.err).toMatch(
      new RegExp(
        `${LDA}: accuracy 0\\.9\\d{3} on all 569 rows of breast-cancer, 0\\.\\d{4} on the 143 rows the bundled models were not trained on \\(a fair test only if yours was not either\\); ROC AUC 0\\.9\\d{3}`,
      ),
    );
    // How it and the ensemble's other members agree with the answer, as the drift alarm will judge.
    expect(result.err).toMatch(
      new RegExp(
        `${LDA} agrees with breast-cancer's answer on 9\\d\\.\\d% of the 569 rows of breast-cancer; the other members 9\\d\\.\\d%-(9\\d\\.\\d|100\\.0)%`,
      ),
    );
    expect(result.err).not.toContain('agreement alarm fires');
    expect(JSON.parse(result.out[0] as string)).toMatchObject({
      id: LDA,
      file: `breast-cancer/${LDA}.onnx`,
      input: 'float_input',
      output: 'probabilities',
      ensemble: 'breast-cancer',
    });

    const after = JSON.parse(read(manifestFile));
    expect(after.models).toHaveLength(before.models.length + 1);
    expect(after.models.at(-1)).toEqual({
      id: LDA,
      kind: 'onnx',
      file: `breast-cancer/${LDA}.onnx`,
      version: '1.0.0',
      description: `Added with fanout models add from ${basename(file)} (exported by fanout-tests)`,
      features: 'breast-cancer',
      labels: 'breast-cancer',
    });
    const ensemble = after.ensembles.find((e: { name: string }) => e.name === 'breast-cancer');
    expect(ensemble.members.at(-1)).toBe(LDA);
    // The rest of the manifest is as it was.
    expect({ ...after, models: after.models.slice(0, -1), ensembles: [] }).toEqual({
      ...before,
      ensembles: [],
    });
    expect(loadManifest(manifestFile).ensembles.get('breast-cancer')?.members).toContain(LDA);

    const metrics = JSON.parse(read(join(models, 'metrics.json')));
    const entry = metrics.models.find((m: { id: string }) => m.id === LDA);
    expect(entry).toMatchObject({
      file: `breast-cancer/${LDA}.onnx`,
      dataset: 'breast-cancer',
      addedOn: '2026-11-28',
      wholeData: { rows: 569 },
      heldOut: { rows: 143 },
      input: 'float_input',
      output: 'probabilities',
    });
    // Every other byte of metrics.json is as the trainer wrote it.
    expect(
      read(join(models, 'metrics.json')).replace(
        new RegExp(`,\\n {4}\\{\\n {6}"id": "${LDA}"[\\s\\S]*?\\n {4}\\}(?=\\n {2}\\])`),
        '',
      ),
    ).toBe(read(join(ROOT, 'models/metrics.json')));
    expect(Math.abs(entry.wholeData.accuracy - expected)).toBeLessThan(0.005);
    const card = read(join(models, 'MODEL_CARD.md'));
    expect(card).toContain(`| \`${LDA}\` | added: fanout-tests | breast-cancer | 2026-11-28 | `);
    const golden = JSON.parse(read(join(models, `breast-cancer/golden/${LDA}.json`)));
    const ensembleGolden = JSON.parse(read(join(models, 'breast-cancer/golden/ensemble.json')));
    expect(golden.rows).toEqual(ensembleGolden.rows);
    expect(golden.probabilities).toHaveLength(golden.rows.length);
  });

  it('runs the model suites green against the manifest it added to (they follow the manifest)', async () => {
    const models = modelsCopy();
    const manifestFile = join(models, 'manifest.json');
    const wineModel = modelFile(wineLda, { output: 'scores' });
    expect(
      (await add({ file: modelFile(bcLda), manifest: manifestFile, ensemble: 'breast-cancer' })).code,
    ).toBe(0);
    expect(
      (
        await add({
          file: wineModel,
          manifest: manifestFile,
          id: WINE_LDA,
          features: 'wine',
          labels: 'wine',
          ensemble: 'wine',
          weight: 1,
        })
      ).code,
    ).toBe(0);
    expect(
      (
        await add({
          file: modelFile(bcLda),
          manifest: manifestFile,
          id: SOLO,
          ensemble: ALONE,
        })
      ).code,
    ).toBe(0);
    const run = await jest(['test/models', 'test/unit/manifest.test.ts'], { FANOUT_TEST_MODELS_DIR: models });
    expect(run.output).toMatch(/Tests: +\d+ passed, \d+ total/);
    expect(run.code).toBe(0);
    for (const id of [LDA, WINE_LDA, SOLO]) {
      expect(run.output).toContain(`member ${id} reproduces its recorded whole-data accuracy`);
      expect(run.output).toContain(
        `onnxruntime-node reproduces the golden probabilities of ${id} within 1e-5`,
      );
    }
    expect(run.output).toContain(`ensemble ${ALONE} is at least as accurate`);
  }, 120_000);

  it('refuses a model that takes 29 features for a 30-feature set, writing nothing', async () => {
    const models = modelsCopy();
    const manifestFile = join(models, 'manifest.json');
    const before = read(manifestFile);
    const short = modelFile({ weights: bcLda.weights.slice(1), bias: bcLda.bias });
    const result = await add({ file: short, manifest: manifestFile, ensemble: 'breast-cancer' });
    expect(result.error).toBeInstanceOf(ModelsError);
    expect(result.error?.message).toBe(
      `${LDA}: input "float_input" of the model ${short} takes 29 features (shape [N, 29]), the manifest's feature set "breast-cancer" has 30: fix "features" in ${manifestFile} or re-export the model`,
    );
    expect(read(manifestFile)).toBe(before);
  });

  it('refuses a model whose output is logits rather than probabilities, writing nothing', async () => {
    const models = modelsCopy();
    const manifestFile = join(models, 'manifest.json');
    const before = read(manifestFile);
    const result = await add({
      file: modelFile(bcLda, { input: 'float_input', label: true, noSoftmax: true }),
      manifest: manifestFile,
      ensemble: 'breast-cancer',
    });
    expect(result.error).toBeInstanceOf(ModelsError);
    expect(result.error?.message).toMatch(
      new RegExp(
        `^${LDA} does not give probabilities: on row 1 of breast-cancer its output (has -?[\\d.]+, outside 0\\.\\.1|sums to [\\d.]+, not 1) \\(.*\\); a member must give one probability per label, e\\.g\\. with its softmax exported with it \\(README, "Exporting to ONNX"\\)$`,
      ),
    );
    expect(read(manifestFile)).toBe(before);
  });

  it('refuses a model whose classes come out in the other order, naming the order that fits', async () => {
    const models = modelsCopy();
    const manifestFile = join(models, 'manifest.json');
    const before = read(manifestFile);
    const swapped = {
      weights: bcLda.weights.map((w) => [w[1] as number, w[0] as number]),
      bias: [bcLda.bias[1] as number, bcLda.bias[0] as number],
    };
    const result = await add({ file: modelFile(swapped), manifest: manifestFile, ensemble: 'breast-cancer' });
    expect(result.error).toBeInstanceOf(ModelsError);
    expect(result.error?.message).toMatch(
      new RegExp(
        `^${LDA}'s output columns look out of order: accuracy 0\\.0\\d+ on breast-cancer as they are, 0\\.9\\d+ if they meant \\(benign, malignant\\)\\. Export its classes in the order of the label set \\(malignant, benign\\), or give it a label set in its own order$`,
      ),
    );
    expect(read(manifestFile)).toBe(before);
  });

  it("warns when a batch job's rows would take the model more than half its timeout, and not when they fit", async () => {
    const manifest = join(modelsCopy(), 'manifest.json');
    const file = modelFile(bcLda);
    // A clock on which the timed call takes 1.5 s: a model that slow on a batch job's 250 rows.
    const slowClock = () => {
      let now = 0;
      return () => {
        now += 1_500;
        return now;
      };
    };
    const tight = await add({ file, manifest, timeoutSeconds: 2 }, { clock: slowClock() });
    expect([tight.code, tight.error?.message]).toEqual([0, undefined]);
    expect(tight.err).toContain(
      `warning: ${LDA} took about 1.5 s here for a batch job's 250 rows, 75% of its 2 s timeout (and a Lambda has less CPU than this machine): batches it does not answer in time are answered without it. Give it a longer --timeout (at least 6 s), or expect degraded batch rows`,
    );
    const roomy = await add({ file, manifest, timeoutSeconds: 5 }, { clock: slowClock() });
    expect(roomy.err).not.toContain("for a batch job's");
    // Timed for real, the model made here takes milliseconds.
    const real = await add({ file, manifest });
    expect(real.err).not.toContain("for a batch job's");
  });

  it('scores --data rows of one label without a ROC AUC, which has no curve to draw, and adds the model', async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    const features = JSON.parse(read(manifest)).featureSets['breast-cancer'] as string[];
    const malignant = bc.rows.filter((_, i) => bc.targets[i] === 0).slice(0, 12);
    const data = join(dir, `one-label-${++count}.csv`);
    writeFileSync(
      data,
      `${[...features, 'label'].map((f) => (f.includes(',') ? `"${f}"` : f)).join(',')}\n${malignant.map((r) => `${r.join(',')},malignant`).join('\n')}\n`,
    );
    const result = await add({ file: modelFile(bcLda), manifest, data });
    expect([result.code, result.error?.message]).toEqual([0, undefined]);
    expect(result.err).toMatch(
      /accuracy [\d.]+ on all 12 rows of one-label-\d+\.csv; ROC AUC n\/a \(the rows hold one label only\)/,
    );
    const entry = JSON.parse(read(join(models, 'metrics.json'))).models.find(
      (m: { id: string }) => m.id === LDA,
    );
    expect(entry.wholeData).toMatchObject({ rows: 12, rocAuc: null });
  });

  it('warns when the member it adds would trip its drift alarm from the start, and still adds it', async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    // A model that reads one feature only (mean texture, higher for malignant rows): right on about
    // seven rows in ten, so it disagrees with the ensemble far more often than the drift alarm allows.
    const texture = 1;
    const weights = Array.from({ length: 30 }, (_, j) => (j === texture ? [0.5, -0.5] : [0, 0]));
    const weak = modelFile({ weights, bias: [-0.5 * 19.5, 0.5 * 19.5] });
    const result = await add({ file: weak, manifest, ensemble: 'breast-cancer' });
    expect([result.code, result.error?.message]).toEqual([0, undefined]);
    const share = /agrees with breast-cancer's answer on ([\d.]+)%/.exec(result.err)?.[1];
    expect(Number(share)).toBeLessThan(90);
    expect(result.err).toContain(
      `warning: that is below 90.0%, under which the breast-cancer-${LDA}-agreement alarm fires (custom.alarms.memberAgreementMin in serverless.yml)`,
    );
    expect(JSON.parse(read(manifest)).models.some((m: { id: string }) => m.id === LDA)).toBe(true);
  });

  it('refuses a ZipMap output and says how to export without it', async () => {
    const models = modelsCopy();
    const result = await add({
      file: modelFile(bcLda, { input: 'float_input', label: true, zipmap: true }),
      manifest: join(models, 'manifest.json'),
    });
    expect(result.error?.message).toMatch(
      /is a list of per-row maps \(skl2onnx's ZipMap\), not a tensor: export with options=\{id\(model\): \{"zipmap": False\}\}$/,
    );
  });

  it('refuses to join a stacking ensemble, explaining why and what to do instead', async () => {
    const models = modelsCopy();
    const result = await add({
      file: modelFile(bcLda),
      manifest: join(models, 'manifest.json'),
      ensemble: 'breast-cancer-stacked',
    });
    expect(result.error?.message).toMatch(
      new RegExp(
        String.raw`^ensemble breast-cancer-stacked combines its members with a stacking meta-model \(breast-cancer\/stacking-meta\.json\) trained on the scores of exactly \[.+\]: it cannot take a new member without being retrained\. Add ${LDA} to a soft-vote or weighted-mean ensemble instead \(e\.g\. --ensemble breast-cancer\), or retrain the meta-model`,
      ),
    );
  });

  it('asks for a weight to join a weighted mean, and refuses one where it has no effect', async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    const file = modelFile(wineLda);
    const noWeight = await add({
      file,
      manifest,
      id: WINE_LDA,
      features: 'wine',
      labels: 'wine',
      ensemble: 'wine',
    });
    expect(noWeight.error?.message).toMatch(
      new RegExp(
        String.raw`^ensemble wine is a weighted mean: pass --weight <w> for ${WINE_LDA} \(its members weigh: wine-logreg 2, `,
      ),
    );
    const onSoftVote = await add({ file: modelFile(bcLda), manifest, ensemble: 'breast-cancer', weight: 2 });
    expect(onSoftVote.error?.message).toBe(
      '--weight has no effect on ensemble breast-cancer (strategy soft-vote); leave it out',
    );
    const weighted = await add({
      file,
      manifest,
      id: WINE_LDA,
      features: 'wine',
      labels: 'wine',
      ensemble: 'wine',
      weight: 1.5,
    });
    expect(weighted.code).toBe(0);
    expect(loadManifest(manifest).ensembles.get('wine')?.weights.at(-1)).toBe(1.5);
  });

  it("says when --timeout is longer than serverless.yml's runner lets a member wait, and stays quiet when it fits", async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    const file = modelFile(bcLda);
    const long = await add({ file, manifest, timeoutSeconds: 45 });
    expect(long.code).toBe(0);
    expect(long.err).toContain(`note: --timeout 45: ${LDA}: its timeout of 45 s is cut to`);
    expect(long.err).toMatch(
      /note: --timeout 45: [a-z0-9-]+: its timeout of 45 s is cut to \d+ s in batch jobs and \d+ s on the synchronous path; past that it is timed out by name \(bounded by functions\.runner\.timeout, \d+ in serverless\.yml, less one; the synchronous path also by functions\.api\.timeout, \d+, less 3 to answer\)/,
    );
    expect(JSON.parse(read(manifest)).models.find((m: { id: string }) => m.id === LDA).timeoutSeconds).toBe(
      45,
    );
    const short = await add({ file, manifest, timeoutSeconds: 5 });
    expect(short.code).toBe(0);
    expect(short.err).not.toContain('note: --timeout');
    // 28 s fits a batch job (the runner's 30 less one) but not a synchronous request.
    const syncOnly = await add({ file, manifest, timeoutSeconds: 28 });
    expect(syncOnly.err).toMatch(
      /note: --timeout 28: [a-z0-9-]+: its timeout of 28 s is cut to \d+ s on the synchronous path; past that/,
    );
  });

  it('treats the same file under the same id as a refresh, and another file as a replacement that needs --replace and a new version', async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    const file = modelFile(bcLda);
    expect((await add({ file, manifest })).code).toBe(0);
    const first = read(manifest);
    const again = await add({ file, manifest });
    expect(again.code).toBe(0);
    expect(again.err).toContain(`${LDA} was already in`);
    expect(read(manifest)).toBe(first);

    const other = modelFile({
      weights: bcLda.weights,
      bias: [bcLda.bias[0] as number, (bcLda.bias[1] as number) + 0.1],
    });
    expect((await add({ file: other, manifest })).error?.message).toMatch(
      /already in .* with another file: to put this one in its place, pass --replace and a new --version$/,
    );
    expect((await add({ file: other, manifest, replace: true })).error?.message).toMatch(
      /give it a new --version \(it is 1\.0\.0\)/,
    );
    expect((await add({ file: other, manifest, replace: true, version: '1.1.0' })).code).toBe(0);
    const model = JSON.parse(read(manifest)).models.find((m: { id: string }) => m.id === LDA);
    expect(model).toMatchObject({ version: '1.1.0', file: `breast-cancer/${LDA}.onnx` });
    expect(JSON.parse(read(manifest)).models.filter((m: { id: string }) => m.id === LDA)).toHaveLength(1);
  });

  it('names a feature set or label set that does not exist, and an id that is taken by an ensemble', async () => {
    const manifest = join(modelsCopy(), 'manifest.json');
    const file = modelFile(bcLda);
    expect((await add({ file, manifest, features: 'iris' })).error?.message).toMatch(
      /^--features "iris" is not in featureSets of .* \(it has: breast-cancer, wine\); add the set there first$/,
    );
    expect((await add({ file, manifest, id: 'wine' })).error?.message).toMatch(/is the name of an ensemble/);
    expect((await add({ file: join(dir, 'nope.onnx'), manifest })).error?.message).toBe(
      `${join(dir, 'nope.onnx')} does not exist`,
    );
  });
});

describe('fanout models check', () => {
  const check = async (manifest: string, clock?: () => number) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await checkModels(
      { command: 'check', manifest },
      { out: (l) => out.push(l), err: (l) => err.push(l), ...(clock ? { clock } : {}) },
    );
    return { code, out, err };
  };

  it('passes every bundled model, and fails naming a model whose file is broken', async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    const ok = await check(manifest);
    expect(ok.code).toBe(0);
    expect(ok.out).toHaveLength(loadManifest(join(ROOT, 'models/manifest.json')).models.size);
    expect(ok.out.every((l) => l.startsWith('ready '))).toBe(true);
    writeFileSync(join(models, 'breast-cancer/mlp.onnx'), 'not a model');
    const bad = await check(manifest);
    expect(bad.code).toBe(1);
    expect(bad.out.find((l) => l.includes('bc-mlp'))).toMatch(
      /^NOT READY {2}bc-mlp: model file breast-cancer\/mlp\.onnx is not an ONNX model \(/,
    );
    expect(bad.err).toEqual([`1 model not ready in ${manifest}`]);
  });

  it('fails a model whose file was swapped for one that gives logits, naming the row', async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    writeFileSync(join(models, 'breast-cancer/mlp.onnx'), linearOnnx(bcLda, { noSoftmax: true }));
    const bad = await check(manifest);
    expect(bad.code).toBe(1);
    expect(bad.out.find((l) => l.includes('bc-mlp'))).toMatch(
      /^NOT READY {2}bc-mlp does not give probabilities: on row 1 of breast-cancer its output (has|sums to) .*; a member must give one probability per label/,
    );
    expect(bad.err).toEqual([`1 model not ready in ${manifest}`]);
  });

  it('fails a model whose file was swapped for one with its classes in the other order', async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    const swapped = {
      weights: bcLda.weights.map((w) => [w[1] as number, w[0] as number]),
      bias: [bcLda.bias[1] as number, bcLda.bias[0] as number],
    };
    writeFileSync(join(models, 'breast-cancer/mlp.onnx'), linearOnnx(swapped));
    const bad = await check(manifest);
    expect(bad.code).toBe(1);
    expect(bad.out.find((l) => l.includes('bc-mlp'))).toMatch(
      /^NOT READY {2}bc-mlp's output columns look out of order: accuracy 0\.0\d+ on breast-cancer as they are, 0\.9\d+ if they meant \(benign, malignant\)/,
    );
  });

  it("notes a member whose timeout serverless.yml's functions cannot give it, and still passes", async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    const doc = JSON.parse(read(manifest));
    const [first, second] = doc.models as { id: string; timeoutSeconds?: number }[];
    if (!first || !second) throw new Error('the bundled manifest has fewer than two models');
    first.timeoutSeconds = 60;
    second.timeoutSeconds = 28;
    writeFileSync(manifest, JSON.stringify(doc, null, 2));
    const run = await check(manifest);
    expect(run.code).toBe(0);
    const notes = run.out.filter((l) => l.startsWith('note '));
    expect(notes).toEqual([
      expect.stringMatching(
        new RegExp(
          `^note {7}${first.id}: its timeout of 60 s is cut to \\d+ s in batch jobs and \\d+ s on the synchronous path; past that it is timed out by name \\(bounded by functions\\.runner\\.timeout, \\d+ in serverless\\.yml, less one; the synchronous path also by functions\\.api\\.timeout, \\d+, less 3 to answer\\)$`,
        ),
      ),
      expect.stringMatching(
        new RegExp(`^note {7}${second.id}: its timeout of 28 s is cut to \\d+ s on the synchronous path;`),
      ),
    ]);
  });

  it("notes each model whose batch job's 250 rows take more than half its timeout, and still passes", async () => {
    const models = modelsCopy();
    const manifest = join(models, 'manifest.json');
    // A clock on which every timed call takes 3 s.
    let now = 0;
    const clock = () => {
      now += 3_000;
      return now;
    };
    const run = await check(manifest, clock);
    expect(run.code).toBe(0);
    const doc = JSON.parse(read(manifest)) as {
      models: { id: string; kind: string; localFile?: string; timeoutSeconds?: number }[];
    };
    const onnx = doc.models.filter((m) => m.kind === 'onnx' || m.localFile);
    const notes = run.out.filter((l) => l.startsWith('note '));
    expect(notes).toHaveLength(onnx.length);
    const first = onnx[0] as { id: string; timeoutSeconds?: number };
    const timeout = first.timeoutSeconds ?? 10;
    expect(notes[0]).toBe(
      `note       ${first.id} took about 3.0 s here for a batch job's 250 rows, ${Math.round(300_000 / timeout / 1000)}% of its ${timeout} s timeout (and a Lambda has less CPU than this machine): batches it does not answer in time are answered without it. Give it a longer "timeoutSeconds" in the manifest (at least 12 s), or expect degraded batch rows`,
    );
  });

  it('runs as npx fanout models check, with a non-zero exit on a mismatch', async () => {
    const models = modelsCopy();
    const doc = JSON.parse(read(join(models, 'manifest.json')));
    doc.models.find((m: { id: string }) => m.id === 'bc-logreg').input = 'float_input';
    writeFileSync(join(models, 'manifest.json'), JSON.stringify(doc, null, 2));
    const run = await fanout(['models', 'check', '--manifest', join(models, 'manifest.json')]);
    expect(run.code).toBe(1);
    expect(run.output).toContain(
      `NOT READY  bc-logreg: input "float_input" not in the model breast-cancer/logreg.onnx (it has "input"): set "input": "input" in ${join(models, 'manifest.json')}`,
    );
  }, 60_000);
});

describe('fanout models arguments', () => {
  it.each([
    [['models', 'add', 'm.onnx', '--features', 'x', '--labels', 'y'], '--id is required'],
    [['models', 'add', '--id', 'x', '--features', 'x', '--labels', 'y'], 'missing <model.onnx>'],
    [['models', 'remove'], 'unknown command "models remove": use add or check'],
    [
      ['models', 'add', 'm.onnx', '--id', 'a', '--features', 'x', '--labels', 'y', '--weight', '2'],
      '--weight needs --ensemble',
    ],
    [
      [
        'models',
        'add',
        'm.onnx',
        '--id',
        'a',
        '--features',
        'x',
        '--labels',
        'y',
        '-e',
        'e',
        '--weight',
        '0',
      ],
      '--weight must be a positive number, got "0"',
    ],
  ])('rejects %j, saying what is wrong', (argv, message) => {
    expect(() => parseModelsArgs(argv, {})).toThrow(UsageError);
    expect(() => parseModelsArgs(argv, {})).toThrow(message);
  });

  it('reads the manifest from --manifest, else FANOUT_MANIFEST, else models/manifest.json', () => {
    expect(parseModelsArgs(['models', 'check'], {})).toEqual({
      command: 'check',
      manifest: 'models/manifest.json',
    });
    expect(parseModelsArgs(['models', 'check'], { FANOUT_MANIFEST: 'x.json' })).toMatchObject({
      manifest: 'x.json',
    });
    expect(
      parseModelsArgs(['models', 'check', '--manifest', 'y.json'], { FANOUT_MANIFEST: 'x.json' }),
    ).toMatchObject({ manifest: 'y.json' });
  });
});

/** Runs `npx fanout ...` (bin/fanout.js) as a user would. */
function fanout(argv: string[]): Promise<{ code: number | null; output: string }> {
  return spawned(process.execPath, [join(ROOT, 'bin/fanout.js'), ...argv], {});
}

/** Runs jest on some suites in a child process (the suites under test read FANOUT_TEST_MODELS_DIR). */
function jest(
  suites: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return spawned(
    process.execPath,
    [join(ROOT, 'node_modules/jest/bin/jest.js'), '--runInBand', '--verbose', ...suites],
    { ...env, NODE_OPTIONS: '--experimental-vm-modules' },
  );
}

function spawned(cmd: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; output: string }>((done) => {
    const child = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.once('exit', (code) => done({ code, output }));
  });
}
