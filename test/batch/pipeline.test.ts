import { readFileSync } from 'node:fs';
import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import { finalize } from '../../functions/batch-finalize/finalize.js';
import { planBatch } from '../../functions/batch-plan/plan.js';
import { type PrepareEvent, prepare } from '../../functions/batch-prepare/prepare.js';
import { storeBatch } from '../../functions/batch-store/store-batch.js';
import { startJob } from '../../functions/batch-trigger/start-job.js';
import type { GoodRow } from '../../functions/core/batch-rows.js';
import { type JobRecord, jobKeys } from '../../functions/core/jobs.js';
import { readLines } from '../../functions/core/lines.js';
import { type Manifest, parseManifest } from '../../functions/core/manifest.js';
import { etagOf, MemoryJobStore, MemoryObjectStore, MemoryResultCache } from '../support/memory-stores.js';
import {
  BC_BELOW_QUORUM,
  BC_LABELS,
  BC_QUORUM,
  bcFeatures,
  breastCancer,
  breastCancerCsv,
  breastCancerJsonl,
  csvRows,
  FakeStarter,
  failedMember,
  idOf,
  MANIFEST_PATH,
  manifest,
  scoreMembers,
  type Upload,
} from './fixtures.js';

const BUCKET = 'data-bucket';
/** The batch state machine's ItemBatcher: MaxItemsPerBatch. */
const BATCH = 250;

let scorer: OnnxScorer;
let jobs: MemoryJobStore;
let objects: MemoryObjectStore;

beforeAll(() => {
  scorer = new OnnxScorer();
});

afterAll(async () => {
  await scorer.close();
});

beforeEach(() => {
  jobs = new MemoryJobStore();
  objects = new MemoryObjectStore(BUCKET);
});

/** What a batch's member results look like once some members fail: model → replacement. */
type Sabotage = (batchIndex: number, model: string) => boolean;

/** How a job runs: the manifest served, the result cache, members failing. */
interface RunOptions {
  sabotage?: Sabotage;
  manifest?: Manifest;
  cache?: MemoryResultCache;
  /** Counts the rows each batch sent to the members. */
  scoredPerBatch?: number[];
}

/**
 * The batch workflow without AWS: the trigger starts the job, Prepare normalises the upload, the
 * rows are read back and batched like the Distributed Map's ItemReader and ItemBatcher, each batch
 * is planned (repeated and cached rows are not scored), every member scores the rest with the real
 * ONNX models, StoreBatch stores it, Finalize ends the job: the child execution's states in order.
 */
async function runJob(key: string, upload: Upload, options: RunOptions = {}): Promise<JobRecord> {
  const served = options.manifest ?? manifest();
  const sabotage = options.sabotage ?? (() => false);
  objects.objects.set(key, Buffer.from(upload.text));
  const starter = new FakeStarter();
  const trigger = await startJob(
    { bucket: BUCKET, key, etag: etagOf(upload.text), size: Buffer.byteLength(upload.text) },
    { manifest: served, jobs, objects, starter },
  );
  expect(trigger.result).toBe('started');
  const input = starter.calls[0]?.input as PrepareEvent;
  const prepared = await prepare(input, { manifest: served, jobs, objects });

  const items: GoodRow[] = [];
  for await (const { text } of readLines(await objects.read(prepared.rowsKey))) {
    if (text !== '') items.push(JSON.parse(text) as GoodRow);
  }
  const models = prepared.members.map((m) => m.model);
  for (let b = 0; b * BATCH < items.length; b++) {
    const batch = items.slice(b * BATCH, (b + 1) * BATCH);
    const plan = await planBatch(
      { jobId: input.jobId, ensemble: input.ensemble, members: prepared.members, items: batch },
      { manifest: served, cache: options.cache },
    );
    options.scoredPerBatch?.push(plan.scored);
    const outcomes =
      plan.scored > 0
        ? await scoreMembers(
            scorer,
            models,
            plan.instances.map((features) => ({ line: 0, id: '', features })),
          )
        : [];
    await storeBatch(
      {
        jobId: plan.jobId,
        ensemble: plan.ensemble,
        lines: plan.lines,
        ids: plan.ids,
        instances: plan.instances,
        source: plan.source,
        cached: plan.cached,
        members: outcomes.map((o) => (sabotage(b, o.model) ? failedMember(o.model) : o)),
      },
      { manifest: served, jobs, objects, cache: options.cache },
    );
  }
  return finalize(
    { jobId: input.jobId, bucket: BUCKET, ensemble: input.ensemble, prepared },
    { manifest: served, jobs, objects },
  );
}

