import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { ManifestError, NotFoundError } from './errors.js';
import {
  formatPath,
  manifestSchema,
  type RawManifest,
  type RawModel,
  type StackingModel,
  type StrategyName,
  stackingSchema,
} from './manifest-schema.js';

export type { StackingModel, StrategyName } from './manifest-schema.js';

interface ModelBase {
  id: string;
  version: string;
  description?: string;
  features: string[];
  labels: string[];
  /** The shared sets `features` and `labels` name, when they name one (for messages). */
  featureSet?: string;
  labelSet?: string;
  timeoutSeconds: number;
  memoryMB: number;
}

/**
 * An ONNX model run in-process by the runner. `file` is an absolute path, `manifestFile` the path
 * as the manifest writes it. `input`/`output` unset: detected from the graph (signature.ts).
 */
export interface OnnxModelSpec extends ModelBase {
  kind: 'onnx';
  file: string;
  manifestFile: string;
  input?: string;
  output?: string;
}

/** A model served by a SageMaker real-time endpoint. */
export interface SageMakerModelSpec extends ModelBase {
  kind: 'sagemaker';
  endpoint: Extract<RawModel, { kind: 'sagemaker' }>['endpoint'];
  localFile?: string;
  manifestLocalFile?: string;
}

export type ModelSpec = OnnxModelSpec | SageMakerModelSpec;

/** An ensemble with its members resolved and its weights aligned to `members`. */
export interface EnsembleSpec {
  name: string;
  description?: string;
  members: string[];
  weights: number[];
  strategy: StrategyName;
  quorum: number;
  features: string[];
  labels: string[];
  stacking?: StackingModel;
  /** Present when repeated rows are answered from the result cache (opt-in per ensemble). */
  cache?: { ttlSeconds: number };
  /** Models run with every request and recorded with `shadow: true`; never counted. */
  shadow?: string[];
  /** Another ensemble serving `percent` of this one's synchronous traffic. */
  canary?: Canary;
}

/** A canary: `percent` (0..100) of an ensemble's synchronous requests go to `ensemble`. */
export interface Canary {
  ensemble: string;
  percent: number;
}

/** The validated manifest: every reference resolved, every cross-field rule checked. */
export interface Manifest {
  path: string;
  models: ReadonlyMap<string, ModelSpec>;
  ensembles: ReadonlyMap<string, EnsembleSpec>;
}

const cache = new Map<string, Manifest>();

/**
 * Loads and validates a manifest once per process. Every error names the file and the field, e.g.
 * `models/manifest.json: ensembles[0].members[2]: unknown model "bc-knn"`.
 */
export function loadManifest(path: string): Manifest {
  const absolute = resolve(path);
  const cached = cache.get(absolute);
  if (cached) return cached;
  const manifest = parseManifest(readJson(absolute, path), absolute, path);
  cache.set(absolute, manifest);
  return manifest;
}

