import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { http, type StackProcess, startStackProcess } from '../support/stack-process.js';

const ROOT = resolve(import.meta.dirname, '../..');
const MANIFEST = join(ROOT, 'models/manifest.json');

// The ensemble under test: the first one of the manifest, with the cache turned on in a copy, as a
// user would. Its files are made absolute so the copy can live anywhere.
type Doc = Record<string, any>;
function manifestCopy(edit: (doc: Doc) => void = () => {}): Doc {
  const doc: Doc = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  const at = (file: string) => resolve(dirname(MANIFEST), file);
  for (const m of doc.models) {
    if (m.file) m.file = at(m.file);
    if (m.localFile) m.localFile = at(m.localFile);
  }
  for (const e of doc.ensembles) if (e.stacking) e.stacking.file = at(e.stacking.file);
  doc.ensembles[0].cache = { ttlSeconds: 600 };
  // Every request is served by the ensemble it names: a canary would take a share elsewhere.
  for (const e of doc.ensembles) delete e.canary;
  edit(doc);
  return doc;
}
const ENSEMBLE = manifestCopy().ensembles[0] as { name: string; members: string[] };
const features: string[] = (() => {
  const doc = manifestCopy();
  const first = doc.models.find((m: Doc) => m.id === ENSEMBLE.members[0]);
  return typeof first.features === 'string' ? doc.featureSets[first.features] : first.features;
})();

