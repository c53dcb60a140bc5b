import { type PrepareEvent, prepare } from '../../functions/batch-prepare/prepare.js';
import type { GoodRow } from '../../functions/core/batch-rows.js';
import { BatchInputError, UploadReplacedError } from '../../functions/core/errors.js';
import { jobKeys } from '../../functions/core/jobs.js';
import type { EnsembleSpec } from '../../functions/core/manifest.js';
import { fanOutMembers, type TimeoutCut } from '../../functions/core/targets.js';
import { etagOf, MemoryJobStore, MemoryObjectStore } from '../support/memory-stores.js';
import { rejection } from '../support/rejection.js';
import {
  bcFeatures,
  breastCancer,
  breastCancerCsv,
  breastCancerJsonl,
  csvRows,
  idOf,
  MALFORMED,
  manifest,
} from './fixtures.js';

const JOB = 'job-prepare-test';
const STARTED = new Date('2026-12-01T10:00:01.000Z');

let jobs: MemoryJobStore;
let objects: MemoryObjectStore;

beforeEach(() => {
  jobs = new MemoryJobStore();
  objects = new MemoryObjectStore('data-bucket');
});

function event(key: string, body: string | Buffer, overrides: Partial<PrepareEvent> = {}): PrepareEvent {
  objects.objects.set(key, typeof body === 'string' ? Buffer.from(body) : body);
  return {
    jobId: JOB,
    bucket: 'data-bucket',
    key,
    ensemble: 'breast-cancer',
    format: key.endsWith('.csv') ? 'csv' : 'jsonl',
    createdAt: '2026-12-01T10:00:00.000Z',
    ...overrides,
  };
}

const run = (e: PrepareEvent) => prepare(e, { manifest: manifest(), jobs, objects, now: () => STARTED });

function storedRows(): GoodRow[] {
  return (objects.text(jobKeys.rows(JOB)) ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as GoodRow);
}

const storedErrors = () => csvRows(objects.text(jobKeys.prepareErrors(JOB)) ?? '');

async function inputError(e: PrepareEvent): Promise<BatchInputError> {
  const err = await run(e).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(err).toBeInstanceOf(BatchInputError);
  expect((err as BatchInputError).name).toBe('BatchInputError');
  expect((err as BatchInputError).code).toBe('invalid_batch_file');
  return err as BatchInputError;
}

describe('prepare: the breast cancer data set as CSV with three malformed rows', () => {
  const upload = breastCancerCsv();
  const bc = manifest().ensembles.get('breast-cancer') as EnsembleSpec;

  it('writes the 569 good rows with their lines, ids and features in manifest order', async () => {
    const prepared = await run(event('incoming/breast-cancer/bc.csv', upload.text));

    expect(prepared).toEqual({
      rowsTotal: 572,
      rowsValid: 569,
      rowsMalformed: 3,
      rowsKey: `jobs/${JOB}/rows.jsonl`,
      // Counted members, then shadows flagged: both run in the batch's fan-out.
      members: [
        ...bc.members.map((model) => ({
          model,
          timeoutSeconds: manifest().models.get(model)?.timeoutSeconds,
        })),
        ...(bc.shadow ?? []).map((model) => ({
          model,
          timeoutSeconds: manifest().models.get(model)?.timeoutSeconds,
          shadow: true,
        })),
      ],
    });
    const rows = storedRows();
    const { rows: data } = breastCancer();
    expect(rows).toHaveLength(569);
    rows.forEach((row, i) => {
      expect(row).toEqual({ line: upload.lineOf[i], id: idOf(i), features: data[i] });
    });
    expect(objects.text(jobKeys.rows(JOB))?.endsWith('\n')).toBe(true);
  });

  it('cuts member timeouts past what the runner can wait, and says which it cut', async () => {
    const configured = fanOutMembers(manifest(), bc);
    const limit = Math.max(...configured.map((m) => m.timeoutSeconds)) - 1;
    const cuts: TimeoutCut[][] = [];
    const prepared = await prepare(event('incoming/breast-cancer/bc.csv', upload.text), {
      manifest: manifest(),
      jobs,
      objects,
      now: () => STARTED,
      memberLimitSeconds: limit,
      onBudgetCut: (c) => cuts.push(c),
    });
    expect(prepared.members).toEqual(
      configured.map((m) => ({ ...m, timeoutSeconds: Math.min(m.timeoutSeconds, limit) })),
    );
    expect(cuts).toEqual([
      configured
        .filter((m) => m.timeoutSeconds > limit)
        .map((m) => ({ model: m.model, timeoutSeconds: m.timeoutSeconds, waitsSeconds: limit })),
    ]);
  });

  it('writes the 3 malformed rows to the error file with their lines, ids and reasons', async () => {
    await run(event('incoming/breast-cancer/bc.csv', upload.text));
    const errors = storedErrors();
    expect(errors).toHaveLength(3);
    errors.forEach(([line, id, reason], i) => {
      expect(Number(line)).toBe(upload.badLines[i]);
      expect(id).toBe(MALFORMED[i]?.id);
      expect(reason).toMatch(MALFORMED[i]?.reason as RegExp);
    });
  });

  it('marks the job RUNNING with its row counts', async () => {
    await jobs.createJob({
      jobId: JOB,
      status: 'QUEUED',
      ensemble: 'breast-cancer',
      input: { bucket: 'data-bucket', key: 'incoming/breast-cancer/bc.csv', etag: 'e1' },
      format: 'csv',
      rowsTotal: 0,
      rowsOk: 0,
      rowsFailed: 0,
      rowsDegraded: 0,
      createdAt: '2026-12-01T10:00:00.000Z',
    });
    await run(event('incoming/breast-cancer/bc.csv', upload.text));
    expect(jobs.jobs.get(JOB)).toMatchObject({
      status: 'RUNNING',
      ensemble: 'breast-cancer',
      format: 'csv',
      // The trigger's record of the upload is kept.
      input: { bucket: 'data-bucket', key: 'incoming/breast-cancer/bc.csv', etag: 'e1' },
      createdAt: '2026-12-01T10:00:00.000Z',
      startedAt: STARTED.toISOString(),
      rowsTotal: 572,
      rowsOk: 0,
      rowsFailed: 3,
      rowsDegraded: 0,
    });
  });

  it('writes the job record even when the trigger has not created it yet', async () => {
    await run(event('incoming/breast-cancer/bc.csv', upload.text));
    expect(jobs.jobs.get(JOB)).toMatchObject({ status: 'RUNNING', rowsTotal: 572, rowsFailed: 3 });
  });
});

