import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Event } from 'aws-lambda';
import { S3ObjectStore } from '../../functions/adapters/s3-objects.js';
import { UploadReplacedError } from '../../functions/core/errors.js';
import { batchCountsFromMetadata, batchCountsMetadata } from '../../functions/core/jobs.js';
import type { RunningServer } from '../../local/http-util.js';
import { matches, S3RVER_CREDENTIALS, startS3 } from '../../local/s3.js';
import { rejection } from '../support/rejection.js';

const BUCKET = 'fanout-test-data';
const OTHER_BUCKET = 'fanout-test-other';

const record = (key: string, eventName = 'ObjectCreated:Put', bucket = BUCKET) => ({
  eventName,
  s3: { bucket: { name: bucket }, object: { key } },
});

/** How the batch trigger reads a key out of an S3 event (URL-encoded, '+' for spaces, as on AWS). */
const decodeKey = (key: string) => decodeURIComponent(key.replace(/\+/g, ' '));

describe('matches (S3 notification rules)', () => {
  const any = { bucket: BUCKET, event: 's3:ObjectCreated:*', prefix: 'incoming/' };

  it('matches only the configured bucket', () => {
    expect(matches(any, record('incoming/a.csv'))).toBe(true);
    expect(matches(any, record('incoming/a.csv', 'ObjectCreated:Put', OTHER_BUCKET))).toBe(false);
  });

  it('takes every ObjectCreated type for s3:ObjectCreated:* and only the named one otherwise', () => {
    for (const type of ['Put', 'Post', 'Copy', 'CompleteMultipartUpload']) {
      expect(matches(any, record('incoming/a.csv', `ObjectCreated:${type}`))).toBe(true);
    }
    expect(matches(any, record('incoming/a.csv', 'ObjectRemoved:Delete'))).toBe(false);
    const putOnly = { ...any, event: 's3:ObjectCreated:Put' };
    expect(matches(putOnly, record('incoming/a.csv', 'ObjectCreated:Put'))).toBe(true);
    expect(matches(putOnly, record('incoming/a.csv', 'ObjectCreated:Post'))).toBe(false);
    expect(matches(putOnly, record('incoming/a.csv', 'ObjectCreated:PutSomething'))).toBe(false);
  });

  it('applies the prefix and the suffix to the key', () => {
    const csv = { ...any, suffix: '.csv' };
    expect(matches(csv, record('incoming/breast-cancer/rows.csv'))).toBe(true);
    expect(matches(csv, record('incoming/breast-cancer/rows.jsonl'))).toBe(false);
    expect(matches(csv, record('results/rows.csv'))).toBe(false);
    expect(matches(csv, record('xincoming/rows.csv'))).toBe(false);
    expect(matches({ bucket: BUCKET, event: 's3:ObjectCreated:*' }, record('anything/at/all'))).toBe(true);
  });

  it('compares the decoded key, as S3 sends keys URL-encoded', () => {
    const spaced = { ...any, prefix: 'incoming/my folder/', suffix: '.csv' };
    expect(matches(spaced, record('incoming/my+folder/a+b.csv'))).toBe(true);
    expect(matches(spaced, record('incoming/my%20folder/a.csv'))).toBe(true);
    expect(matches({ ...any, prefix: 'incoming/café/' }, record('incoming/caf%C3%A9/rows.csv'))).toBe(true);
    expect(matches({ ...any, suffix: '+1.csv' }, record('incoming/x%2B1.csv'))).toBe(true);
  });
});

