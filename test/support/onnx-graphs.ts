import onnxProto from 'onnx-proto';
import type { Dim } from '../../functions/core/signature.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

/** A linear classifier: logits = x · weights + bias, probabilities = softmax(logits). */
export interface LinearModel {
  /** F rows of C weights. */
  weights: number[][];
  bias: number[];
}

/** How to lay out the graph around the linear model (defaults: fanout's own layout). */
export interface GraphLayout {
  /** Input name (default `input`); `float_input` is skl2onnx's. */
  input?: string;
  /** Element type of the input (default FLOAT; DOUBLE = 11). */
  inputType?: number;
  /** Input dims (default [`N`, F]); null is an unnamed dynamic dimension. */
  inputDims?: Dim[];
  /** Name of the probability output (default `probabilities`). */
  output?: string;
  /** Output dims as declared (default [`N`, C]). */
  outputDims?: Dim[];
  /** Also output an int64 `label` [N], listed first, as skl2onnx does. */
  label?: boolean;
  /** Output the probabilities through a ZipMap (`output_probability`, a sequence of maps) only. */
  zipmap?: boolean;
  /** A second input the graph adds to the features (a model fanout cannot feed). */
  extraInput?: string;
  /** List the weights among the graph inputs too, as older exporters did. */
  initializersAsInputs?: boolean;
  /** Leave the softmax out: the output is the logits, as a PyTorch export without it gives. */
  noSoftmax?: boolean;
}

const tensor = (name: string, dims: number[], values: number[]) =>
  onnx.TensorProto.create({ name, dataType: FLOAT, dims, floatData: values });

const valueInfo = (name: string, elemType: number, dims: Dim[] | undefined) =>
  onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        ...(dims
          ? {
              shape: {
                dim: dims.map((d) =>
                  typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {},
                ),
              },
            }
          : {}),
      },
    },
  });

const attr = (name: string, i: number) =>
  onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });

/**
 * Writes a linear softmax classifier as an ONNX model (opset 15), laid out as asked: fanout's
 * layout, skl2onnx's (`float_input`; `label` then `probabilities` or a ZipMap'd
 * `output_probability`), or a broken one (wrong names, types or shapes) for the start check.
 */
export function linearOnnx(model: LinearModel, layout: GraphLayout = {}): Uint8Array {
  const F = model.weights.length;
  const C = model.bias.length;
  const input = layout.input ?? 'input';
  const probs = layout.zipmap ? 'probability_tensor' : (layout.output ?? 'probabilities');
  const nodes = [
    onnx.NodeProto.create({ opType: 'MatMul', input: [input, 'W'], output: ['xw'] }),
    onnx.NodeProto.create({ opType: 'Add', input: ['xw', 'B'], output: ['logits'] }),
  ];
  let logits = 'logits';
  if (layout.extraInput) {
    nodes.push(
      onnx.NodeProto.create({ opType: 'Add', input: ['logits', layout.extraInput], output: ['shifted'] }),
    );
    logits = 'shifted';
  }
  nodes.push(
    layout.noSoftmax
      ? onnx.NodeProto.create({ opType: 'Identity', input: [logits], output: [probs] })
      : onnx.NodeProto.create({
          opType: 'Softmax',
          input: [logits],
          output: [probs],
          attribute: [attr('axis', 1)],
        }),
  );
  const outputs = [];
  if (layout.label) {
    nodes.push(
      onnx.NodeProto.create({
        opType: 'ArgMax',
        input: [probs],
        output: ['label'],
        attribute: [attr('axis', 1), attr('keepdims', 0)],
      }),
    );
    outputs.push(valueInfo('label', INT64, ['N']));
  }
  if (layout.zipmap) {
    nodes.push(
      onnx.NodeProto.create({
        opType: 'ZipMap',
        domain: 'ai.onnx.ml',
        input: [probs],
        output: ['output_probability'],
        attribute: [
          onnx.AttributeProto.create({
            name: 'classlabels_int64s',
            type: onnx.AttributeProto.AttributeType.INTS,
            ints: model.bias.map((_, i) => i),
          }),
        ],
      }),
    );
    outputs.push(
      onnx.ValueInfoProto.create({
        name: 'output_probability',
        type: {
          sequenceType: {
            elemType: { mapType: { keyType: INT64, valueType: { tensorType: { elemType: FLOAT } } } },
          },
        },
      }),
    );
  } else {
    outputs.push(valueInfo(probs, FLOAT, layout.outputDims ?? ['N', C]));
  }
  const initializer = [tensor('W', [F, C], model.weights.flat()), tensor('B', [C], model.bias)];
  const inputs = [valueInfo(input, layout.inputType ?? FLOAT, layout.inputDims ?? ['N', F])];
  if (layout.extraInput) inputs.push(valueInfo(layout.extraInput, FLOAT, ['N', C]));
  if (layout.initializersAsInputs) inputs.push(valueInfo('W', FLOAT, [F, C]), valueInfo('B', FLOAT, [C]));
  const graph = onnx.GraphProto.create({
    name: 'linear',
    node: nodes,
    initializer,
    input: inputs,
    output: outputs,
  });
  const opsetImport = [{ domain: '', version: 15 }];
  if (layout.zipmap) opsetImport.push({ domain: 'ai.onnx.ml', version: 3 });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({ irVersion: 8, producerName: 'fanout-tests', opsetImport, graph }),
  ).finish();
}

/**
 * Fits a linear classifier on real rows in a few lines: a Gaussian model per class with one shared
 * diagonal covariance (linear discriminant analysis with a diagonal covariance). Its logits are
 * linear in x, so it is exactly a {@link LinearModel}.
 */
export function fitDiagonalLda(
  rows: readonly number[][],
  targets: readonly number[],
  classes: number,
): LinearModel {
  const F = (rows[0] as number[]).length;
  const means = Array.from({ length: classes }, () => new Array<number>(F).fill(0));
  const counts = new Array<number>(classes).fill(0);
  rows.forEach((r, i) => {
    const c = targets[i] as number;
    counts[c] = (counts[c] as number) + 1;
    r.forEach((v, j) => {
      (means[c] as number[])[j] = ((means[c] as number[])[j] as number) + v;
    });
  });
  means.forEach((m, c) => {
    for (let j = 0; j < F; j++) m[j] = (m[j] as number) / (counts[c] as number);
  });
  const variance = new Array<number>(F).fill(0);
  rows.forEach((r, i) => {
    const m = means[targets[i] as number] as number[];
    r.forEach((v, j) => {
      variance[j] = (variance[j] as number) + (v - (m[j] as number)) ** 2;
    });
  });
  const sigma2 = variance.map((v) => v / (rows.length - classes) + 1e-9);
  const weights = Array.from({ length: F }, (_, j) =>
    means.map((m) => (m[j] as number) / (sigma2[j] as number)),
  );
  const bias = means.map(
    (m, c) =>
      -0.5 * m.reduce((sum, v, j) => sum + (v * v) / (sigma2[j] as number), 0) +
      Math.log((counts[c] as number) / rows.length),
  );
  return { weights, bias };
}
