import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { OnnxFileError, type OnnxFileInfo, readOnnxFile } from '../functions/adapters/onnx-file.js';
import { OnnxScorer } from '../functions/adapters/onnx-scorer.js';
import { type Manifest, type OnnxModelSpec, parseManifest, shownPath } from '../functions/core/manifest.js';
import { DEFAULT_TIMEOUT_SECONDS } from '../functions/core/manifest-schema.js';
import { checkSignature, showDims } from '../functions/core/signature.js';
import { batchWaitSeconds, type DeploySettings, readDeploySettings } from '../local/deploy-settings.js';
import { type BundledDataset, bundledDatasetFor, type Dataset, readLabelledCsv } from './datasets.js';
import { type Doc, namedSet, readManifestDoc, SLUG } from './manifest-doc.js';
import { agreementLines, ensembleAgreement } from './model-agreement.js';
import { joinEnsemble } from './model-ensembles.js';
import { cardRow, dumps, upsertCardRow, upsertMetricsModel } from './model-files.js';
import { accuracy, columnOrderProblem, probabilitiesProblem, rocAuc } from './model-scores.js';
import { batchMsHere, batchTimeNote, timeoutNote } from './model-timeout.js';
import type { AddArgs } from './models-args.js';
import { ModelsError } from './models-error.js';

/** Where the command writes: `out` for results, `err` for progress and problems. */
export interface ModelsIo {
  out: (line: string) => void;
  err: (line: string) => void;
  now?: () => Date;
  /** Milliseconds for timing the model (performance.now by default; tests stand in a slow model). */
  clock?: () => number;
}

const GOLDEN_ROWS = 40;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const fixed = (v: number) => v.toFixed(4);

/**
 * `fanout models add`: checks a model against the manifest, scores it, and adds it with its hash,
 * model card row and golden file, so `npm test` stays green and the stack serves it. Nothing is
 * written unless every check passed. Resolves with the exit code.
 */