/** Validates an already-parsed manifest document; `path` is used for relative files and messages. */
export function parseManifest(doc: unknown, absolutePath: string, shownPath = absolutePath): Manifest {
  const fail = (field: string, message: string): never => {
    throw new ManifestError(`${shownPath}: ${field}: ${message}`, { details: { file: shownPath, field } });
  };
  // jitless: zod's JIT compiles an object schema's parser (`new Function`) on its first parse to
  // speed up later ones; a manifest is parsed once per process, so it only costs time (the
  // runner's cold start: 17 ms with it, 6.5 without, measured interleaved in fresh processes).
  const parsed = manifestSchema.safeParse(doc, { jitless: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(issue ? formatPath(issue.path) || '(root)' : '(root)', issue?.message ?? 'invalid');
  }
  const raw: RawManifest = parsed.data;
  const dir = dirname(absolutePath);

  const resolveNames = (
    value: string | string[],
    sets: Record<string, string[]>,
    field: string,
    setKey: string,
  ): string[] => {
    // Own properties only: a set named like an Object builtin (`toString`) must not resolve.
    const names = typeof value === 'string' ? (Object.hasOwn(sets, value) ? sets[value] : undefined) : value;
    if (!names) return fail(field, `unknown ${setKey} "${value as string}"`);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) return fail(field, `duplicate name "${dup}"`);
    return names;
  };

  const models = new Map<string, ModelSpec>();
  raw.models.forEach((m, i) => {
    if (models.has(m.id)) fail(`models[${i}].id`, `duplicate model id "${m.id}"`);
    const features = resolveNames(m.features, raw.featureSets, `models[${i}].features`, 'featureSets entry');
    const labels = resolveNames(m.labels, raw.labelSets, `models[${i}].labels`, 'labelSets entry');
    if (labels.length < 2) fail(`models[${i}].labels`, 'needs at least two labels');
    const base = {
      id: m.id,
      version: m.version,
      description: m.description,
      features,
      labels,
      ...(typeof m.features === 'string' ? { featureSet: m.features } : {}),
      ...(typeof m.labels === 'string' ? { labelSet: m.labels } : {}),
      timeoutSeconds: m.timeoutSeconds,
      memoryMB: m.memoryMB,
    };
    if (m.kind === 'onnx') {
      models.set(m.id, {
        ...base,
        kind: 'onnx',
        file: resolve(dir, m.file),
        manifestFile: m.file,
        ...(m.input === undefined ? {} : { input: m.input }),
        ...(m.output === undefined ? {} : { output: m.output }),
      });
    } else {
      models.set(m.id, {
        ...base,
        kind: 'sagemaker',
        endpoint: m.endpoint,
        localFile: m.localFile === undefined ? undefined : resolve(dir, m.localFile),
        ...(m.localFile === undefined ? {} : { manifestLocalFile: m.localFile }),
      });
    }
  });

  const ensembles = new Map<string, EnsembleSpec>();
  raw.ensembles.forEach((e, i) => {
    const at = `ensembles[${i}]`;
    if (ensembles.has(e.name)) fail(`${at}.name`, `duplicate ensemble name "${e.name}"`);
    if (models.has(e.name)) fail(`${at}.name`, `"${e.name}" is also a model id; names must be unique`);
    const specs = e.members.map((id, j) => {
      if (e.members.indexOf(id) !== j) fail(`${at}.members[${j}]`, `duplicate member "${id}"`);
      return models.get(id) ?? fail(`${at}.members[${j}]`, `unknown model "${id}"`);
    });
    const first = specs[0] as ModelSpec;
    specs.forEach((s, j) => {
      if (!sameNames(s.features, first.features)) {
        fail(
          `${at}.members[${j}]`,
          `"${s.id}" has other features than "${first.id}" (names and order must match)`,
        );
      }
      if (!sameNames(s.labels, first.labels)) {
        fail(
          `${at}.members[${j}]`,
          `"${s.id}" has other labels than "${first.id}" (names and order must match)`,
        );
      }
    });
    const shadow = (e.shadow ?? []).map((id, j) => {
      const field = `${at}.shadow[${j}]`;
      if ((e.shadow ?? []).indexOf(id) !== j) fail(field, `duplicate shadow member "${id}"`);
      if (e.members.includes(id)) {
        fail(field, `"${id}" is also a counted member; a model is either counted or a shadow`);
      }
      const s = models.get(id) ?? fail(field, `unknown model "${id}"`);
      if (!sameNames(s.features, first.features)) {
        fail(field, `"${id}" has other features than the members (names and order must match)`);
      }
      if (!sameNames(s.labels, first.labels)) {
        fail(field, `"${id}" has other labels than the members (names and order must match)`);
      }
      return id;
    });
    for (const key of Object.keys(e.weights ?? {})) {
      if (shadow.includes(key)) {
        fail(
          `${at}.weights.${key}`,
          `"${key}" is a shadow member; shadows are never counted, so have no weight`,
        );
      }
      if (!e.members.includes(key)) fail(`${at}.weights.${key}`, `"${key}" is not a member`);
    }
    if (e.strategy === 'weighted-mean' && !e.weights)
      fail(`${at}.weights`, 'required by strategy weighted-mean');
    const weights = e.members.map((id) =>
      e.weights && Object.hasOwn(e.weights, id) ? (e.weights[id] as number) : 1,
    );
    const quorum = e.quorum ?? Math.floor(e.members.length / 2) + 1;
    if (quorum > e.members.length) {
      fail(`${at}.quorum`, `${quorum} exceeds the ${e.members.length} members`);
    }
    let stacking: StackingModel | undefined;
    if (e.strategy === 'stacking') {
      const file = e.stacking?.file ?? fail(`${at}.stacking`, 'required by strategy stacking');
      stacking = loadStacking(resolve(dir, file), file, e.members, first.labels, (m) =>
        fail(`${at}.stacking.file`, m),
      );
    }
    ensembles.set(e.name, {
      name: e.name,
      description: e.description,
      members: e.members,
      weights,
      strategy: e.strategy,
      quorum,
      features: first.features,
      labels: first.labels,
      stacking,
      ...(shadow.length ? { shadow } : {}),
      ...(e.canary ? { canary: { ensemble: e.canary.ensemble, percent: e.canary.percent } } : {}),
      ...(e.cache ? { cache: { ttlSeconds: e.cache.ttlSeconds } } : {}),
    });
  });
  raw.ensembles.forEach((e, i) => {
    checkCanary(ensembles, e.name, `ensembles[${i}].canary`, fail);
  });

  return { path: absolutePath, models, ensembles };
}

