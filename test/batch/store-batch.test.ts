import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import { resultsHeader, type StoreBatchEvent, storeBatch } from '../../functions/batch-store/store-batch.js';
import type { AgreementReport } from '../../functions/core/agreement.js';
import type { GoodRow } from '../../functions/core/batch-rows.js';
import { UpstreamError, ValidationError } from '../../functions/core/errors.js';
import { batchCountsFromMetadata, jobKeys } from '../../functions/core/jobs.js';
import type { EnsembleSpec } from '../../functions/core/manifest.js';
import type { MemberOutcome } from '../../functions/core/outcomes.js';
import { MemoryJobStore, MemoryObjectStore } from '../support/memory-stores.js';
import {
  BC_BELOW_QUORUM,
  BC_LABELS,
  BC_MEMBERS,
  BC_QUORUM,
  breastCancer,
  csvRows,
  failedMember,
  idOf,
  manifest,
  scoreMembers,
} from './fixtures.js';

const JOB = 'job-store-test';
/** 40 data-set rows from index 100, as lines 102..141 of an upload without an id column. */
const FIRST = 100;
const COUNT = 40;

let scorer: OnnxScorer;
let rows: GoodRow[];
let outcomes: MemberOutcome[];
let shadows: string[];
let jobs: MemoryJobStore;
let objects: MemoryObjectStore;

beforeAll(async () => {
  scorer = new OnnxScorer();
  const data = breastCancer();
  rows = data.rows
    .slice(FIRST, FIRST + COUNT)
    .map((features, i) => ({ line: FIRST + i + 2, id: idOf(FIRST + i), features }));
  // The breast-cancer fan-out as the manifest declares it: counted members, then shadows.
  const bc = manifest().ensembles.get('breast-cancer') as EnsembleSpec;
  shadows = bc.shadow ?? [];
  outcomes = await scoreMembers(scorer, [...bc.members, ...shadows], rows);
});

afterAll(async () => {
  await scorer.close();
});

beforeEach(() => {
  jobs = new MemoryJobStore();
  objects = new MemoryObjectStore('data-bucket');
});

function event(members: unknown[], overrides: Partial<StoreBatchEvent> = {}): StoreBatchEvent {
  return {
    jobId: JOB,
    ensemble: 'breast-cancer',
    lines: rows.map((r) => r.line),
    ids: rows.map((r) => r.id),
    members,
    ...overrides,
  };
}

const storeWithMembers = (e: StoreBatchEvent) => storeBatch(e, { manifest: manifest(), jobs, objects });
const store = async (e: StoreBatchEvent) => (await storeWithMembers(e)).summary;
const stored = () => jobs.rowsOf(JOB);
const part = () => objects.text(jobKeys.part(JOB, rows[0]?.line as number));
const batchErrors = () => objects.text(jobKeys.batchErrors(JOB, rows[0]?.line as number));

/** The unweighted mean of the given members' probabilities for row i. */
function meanOf(models: readonly string[], i: number): number[] {
  const chosen = outcomes.filter((o) => models.includes(o.model));
  return BC_LABELS.map(
    (_, c) => chosen.reduce((s, o) => s + (o.probabilities?.[i]?.[c] as number), 0) / chosen.length,
  );
}