/** Fraction of result rows whose label is the data set's target, joined on id. */
function accuracy(results: string[][]): number {
  const { targets } = breastCancer();
  const targetOf = new Map(targets.map((t, i) => [idOf(i), BC_LABELS[t]]));
  const right = results.filter(([id, label]) => targetOf.get(id as string) === label).length;
  return right / results.length;
}

describe('batch scoring end to end (core, no AWS)', () => {
  it.each([
    [
      'CSV with a shuffled header, an id column and 3 malformed rows',
      'incoming/breast-cancer/bc.csv',
      breastCancerCsv,
    ],
    ['JSON Lines with 2 malformed rows', 'incoming/breast-cancer/bc.jsonl', breastCancerJsonl],
  ])('scores the 569 rows of %s', async (_what, key, make) => {
    const upload = make();
    const bad = upload.badLines.length;
    const job = await runJob(key, upload);

    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      ensemble: 'breast-cancer',
      rowsTotal: 569 + bad,
      rowsOk: 569,
      rowsFailed: bad,
      rowsDegraded: 0,
      resultsLocation: `s3://${BUCKET}/results/${job.jobId}.csv`,
    });
    expect(jobs.rowsOf(job.jobId)).toHaveLength(569);

    const results = csvRows(objects.text(jobKeys.results(job.jobId)) as string);
    expect(results[0]).toEqual([
      'id',
      'label',
      'probability_malignant',
      'probability_benign',
      'degraded',
      'agreement',
      'margin',
      'entropy',
      'spread',
    ]);
    const rows = results.slice(1);
    expect(rows.map((r) => r[0])).toEqual(breastCancer().rows.map((_, i) => idOf(i)));
    expect(rows.every((r) => r[4] === 'false')).toBe(true);
    for (const r of rows) expect(Number(r[2]) + Number(r[3])).toBeCloseTo(1, 5);
    expect(accuracy(rows)).toBeGreaterThanOrEqual(0.95);

    // The DynamoDB items agree with the results file.
    const stored = new Map(jobs.rowsOf(job.jobId).map((r) => [r.rowId, r]));
    for (const [id, label, malignant] of rows) {
      expect(stored?.get(id as string)).toMatchObject({ label, degraded: false });
      expect(stored?.get(id as string)?.probabilities.malignant).toBe(Number(malignant));
    }

    const errors = csvRows(objects.text(jobKeys.errors(job.jobId)) as string);
    expect(errors[0]).toEqual(['line', 'id', 'reason']);
    expect(errors.slice(1).map((e) => Number(e[0]))).toEqual(upload.badLines);
  });

  it('keeps going when members fail: degraded rows above the quorum, batch errors below it', async () => {
    const upload = breastCancerCsv();
    const down = BC_BELOW_QUORUM;
    // Batch 1: one member down (the quorum holds); batch 2: enough down to miss the quorum.
    const job = await runJob('incoming/breast-cancer/bc.csv', upload, {
      sabotage: (b, model) => (b === 1 ? model === 'bc-mlp' : b === 2 && down.includes(model)),
    });

    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      rowsTotal: 572,
      rowsOk: 500,
      rowsFailed: 3 + 69,
      rowsDegraded: 250,
    });
    expect(jobs.rowsOf(job.jobId)).toHaveLength(500);

    const rows = csvRows(objects.text(jobKeys.results(job.jobId)) as string).slice(1);
    expect(rows).toHaveLength(500);
    expect(rows.slice(0, 250).every((r) => r[4] === 'false')).toBe(true);
    expect(rows.slice(250).every((r) => r[4] === 'true')).toBe(true);
    expect(jobs.rowsOf(job.jobId).find((r) => r.rowId === idOf(300))?.failedMembers).toEqual(['bc-mlp']);
    expect(accuracy(rows)).toBeGreaterThanOrEqual(0.95);

    const errors = csvRows(objects.text(jobKeys.errors(job.jobId)) as string).slice(1);
    expect(errors).toHaveLength(72);
    const quorum = errors.filter((e) => e[2]?.includes(`quorum is ${BC_QUORUM}`));
    expect(quorum.map((e) => e[1])).toEqual(
      breastCancer()
        .rows.slice(500)
        .map((_, i) => idOf(500 + i)),
    );
    for (const m of down) expect(quorum[0]?.[2]).toContain(m);
  });

  it('fails only the row with a value outside the float32 range, not its whole batch', async () => {
    const upload = breastCancerCsv();
    const lines = upload.text.split('\r\n');
    const at = (upload.lineOf[100] as number) - 1;
    // Column 0 of the shuffled header is the last feature, "worst fractal dimension".
    lines[at] = (lines[at] as string).replace(/^[^,]*/, '1e39');
    const job = await runJob('incoming/breast-cancer/bc.csv', { ...upload, text: lines.join('\r\n') });

    expect(job).toMatchObject({ status: 'SUCCEEDED', rowsTotal: 572, rowsOk: 568, rowsFailed: 4 });
    const errors = csvRows(objects.text(jobKeys.errors(job.jobId)) as string).slice(1);
    expect(errors.map((e) => e[1])).toContain(idOf(100));
  });
});

