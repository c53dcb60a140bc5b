import { jest } from '@jest/globals';
import { startJob, type TriggerDeps, type Upload } from '../../functions/batch-trigger/start-job.js';
import { jobIdFor, uploadKeyOf } from '../../functions/core/jobs.js';
import { MemoryJobStore, MemoryObjectStore } from '../support/memory-stores.js';
import { bcFeatures, FakeStarter, manifest } from './fixtures.js';

const NOW = new Date('2026-12-01T10:00:00.000Z');
const BUCKET = 'data-bucket';

let jobs: MemoryJobStore;
let objects: MemoryObjectStore;
let starter: FakeStarter;
let deps: TriggerDeps;

beforeEach(() => {
  jobs = new MemoryJobStore();
  objects = new MemoryObjectStore(BUCKET);
  starter = new FakeStarter();
  deps = { manifest: manifest(), jobs, objects, starter, now: () => NOW };
});

let sequence = 0x0055aed6dcd90281e5n;
/** S3's sequencer for the next PUT: a hex string that increases per key. */
const nextSequencer = () => (++sequence).toString(16).toUpperCase().padStart(18, '0');

/** Puts `body` in the bucket and returns the S3 event's description of that PUT. */
function upload(key: string, body: string | Buffer, etag = '"etag-1"', sequencer = nextSequencer()): Upload {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  objects.objects.set(key, bytes);
  return { bucket: BUCKET, key, etag, size: bytes.length, sequencer };
}

const wineHeader = () => manifest().ensembles.get('wine')?.features.join(',') as string;
const wineRow = '13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050';

describe('startJob: uploads that can be scored', () => {
  it('starts an execution named by the job id with the documented input, and queues the job', async () => {
    const u = upload('incoming/wine/run-1.csv', `id,${wineHeader()}\nr1,${wineRow}\n`);
    const outcome = await startJob(u, deps);

    const jobId = jobIdFor(BUCKET, 'incoming/wine/run-1.csv', `sequencer:${u.sequencer}`);
    expect(outcome).toEqual({ jobId, result: 'started' });
    expect(starter.calls).toEqual([
      {
        name: jobId,
        input: {
          jobId,
          bucket: BUCKET,
          key: 'incoming/wine/run-1.csv',
          etag: '"etag-1"',
          ensemble: 'wine',
          format: 'csv',
          createdAt: NOW.toISOString(),
        },
      },
    ]);
    expect(jobs.jobs.get(jobId)).toEqual({
      jobId,
      status: 'QUEUED',
      ensemble: 'wine',
      input: { bucket: BUCKET, key: 'incoming/wine/run-1.csv', etag: '"etag-1"', sequencer: u.sequencer },
      format: 'csv',
      rowsTotal: 0,
      rowsOk: 0,
      rowsFailed: 0,
      rowsDegraded: 0,
      createdAt: NOW.toISOString(),
    });
  });

  it('accepts a header in another order, with a byte order mark and CRLF line ends', async () => {
    const names = [...bcFeatures()].reverse();
    const row = names.map(() => '1').join(',');
    const u = upload('incoming/breast-cancer/b.csv', `\uFEFF${names.join(',')},id\r\n${row},x\r\n`);
    expect((await startJob(u, deps)).result).toBe('started');
  });

  it.each([
    ['incoming/wine/rows.jsonl'],
    ['incoming/wine/rows.ndjson'],
  ])('starts a JSON Lines upload (%s) with format jsonl', async (key) => {
    const u = upload(key, `{"id":"a","features":[${wineRow}]}\n`);
    const outcome = await startJob(u, deps);
    expect(outcome.result).toBe('started');
    expect(starter.calls[0]?.input).toMatchObject({ format: 'jsonl', ensemble: 'wine', key });
    expect(jobs.jobs.get(outcome.jobId)).toMatchObject({ status: 'QUEUED', format: 'jsonl' });
  });

  it('reads only the head of a large file and starts it', async () => {
    const body = `${wineHeader()}\n${`${wineRow}\n`.repeat(2000)}`;
    expect(body.length).toBeGreaterThan(64 * 1024);
    const head = jest.spyOn(objects, 'head');
    const read = jest.spyOn(objects, 'read');
    expect((await startJob(upload('incoming/wine/big.csv', body), deps)).result).toBe('started');
    expect(head).toHaveBeenCalledWith('incoming/wine/big.csv', 64 * 1024);
    expect(read).not.toHaveBeenCalled();
  });
});

