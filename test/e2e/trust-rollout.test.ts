import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import { canaryBucket } from '../../functions/core/canary.js';
import {
  type EnsembleSpec,
  getModel,
  loadManifest,
  localOnnx,
  type OnnxModelSpec,
} from '../../functions/core/manifest.js';
import { type MemberScores, strategies } from '../../functions/core/strategies.js';
import { readDataset } from '../models/data.js';
import { clientIdOn } from '../support/canary.js';
import { http, type StackProcess, startStackProcess } from '../support/stack-process.js';

/**
 * The "done when", through `npm start` over HTTP: uncertainty on every row, lower agreement
 * where the members disagree; a broken shadow changes nothing but its own entry; a canary's share
 * of 200 requests; a client id that keeps its side. Everything is read from the manifest.
 */
const MANIFEST = 'models/manifest.json';
const manifest = loadManifest(MANIFEST);
const primary = [...manifest.ensembles.values()].find((e) => e.canary && e.shadow?.length) as EnsembleSpec;
if (!primary) throw new Error(`${MANIFEST} has no ensemble with both a shadow and a canary`);
const canary = manifest.ensembles.get(primary.canary?.ensemble as string) as EnsembleSpec;
const shadow = primary.shadow?.[0] as string;
const { rows } = readDataset('data/breast_cancer.csv');

let stack: StackProcess;
const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
const predict = (api: string, body: unknown, ensemble = primary.name) =>
  http('POST', `${api}/v1/ensembles/${ensemble}/predictions`, body);

beforeAll(async () => {
  stack = await startStackProcess(tempDir('fanout-trust-'));
}, 90_000);

afterAll(async () => {
  if (stack) expect(await stack.stop()).toBe(0);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** For each data-set row, how many counted members pick the soft-vote label (run in-process). */
async function memberAgreementByRow(): Promise<number[]> {
  const scorer = new OnnxScorer();
  try {
    const scores: MemberScores[] = [];
    for (const id of primary.members) {
      scores.push({
        model: id,
        weight: 1,
        probabilities: await scorer.score(localOnnx(getModel(manifest, id)) as OnnxModelSpec, rows),
      });
    }
    const combined = strategies[primary.strategy](scores, {
      classes: primary.labels.length,
      rows: rows.length,
      members: primary.members,
      stacking: primary.stacking,
    });
    return rows.map((_, i) => {
      const label = combined.labelIndex[i] as number;
      return scores.filter((s) => {
        const p = s.probabilities[i] as number[];
        return p.indexOf(Math.max(...p)) === label;
      }).length;
    });
  } finally {
    await scorer.close();
  }
}

describe('uncertainty on every prediction', () => {
  it('answers agreement, margin, entropy and spread for every row; lower agreement where members disagree', async () => {
    const agreeing = await memberAgreementByRow();
    const n = primary.members.length;
    const unanimous = agreeing.indexOf(n);
    const fewest = Math.min(...agreeing);
    const split = agreeing.indexOf(fewest);
    expect(fewest).toBeLessThan(n);
    const res = await predict(stack.api, {
      id: clientIdOn(primary, 'primary', 'trust-uncertainty'),
      instances: [rows[unanimous], rows[split]],
    });
    expect(res.status).toBe(200);
    expect(res.body.ensemble).toBe(primary.name);
    for (const p of res.body.predictions) {
      expect(Object.keys(p.uncertainty)).toEqual(['agreement', 'margin', 'entropy', 'spread']);
      for (const v of Object.values(p.uncertainty) as number[]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
    }
    const [agree, disagree] = res.body.predictions.map(
      (p: { uncertainty: Record<string, number> }) => p.uncertainty,
    );
    expect(agree.agreement).toBe(1);
    expect(disagree.agreement).toBeCloseTo(fewest / n, 12);
    expect(disagree.agreement).toBeLessThan(agree.agreement);
    expect(disagree.spread).toBeGreaterThan(agree.spread);
    expect(disagree.entropy).toBeGreaterThan(agree.entropy);
    // The stored record carries the same figures.
    const stored = await http('GET', `${stack.api}/v1/predictions/${res.body.id}`);
    expect(stored.body.predictions).toEqual(res.body.predictions);
  });
});

describe('a canary ensemble', () => {
  it(`sends its share of 200 requests (${primary.canary?.percent}%) to the canary, by client id`, async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `trust-split-${i}`);
    const served: string[] = [];
    for (let i = 0; i < ids.length; i += 8) {
      const answers = await Promise.all(
        ids.slice(i, i + 8).map((id) => predict(stack.api, { id, instances: [rows[i % rows.length]] })),
      );
      for (const a of answers) {
        expect(a.status).toBe(200);
        if (a.body.ensemble === canary.name) expect(a.body.routedFrom).toBe(primary.name);
        else expect(a.body.ensemble).toBe(primary.name);
        served.push(a.body.ensemble);
      }
    }
    const onCanary = served.filter((e) => e === canary.name).length;
    // The split is the routing function's, exactly: deterministic by id.
    const threshold = (primary.canary?.percent as number) * 100;
    expect(onCanary).toBe(ids.filter((id) => canaryBucket(primary.name, id) < threshold).length);
    expect(onCanary).toBeGreaterThanOrEqual(10); // 5% of 200
    expect(onCanary).toBeLessThanOrEqual(40); // 20% of 200
  }, 120_000);

  it('keeps a repeated client id on the same side every time, replayed or not', async () => {
    const id = clientIdOn(primary, 'canary', 'trust-repeat');
    const sides = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await predict(stack.api, { id, instances: [rows[0]] });
      expect(res.status).toBe(200);
      sides.add(res.body.ensemble);
      if (i > 0) expect(res.headers.get('idempotent-replay')).toBe('true');
    }
    expect([...sides]).toEqual([canary.name]);
    // The Open Inference Protocol stores nothing: the request id alone keeps the side.
    const oipSides = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await http('POST', `${stack.api}/v2/models/${primary.name}/infer`, {
        id,
        inputs: [{ name: 'input', shape: [1, primary.features.length], datatype: 'FP32', data: rows[i] }],
        outputs: [{ name: 'label' }, { name: 'uncertainty' }],
      });
      expect(res.status).toBe(200);
      expect(res.body.model_name).toBe(primary.name);
      expect(res.body.outputs[1]).toMatchObject({ name: 'uncertainty', shape: [1, 4] });
      oipSides.add(res.body.parameters.ensemble);
    }
    expect([...oipSides]).toEqual([canary.name]);
  });

  it('lists the shadow and the canary in GET /v1/ensembles and the OIP metadata', async () => {
    const list = await http('GET', `${stack.api}/v1/ensembles`);
    const p = list.body.ensembles.find((e: { name: string }) => e.name === primary.name);
    expect(p.shadow.map((m: { model: string }) => m.model)).toEqual(primary.shadow);
    expect(p.members.map((m: { model: string }) => m.model)).not.toContain(shadow);
    expect(p.canary).toEqual(primary.canary);
    const meta = await http('GET', `${stack.api}/v2/models/${primary.name}`);
    expect(meta.body.parameters).toMatchObject({ shadow: primary.shadow, canary: primary.canary });
  });
});