export async function addModel(args: AddArgs, io: ModelsIo): Promise<number> {
  const manifestPath = resolve(args.manifest);
  const shown = shownPath(manifestPath);
  const modelsDir = dirname(manifestPath);
  const doc = readManifestDoc(manifestPath);
  const current = parseManifest(structuredClone(doc), manifestPath, shown);

  if (!SLUG.test(args.id)) {
    throw new ModelsError(`--id "${args.id}": use lowercase letters, digits and dashes (at most 63)`);
  }
  if (current.ensembles.has(args.id)) {
    throw new ModelsError(
      `--id "${args.id}" is the name of an ensemble; model ids and ensemble names must differ`,
    );
  }
  const features = namedSet(doc.featureSets, args.features, '--features', 'featureSets', shown);
  const labels = namedSet(doc.labelSets, args.labels, '--labels', 'labelSets', shown);

  // The file and its signature.
  const source = resolve(args.file);
  let info: OnnxFileInfo;
  try {
    info = readOnnxFile(source);
  } catch (err) {
    if (err instanceof OnnxFileError) throw new ModelsError(`${args.file} ${err.message}`);
    throw err;
  }
  const bytes = readFileSync(source);
  const hash = sha256(bytes);

  // Adding again under an id that exists: the same file is a refresh; another needs --replace.
  const existingAt = doc.models.findIndex((m) => m.id === args.id);
  const existing = existingAt >= 0 ? doc.models[existingAt] : undefined;
  let rel = `${args.features}/${args.id}.onnx`;
  let refresh = false;
  if (existing) {
    if (existing.kind !== 'onnx') {
      throw new ModelsError(
        `"${args.id}" is a ${String(existing.kind)} model in ${shown}; choose another --id`,
      );
    }
    rel = String(existing.file);
    const before = join(modelsDir, rel);
    refresh = existsSync(before) && sha256(readFileSync(before)) === hash;
    if (!refresh && !args.replace) {
      throw new ModelsError(
        `"${args.id}" is already in ${shown} (file ${rel}, version ${String(existing.version)}) with another file: to put this one in its place, pass --replace and a new --version`,
      );
    }
    if (!refresh && (args.version ?? existing.version) === existing.version) {
      throw new ModelsError(
        `"${args.id}" is replaced by another file: give it a new --version (it is ${String(existing.version)}) so predictions show which file answered`,
      );
    }
  }
  const target = join(modelsDir, rel);
  const spec = {
    id: args.id,
    file: args.file,
    features,
    labels,
    featureSet: args.features,
    labelSet: args.labels,
    ...(args.input ? { input: args.input } : {}),
    ...(args.output ? { output: args.output } : {}),
  };
  const check = checkSignature(spec, info.signature, shown);
  if (!check.ok) throw new ModelsError(check.reason);
  const inputInfo = info.signature.inputs.find((v) => v.name === check.input);
  const outputInfo = info.signature.outputs.find((v) => v.name === check.output);
  io.err(
    `${args.id}: input "${check.input}" ${showDims(inputInfo?.dims)} -> output "${check.output}" ${showDims(outputInfo?.dims)}` +
      (check.ignored.length ? ` (ignored: ${check.ignored.join(', ')})` : '') +
      `; opsets ${Object.entries(info.opsets)
        .map(([d, v]) => `${d} ${v}`)
        .join(', ')}`,
  );

  // The ensemble it joins, if any: checked before anything is scored or written.
  const next: Doc = structuredClone(doc);
  const ensembleNote = args.ensemble ? joinEnsemble(next, current, args, features, labels, shown) : undefined;

  // Load it for real and score the data.
  const scorer = new OnnxScorer({ manifestPath });
  const runnable: OnnxModelSpec = {
    id: args.id,
    kind: 'onnx',
    version: args.version ?? String(existing?.version ?? '1.0.0'),
    file: source,
    manifestFile: rel,
    features,
    labels,
    featureSet: args.features,
    labelSet: args.labels,
    timeoutSeconds: DEFAULT_TIMEOUT_SECONDS,
    memoryMB: 1024,
    ...(args.input ? { input: args.input } : {}),
    ...(args.output ? { output: args.output } : {}),
  };
  let scored: Scored;
  try {
    scored = await scoreData(scorer, runnable, modelsDir, args, io);
  } catch (err) {
    await scorer.close();
    throw err;
  }

  // The manifest entry, validated with the rest before anything is written.
  const entry: Record<string, unknown> = {
    ...(existing ?? {}),
    id: args.id,
    kind: 'onnx',
    file: rel,
    version: args.version ?? existing?.version ?? '1.0.0',
    description:
      args.description ??
      existing?.description ??
      `Added with fanout models add from ${basename(args.file)}${info.producer ? ` (exported by ${info.producer})` : ''}`,
    features: args.features,
    labels: args.labels,
  };
  for (const key of ['input', 'output'] as const) {
    if (args[key]) entry[key] = args[key];
  }
  if (args.timeoutSeconds !== undefined) entry.timeoutSeconds = args.timeoutSeconds;
  if (existingAt >= 0) next.models[existingAt] = entry;
  else next.models.push(entry);
  // serverless.yml, read once: the drift threshold here, the functions' timeouts in the notes below.
  const settings = readDeploySettings();
  let agreement: string[];
  try {
    const nextManifest = parseManifest(structuredClone(next), manifestPath, shown);
    agreement = await agreementWith(scorer, nextManifest, args.id, scored, args, settings);
  } finally {
    await scorer.close();
  }

  // Write: the file, its golden file, metrics and card, then the manifest (which makes it live).
  const written: string[] = [];
  if (resolve(source) !== resolve(target)) {
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(source, target);
    written.push(target);
  }
  const goldenFile = join(dirname(target), 'golden', `${args.id}.json`);
  mkdirSync(dirname(goldenFile), { recursive: true });
  writeFileSync(
    goldenFile,
    `${dumps({ model: args.id, labels, rows: scored.golden.rows, probabilities: scored.golden.probabilities, source: scored.golden.source })}\n`,
  );
  written.push(goldenFile);
  const today = (io.now?.() ?? new Date()).toISOString().slice(0, 10);
  const metricsEntry = {
    id: args.id,
    family: `added: ${info.producer || 'an ONNX exporter'}`,
    kind: 'onnx',
    file: rel,
    dataset: scored.dataset,
    addedOn: today,
    addedBy: 'fanout models add',
    features: features.length,
    labels,
    input: check.input,
    output: check.output,
    heldOut: scored.heldOut,
    wholeData: scored.whole,
    bytes: bytes.length,
    sha256: hash,
    opset: info.opsets,
  };
  const metricsFile = join(modelsDir, 'metrics.json');
  if (existsSync(metricsFile)) {
    writeFileSync(metricsFile, upsertMetricsModel(readFileSync(metricsFile, 'utf8'), metricsEntry));
    written.push(metricsFile);
  }
  const cardFile = join(modelsDir, 'MODEL_CARD.md');
  if (existsSync(cardFile)) {
    writeFileSync(cardFile, upsertCardRow(readFileSync(cardFile, 'utf8'), args.id, cardRow(metricsEntry)));
    written.push(cardFile);
  }
  const tmp = `${manifestPath}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`);
  renameSync(tmp, manifestPath);
  written.push(manifestPath);

  io.err(
    refresh
      ? `${args.id} was already in ${shown} with this file: checked again, its hash, card row and golden file rewritten`
      : `${existing ? 'replaced' : 'added'} ${args.id} (${rel}, version ${String(entry.version)}, sha256 ${hash.slice(0, 16)}…)`,
  );
  if (ensembleNote) io.err(ensembleNote);
  for (const line of agreement) io.err(line);
  const waitNote = timeoutNote(args.id, args.timeoutSeconds, settings.timeouts);
  if (waitNote) io.err(waitNote);
  const batchNote = batchTimeNote(
    args.id,
    scored.batchMs,
    batchWaitSeconds(Number(entry.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS), settings.timeouts),
  );
  if (batchNote) io.err(batchNote);
  io.err(`wrote ${written.map((f) => shownPath(f)).join(', ')}`);
  const env = args.manifest === 'models/manifest.json' ? '' : `FANOUT_MANIFEST=${args.manifest} `;
  io.err(
    [
      'next:',
      `  ${env}npx fanout models check    # the start check on every member, as the stack runs it`,
      '  npm test                   # the suites read models/manifest.json: the new model is tested with the rest',
      `  ${env}npm start                  # then: curl -s http://127.0.0.1:3000/v2/models/${args.id}/ready`,
      ...(args.ensemble
        ? [
            `                             and POST http://127.0.0.1:3000/v1/ensembles/${args.ensemble}/predictions`,
          ]
        : [`                             and POST http://127.0.0.1:3000/v2/models/${args.id}/infer`]),
      '  npm run package / sls deploy   # ships the file with the runner and the API',
    ].join('\n'),
  );
  io.out(
    JSON.stringify({
      id: args.id,
      file: rel,
      input: check.input,
      output: check.output,
      accuracy: scored.whole?.accuracy ?? null,
      heldOutAccuracy: scored.heldOut?.accuracy ?? null,
      ensemble: args.ensemble ?? null,
    }),
  );
  return 0;
}

