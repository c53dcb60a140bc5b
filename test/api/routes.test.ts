import { handleHttp } from '../../functions/api/handler.js';
import type { ApiDeps } from '../../functions/api/routes.js';
import { canaryBucket } from '../../functions/core/canary.js';
import { combine, memberInfoFrom, type PredictionRecord } from '../../functions/core/combine.js';
import { QuorumNotMetError } from '../../functions/core/errors.js';
import { type EnsembleSpec, getEnsemble, loadManifest } from '../../functions/core/manifest.js';
import type { InferenceExecutor, InferenceInput } from '../../functions/core/ports.js';
import { fanOutMembers, resolveTarget, type TimeoutCut } from '../../functions/core/targets.js';
import { httpEvent } from '../support/http-event.js';
import { MemoryJobStore, MemoryPredictionStore } from '../support/memory-stores.js';

const manifest = loadManifest('models/manifest.json');
const features = manifest.ensembles.get('breast-cancer')?.features ?? [];
const row = features.map((_, i) => i + 0.5);

/**
 * Answers like the state machine: every member that ran scores each row 70% on the last label, the
 * real combine step (strategy, quorum, shadows, uncertainty, canary) makes the record, stored.
 */
class FakeExecutor implements InferenceExecutor {
  readonly inputs: InferenceInput[] = [];
  failWith?: Error;
  delayMs = 0;
  constructor(private readonly store: MemoryPredictionStore) {}
  async run(input: InferenceInput): Promise<PredictionRecord> {
    this.inputs.push(input);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failWith) throw this.failWith;
    const served = resolveTarget(manifest, input.ensemble, true);
    const c = served.labels.length;
    const scores = served.labels.map((_, i) => (i === c - 1 ? 0.7 : 0.3 / (c - 1)));
    const outcomes = input.members.map((m) => ({
      model: m.model,
      status: 'ok',
      version: '1.0.0',
      kind: 'onnx',
      latencyMs: 1,
      probabilities: input.instances.map(() => scores),
    }));
    const record = combine(served, outcomes, input.instances.length, memberInfoFrom(manifest), {
      id: input.id,
      createdAt: input.createdAt,
      routedFrom: input.requested,
    });
    return (await this.store.putPrediction(record)).record;
  }
}

function setup(overrides: Partial<ApiDeps> = {}) {
  const store = new MemoryPredictionStore();
  const executor = new FakeExecutor(store);
  const jobs = new MemoryJobStore();
  const deps: ApiDeps = {
    manifest,
    store,
    jobs,
    executor,
    maxInstances: 3,
    maxBodyBytes: 10_000,
    notReady: () => new Map(),
    // Requests without a client id stay on the ensemble named (0.5 is past any canary below 50%).
    random: () => 0.5,
    ...overrides,
  };
  const call = async (...args: Parameters<typeof httpEvent>) => {
    const res = await handleHttp(httpEvent(...args), () => deps);
    return { status: res.statusCode, body: JSON.parse(res.body), headers: res.headers ?? {} };
  };
  return { store, executor, jobs, call, deps };
}

const PREDICT = 'POST /v1/ensembles/{ensemble}/predictions';
const bc = { ensemble: 'breast-cancer' };