describe('startJob: duplicated events', () => {
  it('keys a job on the upload: its upload id, else its version, else the event sequencer, never the content', () => {
    expect(uploadKeyOf({ etag: '"abc"', sequencer: '0A', versionId: 'v7', uploadId: 'u1' })).toBe(
      'upload:u1',
    );
    expect(uploadKeyOf({ etag: '"abc"', sequencer: '0A', versionId: 'v7' })).toBe('version:v7');
    // S3 sends versionId "null" for an object put while versioning was never or is no longer on.
    expect(uploadKeyOf({ etag: '"abc"', sequencer: '0A', versionId: 'null' })).toBe('sequencer:0A');
    expect(uploadKeyOf({ etag: '"abc"' })).toBe('etag:abc');
    const a = jobIdFor(BUCKET, 'incoming/wine/a.csv', 'sequencer:0A');
    expect(a).toMatch(/^job-[0-9a-f]{36}$/);
    expect(jobIdFor(BUCKET, 'incoming/wine/a.csv', 'sequencer:0B')).not.toBe(a);
    expect(jobIdFor('other', 'incoming/wine/a.csv', 'sequencer:0A')).not.toBe(a);
    expect(jobIdFor(BUCKET, 'incoming/wine/b.csv', 'sequencer:0A')).not.toBe(a);
  });

  it('starts two jobs when the same bytes are uploaded twice (same ETag, two sequencers)', async () => {
    const body = `${wineHeader()}\n${wineRow}\n`;
    const a = await startJob(upload('incoming/wine/same.csv', body), deps);
    const b = await startJob(upload('incoming/wine/same.csv', body), deps);
    expect([a.result, b.result]).toEqual(['started', 'started']);
    expect(b.jobId).not.toBe(a.jobId);
    expect(starter.calls.map((c) => c.name)).toEqual([a.jobId, b.jobId]);
  });

  it('records which upload the job is for even when Prepare wrote the job first', async () => {
    const u = upload('incoming/wine/fast.csv', `${wineHeader()}\n${wineRow}\n`);
    const jobId = jobIdFor(BUCKET, u.key, `sequencer:${u.sequencer}`);
    await jobs.updateJob(jobId, { status: 'RUNNING', ensemble: 'wine', rowsTotal: 1 });
    expect(await startJob(u, deps)).toEqual({ jobId, result: 'started' });
    expect(jobs.jobs.get(jobId)).toMatchObject({
      status: 'RUNNING',
      rowsTotal: 1,
      input: { bucket: BUCKET, key: u.key, etag: '"etag-1"', sequencer: u.sequencer },
    });
  });

  it("names the job after the uploader's upload id when the object carries one", async () => {
    const u = upload('incoming/wine/named.csv', `${wineHeader()}\n${wineRow}\n`);
    objects.metadataOf.set(u.key, { 'fanout-upload-id': 'cli-42' });
    const outcome = await startJob(u, deps);
    expect(outcome).toEqual({ jobId: jobIdFor(BUCKET, u.key, 'upload:cli-42'), result: 'started' });
    expect(jobs.jobs.get(outcome.jobId)?.input).toMatchObject({ uploadId: 'cli-42', sequencer: u.sequencer });
    // A duplicated delivery of that event is the same job.
    expect((await startJob(u, deps)).result).toBe('duplicate');
  });

  it('answers duplicate for the same event twice: the starter sees the same name, the job is not reset', async () => {
    const u = upload('incoming/wine/run-1.csv', `${wineHeader()}\n${wineRow}\n`);
    const first = await startJob(u, deps);
    // The execution has begun in the meantime.
    await jobs.updateJob(first.jobId, { status: 'RUNNING', rowsTotal: 1 });
    const later = { ...deps, now: () => new Date('2026-12-01T10:05:00.000Z') };
    const second = await startJob(u, later);

    expect(second).toEqual({ jobId: first.jobId, result: 'duplicate' });
    expect(starter.calls.map((c) => c.name)).toEqual([first.jobId, first.jobId]);
    expect(jobs.jobs.get(first.jobId)).toMatchObject({
      status: 'RUNNING',
      rowsTotal: 1,
      createdAt: NOW.toISOString(),
    });
  });

  it('starts a new job when the same key is uploaded again with new content', async () => {
    const a = await startJob(upload('incoming/wine/run.csv', `${wineHeader()}\n${wineRow}\n`, '"v1"'), deps);
    const b = await startJob(upload('incoming/wine/run.csv', `${wineHeader()}\n${wineRow}\n`, '"v2"'), deps);
    expect(a.result).toBe('started');
    expect(b.result).toBe('started');
    expect(b.jobId).not.toBe(a.jobId);
  });

  it('answers duplicate for a repeated event of a rejected file and keeps the first record', async () => {
    const u = upload('incoming/wine/empty.csv', '');
    const first = await startJob(u, deps);
    const second = await startJob(u, { ...deps, now: () => new Date('2027-01-01T00:00:00.000Z') });
    expect(first.result).toBe('rejected');
    expect(second).toMatchObject({ jobId: first.jobId, result: 'duplicate' });
    expect(jobs.jobs.get(first.jobId)?.finishedAt).toBe(NOW.toISOString());
    expect(starter.calls).toEqual([]);
  });
});

