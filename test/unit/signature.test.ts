import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import { checkOnnxModels } from '../../functions/adapters/model-checks.js';
import { OnnxFileError, parseOnnx, readOnnxFile } from '../../functions/adapters/onnx-file.js';
import { sessionSignature } from '../../functions/adapters/onnx-scorer.js';
import { loadManifest, localOnnx, type OnnxModelSpec } from '../../functions/core/manifest.js';
import {
  checkSignature,
  type ModelSignature,
  type SignatureSpec,
  type ValueInfo,
} from '../../functions/core/signature.js';
import { MODELS_DIR } from '../models/data.js';
import { type GraphLayout, linearOnnx } from '../support/onnx-graphs.js';

const manifest = loadManifest(join(MODELS_DIR, 'manifest.json'));
const onnxModels = [...manifest.models.values()]
  .map(localOnnx)
  .filter((m): m is OnnxModelSpec => m !== undefined);

const F = 30;
const labels = ['malignant', 'benign'];
const spec: SignatureSpec = {
  id: 'bc-lda',
  file: 'breast-cancer/lda.onnx',
  features: Array.from({ length: F }, (_, i) => `f${i}`),
  labels,
  featureSet: 'breast-cancer',
  labelSet: 'breast-cancer',
};
const MANIFEST = 'models/manifest.json';
const tensor = (name: string, dims: ValueInfo['dims'], type = 'float32'): ValueInfo => ({
  name,
  tensor: true,
  type,
  dims,
});
const sig = (inputs: ValueInfo[], outputs: ValueInfo[]): ModelSignature => ({ inputs, outputs });
const fanoutLayout = sig([tensor('input', ['N', F])], [tensor('probabilities', ['N', 2])]);
const skl2onnxLayout = sig(
  [tensor('float_input', [null, F])],
  [tensor('label', [null], 'int64'), tensor('probabilities', [null, 2])],
);
const reason = (s: ModelSignature, overrides: Partial<SignatureSpec> = {}) => {
  const check = checkSignature({ ...spec, ...overrides }, s, MANIFEST);
  return check.ok ? `passed: ${check.input} -> ${check.output}` : check.reason;
};

