import type { PredictionRecord } from '../core/combine.js';
import { ValidationError } from '../core/errors.js';
import type { EnsembleSpec } from '../core/manifest.js';
import { UNCERTAINTY_COLUMNS, uncertaintyRow } from '../core/uncertainty.js';

const NUMERIC = new Set([
  'FP16',
  'FP32',
  'FP64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
]);
/** Outputs a request may ask for by name; `uncertainty` only when asked (FP32 [N, 4]). */
const OUTPUTS = ['probabilities', 'label', 'uncertainty'] as const;
const DEFAULT_OUTPUTS: OipRequest['outputs'] = ['probabilities', 'label'];

/** An Open Inference Protocol (KServe V2) request, decoded into rows and the outputs asked for. */
export interface OipRequest {
  id?: string;
  rows: unknown[];
  outputs: (typeof OUTPUTS)[number][];
}

/**
 * Decodes `{inputs: [{name, shape: [N, F], datatype, data}]}` into N rows of F values. `data` may
 * be flat (row-major) or nested; every mismatch names the field (`inputs[0].shape`, ...).
 */
export function decodeInferRequest(body: Record<string, unknown>, target: EnsembleSpec): OipRequest {
  const bad = (field: string, message: string): never => {
    throw new ValidationError(`${field}: ${message}`, { details: { field } });
  };
  const { inputs } = body;
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    return bad('inputs', `expected exactly one input tensor of shape [N, ${target.features.length}]`);
  }
  const input = inputs[0] as Record<string, unknown>;
  if (input === null || typeof input !== 'object') return bad('inputs[0]', 'expected an object');
  if (typeof input.name !== 'string') bad('inputs[0].name', 'expected a string');
  if (typeof input.datatype !== 'string' || !NUMERIC.has(input.datatype)) {
    bad(
      'inputs[0].datatype',
      `expected a numeric datatype such as FP32, got ${JSON.stringify(input.datatype)}`,
    );
  }
  const shape = input.shape;
  const width = target.features.length;
  if (
    !Array.isArray(shape) ||
    shape.length !== 2 ||
    !shape.every((d) => Number.isInteger(d) && d > 0) ||
    shape[1] !== width
  ) {
    bad('inputs[0].shape', `expected [N, ${width}] with N >= 1, got ${JSON.stringify(shape)}`);
  }
  const n = (shape as number[])[0] as number;
  const flat = Array.isArray(input.data)
    ? (input.data as unknown[]).flat(Infinity)
    : bad('inputs[0].data', 'expected an array');
  if (flat.length !== n * width) {
    bad('inputs[0].data', `expected ${n * width} values for shape [${n}, ${width}], got ${flat.length}`);
  }
  const rows: unknown[] = [];
  for (let i = 0; i < n; i++) rows.push(flat.slice(i * width, (i + 1) * width));
  let outputs: OipRequest['outputs'] = [...DEFAULT_OUTPUTS];
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) bad('outputs', 'expected an array of {name}');
    outputs = (body.outputs as unknown[]).map((o, i) => {
      const name = (o as { name?: unknown })?.name;
      if (!OUTPUTS.includes(name as never))
        bad(`outputs[${i}].name`, `expected one of ${OUTPUTS.join(', ')}`);
      return name as (typeof OUTPUTS)[number];
    });
  }
  if (body.id !== undefined && typeof body.id !== 'string') bad('id', 'expected a string');
  return { id: body.id as string | undefined, rows, outputs };
}

/**
 * Encodes a prediction record as an Open Inference Protocol response. `model_name` is the model
 * the request named; when its canary served, `parameters.ensemble` names the canary and
 * `model_version` is the canary's version.
 */
export function encodeInferResponse(
  record: PredictionRecord,
  target: EnsembleSpec,
  request: OipRequest,
  version: string,
) {
  const n = record.predictions.length;
  const all = {
    probabilities: {
      name: 'probabilities',
      datatype: 'FP32',
      shape: [n, target.labels.length],
      data: record.predictions.flatMap((p) => target.labels.map((l) => p.probabilities[l] as number)),
    },
    label: { name: 'label', datatype: 'BYTES', shape: [n], data: record.predictions.map((p) => p.label) },
    uncertainty: {
      name: 'uncertainty',
      datatype: 'FP32',
      shape: [n, UNCERTAINTY_COLUMNS.length],
      data: record.predictions.flatMap((p) => uncertaintyRow(p.uncertainty)),
      parameters: { columns: UNCERTAINTY_COLUMNS },
    },
  };
  return {
    model_name: target.name,
    model_version: version,
    ...(request.id === undefined ? {} : { id: request.id }),
    parameters: {
      prediction_id: record.id,
      ensemble: record.ensemble,
      degraded: record.degraded,
      members: record.members.map((m) => ({
        model: m.model,
        status: m.status,
        ...(m.shadow ? { shadow: true } : {}),
        ...(m.error ? { error: m.error } : {}),
      })),
    },
    outputs: request.outputs.map((o) => all[o]),
  };
}