describe('startJob: uploads that fail fast', () => {
  async function rejected(key: string, body: string | Buffer, size?: number) {
    const u = upload(key, body);
    const outcome = await startJob(size === undefined ? u : { ...u, size }, deps);
    expect(outcome.result).toBe('rejected');
    expect(starter.calls).toEqual([]);
    const job = jobs.jobs.get(outcome.jobId);
    expect(job).toMatchObject({
      jobId: outcome.jobId,
      status: 'FAILED',
      input: { bucket: BUCKET, key },
      rowsTotal: 0,
      rowsOk: 0,
      rowsFailed: 0,
      createdAt: NOW.toISOString(),
      finishedAt: NOW.toISOString(),
      error: { code: 'invalid_batch_file', message: outcome.reason },
    });
    return job?.error?.message as string;
  }

  it('rejects a key that is not under incoming/<ensemble>/', async () => {
    const message = await rejected('uploads/wine/a.csv', `${wineHeader()}\n${wineRow}\n`);
    expect(message).toBe('key "uploads/wine/a.csv" is not of the form incoming/<ensemble>/<name>.csv|.jsonl');
    expect(await rejected('incoming/a.csv', 'x')).toContain('is not of the form incoming/<ensemble>/');
    expect(await rejected('incoming/wine/sub/a.csv', 'x')).toContain(
      'is not of the form incoming/<ensemble>/',
    );
  });

  it('rejects an unknown ensemble, naming it and the ensembles served', async () => {
    const message = await rejected('incoming/nope/a.csv', `${wineHeader()}\n${wineRow}\n`);
    expect(message).toContain('unknown ensemble or model "nope"');
    expect(message).toContain('breast-cancer');
    expect(message).toContain('wine');
    expect(jobs.jobs.size).toBe(1);
    expect([...jobs.jobs.values()][0]?.ensemble).toBe('nope');
  });

  it('rejects a file that is neither .csv nor .jsonl', async () => {
    expect(await rejected('incoming/wine/a.txt', `${wineHeader()}\n${wineRow}\n`)).toBe(
      '"incoming/wine/a.txt" is neither .csv nor .jsonl',
    );
  });

  it('rejects an empty file', async () => {
    expect(await rejected('incoming/wine/a.csv', '')).toBe('the file is empty');
    expect(await rejected('incoming/wine/b.jsonl', '')).toBe('the file is empty');
  });

  it('rejects a file that reads back empty even when the event gave a size', async () => {
    expect(await rejected('incoming/wine/c.csv', '', 10)).toBe('the file is empty');
  });

  it('rejects a binary file', async () => {
    const png = Buffer.from([
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52,
    ]);
    expect(await rejected('incoming/wine/a.csv', png)).toBe(
      'the file is not text (binary content in the first 64 KiB)',
    );
    const gzip = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41]);
    expect(await rejected('incoming/wine/b.jsonl', gzip)).toContain('not text');
  });

  it('rejects a CSV whose header is not the feature names, saying which are missing and unknown', async () => {
    const names = manifest().ensembles.get('wine')?.features as string[];
    const header = ['id', ...names.slice(1), 'Alcohol'].join(',');
    const message = await rejected('incoming/wine/a.csv', `${header}\nr1,${wineRow}\n`);
    expect(message).toContain('missing feature column(s) "alcohol"');
    expect(message).toContain('unknown column(s) "Alcohol"');
  });

  it('rejects a CSV whose first line is data rather than a header', async () => {
    const message = await rejected('incoming/wine/a.csv', `${wineRow}\n${wineRow}\n`);
    expect(message).toMatch(
      /^header missing feature column\(s\) "alcohol", .* and 8 more; unknown column\(s\) "13.2"/,
    );
  });

  it('rejects a CSV with a duplicated column', async () => {
    const message = await rejected('incoming/wine/a.csv', `${wineHeader()},ash\n${wineRow},1\n`);
    expect(message).toBe('header names column "ash" twice');
  });

  it('rejects a CSV with only a header (with or without blank lines after it)', async () => {
    expect(await rejected('incoming/wine/a.csv', `${wineHeader()}\n`)).toBe(
      'the file has a header but no rows',
    );
    expect(await rejected('incoming/wine/b.csv', `${wineHeader()}`)).toBe(
      'the file has a header but no rows',
    );
    expect(await rejected('incoming/wine/c.csv', `${wineHeader()}\r\n\r\n  \n`)).toBe(
      'the file has a header but no rows',
    );
  });

  it('rejects a JSON Lines file with only blank lines', async () => {
    expect(await rejected('incoming/wine/a.jsonl', '\n \n\r\n')).toBe('the file has no rows');
  });
});
