import { type FinalizeEvent, finalize } from '../../functions/batch-finalize/finalize.js';
import type { Prepared } from '../../functions/batch-prepare/prepare.js';
import { batchCountsMetadata, ERRORS_HEADER, jobKeys } from '../../functions/core/jobs.js';
import { MemoryJobStore, MemoryObjectStore } from '../support/memory-stores.js';
import { BC_MEMBERS, csvRows, manifest } from './fixtures.js';

const JOB = 'job-finalize-test';
const BUCKET = 'data-bucket';
const FINISHED = new Date('2026-12-01T10:09:00.000Z');
const HEADER = 'id,label,probability_malignant,probability_benign,degraded,agreement,margin,entropy,spread\n';

let jobs: MemoryJobStore;
let objects: MemoryObjectStore;

beforeEach(async () => {
  jobs = new MemoryJobStore();
  objects = new MemoryObjectStore(BUCKET);
  await jobs.createJob({
    jobId: JOB,
    status: 'RUNNING',
    ensemble: 'breast-cancer',
    input: { bucket: BUCKET, key: 'incoming/breast-cancer/a.csv' },
    format: 'csv',
    rowsTotal: 0,
    rowsOk: 0,
    rowsFailed: 0,
    rowsDegraded: 0,
    createdAt: '2026-12-01T10:00:00.000Z',
  });
});

function prepared(rowsTotal: number, rowsMalformed = 0): Prepared {
  return {
    rowsTotal,
    rowsValid: rowsTotal - rowsMalformed,
    rowsMalformed,
    rowsKey: jobKeys.rows(JOB),
    members: BC_MEMBERS.map((model) => ({ model, timeoutSeconds: 5 })),
  };
}

const run = (event: Partial<FinalizeEvent>) =>
  finalize(
    { jobId: JOB, bucket: BUCKET, ensemble: 'breast-cancer', ...event },
    { manifest: manifest(), jobs, objects, now: () => FINISHED },
  );

const put = (key: string, text: string) => objects.objects.set(key, Buffer.from(text));

/**
 * A part of `n` scored rows from `firstLine`, each id `r<line>`, `degraded` in its column before
 * the four uncertainty columns.
 */
function part(firstLine: number, n: number, degraded = false): string {
  let text = '';
  for (let line = firstLine; line < firstLine + n; line++) {
    text += `r${line},benign,0.${line % 10}5,0.${9 - (line % 10)}5,${degraded},0.8,0.${line % 10},0.5,0.125\n`;
  }
  return text;
}

/** A ResultWriter FAILED_<n>.json entry for a child execution over the given lines. */
function failedChild(lines: number[], error = 'States.TaskFailed', cause = 'child execution failed') {
  return {
    ExecutionArn: 'arn:aws:states:us-east-1:1:express:x:y:z',
    Input: JSON.stringify({
      BatchInput: { jobId: JOB, ensemble: 'breast-cancer', members: [] },
      Items: lines.map((line) => ({ line, id: `r${line}`, features: [1, 2, 3] })),
    }),
    InputDetails: { Included: true },
    Status: 'FAILED',
    Error: error,
    Cause: cause,
  };
}

