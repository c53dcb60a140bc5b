import { MetricsRecorder, publish } from '../../functions/adapters/metrics.js';
import { handleHttp } from '../../functions/api/handler.js';
import type { ApiDeps } from '../../functions/api/routes.js';
import type { PredictionRecord } from '../../functions/core/combine.js';
import { InferenceTimeoutError, QuorumNotMetError } from '../../functions/core/errors.js';
import { loadManifest } from '../../functions/core/manifest.js';
import type { InferenceExecutor, InferenceInput } from '../../functions/core/ports.js';
import { captureEmf, summarise } from '../support/emf.js';
import { httpEvent } from '../support/http-event.js';
import { MemoryJobStore, MemoryPredictionStore } from '../support/memory-stores.js';

const manifest = loadManifest('models/manifest.json');
const ensemble = 'breast-cancer';
const members = manifest.ensembles.get(ensemble)?.members ?? [];
const row = (manifest.ensembles.get(ensemble)?.features ?? []).map((_, i) => i + 0.5);
const PREDICT = 'POST /v1/ensembles/{ensemble}/predictions';

/** Answers with the first member failed (a degraded answer) and stores it, or throws what it is told to. */
class FakeExecutor implements InferenceExecutor {
  failWith?: Error;
  constructor(private readonly store: MemoryPredictionStore) {}
  async run(input: InferenceInput): Promise<PredictionRecord> {
    if (this.failWith) throw this.failWith;
    const record: PredictionRecord = {
      id: input.id,
      ensemble: input.ensemble,
      // As the ensemble step records it when a canary served the request.
      ...(input.requested !== input.ensemble ? { routedFrom: input.requested } : {}),
      strategy: 'soft-vote',
      degraded: true,
      predictions: input.instances.map(() => ({
        label: 'benign',
        probabilities: { malignant: 0.3, benign: 0.7 },
        uncertainty: { agreement: 1, margin: 0.4, entropy: 0.881291, spread: 0 },
      })),
      members: input.members.map((m, i) => ({
        model: m.model,
        version: '1.0.0',
        kind: 'onnx',
        status: i === 0 ? 'failed' : 'ok',
        latencyMs: 1,
      })),
      createdAt: input.createdAt,
    };
    return (await this.store.putPrediction(record)).record;
  }
}

let store: MemoryPredictionStore;
let executor: FakeExecutor;
const deps = (): ApiDeps => ({
  manifest,
  store,
  jobs: new MemoryJobStore(),
  executor,
  maxInstances: 3,
  maxBodyBytes: 10_000,
  notReady: () => new Map(),
});

/** One request through the API handler; what its metrics wrote, as EMF lines. */
async function emitted(...args: Parameters<typeof httpEvent>) {
  const metrics = new MetricsRecorder();
  const response = await handleHttp(httpEvent(...args), deps, metrics);
  const { records: lines } = await captureEmf(() => publish(metrics, 'test'));
  return { status: response.statusCode, lines: lines.map(summarise) };
}

beforeEach(() => {
  store = new MemoryPredictionStore();
  executor = new FakeExecutor(store);
});

