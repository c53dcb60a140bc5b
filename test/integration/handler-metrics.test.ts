import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { METRICS, type MetricSpec } from '../../functions/adapters/metrics.js';
import { loadManifest, type Manifest } from '../../functions/core/manifest.js';
import { type EmfRecord, parseEmf } from '../../local/observability/emf.js';
import { onEmfLines } from '../../local/observability/stdout-hook.js';
import { type LocalStack, REPO_ROOT, startLocalStack } from '../../local/stack.js';

// Every handler, run by the local stack exactly as `npm start` runs it, writes the metrics of the
// catalog: names, units and dimensions checked on the EMF lines themselves.

const ENSEMBLE = 'breast-cancer';
const SLOW_TIMEOUT_SECONDS = 1;
const catalog = METRICS as Record<string, MetricSpec>;

let stack: LocalStack;
let dir: string;
let manifest: Manifest;
let slowMember: { id: string; endpoint: string };
const lines: string[] = [];
let stopListening = () => {};
const previousManifest = process.env.FANOUT_MANIFEST;

/** The bundled manifest (paths made absolute) with its SageMaker member given a 1 s timeout. */
function manifestWithShortTimeout(): string {
  const source = join(REPO_ROOT, 'models/manifest.json');
  const doc = JSON.parse(readFileSync(source, 'utf8'));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dirname(source), p));
  for (const m of doc.models) {
    if (m.file) m.file = abs(m.file);
    if (m.localFile) m.localFile = abs(m.localFile);
    if (m.kind === 'sagemaker') m.timeoutSeconds = SLOW_TIMEOUT_SECONDS;
  }
  for (const e of doc.ensembles) if (e.stacking?.file) e.stacking.file = abs(e.stacking.file);
  const file = join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

const records = () => lines.flatMap((l) => parseEmf(l) ?? []);
const has = (r: EmfRecord, name: string) => r.metrics.some((m) => m.name === name);
const value = (r: EmfRecord | undefined, name: string) => r?.metrics.find((m) => m.name === name)?.values;

