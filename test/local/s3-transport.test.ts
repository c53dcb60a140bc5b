import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { RunningServer } from '../../local/http-util.js';
import { requestListenerEndpoint } from '../../local/in-process-http.js';
import { startS3 } from '../../local/s3.js';
import {
  LOCAL_SERVICES,
  type LocalRequest,
  localSdkTransport,
  type StreamedResponse,
} from '../../local/sdk-transport.js';

const BUCKET = 'fanout-transport-test';
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('S3 through the local SDK transport (s3rver in this process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 's3-transport-test-'));
  const invoked: unknown[] = [];
  const seen: LocalRequest[] = [];
  let s3: RunningServer;
  let client: S3Client;

  beforeAll(async () => {
    s3 = await startS3({
      dataDir: dir,
      buckets: [BUCKET],
      subscribers: [
        {
          functionKey: 'trigger',
          event: { bucket: BUCKET, event: 's3:ObjectCreated:*', prefix: 'incoming/' },
        },
      ],
      invoke: async (_key, event) => invoked.push(event),
      log: () => undefined,
    });
    const endpoint = requestListenerEndpoint(s3.requestListener as RequestListener, { streaming: true });
    const transport = localSdkTransport((_service, request) => {
      seen.push(request);
      return endpoint(request);
    });
    client = new S3Client({
      region: 'us-east-1',
      // Nothing listens here: a request that reached for a socket would fail.
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      // Not the key pair s3rver accepts: a signed request would be refused.
      credentials: { accessKeyId: 'AKIDNOTS3RVER', secretAccessKey: 'wrong' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      ...transport.overrides('s3', {}),
    });
  });

  afterAll(async () => {
    client.destroy();
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes, lists and reads objects through s3rver's own request handling, unsigned", async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a/one.txt', Body: 'first object' }));
    const put = seen.at(-1) as LocalRequest;
    expect(put).toMatchObject({ method: 'PUT', path: `/${BUCKET}/a/one.txt?x-id=PutObject` });
    expect(put.headers.authorization).toBeUndefined();

    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'a/one.txt' }));
    expect(head.ContentLength).toBe('first object'.length);
    const list = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'a/' }));
    expect(list.Contents?.map((o) => o.Key)).toEqual(['a/one.txt']);
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a/one.txt' }));
    expect(got.Body).toBeInstanceOf(Readable);
    expect(await got.Body?.transformToString()).toBe('first object');
  });

  it("answers a missing key with S3's typed error", async () => {
    const missing = client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a/none.txt' }));
    await expect(missing).rejects.toBeInstanceOf(NoSuchKey);
  });

  it('streams a large object both ways: a multipart upload from a stream, read back whole and in a range', async () => {
    const bytes = randomBytes(12 * 1024 * 1024);
    await new Upload({
      client,
      params: {
        Bucket: BUCKET,
        Key: 'big/object.bin',
        Body: Readable.from([bytes.subarray(0, 7e6), bytes.subarray(7e6)]),
      },
    }).done();
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'big/object.bin' }));
    const back = await got.Body?.transformToByteArray();
    expect(back?.length).toBe(bytes.length);
    expect(sha(back as Uint8Array)).toBe(sha(bytes));
    const range = await client.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: 'big/object.bin', Range: 'bytes=100-199' }),
    );
    expect(Buffer.from((await range.Body?.transformToByteArray()) as Uint8Array)).toEqual(
      bytes.subarray(100, 200),
    );
  });

  it("raises S3's upload event for an object written in the process, as for one sent over a socket", async () => {
    invoked.length = 0;
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'incoming/rows.csv', Body: 'a,b\n1,2\n' }));
    expect(invoked).toHaveLength(1);
    expect(JSON.stringify(invoked[0])).toContain('incoming/rows.csv');
  });

  it('leaves S3 to its socket and SigV4 where a transport does not carry it (a worker instance)', () => {
    const workers = localSdkTransport(
      () => Promise.reject(new Error('not called')),
      LOCAL_SERVICES.filter((s) => s !== 's3'),
    );
    expect(workers.overrides('s3', {})).toEqual({});
    expect(workers.overrides('dynamodb', {}).requestHandler).toBeDefined();
  });
});

describe('a streamed in-process answer', () => {
  it('is handed over at its first bytes, before the server has written the rest', async () => {
    let finish = () => {};
    const endpoint = requestListenerEndpoint(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first,');
        finish = () => res.end('last');
      },
      { streaming: true },
    );
    const answer = (await endpoint({ method: 'GET', path: '/', headers: {} })) as StreamedResponse;
    expect(answer.statusCode).toBe(200);
    expect(answer.headers['content-type']).toBe('text/plain');
    const chunks: string[] = [];
    answer.body.on('data', (c: Buffer) => chunks.push(c.toString()));
    await new Promise((r) => setImmediate(r));
    expect(chunks.join('')).toBe('first,');
    finish();
    await once(answer.body, 'end');
    expect(chunks.join('')).toBe('first,last');
  });

  it("holds the server's writes back until the reader takes them, and tells it when the reader gives up", async () => {
    const source = new PassThrough({ highWaterMark: 1024 });
    let closed = false;
    const endpoint = requestListenerEndpoint(
      (_req, res) => {
        res.on('close', () => {
          closed = true;
          source.destroy();
        });
        source.pipe(res);
      },
      { streaming: true },
    );
    const pending = endpoint({ method: 'GET', path: '/', headers: {} });
    // Written faster than anyone reads: the pipe must stop on the response's backpressure.
    let accepted = 0;
    while (source.write(Buffer.alloc(64 * 1024))) accepted++;
    const answer = (await pending) as StreamedResponse;
    await new Promise((r) => setImmediate(r));
    expect(source.writableLength).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(64);
    answer.body.destroy();
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(true);
    expect(source.destroyed).toBe(true);
  });

  it('cuts the body of an answer the server gives up on midway, as a dropped connection would', async () => {
    const endpoint = requestListenerEndpoint(
      (_req, res) => {
        res.write('partial');
        setImmediate(() => res.destroy(new Error('disk gone')));
      },
      { streaming: true },
    );
    const answer = (await endpoint({ method: 'GET', path: '/', headers: {} })) as StreamedResponse;
    answer.body.resume();
    await expect(once(answer.body, 'end')).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});