describe('startS3', () => {
  let dataDir: string;
  let server: RunningServer | undefined;
  let s3: S3Client;
  const received: { functionKey: string; event: S3Event }[] = [];
  const waiters: (() => void)[] = [];
  const logs: string[] = [];

  const start = async () => {
    server = await startS3({
      dataDir,
      buckets: [BUCKET, OTHER_BUCKET],
      subscribers: [
        {
          functionKey: 'batchTrigger',
          event: { bucket: BUCKET, event: 's3:ObjectCreated:*', prefix: 'incoming/' },
        },
        {
          functionKey: 'jsonOnly',
          event: { bucket: BUCKET, event: 's3:ObjectCreated:Put', suffix: '.json' },
        },
      ],
      invoke: async (functionKey, event) => {
        received.push({ functionKey, event: event as S3Event });
        for (const w of waiters.splice(0)) w();
        return null;
      },
      log: (line) => logs.push(line),
    });
    s3?.destroy();
    s3 = new S3Client({
      region: 'us-east-1',
      endpoint: server.url,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  };

  /** Waits until `count` invocations have been received in total. */
  const invocations = async (count: number) => {
    while (received.length < count) await new Promise<void>((r) => waiters.push(r));
    return received.slice(0, count);
  };

  const put = (Key: string, Body: string | Uint8Array, Bucket = BUCKET) =>
    s3.send(new PutObjectCommand({ Bucket, Key, Body }));
  const get = async (Key: string) =>
    Buffer.from(
      await ((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body?.transformToByteArray() ??
        []),
    );

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fanout-s3-'));
    await start();
  });

  afterAll(async () => {
    await server?.close();
    s3?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    received.length = 0;
  });

  it('serves on 127.0.0.1 and keeps objects under <dataDir>/s3', () => {
    expect(server?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(existsSync(join(dataDir, 's3'))).toBe(true);
  });

  it('invokes the subscribed function with the real S3 event shape for an upload under its prefix', async () => {
    const body = 'mean radius,mean texture\n1,2\n';
    await put('incoming/breast-cancer/rows.csv', body);
    const [call] = await invocations(1);
    expect(call?.functionKey).toBe('batchTrigger');
    expect(call?.event.Records).toHaveLength(1);
    const r = call?.event.Records[0];
    expect(r).toMatchObject({
      eventSource: 'aws:s3',
      eventName: 'ObjectCreated:Put',
      awsRegion: expect.any(String),
      eventTime: expect.any(String),
      s3: {
        bucket: { name: BUCKET },
        object: { key: 'incoming/breast-cancer/rows.csv', size: Buffer.byteLength(body) },
      },
    });
    expect(r?.s3.object.eTag).toBe(createHash('md5').update(body).digest('hex'));
    expect(r?.s3.object.sequencer).toMatch(/^[0-9A-F]{18}$/);
  });

  it('gives each PUT of a key its own increasing sequencer, as S3 does, even for the same bytes', async () => {
    for (let i = 0; i < 3; i++) await put('incoming/breast-cancer/again.csv', 'same bytes');
    const calls = await invocations(3);
    const seq = calls.map((c) => c.event.Records[0]?.s3.object.sequencer as string);
    expect(new Set(calls.map((c) => c.event.Records[0]?.s3.object.eTag)).size).toBe(1);
    expect(BigInt(`0x${seq[0]}`) < BigInt(`0x${seq[1]}`)).toBe(true);
    expect(BigInt(`0x${seq[1]}`) < BigInt(`0x${seq[2]}`)).toBe(true);
  });

  it('does not invoke it for other prefixes or other buckets', async () => {
    await put('results/rows.csv', 'x');
    await put('incoming/rows.csv', 'x', OTHER_BUCKET);
    await put('incoming/marker.csv', 'x');
    const calls = await invocations(1);
    expect(calls.map((c) => [c.functionKey, c.event.Records[0]?.s3.object.key])).toEqual([
      ['batchTrigger', 'incoming/marker.csv'],
    ]);
    expect(received).toHaveLength(1);
  });

  it('invokes every function whose rules match the upload', async () => {
    await put('incoming/both.json', '{}');
    const calls = await invocations(2);
    expect(calls.map((c) => c.functionKey).sort()).toEqual(['batchTrigger', 'jsonOnly']);
  });

  it('only logs a function that fails: the upload itself succeeds', async () => {
    // A subscriber rejecting is like an async Lambda invocation failing: S3 does not care.
    const failing = await startS3({
      dataDir: mkdtempSync(join(tmpdir(), 'fanout-s3-failing-')),
      buckets: [BUCKET],
      subscribers: [{ functionKey: 'broken', event: { bucket: BUCKET, event: 's3:ObjectCreated:*' } }],
      invoke: async () => {
        throw new Error('handler exploded');
      },
      log: (line) => logs.push(line),
    });
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: failing.url,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a.csv', Body: 'x' }));
    } finally {
      client.destroy();
      await failing.close(); // waits for the pending invocation
    }
    expect(logs.some((l) => l.includes('broken failed on a.csv: handler exploded'))).toBe(true);
  });

  it('answers a GET racing PUTs of the same key with one whole upload, never a part (S3 PUTs are atomic)', async () => {
    const key = 'elsewhere/racing.csv'; // outside incoming/: no trigger events to wait for
    const size = 512 * 1024;
    const bodies = ['a', 'b', 'c', 'd'].map((c) => Buffer.alloc(size, c));
    await put(key, bodies[0] as Buffer);
    const seen: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 1; i < 24; i++) await put(key, bodies[i % bodies.length] as Buffer);
      writing = false;
    })();
    while (writing) {
      const got = await get(key);
      const whole = bodies.some((b) => b.equals(got));
      seen.push(whole ? 'whole' : `part of ${got.length} bytes`);
    }
    await writer;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((s) => s !== 'whole')).toEqual([]);
  });

  it("reads an upload by its event's ETag through the object store, and refuses it once the key holds another upload, naming both", async () => {
    const store = new S3ObjectStore(s3, BUCKET);
    const key = 'incoming/breast-cancer/replaced.csv';
    await put(key, 'first upload\n');
    const [first] = await invocations(1);
    const etag = first?.event.Records[0]?.s3.object.eTag as string;
    const text = async (body: AsyncIterable<Uint8Array>) => {
      let out = '';
      for await (const chunk of body) out += Buffer.from(chunk).toString('utf8');
      return out;
    };
    expect(await text(await store.read(key, { etag }))).toBe('first upload\n');
    expect(await text(await store.read(key, { etag: `"${etag}"` }))).toBe('first upload\n');
    await put(key, 'second upload\n');
    const [, second] = await invocations(2);
    const newer = second?.event.Records[0]?.s3.object.eTag as string;
    const err = await rejection(store.read(key, { etag }));
    expect(err).toBeInstanceOf(UploadReplacedError);
    expect(err.message).toContain(`s3://${BUCKET}/${key} was replaced after this job started`);
    expect(err.message).toContain(etag);
    expect(err.message).toContain(newer);
    expect(await text(await store.read(key, { etag: newer }))).toBe('second upload\n');
  });

  it("stores a written object's user metadata through the object store, and an overwrite without it drops it", async () => {
    const store = new S3ObjectStore(s3, BUCKET);
    const key = 'jobs/job-meta/parts/000000000002.csv';
    await store.write(key, 'r2,benign\n', 'text/csv', batchCountsMetadata({ cached: 1, scored: 249 }));
    expect(batchCountsFromMetadata(2, await store.metadata(key))).toEqual({
      firstLine: 2,
      cached: 1,
      scored: 249,
    });
    await store.write(key, 'r2,benign\n', 'text/csv');
    expect(batchCountsFromMetadata(2, await store.metadata(key))).toBeUndefined();
  });

  it('sends keys URL-encoded as S3 does, so a key with "+" decodes back to the uploaded key', async () => {
    const key = 'incoming/breast-cancer/rows+v2 final.csv';
    await put(key, 'x');
    const [call] = await invocations(1);
    expect(decodeKey(call?.event.Records[0]?.s3.object.key ?? '')).toBe(key);
  });

  it('delivers an upload whose key contains "%" (URL-encoded in the event)', async () => {
    const key = 'incoming/breast-cancer/100%.csv';
    await put(key, 'x');
    const [call] = await invocations(1);
    expect(decodeKey(call?.event.Records[0]?.s3.object.key ?? '')).toBe(key);
  });

  it('round-trips a streamed multipart upload over 5 MB byte for byte, and reports it as created', async () => {
    const data = randomBytes(11 * 1024 * 1024 + 123);
    const chunks = function* () {
      for (let i = 0; i < data.length; i += 256 * 1024) yield data.subarray(i, i + 256 * 1024);
    };
    await new Upload({
      client: s3,
      params: { Bucket: BUCKET, Key: 'incoming/big.bin', Body: Readable.from(chunks()) },
      partSize: 5 * 1024 * 1024,
    }).done();
    const back = await get('incoming/big.bin');
    expect(back.length).toBe(data.length);
    expect(createHash('sha256').update(back).digest('hex')).toBe(
      createHash('sha256').update(data).digest('hex'),
    );
    const [call] = await invocations(1);
    expect(call?.event.Records[0]?.eventName).toMatch(/^ObjectCreated:/);
    expect(call?.event.Records[0]?.s3.object.key).toBe('incoming/big.bin');
  });

  it('keeps objects across a restart on the same data folder', async () => {
    await put('kept/object.txt', 'still here');
    await server?.close();
    server = undefined;
    await start();
    expect((await get('kept/object.txt')).toString()).toBe('still here');
  });
});