describe('prepare: the upload it was started for', () => {
  it('reads the file when it is still the upload of the event (its ETag)', async () => {
    const body = breastCancerCsv().text;
    const out = await run(event('incoming/breast-cancer/same.csv', body, { etag: etagOf(body) }));
    expect(out.rowsValid).toBeGreaterThan(0);
  });

  it('names a field the execution input lacks, before reading anything', async () => {
    const { key: _key, ...noKey } = event('incoming/breast-cancer/a.csv', 'x');
    const err = await rejection(run(noKey as PrepareEvent));
    expect(err.message).toBe(
      'the batch execution input has no "key" (a string): it is what the batch trigger sets',
    );
    const badFormat = await rejection(
      run(event('incoming/breast-cancer/a.txt', 'x', { format: 'txt' as 'csv' })),
    );
    expect(badFormat.message).toBe('the batch execution input\'s "format" is "txt": "csv" or "jsonl"');
  });

  it('fails the job, naming both ETags, when the key was overwritten after the event, and writes no rows', async () => {
    const e = event('incoming/breast-cancer/replaced.csv', 'id,x\n', { etag: etagOf('an older upload') });
    const err = await rejection(run(e));
    expect(err).toBeInstanceOf(UploadReplacedError);
    expect(err.name).toBe('UploadReplacedError');
    expect(err.message).toContain(etagOf('an older upload'));
    expect(err.message).toContain(etagOf('id,x\n'));
    expect(storedRows()).toEqual([]);
  });
});

describe('prepare: JSON Lines', () => {
  it('writes the good rows (features as arrays and objects) and reports the bad ones', async () => {
    const upload = breastCancerJsonl();
    const prepared = await run(event('incoming/breast-cancer/bc.jsonl', upload.text));

    expect(prepared).toMatchObject({ rowsTotal: 571, rowsValid: 569, rowsMalformed: 2 });
    const rows = storedRows();
    const { rows: data } = breastCancer();
    expect(rows).toHaveLength(569);
    rows.forEach((row, i) => {
      expect(row).toEqual({ line: upload.lineOf[i], id: idOf(i), features: data[i] });
    });
    const errors = storedErrors();
    expect(errors.map(([line]) => Number(line))).toEqual(upload.badLines);
    expect(errors[0]?.[2]).toMatch(/^not valid JSON/);
    expect(errors[1]?.slice(1)).toEqual(['bad-missing', 'feature "mean radius": missing feature']);
    expect(jobs.jobs.get(JOB)).toMatchObject({ status: 'RUNNING', format: 'jsonl', rowsTotal: 571 });
  });
});