const sameNames = (a: readonly string[], b: readonly string[]) => a.join('\u0000') === b.join('\u0000');

/**
 * A canary must name another ensemble that takes the same rows and answers with the same labels,
 * and that has no canary of its own: a chain (a -> b -> c) or a cycle (a -> b -> a) would make
 * "who served" depend on more than one split, and a cycle could bounce forever.
 */
function checkCanary(
  ensembles: ReadonlyMap<string, EnsembleSpec>,
  name: string,
  field: string,
  fail: (field: string, message: string) => never,
): void {
  const primary = ensembles.get(name) as EnsembleSpec;
  const canary = primary.canary;
  if (!canary) return;
  const at = `${field}.ensemble`;
  if (canary.ensemble === name) fail(at, `"${name}" cannot be its own canary`);
  const target =
    ensembles.get(canary.ensemble) ??
    fail(at, `unknown ensemble "${canary.ensemble}"; ensembles: ${[...ensembles.keys()].join(', ')}`);
  if (!sameNames(target.features, primary.features)) {
    fail(at, `"${target.name}" takes other features than "${name}" (names and order must match)`);
  }
  if (!sameNames(target.labels, primary.labels)) {
    fail(at, `"${target.name}" answers with other labels than "${name}" (names and order must match)`);
  }
  if (target.canary) {
    fail(
      at,
      `"${target.name}" has a canary of its own ("${target.canary.ensemble}"); canaries do not chain: promote or remove one first`,
    );
  }
}

function loadStacking(
  file: string,
  shown: string,
  members: string[],
  labels: string[],
  fail: (message: string) => never,
): StackingModel {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return fail(`cannot read ${shown}: ${(err as Error).message}`);
  }
  const parsed = stackingSchema.safeParse(doc, { jitless: true }); // parsed once (see parseManifest)
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(`${shown}: ${issue ? formatPath(issue.path) : ''}: ${issue?.message}`);
  }
  const meta = parsed.data;
  if (meta.members.join() !== members.join()) {
    fail(
      `${shown}: was trained on members [${meta.members.join(', ')}], the ensemble lists [${members.join(', ')}]`,
    );
  }
  if (meta.labels.join() !== labels.join()) fail(`${shown}: labels do not match the members' labels`);
  const width = members.length * labels.length;
  if (meta.coef.length !== labels.length || meta.coef.some((row) => row.length !== width)) {
    fail(`${shown}: coef must be ${labels.length} rows of ${width} numbers`);
  }
  if (meta.intercept.length !== labels.length) fail(`${shown}: intercept must have ${labels.length} numbers`);
  if (meta.featureMeans.length !== width) fail(`${shown}: featureMeans must have ${width} numbers`);
  return meta;
}

function readJson(absolute: string, shown: string): unknown {
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new ManifestError(`${shown}: cannot read the manifest: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ManifestError(`${shown}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** The ensemble named `name`, or a NotFoundError listing what is served. */
export function getEnsemble(manifest: Manifest, name: string): EnsembleSpec {
  const found = manifest.ensembles.get(name);
  if (!found) {
    throw new NotFoundError(
      `unknown ensemble "${name}"; served: ${[...manifest.ensembles.keys()].join(', ')}`,
    );
  }
  return found;
}

/** The model with id `id`, or a NotFoundError. */
export function getModel(manifest: Manifest, id: string): ModelSpec {
  const found = manifest.models.get(id);
  if (!found) throw new NotFoundError(`unknown model "${id}"`);
  return found;
}

/**
 * The ONNX file behind a model when there is one here: an ONNX member itself, or a SageMaker
 * member's bundled `localFile` (what the local SageMaker-compatible endpoint serves).
 */
export function localOnnx(model: ModelSpec): OnnxModelSpec | undefined {
  if (model.kind === 'onnx') return model;
  if (!model.localFile) return undefined;
  const { endpoint: _endpoint, localFile, manifestLocalFile, ...rest } = model;
  return { ...rest, kind: 'onnx', file: localFile, manifestFile: manifestLocalFile ?? localFile };
}

/** A path for messages: relative to the working folder when it is inside it (as on Lambda). */
export function shownPath(absolute: string, cwd = process.cwd()): string {
  const rel = relative(cwd, absolute);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : absolute;
}
