import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import { loadManifest, localOnnx, type OnnxModelSpec } from '../../functions/core/manifest.js';
import { fanOutMembers, resolveTarget } from '../../functions/core/targets.js';
import { clientIdOn } from '../support/canary.js';
import { http, type StackProcess, startStackProcess } from '../support/stack-process.js';

/** Rows of the vendored data set with their true labels (the file's first line is a count header). */
function dataset(): { rows: number[][]; labels: string[] } {
  const lines = readFileSync('models/data/breast_cancer.csv', 'utf8').trim().split('\n').slice(1);
  const rows = lines.map((l) => l.split(',').map(Number));
  return {
    rows: rows.map((r) => r.slice(0, 30)),
    labels: rows.map((r) => (r[30] === 0 ? 'malignant' : 'benign')),
  };
}

const data = dataset();
const manifest = loadManifest('models/manifest.json');
const bc = resolveTarget(manifest, 'breast-cancer', false);
const features = bc.features;
const PICK = [0, 1, 19, 20, 21, 40, 46, 50];

let dataDir: string;
let stack: StackProcess;
const url = (path: string) => `${stack.api}${path}`;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fanout-e2e-'));
  stack = await startStackProcess(dataDir);
}, 90_000);

afterAll(async () => {
  if (stack) expect(await stack.stop()).toBe(0);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the local stack over HTTP (npm start)', () => {
  it('scores real rows with the right labels, every member ok, the SageMaker member included', async () => {
    const res = await http('POST', url('/v1/ensembles/breast-cancer/predictions'), {
      id: clientIdOn(bc, 'primary', 'e2e-rows'),
      instances: PICK.map((i) => data.rows[i]),
    });
    expect(res.status).toBe(200);
    expect(res.body.predictions.map((p: { label: string }) => p.label)).toEqual(
      PICK.map((i) => data.labels[i]),
    );
    expect(res.body.degraded).toBe(false);
    // Every model of the fan-out, counted members then shadows, as the manifest declares them.
    expect(
      res.body.members.map((m: { model: string; status: string; kind: string; shadow?: boolean }) => [
        m.model,
        m.status,
        m.kind,
        m.shadow === true,
      ]),
    ).toEqual(
      fanOutMembers(manifest, bc).map((m) => [
        m.model,
        'ok',
        manifest.models.get(m.model)?.kind,
        m.shadow === true,
      ]),
    );
    expect(res.body.members.map((m: { kind: string }) => m.kind)).toContain('sagemaker');
  });

  it('answers the SageMaker member with the probabilities of the same model run in-process (1e-5)', async () => {
    const rows = PICK.map((i) => data.rows[i] as number[]);
    const res = await http('POST', url('/v1/ensembles/breast-cancer/predictions'), { instances: rows });
    const sm = res.body.members.find((m: { model: string }) => m.model === 'bc-gradient-boosting');
    const scorer = new OnnxScorer();
    const local = await scorer.score(
      localOnnx(manifest.models.get('bc-gradient-boosting')!) as OnnxModelSpec,
      rows,
    );
    await scorer.close();
    sm.predictions.forEach((p: { probabilities: Record<string, number> }, i: number) => {
      expect(Math.abs((p.probabilities.malignant as number) - (local[i]?.[0] as number))).toBeLessThan(1e-5);
      expect(Math.abs((p.probabilities.benign as number) - (local[i]?.[1] as number))).toBeLessThan(1e-5);
    });
  });

  it('accepts instances keyed by feature name', async () => {
    const named = Object.fromEntries(features.map((f, j) => [f, data.rows[0]?.[j]]));
    const res = await http('POST', url('/v1/ensembles/breast-cancer/predictions'), { instances: [named] });
    expect(res.status).toBe(200);
    expect(res.body.predictions[0].label).toBe(data.labels[0]);
  });

  it('stores each prediction: GET /v1/predictions/{id} returns the same record', async () => {
    const made = await http('POST', url('/v1/ensembles/wine/predictions'), {
      instances: [[13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050]],
    });
    expect(made.status).toBe(200);
    expect(made.body.predictions[0].label).toBe('class_0');
    const got = await http('GET', url(`/v1/predictions/${made.body.id}`));
    expect(got.status).toBe(200);
    expect(got.body).toEqual(made.body);
  });

  it('treats a client id as idempotent, also for concurrent repeats', async () => {
    const body = { id: 'e2e-order-1', instances: [data.rows[3]] };
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => http('POST', url('/v1/ensembles/breast-cancer/predictions'), body)),
    );
    for (const a of answers) expect(a.status).toBe(200);
    const createdAt = new Set(answers.map((a) => a.body.createdAt));
    expect(createdAt.size).toBe(1);
    const again = await http('POST', url('/v1/ensembles/breast-cancer/predictions'), body);
    expect(again.body).toEqual(answers[0]?.body);
    expect(again.headers.get('idempotent-replay')).toBe('true');
    // The same id with other instances is another request: refused, naming the id.
    const other = await http('POST', url('/v1/ensembles/breast-cancer/predictions'), {
      ...body,
      instances: [data.rows[4]],
    });
    expect(other.status).toBe(409);
    expect(other.body.error.message).toMatch(/^id "e2e-order-1" was already used for another request/);
  });

  it('lists the ensembles and serves the Open Inference Protocol routes', async () => {
    const list = await http('GET', url('/v1/ensembles'));
    expect(list.body.ensembles.map((e: { name: string }) => e.name)).toEqual(
      expect.arrayContaining([
        'breast-cancer',
        'breast-cancer-stacked',
        'breast-cancer-majority',
        'wine',
        'wine-stacked',
      ]),
    );
    expect((await http('GET', url('/v2/health/live'))).body).toEqual({ live: true });
    expect((await http('GET', url('/v2/health/ready'))).status).toBe(200);
    const meta = await http('GET', url('/v2/models/breast-cancer'));
    expect(meta.body.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 30] }]);
    const member = await http('GET', url('/v2/models/bc-gradient-boosting'));
    expect(member.body.platform).toBe('sagemaker');
    const infer = await http('POST', url('/v2/models/bc-logreg/infer'), {
      id: 'oip-1',
      inputs: [{ name: 'input', shape: [2, 30], datatype: 'FP32', data: [data.rows[0], data.rows[20]] }],
    });
    expect(infer.status).toBe(200);
    expect(infer.body.id).toBe('oip-1');
    expect(infer.body.outputs[1]).toEqual({
      name: 'label',
      datatype: 'BYTES',
      shape: [2],
      data: [data.labels[0], data.labels[20]],
    });
    expect(infer.body.outputs[0].shape).toEqual([2, 2]);
  });

  it('answers every client error with the contract error and keeps serving', async () => {
    const predict = url('/v1/ensembles/breast-cancer/predictions');
    const bad = await http('POST', predict, { instances: [[...(data.rows[0] ?? []).slice(0, 29), 'x']] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('instances[0]');
    expect(bad.body.error.message).toContain('worst fractal dimension');
    expect((await http('POST', predict, '{"instances": [1,')).status).toBe(400);
    expect(
      (await http('POST', url('/v1/ensembles/nope/predictions'), { instances: [data.rows[0]] })).status,
    ).toBe(404);
    expect((await http('GET', url('/v1/predictions/never-made'))).status).toBe(404);
    expect((await http('GET', url('/v2/models/nope'))).status).toBe(404);
    expect((await http('GET', url('/no/such/route'))).status).toBe(404);
    const many = await http('POST', predict, { instances: Array.from({ length: 101 }, () => data.rows[0]) });
    expect(many.status).toBe(413);
    const huge = await http('POST', predict, { instances: [data.rows[0]], pad: 'x'.repeat(300_000) });
    expect(huge.status).toBe(413);
    const text = await http('POST', predict, 'mean radius=1', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    for (const r of [bad, many, huge, text]) {
      expect(r.body.error.code).toEqual(expect.any(String));
      expect(JSON.stringify(r.body)).not.toMatch(/\bat .*\.ts:\d+/);
    }
    expect((await http('POST', predict, { instances: [data.rows[0]] })).status).toBe(200);
  });
});

describe('a restart of the local stack', () => {
  it('keeps stored predictions (DynamoDB data on disk)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanout-restart-'));
    try {
      const first = await startStackProcess(dir);
      const made = await http('POST', `${first.api}/v1/ensembles/breast-cancer/predictions`, {
        id: 'kept-across-restarts',
        instances: [data.rows[7]],
      });
      expect(made.status).toBe(200);
      expect(await first.stop()).toBe(0);
      const second = await startStackProcess(dir);
      const got = await http('GET', `${second.api}/v1/predictions/kept-across-restarts`);
      expect(await second.stop()).toBe(0);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(made.body);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('members that fail, through the real stack', () => {
  let faulty: StackProcess;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-faulty-'));
    faulty = await startStackProcess(dir, { FANOUT_MANIFEST: 'test/e2e/fixtures/faulty-manifest.json' });
  }, 90_000);
  afterAll(async () => {
    if (faulty) await faulty.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers degraded above the quorum, naming each failed member and why', async () => {
    const res = await http('POST', `${faulty.api}/v1/ensembles/shaky/predictions`, {
      instances: [data.rows[0]],
    });
    expect(res.status).toBe(200);
    expect(res.body.degraded).toBe(true);
    const byModel = Object.fromEntries(res.body.members.map((m: { model: string }) => [m.model, m]));
    expect(byModel['bc-logreg'].status).toBe('ok');
    // The corrupt file failed the start check: refused at once, with the reason.
    expect(byModel['bc-broken']).toMatchObject({ status: 'failed', error: { name: 'ModelNotReadyError' } });
    expect(byModel['bc-broken'].error.message).toMatch(
      /^bc-broken: model file broken\.onnx is not an ONNX model /,
    );
    expect(byModel['bc-gone'].status).toBe('failed');
    expect(byModel['bc-gone'].error.message).toContain('no-such-endpoint');
    expect(JSON.stringify(res.body)).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('says at start which member is not ready and why, and readiness names it', async () => {
    expect(faulty.output()).toMatch(
      /fanout local stack: model not ready: bc-broken: model file broken\.onnx is not an ONNX model /,
    );
    const health = await http('GET', `${faulty.api}/v2/health/ready`);
    expect(health.status).toBe(503);
    expect(health.body.models.map((m: { name: string }) => m.name)).toEqual(['bc-broken']);
    const member = await http('GET', `${faulty.api}/v2/models/bc-broken/ready`);
    expect([member.status, member.body.ready]).toEqual([503, false]);
    expect(member.body.reason).toMatch(/^bc-broken: model file broken\.onnx /);
    expect((await http('GET', `${faulty.api}/v2/models/bc-logreg/ready`)).body.ready).toBe(true);
  });

  it("says at start which member's manifest timeout the functions cannot give it", () => {
    // The fixture gives bc-mlp 60 s: more than serverless.yml's runner (30 s) lets a member wait.
    expect(faulty.output()).toMatch(
      /fanout local stack: model timeout cut: bc-mlp: its timeout of 60 s is cut to \d+ s in batch jobs and \d+ s on the synchronous path; past that it is timed out by name \(bounded by functions\.runner\.timeout, 30 in serverless\.yml/,
    );
    expect(faulty.output()).not.toMatch(/model timeout cut: bc-logreg/);
  });

  it('answers 503 naming the failed members when the quorum is not met', async () => {
    const res = await http('POST', `${faulty.api}/v1/ensembles/fragile/predictions`, {
      instances: [data.rows[0]],
    });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('quorum_not_met');
    expect(res.body.error.message).toContain('bc-broken');
    expect(res.body.error.message).toContain('bc-gone');
    expect(res.body.error.details.failed.map((f: { model: string }) => f.model).sort()).toEqual([
      'bc-broken',
      'bc-gone',
    ]);
  });
});