interface Scored {
  /** Milliseconds a batch job's rows would take here, from a warm run (see batchMsHere). */
  batchMs: number;
  /** The labelled rows it was scored on, when there were any, and its scores on them. */
  data?: { rows: number[][]; scores: number[][]; name: string };
  dataset?: string;
  /** `rocAuc` is null when the rows hold one label only (no curve to draw). */
  whole?: { rows: number; accuracy: number; rocAuc: number | null };
  heldOut?: { rows: number; accuracy: number; rocAuc: number | null };
  golden: { rows: number[][]; probabilities: number[][]; source: string };
}

const aucOrNull = (auc: number) => (Number.isFinite(auc) ? auc : null);
const showAuc = (auc: number | null) => (auc === null ? 'n/a (the rows hold one label only)' : fixed(auc));

/**
 * With `--ensemble`: how the new member and the others agree with the ensemble's answer on the
 * data it was scored on (agreementLines), from the manifest as it will be. Nothing without labelled
 * data, or when a member cannot be run here.
 */
async function agreementWith(
  scorer: OnnxScorer,
  manifest: Manifest,
  id: string,
  scored: Scored,
  args: AddArgs,
  settings: DeploySettings,
): Promise<string[]> {
  if (!args.ensemble || !scored.data) return [];
  const { rows, scores, name } = scored.data;
  const a = await ensembleAgreement(manifest, args.ensemble, { id, scores }, scorer, rows);
  return a ? agreementLines(a, id, name, settings.agreementMin) : [];
}

