import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import { finalize } from '../../functions/batch-finalize/finalize.js';
import { type PrepareEvent, prepare } from '../../functions/batch-prepare/prepare.js';
import { storeBatch } from '../../functions/batch-store/store-batch.js';
import { startJob } from '../../functions/batch-trigger/start-job.js';
import type { GoodRow } from '../../functions/core/batch-rows.js';
import { type JobRecord, jobKeys } from '../../functions/core/jobs.js';
import { readLines } from '../../functions/core/lines.js';
import { MemoryJobStore, MemoryObjectStore } from '../support/memory-stores.js';
import {
  BC_BELOW_QUORUM,
  BC_LABELS,
  BC_QUORUM,
  breastCancer,
  breastCancerCsv,
  breastCancerJsonl,
  csvRows,
  FakeStarter,
  failedMember,
  idOf,
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

/**
 * The batch workflow without AWS: the trigger starts the job, Prepare normalises the upload, the
 * rows are read back and batched like the Distributed Map's ItemReader and ItemBatcher, every
 * member scores each batch with the real ONNX models, StoreBatch stores it, Finalize ends the job.
 */
async function runJob(key: string, upload: Upload, sabotage: Sabotage = () => false): Promise<JobRecord> {
  objects.objects.set(key, Buffer.from(upload.text));
  const starter = new FakeStarter();
  const trigger = await startJob(
    { bucket: BUCKET, key, etag: '"abc123"', size: Buffer.byteLength(upload.text) },
    { manifest: manifest(), jobs, objects, starter },
  );
  expect(trigger.result).toBe('started');
  const input = starter.calls[0]?.input as PrepareEvent;
  const prepared = await prepare(input, { manifest: manifest(), jobs, objects });

  const items: GoodRow[] = [];
  for await (const { text } of readLines(await objects.read(prepared.rowsKey))) {
    if (text !== '') items.push(JSON.parse(text) as GoodRow);
  }
  const models = prepared.members.map((m) => m.model);
  for (let b = 0; b * BATCH < items.length; b++) {
    const batch = items.slice(b * BATCH, (b + 1) * BATCH);
    const outcomes = await scoreMembers(scorer, models, batch);
    await storeBatch(
      {
        jobId: input.jobId,
        ensemble: input.ensemble,
        lines: batch.map((r) => r.line),
        ids: batch.map((r) => r.id),
        members: outcomes.map((o) => (sabotage(b, o.model) ? failedMember(o.model) : o)),
      },
      { manifest: manifest(), jobs, objects },
    );
  }
  return finalize(
    { jobId: input.jobId, bucket: BUCKET, ensemble: input.ensemble, prepared },
    { manifest: manifest(), jobs, objects },
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
    expect(jobs.rows.get(job.jobId)?.size).toBe(569);

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
    const stored = jobs.rows.get(job.jobId);
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
    const job = await runJob('incoming/breast-cancer/bc.csv', upload, (b, model) =>
      b === 1 ? model === 'bc-mlp' : b === 2 && down.includes(model),
    );

    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      rowsTotal: 572,
      rowsOk: 500,
      rowsFailed: 3 + 69,
      rowsDegraded: 250,
    });
    expect(jobs.rows.get(job.jobId)?.size).toBe(500);

    const rows = csvRows(objects.text(jobKeys.results(job.jobId)) as string).slice(1);
    expect(rows).toHaveLength(500);
    expect(rows.slice(0, 250).every((r) => r[4] === 'false')).toBe(true);
    expect(rows.slice(250).every((r) => r[4] === 'true')).toBe(true);
    expect(jobs.rows.get(job.jobId)?.get(idOf(300))?.failedMembers).toEqual(['bc-mlp']);
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