describe('checkSignature', () => {
  it("detects fanout's layout, skl2onnx's (ignoring its label output) and a ZipMap-free output_probability", () => {
    expect(checkSignature(spec, fanoutLayout, MANIFEST)).toEqual({
      ok: true,
      input: 'input',
      output: 'probabilities',
      ignored: [],
    });
    expect(checkSignature(spec, skl2onnxLayout, MANIFEST)).toEqual({
      ok: true,
      input: 'float_input',
      output: 'probabilities',
      ignored: ['label'],
    });
    const zipmapOff = sig(
      [tensor('float_input', [null, F])],
      [tensor('label', [null], 'int64'), tensor('output_probability', [null, 2])],
    );
    expect(reason(zipmapOff)).toBe('passed: float_input -> output_probability');
    // Any other name: the only float [N, C] output.
    const torch = sig([tensor('x', ['batch', F])], [tensor('softmax_out', ['batch', 2])]);
    expect(reason(torch)).toBe('passed: x -> softmax_out');
  });

  it('lets the manifest name the input and the output', () => {
    const two = sig(
      [tensor('float_input', [null, F])],
      [tensor('scores', [null, 2]), tensor('calibrated', [null, 2])],
    );
    expect(reason(two)).toMatch(/^bc-lda: no probability output found/);
    expect(reason(two, { input: 'float_input', output: 'calibrated' })).toBe(
      'passed: float_input -> calibrated',
    );
  });

  it('names the model, the file, the manifest field and both values when the input name is wrong', () => {
    expect(reason(skl2onnxLayout, { input: 'input' })).toBe(
      'bc-lda: input "input" not in the model breast-cancer/lda.onnx (it has "float_input"): set "input": "float_input" in models/manifest.json',
    );
    expect(reason(fanoutLayout, { output: 'output_probability' })).toBe(
      'bc-lda: output "output_probability" not in the model breast-cancer/lda.onnx (it has "probabilities"): set "output": "probabilities" in models/manifest.json',
    );
  });

  it('reports a model that takes another number of features than the feature set has', () => {
    expect(reason(sig([tensor('float_input', [null, 29])], skl2onnxLayout.outputs))).toBe(
      'bc-lda: input "float_input" of the model breast-cancer/lda.onnx takes 29 features (shape [?, 29]), the manifest\'s feature set "breast-cancer" has 30: fix "features" in models/manifest.json or re-export the model',
    );
  });

  it('reports a model that gives another number of classes than the label set has', () => {
    expect(reason(sig(fanoutLayout.inputs, [tensor('probabilities', ['N', 3])]))).toBe(
      'bc-lda: output "probabilities" of the model breast-cancer/lda.onnx gives 3 classes (shape [N, 3]), the manifest\'s label set "breast-cancer" has 2: fix "labels" in models/manifest.json or re-export the model',
    );
  });

  it('explains a ZipMap output (a list of maps) and how to export without it', () => {
    const zipmap = sig(
      [tensor('float_input', [null, F])],
      [tensor('label', [null], 'int64'), { name: 'output_probability', tensor: false }],
    );
    expect(reason(zipmap)).toBe(
      'bc-lda: output "output_probability" of the model breast-cancer/lda.onnx is a list of per-row maps (skl2onnx\'s ZipMap), not a tensor: export with options={id(model): {"zipmap": False}}',
    );
  });

  it('refuses inputs fanout cannot feed: double, another rank, a fixed batch, a second input', () => {
    expect(reason(sig([tensor('input', ['N', F], 'float64')], fanoutLayout.outputs))).toBe(
      'bc-lda: input "input" of the model breast-cancer/lda.onnx takes float64; fanout feeds float32 [N, 30]: re-export the model with a float input',
    );
    expect(reason(sig([tensor('input', ['N', 5, 6])], fanoutLayout.outputs))).toBe(
      'bc-lda: input "input" of the model breast-cancer/lda.onnx has shape [N, 5, 6]; fanout feeds [N, 30]',
    );
    expect(reason(sig([tensor('input', [1, F])], fanoutLayout.outputs))).toBe(
      'bc-lda: input "input" of the model breast-cancer/lda.onnx has a fixed batch size (shape [1, 30]): re-export it with a dynamic first dimension',
    );
    expect(
      reason(sig([tensor('input', ['N', F]), tensor('mask', ['N', F])], fanoutLayout.outputs), {
        input: 'input',
      }),
    ).toBe(
      'bc-lda: the model breast-cancer/lda.onnx also needs the inputs "mask"; fanout feeds only "input": re-export the model with one input',
    );
    expect(reason(sig([tensor('a', ['N', F]), tensor('b', ['N', F])], fanoutLayout.outputs))).toMatch(
      /^bc-lda: the model breast-cancer\/lda.onnx has 2 inputs \("a", "b"\); fanout feeds one float32 \[N, 30\] tensor/,
    );
  });

  it('refuses outputs fanout cannot read: int64 scores, a vector, double probabilities', () => {
    expect(reason(fanoutLayout, { output: 'probabilities' })).toBe('passed: input -> probabilities');
    expect(reason(sig(fanoutLayout.inputs, [tensor('probabilities', ['N', 2], 'float64')]))).toBe(
      'bc-lda: output "probabilities" of the model breast-cancer/lda.onnx gives float64; fanout reads float32 [N, 2] probabilities',
    );
    expect(reason(sig(fanoutLayout.inputs, [tensor('probabilities', ['N'])]))).toBe(
      'bc-lda: output "probabilities" of the model breast-cancer/lda.onnx has shape [N]; fanout reads [N, 2] (one probability per label)',
    );
    expect(reason(sig(fanoutLayout.inputs, [tensor('label', ['N'], 'int64')]))).toBe(
      'bc-lda: no probability output found in the model breast-cancer/lda.onnx (it has "label"); fanout reads a float32 [N, 2] tensor: set "output": "<its name>" in models/manifest.json',
    );
  });

  it('leaves dimensions the graph does not declare to the run', () => {
    const unknown = sig(
      [{ name: 'input', tensor: true, type: 'float32' }],
      [tensor('probabilities', undefined)],
    );
    expect(reason(unknown)).toBe('passed: input -> probabilities');
  });
});