/** Stops the command with `problem`, when there is one: nothing has been written yet. */
function refuse(problem: string | undefined): void {
  if (problem) throw new ModelsError(problem);
}

/**
 * Scores the feature set's bundled data set (or `--data`) with onnxruntime: accuracy on every row
 * and on the held-out split, and the golden rows (the rows the other members' golden files hold).
 */
async function scoreData(
  scorer: OnnxScorer,
  model: OnnxModelSpec,
  modelsDir: string,
  args: AddArgs,
  io: ModelsIo,
): Promise<Scored> {
  const bundled: BundledDataset | undefined = bundledDatasetFor(modelsDir, model.features, model.labels);
  let data: Dataset | undefined = bundled;
  let name = bundled?.name;
  if (args.data) {
    try {
      data = readLabelledCsv(resolve(args.data), model.features, model.labels);
    } catch (err) {
      throw new ModelsError(`--data ${(err as Error).message}`);
    }
    name = basename(args.data);
  }
  const score = async (rows: number[][]) => {
    const out: number[][] = [];
    for (let i = 0; i < rows.length; i += 1000)
      out.push(...(await scorer.score(model, rows.slice(i, i + 1000))));
    return out;
  };
  if (!data) {
    io.err(
      `${model.id}: no data set is bundled for feature set "${args.features}" and no --data was given: accuracy not measured; the golden file holds synthetic rows`,
    );
    const rows = Array.from({ length: GOLDEN_ROWS }, (_, i) =>
      model.features.map((_, j) => Math.round(((i * 7919 + j * 104729) % 1000) / 10) / 10),
    );
    const probabilities = await score(rows);
    refuse(probabilitiesProblem(model.id, probabilities, 'the synthetic rows'));
    return {
      batchMs: await batchMsHere(score, rows, io.clock),
      golden: { rows, probabilities, source: 'onnxruntime-node, synthetic rows' },
    };
  }
  const all = await score(data.rows);
  refuse(probabilitiesProblem(model.id, all, String(name)));
  const chance = 1 / model.labels.length;
  const whole = {
    rows: data.rows.length,
    accuracy: accuracy(all, data.targets),
    rocAuc: aucOrNull(rocAuc(all, data.targets)),
  };
  let heldOut: Scored['heldOut'];
  if (bundled?.heldOut && !args.data) {
    const probs = bundled.heldOut.map((i) => all[i] as number[]);
    const targets = bundled.heldOut.map((i) => data.targets[i] as number);
    heldOut = {
      rows: probs.length,
      accuracy: accuracy(probs, targets),
      rocAuc: aucOrNull(rocAuc(probs, targets)),
    };
  }
  io.err(
    `${model.id}: accuracy ${fixed(whole.accuracy)} on all ${whole.rows} rows of ${name}` +
      (heldOut
        ? `, ${fixed(heldOut.accuracy)} on the ${heldOut.rows} rows the bundled models were not trained on (a fair test only if yours was not either)`
        : '') +
      `; ROC AUC ${showAuc(heldOut ? heldOut.rocAuc : whole.rocAuc)}`,
  );
  refuse(columnOrderProblem(model, all, data.targets, String(name)));
  if (whole.accuracy < chance + 0.1) {
    io.err(
      `warning: ${model.id} scores near chance (${fixed(whole.accuracy)} for ${model.labels.length} labels): check that the model takes the features in the order of "${args.features}" and gives the classes in the order of "${args.labels}" (${model.labels.join(', ')})`,
    );
  }
  const goldenRows =
    (!args.data &&
      bundled?.goldenRows?.every((r) => r.length === model.features.length) &&
      bundled.goldenRows) ||
    (heldOut && bundled?.heldOut
      ? bundled.heldOut.slice(0, GOLDEN_ROWS).map((i) => data.rows[i] as number[])
      : undefined) ||
    data.rows.slice(0, GOLDEN_ROWS);
  const probabilities = await score(goldenRows);
  return {
    batchMs: await batchMsHere(score, data.rows, io.clock),
    data: { rows: data.rows, scores: all, name: String(name) },
    dataset: name,
    whole,
    heldOut,
    golden: { rows: goldenRows, probabilities, source: `onnxruntime-node, rows of ${name}` },
  };
}