async function waitFor<T>(what: string, find: () => T | undefined, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function predict(id: string, ensemble = ENSEMBLE, row?: number[]) {
  const features = manifest.ensembles.get(ensemble)?.features ?? [];
  const res = await fetch(`${stack.urls.api}/v1/ensembles/${ensemble}/predictions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, instances: [row ?? features.map((_, i) => 10 + i)] }),
  });
  return { status: res.status, body: (await res.json()) as { degraded: boolean; cached?: boolean } };
}

/** Uploads a CSV of `rows` for `ensemble` through S3, as a client would. */
async function upload(ensemble: string, name: string, rows: number[][], extra = '') {
  const features = manifest.ensembles.get(ensemble)?.features ?? [];
  const csv = [
    ['id', ...features.map((f) => (f.includes(',') ? `"${f}"` : f))].join(','),
    ...rows.map((r, i) => [`r${i}`, ...r].join(',')),
    ...(extra ? [extra] : []),
  ].join('\n');
  const s3 = new S3Client({
    endpoint: stack.urls.s3,
    region: stack.config.region,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  await s3.send(
    new PutObjectCommand({ Bucket: stack.bucket, Key: `incoming/${ensemble}/${name}`, Body: csv }),
  );
  s3.destroy();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-handler-metrics-'));
  process.env.FANOUT_MANIFEST = manifestWithShortTimeout();
  manifest = loadManifest(process.env.FANOUT_MANIFEST);
  const sagemaker = [...manifest.models.values()].find(
    (m) => m.kind === 'sagemaker' && manifest.ensembles.get(ENSEMBLE)?.members.includes(m.id),
  );
  if (sagemaker?.kind !== 'sagemaker') throw new Error(`${ENSEMBLE} has no SageMaker member to slow down`);
  slowMember = { id: sagemaker.id, endpoint: sagemaker.endpoint.name };
  stopListening = onEmfLines((line) => lines.push(line));
  stack = await startLocalStack({ port: 0, dataDir: join(dir, 'data'), quiet: true });
}, 60_000);

afterAll(async () => {
  stopListening();
  await stack?.stop();
  if (previousManifest === undefined) delete process.env.FANOUT_MANIFEST;
  else process.env.FANOUT_MANIFEST = previousManifest;
  rmSync(dir, { recursive: true, force: true });
});

describe('the metrics every handler writes', () => {
  it('a synchronous prediction: the API counts it, the ensemble step times every member', async () => {
    const { status } = await predict('metrics-ok');
    expect(status).toBe(200);
    const mine = await waitFor('member lines', () => {
      const found = records().filter((r) => r.metadata.predictionId === 'metrics-ok');
      return found.length > (manifest.ensembles.get(ENSEMBLE)?.members.length ?? 0) ? found : undefined;
    });
    const api = mine.find((r) => has(r, 'Requests'));
    expect(api?.dimensions).toEqual({ stage: 'local', ensemble: ENSEMBLE });
    expect(value(api, 'DegradedAnswers')).toEqual([0]);
    expect(value(api, 'QuorumMisses')).toEqual([0]);
    expect(value(api, 'RequestLatency')?.[0]).toBeGreaterThan(0);
    // A member's call line; its agreement line (below) has a `role` dimension besides.
    const callLine = (rs: typeof mine, model: string) =>
      rs.find((r) => r.dimensions.model === model && r.dimensions.role === undefined);
    for (const model of manifest.ensembles.get(ENSEMBLE)?.members ?? []) {
      const member = callLine(mine, model);
      expect([model, member?.dimensions]).toEqual([model, { stage: 'local', ensemble: ENSEMBLE, model }]);
      expect(value(member, 'MemberOk')).toEqual([1]);
      expect(value(member, 'MemberFailed')).toEqual([0]);
      expect(value(member, 'MemberTimedOut')).toEqual([0]);
      expect(value(member, 'MemberRows')).toEqual([1]);
      expect(value(member, 'MemberLatency')?.[0]).toBeGreaterThan(0);
    }
    // How each member, shadows included, agreed with the answer: one compared row each.
    const spec = manifest.ensembles.get(ENSEMBLE);
    const roles = [
      ...(spec?.members ?? []).map((m) => [m, 'counted']),
      ...(spec?.shadow ?? []).map((m) => [m, 'shadow']),
    ];
    for (const [model, role] of roles) {
      const agreement = mine.find((r) => r.dimensions.model === model && r.dimensions.role === role);
      expect([model, value(agreement, 'MemberRowsCompared')]).toEqual([model, [1]]);
      expect(value(agreement, 'MemberRowsAgreed')?.[0]).toBeLessThanOrEqual(1);
    }
    if (spec?.canary) {
      const canary = mine.find((r) => r.dimensions.canary === spec.canary?.ensemble);
      expect(value(canary, 'CanaryRowsCompared')).toEqual([1]);
    }
  });

  it('a member past its timeout: counted as timed out, and the answer as degraded', async () => {
    stack.sagemaker.setFault(slowMember.endpoint, { kind: 'delay', ms: SLOW_TIMEOUT_SECONDS * 1000 + 1500 });
    try {
      const { status, body } = await predict('metrics-slow');
      expect(status).toBe(200);
      expect(body.degraded).toBe(true);
    } finally {
      stack.sagemaker.setFault(slowMember.endpoint, undefined);
    }
    const slow = await waitFor('the slow member', () =>
      records().find(
        (r) => r.metadata.predictionId === 'metrics-slow' && r.dimensions.model === slowMember.id,
      ),
    );
    expect(value(slow, 'MemberTimedOut')).toEqual([1]);
    expect(value(slow, 'MemberOk')).toEqual([0]);
    const api = records().find((r) => r.metadata.predictionId === 'metrics-slow' && has(r, 'Requests'));
    expect(value(api, 'DegradedAnswers')).toEqual([1]);
    expect(api?.metadata.failedMembers).toBe(`${slowMember.id}:timeout`);
  }, 30_000);

  it('a batch upload: the trigger, prepare, store and finalize steps count the job, its rows and its members', async () => {
    const features = manifest.ensembles.get(ENSEMBLE)?.features ?? [];
    const rows = Array.from({ length: 30 }, (_, i) => features.map((_, j) => 5 + i + j));
    await upload(ENSEMBLE, 'metrics.csv', rows, 'broken,1,2');
    const finished = await waitFor('the finished job', () =>
      records().find((r) => has(r, 'BatchJobsSucceeded') && r.dimensions.ensemble === ENSEMBLE),
    );
    const jobId = finished.metadata.jobId;
    expect(typeof jobId).toBe('string');
    const job = records().filter((r) => r.metadata.jobId === jobId);
    expect(
      value(
        job.find((r) => has(r, 'BatchJobsStarted')),
        'BatchJobsStarted',
      ),
    ).toEqual([1]);
    expect(
      value(
        job.find((r) => has(r, 'BatchRowsReceived')),
        'BatchRowsReceived',
      ),
    ).toEqual([31]);
    expect(
      value(
        job.find((r) => has(r, 'BatchRowsStored')),
        'BatchRowsStored',
      ),
    ).toEqual([30]);
    expect(value(finished, 'BatchRowsOk')).toEqual([30]);
    expect(value(finished, 'BatchRowsFailed')).toEqual([1]);
    expect(value(finished, 'BatchRowsDegraded')).toEqual([0]);
    expect(value(finished, 'BatchRowsPerSecond')?.[0]).toBeGreaterThan(0);
    expect(value(finished, 'BatchJobDuration')?.[0]).toBeGreaterThan(0);
    for (const model of manifest.ensembles.get(ENSEMBLE)?.members ?? []) {
      const member = job.find((r) => r.dimensions.model === model && r.dimensions.role === undefined);
      expect([model, value(member, 'MemberRows')]).toEqual([model, [30]]);
      expect(value(member, 'MemberBatchLatency')?.[0]).toBeGreaterThan(0);
      expect(value(member, 'MemberLatency')).toBeUndefined();
    }
  }, 90_000);

  it('the result cache: the API counts a miss then a hit per request, the batch plan counts distinct rows', async () => {
    // An ensemble of the manifest with a cache (the bundled one has some), run through the stack.
    const cached = [...manifest.ensembles.values()].find((e) => e.cache);
    if (!cached) throw new Error('the manifest has no ensemble with a result cache');
    const seen = cached.features.map((_, i) => 100 + i);
    expect((await predict('cache-miss', cached.name, seen)).body.cached).toBeUndefined();
    expect((await predict('cache-hit', cached.name, seen)).body.cached).toBe(true);
    const sync = (id: string) =>
      records().find((r) => r.metadata.predictionId === id && r.dimensions.path === 'sync');
    const miss = await waitFor('the miss', () => sync('cache-miss'));
    expect(miss.dimensions).toEqual({ stage: 'local', ensemble: cached.name, path: 'sync' });
    expect([value(miss, 'CacheHits'), value(miss, 'CacheMisses')]).toEqual([[0], [1]]);
    const hit = await waitFor('the hit', () => sync('cache-hit'));
    expect([value(hit, 'CacheHits'), value(hit, 'CacheMisses')]).toEqual([[1], [0]]);
    const request = records().find((r) => r.metadata.predictionId === 'cache-hit' && has(r, 'Requests'));
    expect(request?.metadata).toMatchObject({ cached: true });
    // A batch: the cached row twice and two new rows, one of them twice: 3 distinct, 1 in the cache.
    const fresh = (k: number) => cached.features.map((_, i) => 200 + k + i);
    await upload(cached.name, 'cached.csv', [seen, fresh(1), seen, fresh(2), fresh(2)]);
    const finished = await waitFor('the cached job', () =>
      records().find((r) => has(r, 'BatchJobsSucceeded') && r.dimensions.ensemble === cached.name),
    );
    const job = records().filter((r) => r.metadata.jobId === finished.metadata.jobId);
    const plan = job.find((r) => r.dimensions.path === 'batch');
    expect(plan?.dimensions).toEqual({ stage: 'local', ensemble: cached.name, path: 'batch' });
    expect([value(plan, 'CacheHits'), value(plan, 'CacheMisses')]).toEqual([[1], [2]]);
    const stored = job.find((r) => has(r, 'BatchRowsStored'));
    expect(stored?.metadata).toMatchObject({ rowsCached: 2, rowsScored: 2 });
    expect(finished.metadata).toMatchObject({ rowsCached: 2, rowsScored: 2 });
    expect(records().some((r) => has(r, 'CacheErrors'))).toBe(false);
  }, 90_000);

  it('every line: the catalog names, units and dimensions (plus the stage), and a cold start per function', () => {
    const all = records();
    expect(all.length).toBeGreaterThan(20);
    for (const r of all) {
      expect(r.namespace).toBe('fanout');
      expect(r.dimensions.stage).toBe('local');
      for (const m of r.metrics) {
        const spec = catalog[m.name];
        expect([m.name, spec !== undefined]).toEqual([m.name, true]);
        expect([m.name, m.unit]).toEqual([m.name, spec?.unit]);
        expect([m.name, Object.keys(r.dimensions)]).toEqual([m.name, ['stage', ...(spec?.dimensions ?? [])]]);
      }
    }
    // Every function at least once; one with several instances (the runner's workers) starts each cold.
    const cold = new Set(all.filter((r) => has(r, 'ColdStarts')).map((r) => r.dimensions.function));
    expect([...cold].sort()).toEqual(stack.config.functions.map((f) => f.key).sort());
  });
});
