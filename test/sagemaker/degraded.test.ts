import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifest } from '../../functions/core/manifest.js';
import { fanOutMembers, resolveTarget } from '../../functions/core/targets.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { readDataset } from '../models/data.js';
import { clientIdOn } from '../support/canary.js';

const SAGEMAKER_MEMBER = 'bc-gradient-boosting';
const ENDPOINT = 'fanout-bc-gradient-boosting';
const manifest = loadManifest('models/manifest.json');
const ensemble = resolveTarget(manifest, 'breast-cancer', false);
/** Every model of the fan-out but the SageMaker one (shadows included): all ONNX. */
const ONNX_MEMBERS = fanOutMembers(manifest, ensemble)
  .map((m) => m.model)
  .filter((m) => m !== SAGEMAKER_MEMBER);
const { rows } = readDataset('data/breast_cancer.csv');

interface Member {
  model: string;
  kind?: string;
  status: string;
  error?: { name: string; message: string };
  predictions?: unknown;
}
interface Answer {
  degraded: boolean;
  predictions: { label: string; probabilities: Record<string, number> }[];
  members: Member[];
}

let stack: LocalStack;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fanout-degraded-'));
  stack = await startLocalStack({ port: 0, dataDir, quiet: true });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** One prediction request over HTTP, as a client makes it (with an id the canary leaves alone). */
async function predict(): Promise<{ status: number; body: Answer }> {
  const res = await fetch(`${stack.urls.api}/v1/ensembles/${ensemble.name}/predictions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: clientIdOn(ensemble, 'primary', 'degraded'), instances: rows.slice(0, 5) }),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

const byModel = (members: Member[]) => new Map(members.map((m) => [m.model, m]));

describe('the breast-cancer ensemble with its SageMaker member (local stack over HTTP)', () => {
  it('answers with every member ok, the SageMaker one served as kind sagemaker', async () => {
    const { status, body } = await predict();
    expect(status).toBe(200);
    expect(body.degraded).toBe(false);
    expect(body.predictions).toHaveLength(5);
    const members = byModel(body.members);
    expect(members.size).toBe(ONNX_MEMBERS.length + 1);
    expect(members.get(SAGEMAKER_MEMBER)).toMatchObject({ status: 'ok', kind: 'sagemaker' });
    for (const id of ONNX_MEMBERS) expect(members.get(id)).toMatchObject({ status: 'ok', kind: 'onnx' });
  });

  it('degrades instead of failing when the SageMaker endpoint reports a model error', async () => {
    stack.sagemaker.setFault(ENDPOINT, { kind: 'model-error', status: 500, message: 'boom' });
    try {
      const { status, body } = await predict();
      expect(status).toBe(200);
      expect(body.degraded).toBe(true);
      expect(body.predictions).toHaveLength(5);
      const members = byModel(body.members);
      const failed = members.get(SAGEMAKER_MEMBER);
      expect(failed?.status).toBe('failed');
      expect(failed?.error?.message).toContain(ENDPOINT);
      expect(failed?.error?.message).toContain('ModelError');
      expect(failed?.error?.message).toContain('boom');
      for (const id of ONNX_MEMBERS) expect(members.get(id)?.status).toBe('ok');
    } finally {
      stack.sagemaker.setFault(ENDPOINT, undefined);
    }
  });

  it('is whole again once the endpoint recovers', async () => {
    const { status, body } = await predict();
    expect(status).toBe(200);
    expect(body.degraded).toBe(false);
    expect(body.members.every((m) => m.status === 'ok')).toBe(true);
  });
});
