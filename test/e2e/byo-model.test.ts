import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { addModel } from '../../cli/models.js';
import { loadManifest } from '../../functions/core/manifest.js';
import type { LambdaHandler } from '../../local/lambda-dispatch.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { readDataset } from '../models/data.js';
import { fitDiagonalLda, linearOnnx } from '../support/onnx-graphs.js';
import { http } from '../support/stack-process.js';

// Bring your own model, as a user would: a model made here (laid out as skl2onnx writes one) is
// added to a copy of models/ with `fanout models add`, a wrong-shape one is added by hand, and the
// local stack serves that manifest (FANOUT_MANIFEST) through its real runner, API and ensemble.
const ROOT = resolve(import.meta.dirname, '../..');
const data = readDataset('data/breast_cancer.csv');
const lda = fitDiagonalLda(data.rows, data.targets, 2);
/** An id the repository's manifest does not use yet (a user may have added `bc-lda` already). */
function freeId(base: string): string {
  const taken = loadManifest(join(ROOT, 'models/manifest.json'));
  let id = base;
  for (let i = 2; taken.models.has(id) || taken.ensembles.has(id); i++) id = `${base}-${i}`;
  return id;
}
const LDA = freeId('bc-lda');
const SHORT = freeId('bc-short');
const LOGITS = freeId('bc-logits');
const WITH_LOGITS = freeId('bc-with-logits');
const SHORT_REASON = (manifest: string) =>
  `${SHORT}: input "float_input" of the model breast-cancer/${SHORT}.onnx takes 29 features (shape [N, 29]), the manifest's feature set "breast-cancer" has 30: fix "features" in ${manifest} or re-export the model`;

let dir: string;
let manifestFile: string;
let stack: LocalStack;
let members: string[];
let fanOut: string[];
const runnerCalls: string[] = [];
const saved = process.env.FANOUT_MANIFEST;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-byo-'));
  const models = join(dir, 'models');
  cpSync(join(ROOT, 'models'), models, { recursive: true, filter: (src) => !src.includes('/train') });
  manifestFile = join(models, 'manifest.json');
  writeFileSync(join(dir, 'lda.onnx'), linearOnnx(lda, { input: 'float_input', label: true }));
  const quiet = { out: () => undefined, err: () => undefined };
  const code = await addModel(
    {
      command: 'add',
      file: join(dir, 'lda.onnx'),
      id: LDA,
      features: 'breast-cancer',
      labels: 'breast-cancer',
      ensemble: 'breast-cancer',
      manifest: manifestFile,
      replace: false,
    },
    quiet,
  );
  expect(code).toBe(0);
  // A model that takes 29 of the 30 features: the command refuses it, so it goes in by hand.
  writeFileSync(
    join(models, `breast-cancer/${SHORT}.onnx`),
    linearOnnx({ weights: lda.weights.slice(1), bias: lda.bias }, { input: 'float_input', label: true }),
  );
  const doc = JSON.parse(readFileSync(manifestFile, 'utf8'));
  doc.models.push({
    id: SHORT,
    kind: 'onnx',
    file: `breast-cancer/${SHORT}.onnx`,
    version: '1.0.0',
    features: 'breast-cancer',
    labels: 'breast-cancer',
  });
  // A model whose export left the softmax out: its start check passes (the shapes are right), so
  // the command's own refusal is what a user who adds it by hand skips.
  writeFileSync(
    join(models, `breast-cancer/${LOGITS}.onnx`),
    linearOnnx(lda, { input: 'float_input', label: true, noSoftmax: true }),
  );
  doc.models.push({
    id: LOGITS,
    kind: 'onnx',
    file: `breast-cancer/${LOGITS}.onnx`,
    version: '1.0.0',
    features: 'breast-cancer',
    labels: 'breast-cancer',
  });
  doc.ensembles.push({
    name: WITH_LOGITS,
    members: ['bc-logreg', 'bc-mlp', LOGITS],
    strategy: 'soft-vote',
    quorum: 2,
  });
  const bc = doc.ensembles.find((e: { name: string }) => e.name === 'breast-cancer');
  bc.members.push(SHORT);
  // These tests count what breast-cancer itself runs: no share of the requests goes to a canary.
  delete bc.canary;
  writeFileSync(manifestFile, JSON.stringify(doc, null, 2));
  members = bc.members;
  // Every model of the fan-out: the members, then any shadow members, each run once per request.
  fanOut = [...bc.members, ...(bc.shadow ?? [])];

  process.env.FANOUT_MANIFEST = manifestFile;
  // The real runner, counted: how many member invocations each request costs.
  const runnerModule = (await import('../../functions/runner/handler.js')) as { handler: LambdaHandler };
  const runner: LambdaHandler = (event, context) => {
    runnerCalls.push((event as { model: string }).model);
    return runnerModule.handler(event, context);
  };
  stack = await startLocalStack({ port: 0, dataDir: join(dir, 'data'), quiet: true, handlers: { runner } });
}, 90_000);

afterAll(async () => {
  await stack?.stop();
  if (saved === undefined) delete process.env.FANOUT_MANIFEST;
  else process.env.FANOUT_MANIFEST = saved;
  rmSync(dir, { recursive: true, force: true });
});

const url = (path: string) => `${stack.urls.api}${path}`;
const predict = (body: unknown) => http('POST', url('/v1/ensembles/breast-cancer/predictions'), body);