/** The bundled manifest with the result cache on for breast-cancer (what a user would write). */
function cachedManifest(): Manifest {
  const doc = JSON.parse(readFileSync(MANIFEST_PATH, 'utf8'));
  for (const e of doc.ensembles) e.cache = e.name === 'breast-cancer' ? { ttlSeconds: 3600 } : undefined;
  return parseManifest(doc, MANIFEST_PATH);
}

/** A CSV of the 569 rows three times over, spread so each batch holds repeats and new rows. */
function repeatedCsv(copies = 3): Upload & { sourceRow: number[] } {
  const { rows } = breastCancer();
  const n = rows.length * copies;
  // 7 is coprime with 569: the walk visits every row once per 569 steps, in a scattered order.
  const sourceRow = Array.from({ length: n }, (_, k) => (k * 7) % rows.length);
  const lines = [`id,${bcFeatures().join(',')}`];
  sourceRow.forEach((r, k) => {
    lines.push(`r${k},${(rows[r] as number[]).join(',')}`);
  });
  return { text: `${lines.join('\n')}\n`, badLines: [], lineOf: [], sourceRow };
}

describe('batch scoring with the result cache', () => {
  it('scores each distinct row of a file of repeated rows once; results complete, in order', async () => {
    const upload = repeatedCsv();
    const cache = new MemoryResultCache();
    const scoredPerBatch: number[] = [];
    const job = await runJob('incoming/breast-cancer/repeats.csv', upload, {
      manifest: cachedManifest(),
      cache,
      scoredPerBatch,
    });
    expect(job).toMatchObject({ status: 'SUCCEEDED', rowsTotal: 1707, rowsOk: 1707, rowsFailed: 0 });
    expect(job.rowsScored).toBe(569);
    expect(scoredPerBatch.reduce((a, b) => a + b, 0)).toBe(569);
    expect(cache.entries.size).toBe(569);

    const rows = csvRows(objects.text(jobKeys.results(job.jobId)) as string).slice(1);
    expect(rows.map((r) => r[0])).toEqual(upload.sourceRow.map((_, k) => `r${k}`));
    // Every copy of a row has exactly the answer of its first copy, scored or from the cache.
    const firstAnswer = new Map<number, string>();
    rows.forEach((r, k) => {
      const answer = r.slice(1).join(',');
      const src = upload.sourceRow[k] as number;
      if (!firstAnswer.has(src)) firstAnswer.set(src, answer);
      expect(answer).toBe(firstAnswer.get(src));
    });
    expect(
      accuracy(rows.map((r, k) => [idOf(upload.sourceRow[k] as number), ...r.slice(1)])),
    ).toBeGreaterThan(0.95);
    // Rows read from the cache entries say so in DynamoDB; the counter agrees.
    const stored = jobs.rowsOf(job.jobId);
    expect(stored).toHaveLength(1707);
    expect(stored.filter((r) => r.cached).length).toBe(job.rowsCached);
    expect(job.rowsCached).toBeGreaterThan(0);
  });

  it('answers a second upload of the same rows from the cache without scoring anything', async () => {
    const cache = new MemoryResultCache();
    const first = await runJob('incoming/breast-cancer/a.csv', repeatedCsv(1), {
      manifest: cachedManifest(),
      cache,
    });
    jobs = new MemoryJobStore();
    const scoredPerBatch: number[] = [];
    const second = await runJob('incoming/breast-cancer/b.csv', repeatedCsv(1), {
      manifest: cachedManifest(),
      cache,
      scoredPerBatch,
    });
    expect(second).toMatchObject({ status: 'SUCCEEDED', rowsOk: 569, rowsCached: 569, rowsScored: 0 });
    expect(scoredPerBatch).toEqual([0, 0, 0]);
    const a = csvRows(objects.text(jobKeys.results(first.jobId)) as string);
    const b = csvRows(objects.text(jobKeys.results(second.jobId)) as string);
    expect(b).toEqual(a);
  });

  it('gives the same results file with the cache as without it', async () => {
    const upload = repeatedCsv(2);
    const plain = await runJob('incoming/breast-cancer/plain.csv', upload);
    expect(plain.rowsCached).toBe(0);
    const cached = await runJob('incoming/breast-cancer/cached.csv', upload, {
      manifest: cachedManifest(),
      cache: new MemoryResultCache(),
    });
    expect(csvRows(objects.text(jobKeys.results(cached.jobId)) as string)).toEqual(
      csvRows(objects.text(jobKeys.results(plain.jobId)) as string),
    );
  });

  it('does not cache rows of a degraded batch, and still answers cached rows when a batch fails', async () => {
    const cache = new MemoryResultCache();
    // Batch 0 with a member down: degraded, so nothing of it is cached.
    await runJob('incoming/breast-cancer/a.csv', repeatedCsv(1), {
      manifest: cachedManifest(),
      cache,
      sabotage: (b, model) => b === 0 && model === 'bc-mlp',
    });
    expect(cache.entries.size).toBe(569 - 250);
    // Now every member of every batch fails: rows in the cache are answered, the others fail.
    jobs = new MemoryJobStore();
    const job = await runJob('incoming/breast-cancer/b.csv', repeatedCsv(1), {
      manifest: cachedManifest(),
      cache,
      sabotage: () => true,
    });
    expect(job).toMatchObject({ status: 'SUCCEEDED', rowsOk: 319, rowsFailed: 250, rowsCached: 319 });
    const errors = csvRows(objects.text(jobKeys.errors(job.jobId)) as string).slice(1);
    expect(errors.map((e) => e[1])).toEqual(Array.from({ length: 250 }, (_, k) => `r${k}`));
  });

  it('scores the batch uncached when the cache cannot be read', async () => {
    const cache = new MemoryResultCache();
    await runJob('incoming/breast-cancer/a.csv', repeatedCsv(1), { manifest: cachedManifest(), cache });
    cache.failReads = new Error('throttled');
    jobs = new MemoryJobStore();
    const job = await runJob('incoming/breast-cancer/b.csv', repeatedCsv(1), {
      manifest: cachedManifest(),
      cache,
    });
    expect(job).toMatchObject({ status: 'SUCCEEDED', rowsOk: 569, rowsCached: 0, rowsScored: 569 });
  });

  it('scores a repeated row once per batch for an ensemble without a cache, without using the store', async () => {
    const cache = new MemoryResultCache();
    const scoredPerBatch: number[] = [];
    const job = await runJob('incoming/breast-cancer/r.csv', repeatedCsv(), { cache, scoredPerBatch });
    expect(job.rowsCached).toBe(0);
    expect(job.rowsOk).toBe(1707);
    expect(scoredPerBatch.every((n) => n <= 250)).toBe(true);
    expect(job.rowsScored).toBe(scoredPerBatch.reduce((a, b) => a + b, 0));
    expect(cache.reads).toEqual([]);
    expect(cache.writes).toEqual([]);
  });
});
