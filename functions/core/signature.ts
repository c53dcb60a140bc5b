/**
 * The signature check of an ONNX member: does the graph take the manifest's features and give
 * its labels' probabilities? Pure: the graph's inputs and outputs come in as a small description
 * that adapters read from the file (functions/adapters/onnx-file.ts) or from an onnxruntime
 * session (functions/adapters/onnx-scorer.ts), so both agree and neither is needed here.
 */

/** One dimension: a size, a symbolic name (`N`, `batch_size`), or null for an unnamed dynamic one. */
export type Dim = number | string | null;

/** A graph input or output. `type` is the element type of a tensor (`float32`, `int64`, ...). */
export interface ValueInfo {
  name: string;
  /** False for a sequence or a map (skl2onnx's ZipMap output is a sequence of maps). */
  tensor: boolean;
  type?: string;
  /** Undefined when the graph does not say (then only a run can tell). */
  dims?: Dim[];
}

/** A graph's inputs (initializers left out) and outputs, in graph order. */
export interface ModelSignature {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

/** What the check needs of a manifest entry; `input`/`output` unset means "detect". */
export interface SignatureSpec {
  id: string;
  /** The file as the manifest names it, for messages (`breast-cancer/lda.onnx`). */
  file: string;
  features: readonly string[];
  labels: readonly string[];
  input?: string;
  output?: string;
  /** Names of the shared sets the entry uses, for messages (`feature set "breast-cancer"`). */
  featureSet?: string;
  labelSet?: string;
}

/** Passed: the names to feed and fetch. Failed: one line that names the model and what to change. */
export type SignatureCheck =
  | { ok: true; input: string; output: string; ignored: string[] }
  | { ok: false; reason: string };

/** Output names common exporters give a probability tensor, in order of preference. */
export const PROBABILITY_OUTPUTS = ['probabilities', 'output_probability'] as const;

/** Shows dims as `[N, 30]` (an unnamed dynamic dimension as `?`). */
export function showDims(dims: readonly Dim[] | undefined): string {
  if (!dims) return '[unknown shape]';
  return `[${dims.map((d) => (d === null || d === '' ? '?' : String(d))).join(', ')}]`;
}

const names = (list: readonly ValueInfo[]) => list.map((v) => `"${v.name}"`).join(', ');
const isFloat = (v: ValueInfo) => v.tensor && v.type === 'float32';
/** The batch dimension: dynamic (named or not), or unknown. A fixed size would refuse other batches. */
const dynamicBatch = (d: Dim | undefined) => d === undefined || d === null || typeof d === 'string';

/**
 * Checks a graph against its manifest entry and picks the tensors to feed and fetch.
 *
 * Input: the manifest's `input` if set, else the graph's only input; it must be float32
 * `[N, F]` with N dynamic and F the number of features. Output: the manifest's `output` if set,
 * else the first of `probabilities`, `output_probability` that is a tensor, else the only float32
 * output of rank 2 (an extra `label` output, as skl2onnx adds, is ignored); it must be float32
 * `[N, C]` with C the number of labels. Each failure is one line naming the model, the file, the
 * manifest field and both values, e.g. `bc-lda: input "input" not in the model breast-cancer/lda.onnx
 * (it has "float_input"): set "input": "float_input" in models/manifest.json`.
 */
export function checkSignature(spec: SignatureSpec, sig: ModelSignature, manifest: string): SignatureCheck {
  const fail = (what: string): SignatureCheck => ({ ok: false, reason: `${spec.id}: ${what}` });
  const where = `the model ${spec.file}`;
  const set = (field: string, value: string) => `set "${field}": "${value}" in ${manifest}`;

  // Input.
  let input: ValueInfo | undefined;
  if (spec.input !== undefined) {
    input = sig.inputs.find((v) => v.name === spec.input);
    if (!input) {
      const only = sig.inputs.length === 1 ? (sig.inputs[0] as ValueInfo) : undefined;
      return fail(
        `input "${spec.input}" not in ${where} (it has ${names(sig.inputs) || 'no inputs'})` +
          (only ? `: ${set('input', only.name)}` : ''),
      );
    }
  } else if (sig.inputs.length === 1) {
    input = sig.inputs[0] as ValueInfo;
  } else {
    return fail(
      sig.inputs.length === 0
        ? `${where} has no inputs`
        : `${where} has ${sig.inputs.length} inputs (${names(sig.inputs)}); fanout feeds one float32 [N, ${spec.features.length}] tensor: re-export the model with one input`,
    );
  }
  if (sig.inputs.length > 1) {
    const others = sig.inputs.filter((v) => v !== input);
    return fail(
      `${where} also needs the inputs ${names(others)}; fanout feeds only "${input.name}": re-export the model with one input`,
    );
  }
  const F = spec.features.length;
  const features = `the manifest's ${spec.featureSet ? `feature set "${spec.featureSet}"` : 'features'}`;
  if (!input.tensor)
    return fail(`input "${input.name}" of ${where} is not a tensor; fanout feeds float32 [N, ${F}]`);
  if (input.type !== 'float32') {
    return fail(
      `input "${input.name}" of ${where} takes ${input.type ?? 'an unknown type'}; fanout feeds float32 [N, ${F}]: re-export the model with a float input`,
    );
  }
  if (input.dims) {
    if (input.dims.length !== 2) {
      return fail(
        `input "${input.name}" of ${where} has shape ${showDims(input.dims)}; fanout feeds [N, ${F}]`,
      );
    }
    const width = input.dims[1];
    if (typeof width === 'number' && width !== F) {
      return fail(
        `input "${input.name}" of ${where} takes ${width} features (shape ${showDims(input.dims)}), ${features} has ${F}: fix "features" in ${manifest} or re-export the model`,
      );
    }
    if (!dynamicBatch(input.dims[0])) {
      return fail(
        `input "${input.name}" of ${where} has a fixed batch size (shape ${showDims(input.dims)}): re-export it with a dynamic first dimension`,
      );
    }
  }

  // Output.
  const C = spec.labels.length;
  const labels = `the manifest's ${spec.labelSet ? `label set "${spec.labelSet}"` : 'labels'}`;
  let output: ValueInfo | undefined;
  if (spec.output !== undefined) {
    output = sig.outputs.find((v) => v.name === spec.output);
    if (!output) {
      const guess = detectOutput(sig.outputs);
      return fail(
        `output "${spec.output}" not in ${where} (it has ${names(sig.outputs) || 'no outputs'})` +
          (guess ? `: ${set('output', guess.name)}` : ''),
      );
    }
  } else {
    output = detectOutput(sig.outputs);
    if (!output) {
      const zipmap = sig.outputs.find(
        (v) => !v.tensor && (PROBABILITY_OUTPUTS as readonly string[]).includes(v.name),
      );
      if (zipmap) {
        return fail(
          `output "${zipmap.name}" of ${where} is a list of per-row maps (skl2onnx's ZipMap), not a tensor: export with options={id(model): {"zipmap": False}}`,
        );
      }
      return fail(
        `no probability output found in ${where} (it has ${names(sig.outputs) || 'no outputs'}); fanout reads a float32 [N, ${C}] tensor: ${set('output', '<its name>')}`,
      );
    }
  }
  if (!output.tensor) {
    return fail(
      `output "${output.name}" of ${where} is not a tensor (a ZipMap's per-row maps?); fanout reads float32 [N, ${C}]: export with ZipMap off`,
    );
  }
  if (output.type !== 'float32') {
    return fail(
      `output "${output.name}" of ${where} gives ${output.type ?? 'an unknown type'}; fanout reads float32 [N, ${C}] probabilities`,
    );
  }
  if (output.dims) {
    if (output.dims.length !== 2) {
      return fail(
        `output "${output.name}" of ${where} has shape ${showDims(output.dims)}; fanout reads [N, ${C}] (one probability per label)`,
      );
    }
    const width = output.dims[1];
    if (typeof width === 'number' && width !== C) {
      return fail(
        `output "${output.name}" of ${where} gives ${width} classes (shape ${showDims(output.dims)}), ${labels} has ${C}: fix "labels" in ${manifest} or re-export the model`,
      );
    }
  }
  return {
    ok: true,
    input: input.name,
    output: output.name,
    ignored: sig.outputs.filter((v) => v !== output).map((v) => v.name),
  };
}

/** The probability output of a graph when none is named: see {@link checkSignature}. */
function detectOutput(outputs: readonly ValueInfo[]): ValueInfo | undefined {
  for (const name of PROBABILITY_OUTPUTS) {
    const found = outputs.find((v) => v.name === name && v.tensor);
    if (found) return found;
  }
  const candidates = outputs.filter((v) => isFloat(v) && (v.dims === undefined || v.dims.length === 2));
  return candidates.length === 1 ? candidates[0] : undefined;
}
