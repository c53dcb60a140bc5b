import { request } from 'node:http';
import { join } from 'node:path';
import { loadManifest } from '../../functions/core/manifest.js';
import { type LocalSageMaker, startLocalSageMaker } from '../../local/sagemaker-endpoint.js';
import { MODELS_DIR, readDataset } from '../models/data.js';

const ENDPOINT = 'fanout-bc-gradient-boosting';
const { rows } = readDataset('data/breast_cancer.csv');
const SIX_MB = 6 * 1024 * 1024;

let sm: LocalSageMaker;

beforeAll(async () => {
  sm = await startLocalSageMaker(loadManifest(join(MODELS_DIR, 'manifest.json')), new Map(), 0);
});

afterAll(async () => {
  await sm?.close();
});

/** POSTs a body to an endpoint's invocations path and reads the answer as JSON. */
async function invoke(
  endpoint: string,
  body: string | Uint8Array,
  contentType = 'text/csv',
): Promise<{ status: number; type: string | null; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(`${sm.url}/endpoints/${encodeURIComponent(endpoint)}/invocations`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  return {
    status: res.status,
    type: res.headers.get('x-amzn-errortype'),
    headers: res.headers,
    body: (await res.json()) as Record<string, unknown>,
  };
}

/** Streams `size` bytes with chunked encoding (no content-length), answering the status code. */
function streamed(size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${sm.url}/endpoints/${ENDPOINT}/invocations`,
      { method: 'POST', headers: { 'content-type': 'text/csv' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 0x31);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('local SageMaker runtime over raw HTTP', () => {
  it('answers a CSV invocation with the manifest shape and the production variant header', async () => {
    const res = await invoke(
      ENDPOINT,
      rows
        .slice(0, 3)
        .map((r) => r.join(','))
        .join('\n'),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-amzn-invoked-production-variant')).toBe('AllTraffic');
    const predictions = res.body.predictions as number[][];
    expect(predictions).toHaveLength(3);
    for (const p of predictions) expect((p[0] as number) + (p[1] as number)).toBeCloseTo(1, 5);
  });

  it('accepts JSON as {"instances": rows} and as a bare list', async () => {
    const wrapped = await invoke(
      ENDPOINT,
      JSON.stringify({ instances: rows.slice(0, 2) }),
      'application/json',
    );
    const bare = await invoke(ENDPOINT, JSON.stringify(rows.slice(0, 2)), 'application/json; charset=utf-8');
    expect(wrapped.status).toBe(200);
    expect(bare.body).toEqual(wrapped.body);
  });

  it('answers 400 ValidationError for an unknown endpoint', async () => {
    const res = await invoke('no-such-endpoint', '1,2,3');
    expect(res.status).toBe(400);
    expect(res.type).toBe('ValidationError');
    expect(res.body.message).toMatch(/Endpoint no-such-endpoint of account \d+ not found/);
  });

  it('answers 424 ModelError naming the problem when a CSV row has the wrong width', async () => {
    const res = await invoke(ENDPOINT, '1,2,3');
    expect(res.status).toBe(424);
    expect(res.type).toBe('ModelError');
    expect(res.body.OriginalStatusCode).toBe(400);
    expect(res.body.OriginalMessage).toMatch(/csv rows\[0\]: expected 30 values/);
    expect(res.body.Message).toContain(ENDPOINT);
  });

  it('answers 424 ModelError naming the problem for a value that is not a number', async () => {
    const row = rows[0]?.map(String) ?? [];
    row[4] = 'abc';
    const res = await invoke(ENDPOINT, row.join(','));
    expect(res.status).toBe(424);
    expect(res.body.OriginalMessage).toMatch(/csv rows\[0\] field "mean smoothness"/);
  });

  it('answers ModelError for a content type the container does not read', async () => {
    const res = await invoke(ENDPOINT, 'a b c', 'text/plain');
    expect(res.status).toBe(424);
    expect(res.type).toBe('ModelError');
    expect(res.body.OriginalMessage).toMatch(/unsupported content type "text\/plain"/);
  });

  it('answers ModelError for a JSON body that does not parse', async () => {
    const res = await invoke(ENDPOINT, '{"instances": [', 'application/json');
    expect(res.status).toBe(424);
    expect(res.type).toBe('ModelError');
  });

  it('answers 413 for a payload over 6 MB with a content-length', async () => {
    const res = await invoke(ENDPOINT, new Uint8Array(SIX_MB + 1).fill(0x31));
    expect(res.status).toBe(413);
    expect(res.body.message).toMatch(/6 MB/);
  });

  it('answers 413 for a streamed payload that passes 6 MB', async () => {
    expect(await streamed(SIX_MB + 256 * 1024)).toBe(413);
  });

  it('answers 404 for anything but POST to an invocations path', async () => {
    const res = await fetch(`${sm.url}/endpoints/${ENDPOINT}/invocations`);
    expect(res.status).toBe(404);
    expect(res.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
  });

  it('reports a model-error fault with the status and message it was given', async () => {
    sm.setFault(ENDPOINT, { kind: 'model-error', status: 503, message: 'warming up' });
    try {
      const res = await invoke(ENDPOINT, rows[0]?.join(',') ?? '');
      expect(res.status).toBe(424);
      expect(res.body).toMatchObject({
        __type: 'ModelError',
        OriginalStatusCode: 503,
        OriginalMessage: 'warming up',
      });
    } finally {
      sm.setFault(ENDPOINT, undefined);
    }
    expect((await invoke(ENDPOINT, rows[0]?.join(',') ?? '')).status).toBe(200);
  });

  it('throttles exactly the number of times it was told to', async () => {
    sm.setFault(ENDPOINT, { kind: 'throttle', times: 2 });
    try {
      const statuses: (string | null)[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await invoke(ENDPOINT, rows[0]?.join(',') ?? '')).type);
      expect(statuses).toEqual(['ThrottlingException', 'ThrottlingException', null]);
    } finally {
      sm.setFault(ENDPOINT, undefined);
    }
  });
});