describe('storeBatch with every member answering', () => {
  it('stores one row per line with the soft-vote label and probabilities', async () => {
    const summary = await store(event(outcomes));

    expect(summary).toEqual({
      firstLine: FIRST + 2,
      rows: COUNT,
      ok: COUNT,
      failed: 0,
      degraded: 0,
      cached: 0,
      scored: COUNT,
    });
    const results = stored();
    expect(results).toHaveLength(COUNT);
    results.forEach((r, i) => {
      const expected = meanOf(BC_MEMBERS, i);
      expect(r).toMatchObject({ rowId: idOf(FIRST + i), line: FIRST + i + 2, degraded: false });
      expect(r).not.toHaveProperty('failedMembers');
      expect(Object.keys(r.probabilities)).toEqual(BC_LABELS);
      expect(r.probabilities.malignant).toBeCloseTo(expected[0] as number, 5);
      expect(r.probabilities.benign).toBeCloseTo(expected[1] as number, 5);
      expect(r.label).toBe((expected[0] as number) > (expected[1] as number) ? 'malignant' : 'benign');
    });
    // The models are good: nearly every label matches the data set.
    const targets = breastCancer().targets.slice(FIRST, FIRST + COUNT);
    const right = results.filter((r, i) => r.label === BC_LABELS[targets[i] as number]).length;
    expect(right / COUNT).toBeGreaterThanOrEqual(0.9);
  });

  it("writes a results part whose columns follow the results file's header", async () => {
    await store(event(outcomes));
    const header = csvRows(resultsHeader(BC_LABELS))[0];
    expect(header).toEqual([
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
    const lines = csvRows(part() as string);
    expect(lines).toHaveLength(COUNT);
    const byId = new Map(stored().map((r) => [r.rowId, r]));
    for (const fields of lines) {
      expect(fields).toHaveLength(header?.length as number);
      const [id, label, malignant, benign, degraded, agreement, margin, entropy, spread] = fields;
      const row = byId.get(id as string);
      expect(row).toBeDefined();
      expect(label).toBe(row?.label);
      expect(Number(malignant)).toBe(row?.probabilities.malignant);
      expect(Number(benign)).toBe(row?.probabilities.benign);
      expect(degraded).toBe('false');
      expect([agreement, margin, entropy, spread].map(Number)).toEqual([
        row?.uncertainty?.agreement,
        row?.uncertainty?.margin,
        row?.uncertainty?.entropy,
        row?.uncertainty?.spread,
      ]);
      // Margin: the top probability minus the other one, for two labels.
      expect(Number(margin)).toBeCloseTo(Math.abs(Number(malignant) - Number(benign)), 12);
    }
    expect(lines.map((f) => f[0])).toEqual(rows.map((r) => r.id));
    expect(batchErrors()).toBeUndefined();
  });

  it("adds the batch to the job's progress", async () => {
    await store(event(outcomes));
    expect(jobs.jobs.get(JOB)).toMatchObject({ rowsOk: COUNT, rowsFailed: 0, rowsDegraded: 0 });
  });

  it('quotes ids that contain commas or quotes in the part file', async () => {
    const ids = rows.map((_, i) => (i === 0 ? 'a,"b"' : `r${i}`));
    await store(event(outcomes, { ids }));
    expect(part()?.startsWith('"a,""b""",')).toBe(true);
    expect(csvRows(part() as string)[0]?.[0]).toBe('a,"b"');
  });

  it('overwrites rather than duplicates when the same batch is stored again', async () => {
    await store(event(outcomes));
    const firstPart = part();
    const firstRows = stored();
    await store(event(outcomes));
    expect(stored()).toHaveLength(COUNT);
    expect(stored()).toEqual(firstRows);
    expect(part()).toBe(firstPart);
    expect(await objects.list(jobKeys.partsPrefix(JOB))).toHaveLength(1);
  });
  it("keeps a batch whose results part could not be written out of the job's counts", async () => {
    const failing = Object.assign(Object.create(objects) as MemoryObjectStore, {
      write: async () => {
        throw new UpstreamError('writing s3://data-bucket/jobs/part failed: SlowDown');
      },
    });
    await expect(
      storeBatch(event(outcomes), { manifest: manifest(), jobs, objects: failing }),
    ).rejects.toThrow('SlowDown');
    expect(await jobs.batchCounts(JOB)).toEqual([]);
    expect(jobs.jobs.get(JOB)).toBeUndefined();
  });

  it('copies the counts onto its files, so a batch whose counts item fails to store still counts', async () => {
    const failing = Object.assign(Object.create(jobs) as MemoryJobStore, {
      putBatch: async () => {
        throw new UpstreamError(
          'writing the batch at line 100 failed: ProvisionedThroughputExceededException',
        );
      },
    });
    await expect(
      storeBatch(event(outcomes), { manifest: manifest(), jobs: failing, objects }),
    ).rejects.toThrow('ProvisionedThroughputExceededException');
    const firstLine = rows[0]?.line as number;
    expect(batchCountsFromMetadata(firstLine, await objects.metadata(jobKeys.part(JOB, firstLine)))).toEqual({
      firstLine,
      cached: 0,
      scored: COUNT,
    });
  });
});

describe('storeBatch with shadow members', () => {
  it('never lets a failing shadow degrade a row or appear among its failed members', async () => {
    expect(shadows.length).toBeGreaterThan(0);
    const members = outcomes.map((o) => (shadows.includes(o.model) ? failedMember(o.model) : o));
    const summary = await store(event(members));
    expect(summary).toMatchObject({ firstLine: FIRST + 2, rows: COUNT, ok: COUNT, failed: 0, degraded: 0 });
    stored().forEach((r, i) => {
      expect(r.degraded).toBe(false);
      expect(r.failedMembers).toBeUndefined();
      expect(r.probabilities.benign).toBeCloseTo(meanOf(BC_MEMBERS, i)[1] as number, 5);
    });
  });

  it('reports how every member, shadows included, agreed with each answer', async () => {
    const reports: AgreementReport[] = [];
    await storeBatch(event(outcomes), {
      manifest: manifest(),
      jobs,
      objects,
      onAgreement: (r) => reports.push(r),
    });
    expect(reports).toHaveLength(1);
    const report = reports[0] as AgreementReport;
    expect(report.members.map((m) => [m.model, m.shadow])).toEqual([
      ...BC_MEMBERS.map((m) => [m, false]),
      ...shadows.map((m) => [m, true]),
    ]);
    const answers = stored();
    for (const m of report.members) {
      const own = outcomes.find((o) => o.model === m.model)?.probabilities as number[][];
      const agreed = answers.filter((r, i) => {
        const p = own[i] as number[];
        return BC_LABELS[(p[1] as number) > (p[0] as number) ? 1 : 0] === r.label;
      }).length;
      expect(m).toMatchObject({ ensemble: 'breast-cancer', rows: COUNT, agreed });
      expect(m.absDiffSum / COUNT).toBeLessThan(0.2);
    }
  });
});

describe('storeBatch with members failing', () => {
  it('marks every row degraded and lists the failed member when the quorum still holds', async () => {
    const members = outcomes.map((o) => (o.model === 'bc-mlp' ? failedMember('bc-mlp') : o));
    const summary = await store(event(members));

    expect(summary).toEqual({
      firstLine: FIRST + 2,
      rows: COUNT,
      ok: COUNT,
      failed: 0,
      degraded: COUNT,
      cached: 0,
      scored: COUNT,
    });
    const answered = BC_MEMBERS.filter((m) => m !== 'bc-mlp');
    stored().forEach((r, i) => {
      expect(r.degraded).toBe(true);
      expect(r.failedMembers).toEqual(['bc-mlp']);
      expect(r.probabilities.benign).toBeCloseTo(meanOf(answered, i)[1] as number, 5);
    });
    expect(csvRows(part() as string).every((f) => f[4] === 'true')).toBe(true);
    expect(jobs.jobs.get(JOB)).toMatchObject({ rowsOk: COUNT, rowsDegraded: COUNT });
  });

  it('counts a member with no result, or with malformed scores, as failed', async () => {
    const members = outcomes
      .filter((o) => o.model !== 'bc-torch-mlp')
      .map((o) => (o.model === 'bc-logreg' ? { ...o, probabilities: o.probabilities?.slice(1) } : o));
    const summary = await store(event(members));
    expect(summary.degraded).toBe(COUNT);
    expect(stored()[0]?.failedMembers).toEqual(['bc-logreg', 'bc-torch-mlp']);
  });

  it('sends every row to the batch error part, naming the failed members, when the quorum is not met', async () => {
    const down = BC_BELOW_QUORUM;
    const members = outcomes.map((o) => (down.includes(o.model) ? failedMember(o.model) : o));
    const summary = await store(event(members));

    expect(summary).toEqual({
      firstLine: FIRST + 2,
      rows: COUNT,
      ok: 0,
      failed: COUNT,
      degraded: 0,
      cached: 0,
      scored: COUNT,
    });
    expect(jobs.rowsOf(JOB)).toHaveLength(0);
    expect(part()).toBeUndefined();
    const errors = csvRows(batchErrors() as string);
    expect(errors).toHaveLength(COUNT);
    errors.forEach(([line, id, reason], i) => {
      expect(Number(line)).toBe(rows[i]?.line);
      expect(id).toBe(rows[i]?.id);
      expect(reason).toContain(
        `${BC_QUORUM - 1} of ${BC_MEMBERS.length} members answered, quorum is ${BC_QUORUM}`,
      );
      for (const m of down) expect(reason).toContain(`${m} (failed: ${m}: inference failed: boom)`);
      expect(reason).not.toContain('/var/task');
    });
    expect(jobs.jobs.get(JOB)).toMatchObject({ rowsOk: 0, rowsFailed: COUNT, rowsDegraded: 0 });
  });

  it("reports each member's status, latency and rows for the metrics, below the quorum too", async () => {
    const down = ['bc-random-forest', 'bc-mlp', 'bc-torch-mlp'];
    const members = outcomes.map((o) =>
      o.model === 'bc-mlp'
        ? { model: o.model, status: 'timeout', error: { Error: 'States.Timeout', Cause: '' } }
        : down.includes(o.model)
          ? failedMember(o.model)
          : { ...o, latencyMs: 3.5 },
    );
    const { members: seen } = await storeWithMembers(event(members));
    expect(seen).toEqual(
      BC_MEMBERS.map((model) =>
        model === 'bc-mlp'
          ? { model, status: 'timeout', rows: 0 }
          : down.includes(model)
            ? { model, status: 'failed', rows: 0 }
            : { model, status: 'ok', latencyMs: 3.5, rows: COUNT },
      ).concat(shadows.map((model) => ({ model, status: 'ok', latencyMs: 3.5, rows: COUNT }))),
    );
  });

  it('names timed-out members in the reason', async () => {
    const members = outcomes.map((o) =>
      o.model === 'bc-logreg'
        ? o
        : { model: o.model, status: 'timeout', error: { Error: 'States.Timeout', Cause: '' } },
    );
    await store(event(members));
    expect(batchErrors()).toContain('bc-mlp (timeout: bc-mlp: did not answer within its timeout)');
  });
});

describe('storeBatch with three labels', () => {
  it('writes one probability column per label in the label order of the header', async () => {
    // The wine ensemble as the manifest has it (a weighted mean): the first two members say
    // class_2, the others class_0.
    const wine = manifest().ensembles.get('wine');
    if (!wine) throw new Error('the manifest has no wine ensemble');
    const vote = (i: number) => (i < 2 ? [0.1, 0.2, 0.7] : [0.6, 0.3, 0.1]);
    const members = wine.members.map((model, i) => ({
      model,
      status: 'ok',
      probabilities: [vote(i), vote(i)],
    }));
    const total = wine.weights.reduce((a, b) => a + b, 0);
    const mean = [0, 1, 2].map(
      (c) => wine.weights.reduce((sum, w, i) => sum + w * (vote(i)[c] as number), 0) / total,
    );
    await store({ jobId: JOB, ensemble: 'wine', lines: [2, 3], ids: ['w1', 'w2'], members });
    expect(resultsHeader(['class_0', 'class_1', 'class_2'])).toBe(
      'id,label,probability_class_0,probability_class_1,probability_class_2,degraded,agreement,margin,entropy,spread\n',
    );
    const fields = csvRows(objects.text(jobKeys.part(JOB, 2)) as string);
    expect(fields).toHaveLength(2);
    // With the bundled weights 2:2:1 that is [0.2, 0.22, 0.58].
    expect(fields[0]?.[0]).toBe('w1');
    expect(fields[0]?.[1]).toBe(`class_${mean.indexOf(Math.max(...mean))}`);
    fields[0]?.slice(2, 5).forEach((v, c) => {
      expect(Number(v)).toBeCloseTo(mean[c] as number, 6);
    });
    expect(fields[0]?.[5]).toBe('false');
  });
});

describe('storeBatch with a malformed event', () => {
  it('rejects an event whose ids and lines do not match, or without lines', async () => {
    await expect(store(event(outcomes, { ids: ['only-one'] }))).rejects.toThrow(ValidationError);
    await expect(store(event(outcomes, { lines: [], ids: [] }))).rejects.toThrow(
      '"lines" must be a non-empty array',
    );
    expect(jobs.batches.size).toBe(0);
  });

  it('rejects a plan whose sources point past the scored rows or the cached predictions', async () => {
    const planned = (source: number[]) =>
      event(outcomes, { instances: rows.map((r) => r.features), source, cached: [] });
    const wrong = rows.map((_, i) => i);
    wrong[3] = COUNT;
    await expect(store(planned(wrong))).rejects.toThrow(
      '"source" must name, for each line, a scored row or a cached prediction',
    );
    wrong[3] = -1;
    await expect(store(planned(wrong))).rejects.toThrow('"source" must name');
    await expect(store(planned([0]))).rejects.toThrow('"source" must name');
    await expect(store(event(outcomes, { source: rows.map((_, i) => i) }))).rejects.toThrow(
      '"instances" must be the scored rows; "cached" must be an array of predictions',
    );
    expect(jobs.batches.size).toBe(0);
  });
});

describe('storeBatch with a plan (repeated and cached rows)', () => {
  it('puts each line back in order: repeats share an answer, cached lines keep their prediction', async () => {
    // Lines 0..3 of the batch: distinct row 0, a cached row, distinct row 1, row 0 again.
    const two = outcomes.map((o) => ({ ...o, probabilities: o.probabilities?.slice(0, 2) }));
    const cachedPrediction = {
      label: 'malignant',
      probabilities: { malignant: 0.75, benign: 0.25 },
      uncertainty: { agreement: 0.8, margin: 0.5, entropy: 0.811278, spread: 0.1 },
    };
    const summary = await store(
      event(two, {
        lines: [10, 11, 12, 13],
        ids: ['a', 'b', 'c', 'd'],
        instances: rows.slice(0, 2).map((r) => r.features),
        source: [0, -1, 1, 0],
        cached: [cachedPrediction],
      }),
    );
    expect(summary).toEqual({ firstLine: 10, rows: 4, ok: 4, failed: 0, degraded: 0, cached: 1, scored: 2 });
    const byId = new Map(stored().map((r) => [r.rowId, r]));
    expect(byId.get('b')).toMatchObject({ ...cachedPrediction, degraded: false, cached: true });
    expect(byId.get('d')?.probabilities).toEqual(byId.get('a')?.probabilities);
    expect(byId.get('a')?.cached).toBeUndefined();
    expect(byId.get('a')?.probabilities.benign).toBeCloseTo(meanOf(BC_MEMBERS, 0)[1] as number, 6);
    expect(byId.get('c')?.probabilities.benign).toBeCloseTo(meanOf(BC_MEMBERS, 1)[1] as number, 6);
    const part10 = csvRows(objects.text(jobKeys.part(JOB, 10)) as string);
    expect(part10.map((r) => r[0])).toEqual(['a', 'b', 'c', 'd']);
    // A cached row keeps the uncertainty stored with its answer.
    expect(part10[1]?.slice(5).map(Number)).toEqual([0.8, 0.5, 0.811278, 0.1]);
    expect(jobs.jobs.get(JOB)).toMatchObject({ rowsOk: 4, rowsCached: 1, rowsScored: 2 });
  });

  it('stores a batch whose every row came from the cache, with no member results at all', async () => {
    const p = {
      label: 'benign',
      probabilities: { malignant: 0.1, benign: 0.9 },
      uncertainty: { agreement: 1, margin: 0.8, entropy: 0.469, spread: 0.02 },
    };
    const summary = await store(
      event([], { lines: [5, 6], ids: ['x', 'y'], instances: [], source: [-1, -1], cached: [p] }),
    );
    expect(summary).toMatchObject({ ok: 2, cached: 2, scored: 0, failed: 0 });
    expect(stored().map((r) => r.label)).toEqual(['benign', 'benign']);
  });
});