describe('finalize after the batches ran', () => {
  it('joins the parts in line order under one header', async () => {
    // Written out of order; numeric order differs from the order of unpadded names.
    put(jobKeys.part(JOB, 1002), part(1002, 2));
    put(jobKeys.part(JOB, 2), part(2, 3));
    put(jobKeys.part(JOB, 252), part(252, 2, true));
    await run({ prepared: prepared(7) });

    expect(objects.text(jobKeys.results(JOB))).toBe(HEADER + part(2, 3) + part(252, 2, true) + part(1002, 2));
    expect(objects.text(jobKeys.errors(JOB))).toBe(ERRORS_HEADER);
  });

  it('writes the error file: header, malformed rows, batches below the quorum, failed children', async () => {
    put(jobKeys.part(JOB, 2), part(2, 2));
    put(
      jobKeys.prepareErrors(JOB),
      '4,bad-a,"expected 31 columns, got 30"\n9,bad-b,"column ""x"": empty value"\n',
    );
    put(
      jobKeys.batchErrors(JOB, 10),
      '10,r10,"ensemble ""breast-cancer"": 2 of 5 members answered"\n11,r11,q\n',
    );
    put(
      `${jobKeys.mapResultsPrefix(JOB)}0f3a/FAILED_0.json`,
      JSON.stringify([
        failedChild(
          [20, 21],
          'Lambda.Unknown',
          JSON.stringify({ errorType: 'Error', errorMessage: 'out of memory', trace: ['at /var/task/x.js'] }),
        ),
        failedChild([30]),
      ]),
    );
    put(`${jobKeys.mapResultsPrefix(JOB)}0f3a/SUCCEEDED_0.json`, JSON.stringify([{ Output: '{}' }]));
    put(`${jobKeys.mapResultsPrefix(JOB)}0f3a/manifest.json`, JSON.stringify({ ResultFiles: {} }));
    const job = await run({ prepared: prepared(9, 2) });

    const text = objects.text(jobKeys.errors(JOB)) as string;
    expect(text.startsWith(ERRORS_HEADER)).toBe(true);
    expect(csvRows(text)).toEqual([
      ['line', 'id', 'reason'],
      ['4', 'bad-a', 'expected 31 columns, got 30'],
      ['9', 'bad-b', 'column "x": empty value'],
      ['10', 'r10', 'ensemble "breast-cancer": 2 of 5 members answered'],
      ['11', 'r11', 'q'],
      ['20', 'r20', 'batch failed (Lambda.Unknown): out of memory'],
      ['21', 'r21', 'batch failed (Lambda.Unknown): out of memory'],
      ['30', 'r30', 'batch failed (States.TaskFailed): child execution failed'],
    ]);
    expect(text).not.toContain('/var/task');
    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      rowsTotal: 9,
      rowsOk: 2,
      rowsFailed: 7,
      rowsDegraded: 0,
    });
  });

  it('sets exact counters over the progress the batches added, and marks the job SUCCEEDED', async () => {
    // A retried batch added its progress twice, and stored its counts twice (the same item).
    for (let attempt = 0; attempt < 2; attempt++) {
      await jobs.addProgress(JOB, {
        rowsOk: 4,
        rowsFailed: 0,
        rowsDegraded: 2,
        rowsCached: 1,
        rowsScored: 3,
      });
      await jobs.putBatch(JOB, { firstLine: 2, cached: 1, scored: 3, rows: [] });
    }
    await jobs.addProgress(JOB, { rowsOk: 0, rowsFailed: 1, rowsDegraded: 0, rowsCached: 0, rowsScored: 1 });
    await jobs.putBatch(JOB, { firstLine: 6, cached: 0, scored: 1, rows: [] });
    put(jobKeys.part(JOB, 2), `${part(2, 2, true)}${part(4, 2)}`);
    put(jobKeys.batchErrors(JOB, 6), '6,r6,q\n');
    put(jobKeys.prepareErrors(JOB), '7,x,bad\n');
    const job = await run({ prepared: prepared(6, 1) });

    expect(job).toEqual({
      jobId: JOB,
      status: 'SUCCEEDED',
      ensemble: 'breast-cancer',
      input: { bucket: BUCKET, key: 'incoming/breast-cancer/a.csv' },
      format: 'csv',
      rowsTotal: 6,
      rowsOk: 4,
      rowsFailed: 2,
      rowsDegraded: 2,
      // From each batch's counts, once per batch.
      rowsCached: 1,
      rowsScored: 4,
      createdAt: '2026-12-01T10:00:00.000Z',
      finishedAt: FINISHED.toISOString(),
      resultsLocation: `s3://${BUCKET}/results/${JOB}.csv`,
      errorsLocation: `s3://${BUCKET}/results/${JOB}.errors.csv`,
    });
    expect(jobs.jobs.get(JOB)).toEqual(job);
  });

  it('reports rows whose batches never reported back as not scored', async () => {
    put(jobKeys.part(JOB, 2), part(2, 3));
    const job = await run({ prepared: prepared(10) });
    expect(csvRows(objects.text(jobKeys.errors(JOB)) as string).slice(1)).toEqual([
      ['', '', '7 rows were not scored: their batches did not finish'],
    ]);
    expect(job).toMatchObject({ rowsOk: 3, rowsFailed: 7 });
  });

  it('keeps quoted ids intact when copying parts', async () => {
    const line = '"a,""b""",malignant,0.9,0.1,false,1,0.8,0.469,0';
    put(jobKeys.part(JOB, 2), `${line}\n`);
    await run({ prepared: prepared(1) });
    expect(objects.text(jobKeys.results(JOB))).toBe(`${HEADER}${line}\n`);
  });

  it('counts degraded rows by the degraded column, whatever the id holds', async () => {
    put(
      jobKeys.part(JOB, 2),
      '"x,true",malignant,0.9,0.1,false,1,0.8,0.469,0\n"y,false",benign,0.2,0.8,true,1,0.6,0.722,0.1\n',
    );
    const job = await run({ prepared: prepared(2) });
    expect(job).toMatchObject({ rowsOk: 2, rowsDegraded: 1 });
  });

  it('writes a results file with only the header when no row was valid', async () => {
    put(jobKeys.prepareErrors(JOB), '2,a,bad\n3,b,bad\n');
    const job = await run({ prepared: prepared(2, 2) });
    expect(objects.text(jobKeys.results(JOB))).toBe(HEADER);
    expect(objects.text(jobKeys.errors(JOB))).toBe(`${ERRORS_HEADER}2,a,bad\n3,b,bad\n`);
    expect(job).toMatchObject({ status: 'SUCCEEDED', rowsOk: 0, rowsFailed: 2 });
  });

  it('counts a batch whose child failed after writing its part once, as scored', async () => {
    // StoreBatch wrote the rows and the part, then failed (e.g. updating the progress): the child
    // execution failed too, so the ResultWriter lists the same rows as failed.
    put(jobKeys.part(JOB, 2), part(2, 3));
    put(`${jobKeys.mapResultsPrefix(JOB)}r1/FAILED_0.json`, JSON.stringify([failedChild([2, 3, 4])]));
    const job = await run({ prepared: prepared(3) });
    expect(job).toMatchObject({ rowsTotal: 3, rowsOk: 3, rowsFailed: 0 });
    expect(objects.text(jobKeys.errors(JOB))).toBe(ERRORS_HEADER);
  });

  it("takes a batch's counts from its files when its counts item was never stored", async () => {
    // Batch 2 stored its counts; batch 5 wrote its part (cached rows and scored rows) and its error
    // part, then failed to store its counts item; batch 9's files predate the copy in metadata.
    await jobs.putBatch(JOB, { firstLine: 2, cached: 0, scored: 3, rows: [] });
    put(jobKeys.part(JOB, 2), part(2, 3));
    await objects.write(
      jobKeys.part(JOB, 5),
      part(5, 2),
      'text/csv',
      batchCountsMetadata({ cached: 1, scored: 3 }),
    );
    await objects.write(
      jobKeys.batchErrors(JOB, 5),
      '7,r7,quorum not met\n8,r8,quorum not met\n',
      'text/csv',
      batchCountsMetadata({ cached: 1, scored: 3 }),
    );
    put(jobKeys.part(JOB, 9), part(9, 1));
    const job = await run({ prepared: prepared(8) });
    expect(job).toMatchObject({ rowsOk: 6, rowsFailed: 2, rowsCached: 1, rowsScored: 6 });
  });
});