describe('reading a signature from the file and from an onnxruntime session', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-signature-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(onnxModels.map((m) => [m.id, m] as const))('agree on the bundled model %s', async (_id, model) => {
    const fromFile = readOnnxFile(model.file).signature;
    const session = await InferenceSession.create(model.file);
    try {
      expect(fromFile).toEqual(sessionSignature(session));
    } finally {
      await session.release();
    }
    expect(checkSignature({ ...model, file: model.manifestFile }, fromFile, MANIFEST)).toMatchObject({
      ok: true,
    });
  });

  const weights = Array.from({ length: F }, (_, j) => [j / 100, -j / 100]);
  const layouts: [string, GraphLayout][] = [
    ['skl2onnx (label, then probabilities)', { input: 'float_input', label: true }],
    ['skl2onnx with a ZipMap', { input: 'float_input', label: true, zipmap: true }],
    ['weights listed among the inputs', { initializersAsInputs: true, inputDims: [null, F] }],
    ['a second input', { extraInput: 'offset' }],
    ['a double input', { inputType: 11 }],
  ];
  it.each(layouts)('agree on a graph made in the test: %s', async (_name, layout) => {
    const bytes = linearOnnx({ weights, bias: [0, 0] }, layout);
    const session = await InferenceSession.create(bytes).catch(() => undefined);
    // onnxruntime refuses a graph whose types do not check (the double input); the reader still reads it.
    if (session) {
      expect(parseOnnx(bytes).signature).toEqual(sessionSignature(session));
      await session.release();
    }
    expect(parseOnnx(bytes).opsets['ai.onnx']).toBe(15);
  });

  it('says a file is missing, unreadable or not ONNX, without loading a runtime', () => {
    const missing = (() => {
      try {
        return readOnnxFile(join(dir, 'nope.onnx'));
      } catch (err) {
        return err;
      }
    })();
    expect(missing).toBeInstanceOf(OnnxFileError);
    expect(missing).toMatchObject({ message: 'does not exist', missing: true });
    writeFileSync(join(dir, 'text.onnx'), 'this is not a protobuf');
    expect(() => readOnnxFile(join(dir, 'text.onnx'))).toThrow(/^is not an ONNX model \(/);
    const whole = linearOnnx({ weights, bias: [0, 0] });
    writeFileSync(join(dir, 'cut.onnx'), whole.subarray(0, whole.length - 9));
    expect(() => readOnnxFile(join(dir, 'cut.onnx'))).toThrow(/^is not an ONNX model \(/);
  });

  it('checks every ONNX member of a manifest, naming a missing file and a wrong layout', () => {
    const features = onnxModels[0]?.features as string[];
    writeFileSync(
      join(dir, 'short.onnx'),
      linearOnnx({ weights: weights.slice(1), bias: [0, 0] }, { input: 'float_input', label: true }),
    );
    writeFileSync(
      join(dir, 'skl.onnx'),
      linearOnnx({ weights, bias: [0, 0] }, { input: 'float_input', label: true }),
    );
    const doc = {
      featureSets: { bc: features },
      labelSets: { bc: labels },
      models: [
        { id: 'ok', kind: 'onnx', file: 'skl.onnx', version: '1', features: 'bc', labels: 'bc' },
        { id: 'short', kind: 'onnx', file: 'short.onnx', version: '1', features: 'bc', labels: 'bc' },
        { id: 'gone', kind: 'onnx', file: 'gone.onnx', version: '1', features: 'bc', labels: 'bc' },
      ],
      ensembles: [{ name: 'e', members: ['ok', 'short', 'gone'], strategy: 'soft-vote', quorum: 1 }],
    };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(doc));
    const checks = checkOnnxModels(loadManifest(join(dir, 'manifest.json')));
    const shown = join(dir, 'manifest.json');
    expect(
      Object.fromEntries([...checks].map(([id, c]) => [id, c.ok ? `${c.input} -> ${c.output}` : c.reason])),
    ).toEqual({
      ok: 'float_input -> probabilities',
      short: `short: input "float_input" of the model short.onnx takes 29 features (shape [N, 29]), the manifest's feature set "bc" has 30: fix "features" in ${shown} or re-export the model`,
      gone: `gone: model file gone.onnx does not exist: check "file" in ${shown}`,
    });
  });
});