describe('prepare: row details', () => {
  const header = () => bcFeatures().join(',');
  const ones = (n = 30) => Array.from({ length: n }, () => '1').join(',');

  it('skips blank lines but keeps the file line numbers', async () => {
    await run(event('incoming/breast-cancer/a.csv', `\n${header()}\n\n${ones()}\n   \n${ones()}\n`));
    expect(storedRows().map((r) => [r.line, r.id])).toEqual([
      [4, '4'],
      [6, '6'],
    ]);
  });

  it('quotes error-file fields that contain commas or quotes', async () => {
    const text = `id,${header()}\n"a,""b""",${ones(29)}\n`;
    await run(event('incoming/breast-cancer/a.csv', text));
    const raw = objects.text(jobKeys.prepareErrors(JOB));
    expect(raw).toBe('2,"a,""b""","expected 31 columns, got 30"\n');
    expect(storedErrors()).toEqual([['2', 'a,"b"', 'expected 31 columns, got 30']]);
  });

  it('writes an empty rows file when every row is malformed', async () => {
    const prepared = await run(event('incoming/breast-cancer/a.csv', `${header()}\n${ones(2)}\n`));
    expect(prepared).toMatchObject({ rowsTotal: 1, rowsValid: 0, rowsMalformed: 1 });
    expect(objects.text(jobKeys.rows(JOB))).toBe('');
  });

  it('reads UTF-8 ids whose characters are split across read chunks', async () => {
    // The in-memory store returns 7-byte chunks, so multi-byte characters straddle chunk ends.
    const ids = ['patiënt-1', 'Zoë-µ-2', '患者-3', 'naïve-😀-4'];
    const text = `id,${header()}\n${ids.map((id) => `${id},${ones()}`).join('\n')}\n`;
    const prepared = await run(event('incoming/breast-cancer/utf8.csv', text));
    expect(prepared).toMatchObject({ rowsTotal: 4, rowsValid: 4 });
    expect(storedRows().map((r) => r.id)).toEqual(ids);
  });

  it('reads UTF-8 ids of a JSON Lines file split across read chunks', async () => {
    const row = (id: string) => JSON.stringify({ id, features: Array.from({ length: 30 }, () => 1) });
    // Ten 2-byte characters in a row: one of them straddles a 7-byte chunk end whatever the offset.
    const text = `${row('é'.repeat(10))}\n${row('ü')}\n`;
    const prepared = await run(event('incoming/breast-cancer/utf8.jsonl', text));
    expect(prepared).toMatchObject({ rowsTotal: 2, rowsValid: 2 });
    expect(storedRows().map((r) => r.id)).toEqual(['é'.repeat(10), 'ü']);
  });
});

describe('prepare: files that cannot be scored', () => {
  it('throws for an empty file', async () => {
    expect((await inputError(event('incoming/breast-cancer/a.csv', ''))).message).toBe('the file is empty');
    expect((await inputError(event('incoming/breast-cancer/a.jsonl', ''))).message).toBe('the file is empty');
  });

  it('throws for a binary file, saying where the binary content is', async () => {
    const text = Buffer.concat([Buffer.from(`${bcFeatures().join(',')}\n`), Buffer.from([1, 0, 2, 0])]);
    const err = await inputError(event('incoming/breast-cancer/a.csv', text));
    expect(err.message).toMatch(/^the file is not text \(a NUL byte at byte \d+\)$/);
  });

  it('throws for a CSV with only a header', async () => {
    const err = await inputError(event('incoming/breast-cancer/a.csv', `${bcFeatures().join(',')}\r\n\r\n`));
    expect(err.message).toBe('the file has a header but no rows');
  });

  it('throws for a JSON Lines file with only blank lines', async () => {
    expect((await inputError(event('incoming/breast-cancer/a.jsonl', '\n\n'))).message).toBe(
      'the file has no rows',
    );
  });

  it('throws for a bad header, naming the problem', async () => {
    const err = await inputError(event('incoming/breast-cancer/a.csv', 'id,radius\n1,2\n'));
    expect(err.message).toContain('missing feature column(s) "mean radius"');
    expect(err.message).toContain('unknown column(s) "radius"');
  });
});

describe('prepare when its output cannot be stored', () => {
  /** A bucket where writing one key fails without reading the body (S3 refusing the upload). */
  class RefusingStore extends MemoryObjectStore {
    constructor(private readonly refused: string) {
      super('data-bucket');
    }
    override async write(key: string, body: AsyncIterable<string | Uint8Array> | string) {
      if (key === this.refused) throw new Error(`AccessDenied writing ${key}`);
      return super.write(key, body);
    }
  }

  it('fails rather than hand the map a rows file that was not written', async () => {
    objects = new RefusingStore(jobKeys.rows(JOB));
    const text = `${bcFeatures().join(',')}\n${Array.from({ length: 30 }, () => '1').join(',')}\n`;
    await expect(run(event('incoming/breast-cancer/a.csv', text))).rejects.toThrow('AccessDenied');
  });
});