describe('POST /v1/ensembles/{ensemble}/predictions', () => {
  it('cuts member timeouts to what the API can still wait, names the cut ones, and leaves the rest', async () => {
    const target = manifest.ensembles.get('breast-cancer') as EnsembleSpec;
    const configured = fanOutMembers(manifest, target);
    const budget = Math.max(...configured.map((m) => m.timeoutSeconds)) - 1;
    expect(budget).toBeGreaterThanOrEqual(1);
    const told: TimeoutCut[][] = [];
    const { call, executor } = setup({
      memberBudgetSeconds: () => budget + 0.7,
      onBudgetCut: (c) => told.push(c),
    });
    expect((await call(PREDICT, { pathParameters: bc, body: { instances: [row] } })).status).toBe(200);
    expect(executor.inputs[0]?.members).toEqual(
      configured.map((m) => ({ ...m, timeoutSeconds: Math.min(m.timeoutSeconds, budget) })),
    );
    expect(told).toEqual([
      configured
        .filter((m) => m.timeoutSeconds > budget)
        .map((m) => ({ model: m.model, timeoutSeconds: m.timeoutSeconds, waitsSeconds: budget })),
    ]);
  });

  it('scores instances given as arrays or as objects keyed by feature name, in feature order', async () => {
    const { call, executor } = setup();
    const named = Object.fromEntries([...features].reverse().map((f) => [f, row[features.indexOf(f)]]));
    const res = await call(PREDICT, { pathParameters: bc, body: { instances: [row, named] } });
    expect(res.status).toBe(200);
    expect(res.body.predictions).toHaveLength(2);
    expect(executor.inputs[0]?.instances).toEqual([row, row]);
    const spec = resolveTarget(manifest, 'breast-cancer', false);
    expect(executor.inputs[0]?.members.map((m) => m.model)).toEqual([
      ...spec.members,
      ...(spec.shadow ?? []),
    ]);
    expect(executor.inputs[0]?.members.every((m) => m.timeoutSeconds >= 1)).toBe(true);
  });

  it('returns the stored record for a repeated client id and request without scoring again', async () => {
    const { call, executor } = setup();
    const first = await call(PREDICT, { pathParameters: bc, body: { id: 'order-42', instances: [row] } });
    // The same row keyed by feature name is the same request.
    const named = Object.fromEntries(features.map((f, i) => [f, row[i]]));
    const again = await call(PREDICT, { pathParameters: bc, body: { id: 'order-42', instances: [named] } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(again.headers['idempotent-replay']).toBe('true');
    expect(executor.inputs).toHaveLength(1);
  });

  it('answers 409 naming the id when it is repeated with other instances', async () => {
    const { call, executor } = setup();
    await call(PREDICT, { pathParameters: bc, body: { id: 'order-43', instances: [row] } });
    const other = await call(PREDICT, {
      pathParameters: bc,
      body: { id: 'order-43', instances: [row, row] },
    });
    expect(other.status).toBe(409);
    expect(other.body.error).toEqual({
      code: 'conflict',
      message:
        'id "order-43" was already used for another request to "breast-cancer" (other instances); a new request needs a new id',
      details: { field: 'id', id: 'order-43' },
    });
    expect(executor.inputs).toHaveLength(1);
  });

  it('answers 409 when a client id was used for another ensemble', async () => {
    const { call } = setup();
    await call(PREDICT, { pathParameters: bc, body: { id: 'x1', instances: [row] } });
    const res = await call(PREDICT, {
      pathParameters: { ensemble: 'breast-cancer-majority' },
      body: { id: 'x1', instances: [row] },
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe(
      'id "x1" was already used for "breast-cancer", not "breast-cancer-majority"',
    );
  });

  it('runs concurrent first requests with one id once; the others get its answer', async () => {
    const { call, executor, store } = setup();
    executor.delayMs = 30;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        call(PREDICT, { pathParameters: bc, body: { id: 'burst', instances: [row] } }),
      ),
    );
    expect(executor.inputs).toHaveLength(1);
    expect(store.claims).toBe(1);
    expect(answers.map((a) => a.status)).toEqual(new Array(8).fill(200));
    for (const a of answers) expect(a.body).toEqual(answers[0]?.body);
    expect(answers.filter((a) => a.headers['idempotent-replay'] === 'true')).toHaveLength(7);
  });

  it('answers a retryable 409 when the first request with the id is still running after the wait', async () => {
    const { call, executor } = setup({ idempotencyWaitMs: 40 });
    executor.delayMs = 400;
    const first = call(PREDICT, { pathParameters: bc, body: { id: 'slow', instances: [row] } });
    await new Promise((r) => setTimeout(r, 5));
    const second = await call(PREDICT, { pathParameters: bc, body: { id: 'slow', instances: [row] } });
    expect(second.status).toBe(409);
    expect(second.headers['retry-after']).toBe('1');
    expect(second.body.error).toMatchObject({
      code: 'request_in_progress',
      message: 'a request with id "slow" is still running; retry in a second for its answer',
      details: { id: 'slow', retryAfterSeconds: 1 },
    });
    // A different request under the running id is a plain conflict at once, not a wait.
    const other = await call(PREDICT, { pathParameters: bc, body: { id: 'slow', instances: [row, row] } });
    expect([other.status, other.body.error.code]).toEqual([409, 'conflict']);
    expect((await first).status).toBe(200);
    const retried = await call(PREDICT, { pathParameters: bc, body: { id: 'slow', instances: [row] } });
    expect([retried.status, retried.headers['idempotent-replay']]).toEqual([200, 'true']);
    expect(executor.inputs).toHaveLength(1);
  });

  it('releases the id when its request fails, so a retry runs it', async () => {
    const { call, executor } = setup();
    executor.failWith = new QuorumNotMetError('ensemble "breast-cancer": 1 of 5 members answered');
    const failed = await call(PREDICT, { pathParameters: bc, body: { id: 'retry-me', instances: [row] } });
    expect(failed.status).toBe(503);
    executor.failWith = undefined;
    const retried = await call(PREDICT, { pathParameters: bc, body: { id: 'retry-me', instances: [row] } });
    expect(retried.status).toBe(200);
    expect(retried.headers['idempotent-replay']).toBeUndefined();
    expect(executor.inputs).toHaveLength(2);
  });

  it('takes over an id whose claim expired (its request died unanswered)', async () => {
    let now = Date.parse('2026-11-28T10:00:00Z');
    const { call, executor, store } = setup({ now: () => new Date(now) });
    store.items.set('orphan', {
      state: 'in-progress',
      ensemble: 'breast-cancer',
      requestHash: 'from-a-dead-request',
      expiresAt: now + 1000,
      token: 'dead',
    });
    const early = await call(PREDICT, { pathParameters: bc, body: { id: 'orphan', instances: [row] } });
    expect(early.status).toBe(409);
    now += 2000;
    const late = await call(PREDICT, { pathParameters: bc, body: { id: 'orphan', instances: [row] } });
    expect(late.status).toBe(200);
    expect(executor.inputs).toHaveLength(1);
  });

  it('answers 400 naming the instance and the field', async () => {
    const { call } = setup();
    const bad = [...row];
    bad[4] = 'abc' as unknown as number;
    const res = await call(PREDICT, { pathParameters: bc, body: { instances: [row, bad] } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.message).toContain('instances[1]');
    expect(res.body.error.message).toContain(features[4]);
  });

  it('answers 400 for a malformed client id, naming the field', async () => {
    const { call } = setup();
    const res = await call(PREDICT, { pathParameters: bc, body: { id: 'has spaces', instances: [row] } });
    expect(res.status).toBe(400);
    expect(res.body.error.details.field).toBe('id');
  });

  it('answers 400 for a body that is not JSON, or not an object', async () => {
    const { call } = setup();
    const broken = await call(PREDICT, { pathParameters: bc, body: '{"instances": [' });
    expect(broken.status).toBe(400);
    expect(broken.body.error.message).toMatch(/not valid JSON/);
    const array = await call(PREDICT, { pathParameters: bc, body: '[1,2]' });
    expect(array.status).toBe(400);
  });

  it('answers 404 for an unknown ensemble, listing what is served', async () => {
    const { call } = setup();
    const res = await call(PREDICT, { pathParameters: { ensemble: 'nope' }, body: { instances: [row] } });
    expect(res.status).toBe(404);
    expect(res.body.error.message).toContain('breast-cancer');
  });

  it('answers 413 for more instances than the synchronous limit, and for an oversized body', async () => {
    const { call } = setup();
    const many = await call(PREDICT, { pathParameters: bc, body: { instances: [row, row, row, row] } });
    expect(many.status).toBe(413);
    expect(many.body.error.details).toMatchObject({ limit: 3, received: 4 });
    const big = await call(PREDICT, {
      pathParameters: bc,
      body: { instances: [row], pad: 'x'.repeat(20_000) },
    });
    expect(big.status).toBe(413);
  });

  it('answers 415 for a body that is not declared as JSON', async () => {
    const { call } = setup();
    const res = await call(PREDICT, {
      pathParameters: bc,
      body: { instances: [row] },
      headers: { 'content-type': 'text/csv' },
    });
    expect(res.status).toBe(415);
  });

  it('answers 503 naming the failed members when the quorum is not met', async () => {
    const { call, executor } = setup();
    executor.failWith = new QuorumNotMetError('quorum not met: bc-mlp (timeout)', {
      details: { failed: [{ model: 'bc-mlp', status: 'timeout' }] },
    });
    const res = await call(PREDICT, { pathParameters: bc, body: { instances: [row] } });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('quorum_not_met');
    expect(res.body.error.details.failed[0].model).toBe('bc-mlp');
  });

  it('answers 500 without internals for an unexpected error', async () => {
    const { call, executor } = setup();
    executor.failWith = new TypeError('cannot read properties of undefined (reading secret)');
    const res = await call(PREDICT, { pathParameters: bc, body: { instances: [row] } });
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toContain('secret');
    expect(res.body.error.message).toContain('req-1');
  });
});

/** The manifest's ensemble with a canary (and its split), found by reading the manifest. */
const primary = [...manifest.ensembles.values()].find((e) => e.canary) as EnsembleSpec;
const canaryName = primary.canary?.ensemble as string;
const onCanary = (id: string) => canaryBucket(primary.name, id) < (primary.canary?.percent ?? 0) * 100;
/** The first client ids `prefix-<n>` that the split sends to the canary and to the primary. */
function idsOnEachSide(prefix: string): { canary: string; primary: string } {
  let canary: string | undefined;
  let stay: string | undefined;
  for (let n = 0; !(canary && stay); n++) {
    const id = `${prefix}-${n}`;
    if (onCanary(id)) canary ??= id;
    else stay ??= id;
  }
  return { canary: canary as string, primary: stay as string };
}

describe('shadow members and canaries', () => {
  const path = { ensemble: primary.name };

  it('runs shadow members in the same fan-out, records them with shadow: true, never counts them', async () => {
    const shadowed = [...manifest.ensembles.values()].find((e) => e.shadow?.length) as EnsembleSpec;
    const { call, executor } = setup();
    const res = await call(PREDICT, {
      pathParameters: { ensemble: shadowed.name },
      body: { instances: [row] },
    });
    expect(res.status).toBe(200);
    expect(executor.inputs[0]?.members).toEqual(fanOutMembers(manifest, shadowed));
    expect(executor.inputs[0]?.members.filter((m) => m.shadow).map((m) => m.model)).toEqual(shadowed.shadow);
    const shadows = res.body.members.filter((m: { shadow?: boolean }) => m.shadow === true);
    expect(shadows.map((m: { model: string }) => m.model)).toEqual(shadowed.shadow);
    expect(res.body.members.slice(0, shadowed.members.length).map((m: { model: string }) => m.model)).toEqual(
      shadowed.members,
    );
  });

  it('sends the canary its share of requests without a client id, and says which ensemble served', async () => {
    const { call, executor } = setup({ random: () => 0 });
    const res = await call(PREDICT, { pathParameters: path, body: { instances: [row] } });
    expect(res.status).toBe(200);
    expect(res.body.ensemble).toBe(canaryName);
    expect(res.body.routedFrom).toBe(primary.name);
    expect(executor.inputs[0]).toMatchObject({ ensemble: canaryName, requested: primary.name });
    expect(executor.inputs[0]?.members).toEqual(fanOutMembers(manifest, getEnsemble(manifest, canaryName)));
    const stays = setup({ random: () => (primary.canary?.percent as number) / 100 });
    const kept = await stays.call(PREDICT, { pathParameters: path, body: { instances: [row] } });
    expect(kept.body.ensemble).toBe(primary.name);
    expect(kept.body.routedFrom).toBeUndefined();
  });

  it('routes by client id: the same id lands on the same side, and a repeat replays the record', async () => {
    const { call, executor } = setup({
      random: () => {
        throw new Error('a request with a client id must not be routed at random');
      },
    });
    const ids = idsOnEachSide('routes');
    const toCanary = await call(PREDICT, {
      pathParameters: path,
      body: { id: ids.canary, instances: [row] },
    });
    expect(toCanary.body).toMatchObject({ ensemble: canaryName, routedFrom: primary.name });
    const toPrimary = await call(PREDICT, {
      pathParameters: path,
      body: { id: ids.primary, instances: [row] },
    });
    expect(toPrimary.body.ensemble).toBe(primary.name);
    // A record the canary served answers a repeat to the primary: not a conflict.
    const again = await call(PREDICT, { pathParameters: path, body: { id: ids.canary, instances: [row] } });
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replay']).toBe('true');
    expect(again.body).toEqual(toCanary.body);
    expect(executor.inputs).toHaveLength(2);
    // The id is still taken for any other ensemble, and the message names the one it was sent to.
    const other = [...manifest.ensembles.keys()].find((n) => n !== primary.name && n !== canaryName);
    const clash = await call(PREDICT, {
      pathParameters: { ensemble: other as string },
      body: { id: ids.canary, instances: [row] },
    });
    expect(clash.status).toBe(409);
    expect(clash.body.error.message).toContain(`already used for "${primary.name}"`);
  });

  it('GET /v1/ensembles lists shadows apart from members, the canary and whose canary it is', async () => {
    const { call } = setup();
    const res = await call('GET /v1/ensembles');
    const find = (name: string) => res.body.ensembles.find((e: { name: string }) => e.name === name);
    const p = find(primary.name);
    expect(p.members.map((m: { model: string }) => m.model)).toEqual(primary.members);
    expect(p.shadow.map((m: { model: string }) => m.model)).toEqual(primary.shadow ?? []);
    expect(p.shadow[0]).not.toHaveProperty('weight');
    expect(p.canary).toEqual(primary.canary);
    expect(find(canaryName).canaryOf).toEqual([primary.name]);
  });

  it('OIP metadata shows shadows, the canary and the uncertainty output with its columns', async () => {
    const { call } = setup();
    const meta = await call('GET /v2/models/{name}', { pathParameters: { name: primary.name } });
    expect(meta.body.parameters).toMatchObject({
      members: primary.members,
      shadow: primary.shadow ?? [],
      canary: primary.canary,
      uncertainty_columns: ['agreement', 'margin', 'entropy', 'spread'],
    });
    expect(meta.body.outputs[2]).toEqual({ name: 'uncertainty', datatype: 'FP32', shape: [-1, 4] });
    // Shadows never change an answer, so they are not part of the ensemble's version.
    for (const s of primary.shadow ?? []) expect(meta.body.versions[0]).not.toContain(s);
  });

  it('OIP infer follows the split (by the request id), and answers uncertainty only when asked', async () => {
    const { call } = setup();
    const ids = idsOnEachSide('oip');
    const infer = (id: string, outputs?: { name: string }[]) =>
      call('POST /v2/models/{name}/infer', {
        pathParameters: { name: primary.name },
        body: {
          id,
          inputs: [{ name: 'input', shape: [2, 30], datatype: 'FP32', data: [row, row] }],
          outputs,
        },
      });
    const plain = await infer(ids.primary);
    expect(plain.body.outputs.map((o: { name: string }) => o.name)).toEqual(['probabilities', 'label']);
    expect(plain.body.parameters.ensemble).toBe(primary.name);
    const asked = await infer(ids.canary, [{ name: 'label' }, { name: 'uncertainty' }]);
    expect(asked.body.model_name).toBe(primary.name);
    expect(asked.body.parameters.ensemble).toBe(canaryName);
    const u = asked.body.outputs[1];
    expect(u).toMatchObject({ name: 'uncertainty', datatype: 'FP32', shape: [2, 4] });
    expect(u.parameters.columns).toEqual(['agreement', 'margin', 'entropy', 'spread']);
    // Every member said 0.3 / 0.7: full agreement, margin 0.4, no spread.
    const [agreement, margin, entropy, spread] = u.data.slice(0, 4);
    expect(agreement).toBe(1);
    expect(margin).toBeCloseTo(0.4, 12);
    expect(entropy).toBeCloseTo(-(0.3 * Math.log(0.3) + 0.7 * Math.log(0.7)) / Math.log(2), 12);
    expect(spread).toBe(0);
    const bad = await infer('x', [{ name: 'confidence' }]);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe('outputs[0].name');
  });
});

describe('reading', () => {
  it('GET /v1/predictions/{id} returns the stored record or 404', async () => {
    const { call } = setup();
    const made = await call(PREDICT, { pathParameters: bc, body: { instances: [row] } });
    const got = await call('GET /v1/predictions/{id}', { pathParameters: { id: made.body.id } });
    expect(got.body).toEqual(made.body);
    const missing = await call('GET /v1/predictions/{id}', { pathParameters: { id: 'no-such' } });
    expect(missing.status).toBe(404);
  });

  it('GET /v1/ensembles lists each ensemble with members, strategy, features and labels', async () => {
    const { call } = setup();
    const res = await call('GET /v1/ensembles');
    const bcEnsemble = res.body.ensembles.find((e: { name: string }) => e.name === 'breast-cancer');
    expect(bcEnsemble.strategy).toBe('soft-vote');
    expect(bcEnsemble.labels).toEqual(['malignant', 'benign']);
    expect(bcEnsemble.features).toHaveLength(30);
    expect(bcEnsemble.members[0]).toMatchObject({ model: 'bc-logreg', kind: 'onnx', version: '1.0.0' });
  });

  it('GET /v1/jobs/{jobId} returns the job record or 404', async () => {
    const { call, jobs } = setup();
    await jobs.createJob({
      jobId: 'job-1',
      status: 'RUNNING',
      ensemble: 'breast-cancer',
      input: { bucket: 'b', key: 'incoming/breast-cancer/x.csv' },
      rowsTotal: 10,
      rowsOk: 4,
      rowsFailed: 1,
      rowsDegraded: 0,
      createdAt: '2026-11-27T00:00:00.000Z',
    });
    const got = await call('GET /v1/jobs/{jobId}', { pathParameters: { jobId: 'job-1' } });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ jobId: 'job-1', status: 'RUNNING', rowsTotal: 10, rowsOk: 4 });
    expect((await call('GET /v1/jobs/{jobId}', { pathParameters: { jobId: 'nope' } })).status).toBe(404);
  });

  it('an unknown route is a 404 in the contract format', async () => {
    const { call } = setup();
    const res = await call('GET /v1/nothing');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  // API Gateway sends what no route takes to $default, whatever the method and path.
  const unrouted = async (method: string, path: string) => {
    const event = httpEvent(`${method} ${path}`);
    const res = await handleHttp({ ...event, routeKey: '$default' }, () => setup().deps);
    return { status: res.statusCode, body: JSON.parse(res.body), headers: res.headers ?? {} };
  };

  it('a wrong method on a known path is a 405 with an allow header naming the methods it takes', async () => {
    const get = await unrouted('GET', '/v1/ensembles/breast-cancer/predictions');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(get.body.error).toMatchObject({
      code: 'method_not_allowed',
      message: 'GET is not allowed on /v1/ensembles/breast-cancer/predictions; allowed: POST',
      details: { allow: ['POST'] },
    });
    const del = await unrouted('DELETE', '/v1/predictions/abc');
    expect([del.status, del.headers.allow]).toEqual([405, 'GET']);
    const post = await unrouted('POST', '/v2/health/ready');
    expect([post.status, post.headers.allow]).toEqual([405, 'GET']);
  });

  it('a path no route has stays a 404, whatever the method', async () => {
    for (const [method, path] of [
      ['GET', '/v1/nothing'],
      ['POST', '/v1/ensembles'],
      ['GET', '/v1/ensembles/breast-cancer/predictions/extra'],
      ['GET', '/v1/predictions/'],
    ] as const) {
      const res = await unrouted(method, path);
      expect([method, path, res.status]).toEqual([method, path, method === 'POST' ? 405 : 404]);
    }
  });
});

describe('Open Inference Protocol', () => {
  it('health routes answer live and ready, and not ready with a reason', async () => {
    const { call } = setup();
    expect((await call('GET /v2/health/live')).body).toEqual({ live: true });
    expect((await call('GET /v2/health/ready')).status).toBe(200);
    const reason =
      'bc-mlp: model file breast-cancer/mlp.onnx does not exist: check "file" in models/manifest.json';
    const down = setup({ notReady: () => new Map([['bc-mlp', reason]]) });
    const res = await down.call('GET /v2/health/ready');
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      ready: false,
      reason: `1 model not ready: ${reason}`,
      models: [{ name: 'bc-mlp', reason }],
    });
  });

  it('says which member is not ready and why; an ensemble stays ready while its quorum is', async () => {
    const bc = manifest.ensembles.get('breast-cancer');
    if (!bc) throw new Error('the bundled manifest has no breast-cancer ensemble');
    const reasons = new Map(bc.members.map((m) => [m, `${m}: input "input" not in the model`]));
    const ready = (name: string, down: string[]) =>
      setup({ notReady: () => new Map(down.map((m) => [m, reasons.get(m) as string])) }).call(
        'GET /v2/models/{name}/ready',
        { pathParameters: { name } },
      );
    const [first, second] = bc.members as [string, string];
    const member = await ready(first, [first]);
    expect([member.status, member.body]).toEqual([
      503,
      { name: first, ready: false, reason: reasons.get(first) },
    ]);
    expect((await ready(second, [first])).body).toEqual({ name: second, ready: true });
    // Enough members left for the quorum: ready, naming the one that is not.
    const spare = bc.members.length - bc.quorum;
    const degraded = await ready('breast-cancer', bc.members.slice(0, spare));
    expect(degraded.status).toBe(200);
    expect(degraded.body).toMatchObject({
      name: 'breast-cancer',
      ready: true,
      notReady: bc.members.slice(0, spare).map((model) => ({ model, reason: reasons.get(model) })),
    });
    const below = await ready('breast-cancer', bc.members.slice(0, spare + 1));
    expect(below.status).toBe(503);
    expect(below.body.reason).toMatch(
      new RegExp(`^${spare + 1} of ${bc.members.length} members not ready \\(quorum ${bc.quorum}\\): `),
    );
    const listed = await setup({ notReady: () => new Map([[first, reasons.get(first) as string]]) }).call(
      'GET /v1/ensembles',
    );
    const members = listed.body.ensembles.find((e: { name: string }) => e.name === 'breast-cancer').members;
    expect(members[0]).toMatchObject({ model: first, ready: false, reason: reasons.get(first) });
    expect(members[1]).toMatchObject({ model: second, ready: true });
  });

  it('describes an ensemble and a single member', async () => {
    const { call } = setup();
    const ens = await call('GET /v2/models/{name}', { pathParameters: { name: 'wine' } });
    expect(ens.body.inputs[0]).toEqual({ name: 'input', datatype: 'FP32', shape: [-1, 13] });
    expect(ens.body.outputs[0].shape).toEqual([-1, 3]);
    expect(ens.body.platform).toBe('fanout_ensemble');
    const member = await call('GET /v2/models/{name}', { pathParameters: { name: 'bc-mlp' } });
    expect(member.body.platform).toBe('onnxruntime_onnx');
    expect(member.body.versions).toEqual(['1.0.0']);
    expect((await call('GET /v2/models/{name}', { pathParameters: { name: 'zzz' } })).status).toBe(404);
  });

  it('infers from a flat or nested FP32 tensor and answers probabilities and label outputs', async () => {
    const { call, executor } = setup();
    const flat = await call('POST /v2/models/{name}/infer', {
      pathParameters: { name: 'breast-cancer' },
      body: {
        id: 'r1',
        inputs: [{ name: 'input', shape: [2, 30], datatype: 'FP32', data: [...row, ...row] }],
      },
    });
    expect(flat.status).toBe(200);
    expect(flat.body.id).toBe('r1');
    expect(flat.body.outputs).toEqual([
      { name: 'probabilities', datatype: 'FP32', shape: [2, 2], data: [0.3, 0.7, 0.3, 0.7] },
      { name: 'label', datatype: 'BYTES', shape: [2], data: ['benign', 'benign'] },
    ]);
    const nested = await call('POST /v2/models/{name}/infer', {
      pathParameters: { name: 'bc-logreg' },
      body: {
        inputs: [{ name: 'input', shape: [1, 30], datatype: 'FP64', data: [row] }],
        outputs: [{ name: 'label' }],
      },
    });
    expect(nested.body.outputs.map((o: { name: string }) => o.name)).toEqual(['label']);
    expect(executor.inputs[1]?.members).toEqual([{ model: 'bc-logreg', timeoutSeconds: 5 }]);
  });

  it('rejects a tensor of the wrong shape, naming the field', async () => {
    const { call } = setup();
    const res = await call('POST /v2/models/{name}/infer', {
      pathParameters: { name: 'breast-cancer' },
      body: { inputs: [{ name: 'input', shape: [1, 29], datatype: 'FP32', data: row.slice(1) }] },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('inputs[0].shape');
    const count = await call('POST /v2/models/{name}/infer', {
      pathParameters: { name: 'breast-cancer' },
      body: { inputs: [{ name: 'input', shape: [2, 30], datatype: 'FP32', data: row }] },
    });
    expect(count.body.error.message).toContain('inputs[0].data');
    const type = await call('POST /v2/models/{name}/infer', {
      pathParameters: { name: 'breast-cancer' },
      body: { inputs: [{ name: 'input', shape: [1, 30], datatype: 'BYTES', data: row }] },
    });
    expect(type.body.error.details.field).toBe('inputs[0].datatype');
  });
});