describe('API metrics, per prediction request', () => {
  it('counts a scored answer with its latency and degraded flag, naming the failed member in the metadata', async () => {
    const { status, lines } = await emitted(PREDICT, {
      pathParameters: { ensemble },
      body: { id: 'client-1', instances: [row] },
    });
    expect(status).toBe(200);
    expect(lines).toEqual([
      {
        dimensions: { stage: 'test', ensemble },
        metrics: {
          Requests: { unit: 'Count', values: [1] },
          QuorumMisses: { unit: 'Count', values: [0] },
          RequestLatency: { unit: 'Milliseconds', values: [expect.any(Number)] },
          DegradedAnswers: { unit: 'Count', values: [1] },
        },
        metadata: {
          httpStatus: 200,
          predictionId: 'client-1',
          degraded: true,
          replayed: false,
          failedMembers: `${members[0]}:failed`,
        },
      },
    ]);
  });

  it('counts a replayed client id as a replay, without a latency or a degraded sample', async () => {
    const first = await emitted(PREDICT, {
      pathParameters: { ensemble },
      body: { id: 'again', instances: [row] },
    });
    expect(first.status).toBe(200);
    const { lines } = await emitted(PREDICT, {
      pathParameters: { ensemble },
      body: { id: 'again', instances: [row] },
    });
    expect(Object.keys(lines[0]?.metrics ?? {})).toEqual(['Requests', 'QuorumMisses', 'IdempotentReplays']);
    expect(lines[0]?.metadata).toMatchObject({ replayed: true, predictionId: 'again' });
  });

  it('counts a quorum miss as one, with the failed members in the metadata', async () => {
    executor.failWith = new QuorumNotMetError('quorum not met', {
      details: {
        failed: [
          { model: 'bc-mlp', status: 'timeout' },
          { model: 'bc-logreg', status: 'failed' },
        ],
      },
    });
    const { status, lines } = await emitted(PREDICT, {
      pathParameters: { ensemble },
      body: { instances: [row] },
    });
    expect(status).toBe(503);
    expect(lines).toEqual([
      {
        dimensions: { stage: 'test', ensemble },
        metrics: { Requests: { unit: 'Count', values: [1] }, QuorumMisses: { unit: 'Count', values: [1] } },
        metadata: {
          httpStatus: 503,
          errorCode: 'quorum_not_met',
          failedMembers: 'bc-mlp:timeout,bc-logreg:failed',
        },
      },
    ]);
  });

  it('counts a bad request as a client error by code', async () => {
    const { status, lines } = await emitted(PREDICT, {
      pathParameters: { ensemble },
      body: { instances: [[1]] },
    });
    expect(status).toBe(400);
    expect(lines.map((l) => [l.dimensions, Object.keys(l.metrics)])).toEqual([
      [{ stage: 'test', ensemble }, ['Requests', 'QuorumMisses']],
      [{ stage: 'test', ensemble, code: 'invalid_request' }, ['ClientErrors']],
    ]);
  });

  it('counts a timeout as a server error by code', async () => {
    executor.failWith = new InferenceTimeoutError('the inference state machine timed out');
    const { status, lines } = await emitted(PREDICT, {
      pathParameters: { ensemble },
      body: { instances: [row] },
    });
    expect(status).toBe(504);
    expect(lines[1]).toMatchObject({
      dimensions: { ensemble, code: 'inference_timeout' },
      metrics: { ServerErrors: { values: [1] } },
    });
  });

  it('counts a crash as internal_error, never its message', async () => {
    executor.failWith = new TypeError('cannot read properties of undefined');
    const { status, lines } = await emitted(PREDICT, {
      pathParameters: { ensemble },
      body: { instances: [row] },
    });
    expect(status).toBe(500);
    expect(lines[1]?.dimensions.code).toBe('internal_error');
    expect(JSON.stringify(lines)).not.toContain('cannot read');
  });

  it("never makes a client's path text a dimension: an ensemble that is not served counts as unknown", async () => {
    const { status, lines } = await emitted(PREDICT, {
      pathParameters: { ensemble: 'made-up-by-a-client' },
      body: { instances: [row] },
    });
    expect(status).toBe(404);
    expect(lines.map((l) => l.dimensions.ensemble)).toEqual(['unknown', 'unknown']);
    expect(JSON.stringify(lines)).not.toContain('made-up-by-a-client');
  });

  it('counts Open Inference Protocol requests under the ensemble or member they name', async () => {
    const { status, lines } = await emitted('POST /v2/models/{name}/infer', {
      pathParameters: { name: 'bc-logreg' },
      body: { inputs: [{ name: 'input', shape: [1, row.length], datatype: 'FP32', data: row }] },
    });
    expect(status).toBe(200);
    expect(lines[0]?.dimensions).toEqual({ stage: 'test', ensemble: 'bc-logreg' });
  });

  it('records nothing for routes that do not score', async () => {
    for (const route of ['GET /v1/ensembles', 'GET /v2/health/ready']) {
      const { status, lines } = await emitted(route);
      expect(status).toBe(200);
      expect(lines).toEqual([]);
    }
  });
});