describe('finalize after a failure', () => {
  it('marks the job FAILED when the map failed, keeping the rows already scored', async () => {
    put(jobKeys.part(JOB, 2), part(2, 2));
    put(`${jobKeys.mapResultsPrefix(JOB)}r1/FAILED_0.json`, JSON.stringify([failedChild([4, 5])]));
    const job = await run({
      prepared: prepared(6),
      failure: {
        Error: 'States.ExceedToleratedFailureThreshold',
        Cause: 'The specified tolerated failure threshold was exceeded',
      },
    });

    expect(job).toMatchObject({
      status: 'FAILED',
      rowsTotal: 6,
      rowsOk: 2,
      rowsFailed: 4,
      finishedAt: FINISHED.toISOString(),
      resultsLocation: `s3://${BUCKET}/results/${JOB}.csv`,
      error: {
        code: 'batch_failed',
        message:
          'scoring stopped (States.ExceedToleratedFailureThreshold): The specified tolerated failure threshold was exceeded; rows scored before it are kept',
      },
    });
    expect(objects.text(jobKeys.results(JOB))).toBe(HEADER + part(2, 2));
    expect(csvRows(objects.text(jobKeys.errors(JOB)) as string).map((r) => r[0])).toEqual([
      'line',
      '4',
      '5',
      '',
    ]);
  });

  it('marks the job FAILED with the BatchInputError message when preparation failed', async () => {
    const job = await run({
      failure: {
        Error: 'BatchInputError',
        Cause: JSON.stringify({
          errorType: 'BatchInputError',
          errorMessage: 'the file is not text (binary content near byte 65536)',
          trace: ['BatchInputError: the file is not text', '    at prepare (/var/task/index.js:1:1)'],
        }),
      },
    });
    expect(job).toMatchObject({
      jobId: JOB,
      status: 'FAILED',
      finishedAt: FINISHED.toISOString(),
      error: { code: 'invalid_batch_file', message: 'the file is not text (binary content near byte 65536)' },
    });
    expect(JSON.stringify(job)).not.toContain('/var/task');
    expect(objects.text(jobKeys.results(JOB))).toBeUndefined();
  });

  it('uses the code batch_failed when preparation failed for another reason', async () => {
    const job = await run({
      failure: { Error: 'UpstreamError', Cause: '{"errorType":"UpstreamError","errorMessage":"S3 is down"}' },
    });
    expect(job.error).toEqual({ code: 'batch_failed', message: 'S3 is down' });
    expect(job.status).toBe('FAILED');
  });

  it('says the job could not be prepared when there is no cause', async () => {
    const job = await run({});
    expect(job.error).toEqual({ code: 'batch_failed', message: 'the job could not be prepared' });
  });
});