/** Rows of the vendored data set (the file's first line is a count header). */
const data = readFileSync(join(ROOT, 'models/data/breast_cancer.csv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split(',').slice(0, features.length).map(Number));

/** Runs `fanout batch ...` as a user would. */
function fanout(
  args: string[],
  port: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(resolve(ROOT, 'node_modules/.bin/node'), ['bin/fanout.js', ...args], {
      cwd: ROOT,
      env: { ...process.env, PORT: port },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

let dir: string;
let manifestPath: string;
let stack: StackProcess | undefined;
const predictions = () => `${stack?.api}/v1/ensembles/${ENSEMBLE.name}/predictions`;

async function start(doc: Doc): Promise<void> {
  writeFileSync(manifestPath, JSON.stringify(doc, null, 2));
  stack = await startStackProcess(join(dir, 'data'), { FANOUT_MANIFEST: manifestPath });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-cache-e2e-'));
  manifestPath = join(dir, 'manifest.json');
  await start(manifestCopy());
}, 90_000);

afterAll(async () => {
  if (stack) expect(await stack.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

describe('the result cache through the local stack over HTTP', () => {
  const body = { instances: [data[0], data[20]] };
  let first: { status: number; body: any; headers: Headers };

  it('answers the same request twice: a miss that runs the members, then a hit from the cache', async () => {
    first = await http('POST', predictions(), body);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-status')).toBe('miss');
    expect(first.body.cached).toBeUndefined();
    expect(first.body.members.every((m: { status: string }) => m.status === 'ok')).toBe(true);

    const second = await http('POST', predictions(), body);
    expect(second.status).toBe(200);
    expect(second.headers.get('cache-status')).toBe('hit');
    expect(second.body).toMatchObject({ cached: true, degraded: false, ensemble: ENSEMBLE.name });
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.body.predictions).toEqual(first.body.predictions);
    // A hit replays the counted members only: shadow members ran with the first request alone.
    expect(second.body.members.map((m: { predictions: unknown }) => m.predictions)).toEqual(
      first.body.members
        .filter((m: { shadow?: boolean }) => !m.shadow)
        .map((m: { predictions: unknown }) => m.predictions),
    );
    expect(second.body.members.every((m: { latencyMs: number }) => m.latencyMs === 0)).toBe(true);
    expect(Date.parse(second.body.createdAt)).toBeGreaterThanOrEqual(Date.parse(first.body.createdAt));

    const stored = await http('GET', `${stack?.api}/v1/predictions/${second.body.id}`);
    expect(stored.body).toEqual(second.body);
  });

  it('hits for the same rows given by feature names', async () => {
    const named = body.instances.map((row) => Object.fromEntries(features.map((f, i) => [f, row?.[i]])));
    const res = await http('POST', predictions(), { id: 'e2e-cache-named', instances: named });
    expect(res.headers.get('cache-status')).toBe('hit');
    expect(res.body).toMatchObject({ id: 'e2e-cache-named', cached: true });
    const repeat = await http('POST', predictions(), { id: 'e2e-cache-named', instances: body.instances });
    expect(repeat.headers.get('idempotent-replay')).toBe('true');
    expect(repeat.body).toEqual(res.body);
  });

  it('sends no cache-status for an ensemble without a cache', async () => {
    const other = manifestCopy().ensembles.find((e: Doc) => !e.cache && e.name !== ENSEMBLE.name);
    const res = await http('POST', `${stack?.api}/v1/ensembles/${other.name}/predictions`, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-status')).toBeNull();
  });

  it('scores each distinct row of a batch file of repeats once, and a second upload not at all', async () => {
    // Every data row twice, the copies far apart (different Distributed Map batches).
    const rows = [...data.keys(), ...data.keys()];
    const csv = [`id,${features.join(',')}`, ...rows.map((r, k) => `k${k},${data[r]?.join(',')}`)].join('\n');
    const port = new URL(stack?.api as string).port;
    const jobs = [];
    for (const name of ['repeats-a.csv', 'repeats-b.csv']) {
      writeFileSync(join(dir, name), `${csv}\n`);
      const out = join(dir, `${name}.results.csv`);
      const run = await fanout(
        ['batch', join(dir, name), '--ensemble', ENSEMBLE.name, '--out', out, '--json'],
        port,
      );
      expect([run.code, run.stderr]).toEqual([0, expect.stringContaining('answered from the result cache')]);
      const printed = JSON.parse(run.stdout.trim().split('\n').pop() as string);
      const served = await http('GET', `${stack?.api}/v1/jobs/${printed.jobId}`);
      expect(served.body).toMatchObject(printed);
      jobs.push({ job: served.body, out });
    }
    const [a, b] = jobs as [(typeof jobs)[number], (typeof jobs)[number]];
    expect(a.job).toMatchObject({ status: 'SUCCEEDED', rowsOk: rows.length, rowsFailed: 0 });
    // The first copy of each row is scored, or found in the cache that an earlier batch filled.
    expect(a.job.rowsScored).toBeGreaterThanOrEqual(data.length - 2);
    expect(a.job.rowsScored).toBeLessThan(rows.length);
    expect(b.job).toMatchObject({
      status: 'SUCCEEDED',
      rowsOk: rows.length,
      rowsCached: rows.length,
      rowsScored: 0,
    });

    const resultsA = readFileSync(a.out, 'utf8').trim().split('\n');
    const resultsB = readFileSync(b.out, 'utf8').trim().split('\n');
    expect(resultsB).toEqual(resultsA);
    expect(resultsA.slice(1).map((l) => l.split(',')[0])).toEqual(rows.map((_, k) => `k${k}`));
    // Both copies of a row carry the same answer.
    const answers = resultsA.slice(1).map((l) => l.split(',').slice(1).join(','));
    expect(answers.slice(data.length)).toEqual(answers.slice(0, data.length));

    // A synchronous request for a row only the batch scored is answered from the cache too.
    const sync = await http('POST', predictions(), { instances: [data[321]] });
    expect(sync.headers.get('cache-status')).toBe('hit');
  }, 180_000);

  it("answers a row it has read from the API instance's memory, even once the table's entry is gone", async () => {
    const table = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: stack?.dynamodb,
        region: 'us-east-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      }),
    );
    // The rows of `body` were read as hits above: this instance holds their entries.
    let deleted = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await table.send(
        new ScanCommand({
          TableName: 'fanout-local',
          FilterExpression: 'begins_with(pk, :cache)',
          ExpressionAttributeValues: { ':cache': 'CACHE#' },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        await table.send(new DeleteCommand({ TableName: 'fanout-local', Key: { pk: item.pk, sk: item.sk } }));
        deleted++;
      }
      start = page.LastEvaluatedKey;
    } while (start);
    expect(deleted).toBeGreaterThan(0);
    const fromMemory = await http('POST', predictions(), body);
    expect(fromMemory.headers.get('cache-status')).toBe('hit');
    expect(fromMemory.body.predictions).toEqual(first.body.predictions);
    // A row only the batch jobs scored, which this instance never read: with its entry gone, it
    // runs again.
    const gone = await http('POST', predictions(), { instances: [data[322]] });
    expect(gone.headers.get('cache-status')).toBe('miss');
  });

  it("misses once a member's version changes in the manifest (after a restart), then hits again", async () => {
    expect(await stack?.stop()).toBe(0);
    stack = undefined;
    await start(
      manifestCopy((doc) => {
        const member = doc.models.find((m: Doc) => m.id === ENSEMBLE.members[0]);
        member.version = `${member.version}+retrained`;
      }),
    );
    const after = await http('POST', predictions(), body);
    expect(after.headers.get('cache-status')).toBe('miss');
    expect(after.body.members[0].version).toMatch(/\+retrained$/);
    expect(after.body.predictions).toEqual(first.body.predictions);
    const again = await http('POST', predictions(), body);
    expect(again.headers.get('cache-status')).toBe('hit');
  }, 120_000);
});