describe('a model brought by a user, served by the local stack', () => {
  it('reports the wrong-shape model at start with one line naming the model, the file, the field and both values', () => {
    expect([...stack.notReady]).toEqual([[SHORT, SHORT_REASON(manifestFile)]]);
  });

  it('says which member is not ready and why, while the ensemble stays ready', async () => {
    const health = await http('GET', url('/v2/health/ready'));
    expect(health.status).toBe(503);
    expect(health.body).toEqual({
      ready: false,
      reason: `1 model not ready: ${SHORT_REASON(manifestFile)}`,
      models: [{ name: SHORT, reason: SHORT_REASON(manifestFile) }],
    });
    const short = await http('GET', url(`/v2/models/${SHORT}/ready`));
    expect([short.status, short.body]).toEqual([
      503,
      { name: SHORT, ready: false, reason: SHORT_REASON(manifestFile) },
    ]);
    expect((await http('GET', url(`/v2/models/${LDA}/ready`))).body).toEqual({ name: LDA, ready: true });
    const ensemble = await http('GET', url('/v2/models/breast-cancer/ready'));
    expect(ensemble.status).toBe(200);
    expect(ensemble.body.notReady).toEqual([{ model: SHORT, reason: SHORT_REASON(manifestFile) }]);
  });

  it('scores with the added model and answers degraded, naming the member that is not ready, without running it', async () => {
    const rows = [0, 20, 100].map((i) => data.rows[i]);
    runnerCalls.length = 0;
    const res = await predict({ instances: rows });
    expect(res.status).toBe(200);
    expect(res.body.degraded).toBe(true);
    const byModel = Object.fromEntries(res.body.members.map((m: { model: string }) => [m.model, m]));
    expect(byModel[LDA]).toMatchObject({ status: 'ok', kind: 'onnx', version: '1.0.0' });
    // What the model made here says for those rows, computed here in float64.
    const own = rows.map((r) => {
      const logits = lda.bias.map(
        (b, c) => b + (r as number[]).reduce((s, v, j) => s + v * (lda.weights[j]?.[c] as number), 0),
      );
      return data.labels[(logits[1] as number) > (logits[0] as number) ? 1 : 0];
    });
    expect(byModel[LDA].predictions.map((p: { label: string }) => p.label)).toEqual(own);
    expect(byModel[SHORT]).toMatchObject({
      status: 'failed',
      error: { name: 'ModelNotReadyError', message: SHORT_REASON(manifestFile) },
    });
    expect(byModel[SHORT].latencyMs).toBeLessThan(1000);
    for (const m of members.filter((id) => id !== SHORT)) expect(byModel[m].status).toBe('ok');
    expect(res.body.predictions.map((p: { label: string }) => p.label)).toEqual(
      [0, 20, 100].map((i) => data.labels[data.targets[i] as number]),
    );
    // Refused by the runner before any model ran: one invocation per member, bc-short's included.
    expect(runnerCalls.sort()).toEqual([...fanOut].sort());
  });

  it('refuses the answers of a member that gives logits, naming it and the row, and answers from the others', async () => {
    const rows = [0, 20].map((i) => data.rows[i]);
    const res = await http('POST', url(`/v1/ensembles/${WITH_LOGITS}/predictions`), { instances: rows });
    expect(res.status).toBe(200);
    expect(res.body.degraded).toBe(true);
    const byModel = Object.fromEntries(res.body.members.map((m: { model: string }) => [m.model, m]));
    expect(byModel[LOGITS]).toMatchObject({ status: 'failed', error: { name: 'ModelRunError' } });
    expect(byModel[LOGITS].error.message).toMatch(
      new RegExp(
        `^${LOGITS}: row 0 is not probabilities: it (has|sums to) .*; a member must give one probability per label`,
      ),
    );
    expect(byModel[LOGITS].predictions).toBeUndefined();
    expect(res.body.predictions.map((p: { label: string }) => p.label)).toEqual(
      [0, 20].map((i) => data.labels[data.targets[i] as number]),
    );
    for (const p of res.body.predictions) {
      for (const v of Object.values(p.probabilities) as number[]) expect(v).toBeGreaterThanOrEqual(0);
    }
  });

  it('serves the added model alone over the Open Inference Protocol', async () => {
    const res = await http('POST', url(`/v2/models/${LDA}/infer`), {
      inputs: [{ name: 'input', shape: [1, 30], datatype: 'FP32', data: data.rows[0] }],
    });
    expect(res.status).toBe(200);
    expect(res.body.outputs.find((o: { name: string }) => o.name === 'label').data).toEqual(['malignant']);
  });

  it('runs the members once for eight concurrent first requests with one id; all get the same answer', async () => {
    runnerCalls.length = 0;
    const body = { id: 'byo-burst-1', instances: [data.rows[3]] };
    const answers = await Promise.all(Array.from({ length: 8 }, () => predict(body)));
    expect(answers.map((a) => a.status)).toEqual(new Array(8).fill(200));
    for (const a of answers) expect(a.body).toEqual(answers[0]?.body);
    expect(answers.filter((a) => a.headers.get('idempotent-replay') === 'true')).toHaveLength(7);
    expect(runnerCalls.sort()).toEqual([...fanOut].sort());
    const other = await predict({ ...body, instances: [data.rows[4]] });
    expect(other.status).toBe(409);
    expect(other.body.error.message).toBe(
      'id "byo-burst-1" was already used for another request to "breast-cancer" (other instances); a new request needs a new id',
    );
    expect(runnerCalls).toHaveLength(fanOut.length);
  });
});