describe('finalize when the results cannot be stored', () => {
  /** A bucket where writing one key fails without reading the body (S3 refusing the upload). */
  class RefusingStore extends MemoryObjectStore {
    constructor(private readonly refused: string) {
      super(BUCKET);
    }
    override async write(key: string, body: AsyncIterable<string | Uint8Array> | string) {
      if (key === this.refused) throw new Error(`AccessDenied writing ${key}`);
      return super.write(key, body);
    }
  }

  it('does not mark the job SUCCEEDED when the results file was not written', async () => {
    objects = new RefusingStore(jobKeys.results(JOB));
    put(jobKeys.part(JOB, 2), part(2, 2));
    await expect(run({ prepared: prepared(2) })).rejects.toThrow('AccessDenied');
    expect(jobs.jobs.get(JOB)?.status).not.toBe('SUCCEEDED');
  });

  it('does not mark the job SUCCEEDED when a large results file was not written', async () => {
    // Large enough (~300 KB) for the sink's writes to wait for the upload to take the data.
    objects = new RefusingStore(jobKeys.results(JOB));
    put(jobKeys.part(JOB, 2), part(2, 10000));
    await expect(run({ prepared: prepared(10000) })).rejects.toThrow('AccessDenied');
    expect(jobs.jobs.get(JOB)?.status).not.toBe('SUCCEEDED');
  });
});