/** The manifest with absolute paths, the shadow's ONNX file replaced by a file that is not ONNX. */
function manifestWithBrokenShadow(dir: string): string {
  const doc = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  const base = resolve(dirname(MANIFEST));
  for (const m of doc.models) {
    if (m.file) m.file = resolve(base, m.file);
    if (m.localFile) m.localFile = resolve(base, m.localFile);
    if (m.id === shadow) m.file = resolve('test/e2e/fixtures/broken.onnx');
  }
  for (const e of doc.ensembles) if (e.stacking) e.stacking.file = resolve(base, e.stacking.file);
  const path = join(dir, 'manifest.json');
  writeFileSync(path, JSON.stringify(doc));
  return path;
}

describe('a shadow member whose file is broken', () => {
  let broken: StackProcess;
  beforeAll(async () => {
    const dir = tempDir('fanout-broken-shadow-');
    broken = await startStackProcess(join(dir, 'data'), { FANOUT_MANIFEST: manifestWithBrokenShadow(dir) });
  }, 90_000);
  afterAll(async () => {
    if (broken) expect(await broken.stop()).toBe(0);
  });

  it('changes nothing in the answer but its own member entry', async () => {
    const body = { id: clientIdOn(primary, 'primary', 'trust-broken'), instances: rows.slice(0, 8) };
    const [good, bad] = await Promise.all([predict(stack.api, body), predict(broken.api, body)]);
    expect(good.status).toBe(200);
    expect(bad.status).toBe(200);
    const comparable = (b: Record<string, unknown>) => ({
      ...b,
      createdAt: undefined,
      members: (b.members as Record<string, unknown>[])
        .filter((m) => m.model !== shadow)
        .map((m) => ({ ...m, latencyMs: undefined })),
    });
    expect(comparable(bad.body)).toEqual(comparable(good.body));
    expect(bad.body.degraded).toBe(false);
    const entry = bad.body.members.find((m: { model: string }) => m.model === shadow);
    // Refused by the start check (or failing to load): either way named, and only its own entry.
    expect(entry).toMatchObject({ shadow: true, status: 'failed', error: { name: expect.any(String) } });
    expect(entry.error.message).toContain(shadow);
    expect(good.body.members.find((m: { model: string }) => m.model === shadow)).toMatchObject({
      shadow: true,
      status: 'ok',
    });
  });
});
