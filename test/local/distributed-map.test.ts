import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { normaliseOutcome } from '../../functions/core/outcomes.js';
import {
  type AslDefinition,
  type AslState,
  bindDefinition,
  type StateBinder,
  UnsupportedAslError,
} from '../../local/asl-bindings.js';
import { distributedMapBinder } from '../../local/distributed-map.js';
import type { RunningServer } from '../../local/http-util.js';
import { lambdaBinder } from '../../local/lambda-binder.js';
import { LambdaDispatcher, type LambdaFunction, type LambdaHandler } from '../../local/lambda-dispatch.js';
import { S3RVER_CREDENTIALS, startS3 } from '../../local/s3.js';
import { type ExecutionDescription, StepFunctionsEngine } from '../../local/sfn-engine.js';
import { REPO_ROOT } from '../../local/stack.js';

const REGION = 'us-east-1';
const BUCKET = 'fanout-dmap-test';
const ARN = `arn:aws:states:${REGION}:000000000000:stateMachine`;

const fn = (
  key: string,
  logicalId = `${key.charAt(0).toUpperCase()}${key.slice(1)}LambdaFunction`,
): LambdaFunction => ({
  key,
  name: `t-local-${key}`,
  logicalId,
  arn: `arn:aws:lambda:${REGION}:000000000000:function:t-local-${key}`,
  handlerModule: 'unused',
  handlerExport: 'handler',
  timeoutSeconds: 30,
  memoryMB: 128,
});

/** What each child execution received, in the order they ran. */
const childInputs: unknown[] = [];
/** The in-test handlers; each test sets those it needs. */
const impl: Record<string, (event: never) => unknown> = {};
const handlerFor =
  (key: string): LambdaHandler =>
  async (event) => {
    const f = impl[key];
    if (!f) throw new Error(`no in-test handler for ${key}`);
    return f(event as never);
  };
const KEYS = ['process', 'batchPrepare', 'batchPlan', 'runner', 'batchStore', 'batchFinalize'];

/** The batch row the ItemReader hands a child. */
type Row = { line: number; id: string; features: number[] };

/**
 * A stand-in for the plan step (functions/batch-plan): rows with equal features are scored once,
 * rows `cachedWhen` picks come "from the cache" with a fixed prediction.
 */
const planRows =
  (cachedWhen: (row: Row) => boolean = () => false) =>
  (event: { jobId: string; ensemble: string; members: unknown[]; items: Row[] }) => {
    const instances: number[][] = [];
    const cached: unknown[] = [];
    const slot = new Map<string, number>();
    const source = event.items.map((row) => {
      const key = JSON.stringify(row.features);
      let s = slot.get(key);
      if (s === undefined) {
        if (cachedWhen(row)) {
          cached.push({ label: 'b', probabilities: { a: 0.1, b: 0.9 } });
          s = -cached.length;
        } else {
          instances.push(row.features);
          s = instances.length - 1;
        }
        slot.set(key, s);
      }
      return s;
    });
    return {
      jobId: event.jobId,
      ensemble: event.ensemble,
      members: event.members,
      lines: event.items.map((r) => r.line),
      ids: event.items.map((r) => r.id),
      instances,
      scored: instances.length,
      source,
      cached,
    };
  };

let dataDir: string;
let s3server: RunningServer;
let s3: S3Client;
let engine: StepFunctionsEngine;
let binders: StateBinder[];
let machineCount = 0;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fanout-dmap-'));
  s3server = await startS3({
    dataDir,
    buckets: [BUCKET],
    subscribers: [],
    invoke: async () => undefined,
    log: () => undefined,
  });
  s3 = new S3Client({
    region: REGION,
    endpoint: s3server.url,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const dispatcher = new LambdaDispatcher(
    KEYS.map((k) => fn(k)),
    { root: REPO_ROOT, handlers: Object.fromEntries(KEYS.map((k) => [k, handlerFor(k)])) },
  );
  binders = [];
  binders.push(
    lambdaBinder(dispatcher),
    distributedMapBinder({ s3: () => s3, binders: () => binders, region: REGION, localConcurrency: 3 }),
  );
  engine = new StepFunctionsEngine({ region: REGION, binders });
});

afterAll(async () => {
  await engine?.drain(true);
  s3?.destroy();
  await s3server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  childInputs.length = 0;
  for (const k of Object.keys(impl)) delete impl[k];
});

const putText = (Key: string, Body: string) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body }));
const getJson = async <T>(Key: string): Promise<T> =>
  JSON.parse(
    (await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body?.transformToString()) ??
      'null',
  ) as T;
const jsonl = (items: unknown[]) => `${items.map((i) => JSON.stringify(i)).join('\n')}\n`;

/** A child Task calling the in-test `process` function through the optimised Lambda integration. */
const PROCESS: AslState = {
  Type: 'Task',
  Resource: 'arn:aws:states:::lambda:invoke',
  Parameters: { FunctionName: 't-local-process', 'Payload.$': '$' },
  OutputPath: '$.Payload',
  End: true,
};
const processor = (states: Record<string, AslState> = { Process: PROCESS }) => ({
  ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' },
  StartAt: Object.keys(states)[0],
  States: states,
});
const READER = {
  Resource: 'arn:aws:states:::s3:getObject',
  ReaderConfig: { InputType: 'JSONL' },
  Parameters: { 'Bucket.$': '$.bucket', 'Key.$': '$.key' },
};

/** A definition whose only state is the given Distributed Map. */
const single = (map: AslState): AslDefinition => ({ StartAt: 'Map', States: { Map: { ...map, End: true } } });

/** Registers `definition` as a new Standard machine, runs it to the end and describes the execution. */
async function run<R = unknown>(
  definition: AslDefinition,
  input: unknown,
): Promise<ExecutionDescription & { result?: R }> {
  const name = `dmap-${++machineCount}`;
  engine.register({ name, arn: `${ARN}:${name}`, type: 'STANDARD', definition });
  const { executionArn } = engine.startExecution({
    stateMachineArn: `${ARN}:${name}`,
    input: JSON.stringify(input),
  });
  await engine.drain();
  const d = engine.describeExecution(executionArn);
  return d.output === undefined ? d : { ...d, result: JSON.parse(d.output) as R };
}

/** Records each child's input and answers how many items it saw. */
const recordBatches = () => {
  impl.process = (event: { Items: { n: number }[] }) => {
    childInputs.push(event);
    return { count: event.Items.length };
  };
};

/** What the batch state machine hands Finalize, as far as these tests look. */
type Finalized = { failure?: unknown; map?: { ResultWriterDetails?: { Key?: string } } };

type Batch = { BatchInput?: unknown; Items: { n: number; pad?: string }[] };

describe('Distributed Map emulation', () => {
  it('reads JSON Lines from S3 and runs one child per batch of MaxItemsPerBatch with BatchInput', async () => {
    await putText('in/23.jsonl', jsonl(Array.from({ length: 23 }, (_, n) => ({ n }))));
    recordBatches();
    const out = await run(
      single({
        Type: 'Map',
        ItemReader: READER,
        ItemBatcher: { MaxItemsPerBatch: 5, BatchInput: { 'job.$': '$.job', fixed: 'yes' } },
        ItemProcessor: processor(),
      }),
      { bucket: BUCKET, key: 'in/23.jsonl', job: 'j-1' },
    );
    expect(out.status).toBe('SUCCEEDED');
    const batches = childInputs as Batch[];
    expect(batches.map((b) => b.Items.length).sort((a, b) => b - a)).toEqual([5, 5, 5, 5, 3]);
    for (const b of batches) expect(b.BatchInput).toEqual({ job: 'j-1', fixed: 'yes' });
    // Without a ResultWriter the state's output is the children's outputs, in item order.
    expect(out.result).toEqual([{ count: 5 }, { count: 5 }, { count: 5 }, { count: 5 }, { count: 3 }]);
  });

  it('processes every item exactly once, blank lines skipped, with children running concurrently', async () => {
    const items = Array.from({ length: 200 }, (_, n) => ({ n }));
    await putText('in/200.jsonl', `${jsonl(items.slice(0, 100))}\n\n${jsonl(items.slice(100))}`);
    const seen = new Map<number, number>();
    let active = 0;
    let peak = 0;
    impl.process = async (event: Batch) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setImmediate(r));
      for (const item of event.Items) seen.set(item.n, (seen.get(item.n) ?? 0) + 1);
      active--;
      return event.Items.length;
    };
    const out = await run(
      single({
        Type: 'Map',
        ItemReader: READER,
        ItemBatcher: { MaxItemsPerBatch: 7 },
        MaxConcurrency: 10,
        ItemProcessor: processor(),
      }),
      { bucket: BUCKET, key: 'in/200.jsonl' },
    );
    expect(out.status).toBe('SUCCEEDED');
    expect(seen.size).toBe(200);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    expect((out.result as number[]).reduce((a, b) => a + b, 0)).toBe(200);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(3);
  });

  it('fills each batch up to MaxInputBytesPerBatch and no further', async () => {
    const items = Array.from({ length: 30 }, (_, n) => ({ n, pad: 'x'.repeat(n % 7) }));
    await putText('in/bytes.jsonl', jsonl(items));
    recordBatches();
    const limit = 120;
    const out = await run(
      single({
        Type: 'Map',
        ItemReader: READER,
        ItemBatcher: { MaxInputBytesPerBatch: limit },
        ItemProcessor: processor(),
      }),
      { bucket: BUCKET, key: 'in/bytes.jsonl' },
    );
    expect(out.status).toBe('SUCCEEDED');
    const size = (item: unknown) => Buffer.byteLength(JSON.stringify(item)) + 1;
    const batches = (childInputs as Batch[]).sort((a, b) => (a.Items[0]?.n ?? 0) - (b.Items[0]?.n ?? 0));
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flatMap((b) => b.Items.map((i) => i.n))).toEqual(items.map((i) => i.n));
    batches.forEach((b, k) => {
      const bytes = b.Items.reduce((sum, i) => sum + size(i), 0);
      expect(bytes).toBeLessThanOrEqual(limit);
      const next = batches[k + 1]?.Items[0];
      if (next) expect(bytes + size(next)).toBeGreaterThan(limit);
    });
  });

  it('measures MaxInputBytesPerBatch in UTF-8 bytes, as Step Functions does', async () => {
    const items = Array.from({ length: 12 }, (_, n) => ({ n, pad: 'é'.repeat(20) }));
    await putText('in/utf8.jsonl', jsonl(items));
    recordBatches();
    const limit = 200;
    const out = await run(
      single({
        Type: 'Map',
        ItemReader: READER,
        ItemBatcher: { MaxInputBytesPerBatch: limit },
        ItemProcessor: processor(),
      }),
      { bucket: BUCKET, key: 'in/utf8.jsonl' },
    );
    expect(out.status).toBe('SUCCEEDED');
    for (const b of childInputs as Batch[]) {
      const bytes = b.Items.reduce((sum, i) => sum + Buffer.byteLength(JSON.stringify(i)) + 1, 0);
      expect(bytes).toBeLessThanOrEqual(limit);
    }
  });

  it("writes ResultWriter's manifest.json, SUCCEEDED_0.json and FAILED_0.json in AWS's shape", async () => {
    await putText('in/rw.jsonl', jsonl(Array.from({ length: 8 }, (_, n) => ({ n }))));
    impl.process = (event: Batch) => {
      if (event.Items.some((i) => i.n === 5)) {
        const err = new Error(`item 5 is cursed`);
        err.name = 'CursedItemError';
        throw err;
      }
      return { ok: event.Items.map((i) => i.n) };
    };
    type MapDetails = { MapRunArn: string; ResultWriterDetails: { Bucket: string; Key: string } };
    const out = await run<{ map: MapDetails }>(
      single({
        Type: 'Map',
        ItemReader: READER,
        ItemBatcher: { MaxItemsPerBatch: 2, BatchInput: { 'job.$': '$.job' } },
        ToleratedFailurePercentage: 25,
        ItemProcessor: processor(),
        ResultWriter: {
          Resource: 'arn:aws:states:::s3:putObject',
          Parameters: { 'Bucket.$': '$.bucket', 'Prefix.$': "States.Format('jobs/{}/map', $.job)" },
        },
        ResultPath: '$.map',
      }),
      { bucket: BUCKET, key: 'in/rw.jsonl', job: 'rw-1' },
    );
    expect(out.status).toBe('SUCCEEDED');
    const details = out.result?.map as MapDetails;
    expect(details.MapRunArn).toMatch(/^arn:aws:states:us-east-1:\d+:mapRun:/);
    expect(details.ResultWriterDetails.Bucket).toBe(BUCKET);
    expect(details.ResultWriterDetails.Key).toMatch(/^jobs\/rw-1\/map\/[^/]+\/manifest\.json$/);

    const manifest = await getJson<{
      DestinationBucket: string;
      MapRunArn: string;
      ResultFiles: Record<'SUCCEEDED' | 'FAILED' | 'PENDING', { Key: string; Size: number }[]>;
    }>(details.ResultWriterDetails.Key);
    expect(manifest.DestinationBucket).toBe(BUCKET);
    expect(manifest.MapRunArn).toBe(details.MapRunArn);
    expect(manifest.ResultFiles.PENDING).toEqual([]);
    const dir = details.ResultWriterDetails.Key.replace(/manifest\.json$/, '');
    expect(manifest.ResultFiles.SUCCEEDED.map((f) => f.Key)).toEqual([`${dir}SUCCEEDED_0.json`]);
    expect(manifest.ResultFiles.FAILED.map((f) => f.Key)).toEqual([`${dir}FAILED_0.json`]);

    type Entry = Record<string, unknown> & { Input: string; Status: string };
    const succeeded = await getJson<Entry[]>(`${dir}SUCCEEDED_0.json`);
    const failed = await getJson<Entry[]>(`${dir}FAILED_0.json`);
    expect(succeeded).toHaveLength(3);
    expect(failed).toHaveLength(1);
    for (const e of succeeded) {
      expect(e).toMatchObject({
        ExecutionArn: expect.any(String),
        Name: expect.any(String),
        Status: 'SUCCEEDED',
        StartDate: expect.any(String),
        StopDate: expect.any(String),
      });
      expect(typeof e.Input).toBe('string');
      const input = JSON.parse(e.Input) as Batch;
      expect(input.BatchInput).toEqual({ job: 'rw-1' });
      expect(JSON.parse(e.Output as string)).toEqual({ ok: input.Items.map((i) => i.n) });
    }
    const f = failed[0] as Entry;
    expect(f.Status).toBe('FAILED');
    expect(JSON.parse(f.Input)).toEqual({ BatchInput: { job: 'rw-1' }, Items: [{ n: 4 }, { n: 5 }] });
    expect(f.Error).toBe('CursedItemError');
    expect(JSON.parse(f.Cause as string)).toMatchObject({
      errorType: 'CursedItemError',
      errorMessage: 'item 5 is cursed',
    });
    const all = [...succeeded, ...failed].flatMap((e) =>
      (JSON.parse(e.Input) as Batch).Items.map((i) => i.n),
    );
    expect(all.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  const failing = (bad: (n: number) => boolean) => {
    impl.process = (event: { n: number }) => {
      if (bad(event.n)) throw Object.assign(new Error(`item ${event.n} failed`), { name: 'ItemError' });
      return event.n;
    };
  };
  const tolerant = (extra: Record<string, unknown>, catchIt = false): AslDefinition => ({
    StartAt: 'Map',
    States: {
      Map: {
        Type: 'Map',
        ItemsPath: '$.items',
        ItemProcessor: processor(),
        ...extra,
        ...(catchIt
          ? {
              Catch: [
                {
                  ErrorEquals: ['States.ExceedToleratedFailureThreshold'],
                  ResultPath: '$.failure',
                  Next: 'Caught',
                },
              ],
            }
          : {}),
        End: true,
      },
      ...(catchIt ? { Caught: { Type: 'Pass', End: true } } : {}),
    },
  });
  const TEN = { items: Array.from({ length: 10 }, (_, n) => ({ n })) };

  it('succeeds while failures stay within ToleratedFailurePercentage (boundary included)', async () => {
    failing((n) => n < 2);
    const out = await run(tolerant({ ToleratedFailurePercentage: 20 }), TEN);
    expect(out.status).toBe('SUCCEEDED');
    expect(out.result).toEqual([null, null, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('fails with States.ExceedToleratedFailureThreshold above the percentage', async () => {
    failing((n) => n < 3);
    const out = await run(tolerant({ ToleratedFailurePercentage: 20 }), TEN);
    expect(out.status).toBe('FAILED');
    expect(out.error).toBe('States.ExceedToleratedFailureThreshold');
    expect(out.cause).toMatch(/3 of 10/);
  });

  it('fails on any failure when no threshold is set', async () => {
    failing((n) => n === 9);
    const out = await run(tolerant({}), TEN);
    expect(out.error).toBe('States.ExceedToleratedFailureThreshold');
  });

  it('honours ToleratedFailureCount alone', async () => {
    failing((n) => n < 3);
    expect((await run(tolerant({ ToleratedFailureCount: 3 }), TEN)).status).toBe('SUCCEEDED');
    failing((n) => n < 4);
    expect((await run(tolerant({ ToleratedFailureCount: 3 }), TEN)).error).toBe(
      'States.ExceedToleratedFailureThreshold',
    );
  });

  it('fails when either threshold is exceeded if both are set, as AWS documents', async () => {
    // 2 of 10 failed: within 50 %, but over a count of 1.
    failing((n) => n < 2);
    const out = await run(tolerant({ ToleratedFailurePercentage: 50, ToleratedFailureCount: 1 }), TEN);
    expect(out.status).toBe('FAILED');
    expect(out.error).toBe('States.ExceedToleratedFailureThreshold');
  });

  it("lets the parent's Catch see States.ExceedToleratedFailureThreshold", async () => {
    failing(() => true);
    const out = await run<{ failure: { Error: string; Cause: string } }>(
      tolerant({ ToleratedFailurePercentage: 10 }, true),
      TEN,
    );
    expect(out.status).toBe('SUCCEEDED');
    expect(out.result?.failure).toMatchObject({ Error: 'States.ExceedToleratedFailureThreshold' });
    expect(out.result?.failure.Cause).toMatch(/10 of 10/);
  });

  it('fails with States.ItemReaderFailed naming the line of a bad JSON line', async () => {
    await putText('in/bad.jsonl', '{"n":1}\n{"n":2}\nnot json at all\n{"n":4}\n');
    recordBatches();
    const out = await run(
      single({
        Type: 'Map',
        ItemReader: READER,
        ItemBatcher: { MaxItemsPerBatch: 10 },
        ItemProcessor: processor(),
      }),
      { bucket: BUCKET, key: 'in/bad.jsonl' },
    );
    expect(out.status).toBe('FAILED');
    expect(out.error).toBe('States.ItemReaderFailed');
    expect(out.cause).toContain(`s3://${BUCKET}/in/bad.jsonl line 3`);
  });

  it('fails with States.ItemReaderFailed when the object does not exist', async () => {
    recordBatches();
    const out = await run(single({ Type: 'Map', ItemReader: READER, ItemProcessor: processor() }), {
      bucket: BUCKET,
      key: 'in/missing.jsonl',
    });
    expect(out.error).toBe('States.ItemReaderFailed');
    expect(out.cause).toContain('in/missing.jsonl');
    expect(childInputs).toEqual([]);
  });

  it('takes the items from ItemsPath when there is no ItemReader, batched or one child each', async () => {
    impl.process = (event: unknown) => {
      childInputs.push(event);
      return event;
    };
    const items = [{ n: 1 }, { n: 2 }, { n: 3 }];
    const each = await run(single({ Type: 'Map', ItemsPath: '$.data.items', ItemProcessor: processor() }), {
      data: { items },
    });
    expect(each.status).toBe('SUCCEEDED');
    expect(each.result).toEqual(items);
    const batched = await run(
      single({
        Type: 'Map',
        ItemsPath: '$.data.items',
        ItemBatcher: { MaxItemsPerBatch: 2 },
        ItemProcessor: processor(),
      }),
      { data: { items } },
    );
    expect(batched.result).toEqual([{ Items: [{ n: 1 }, { n: 2 }] }, { Items: [{ n: 3 }] }]);
  });

  it('fails with States.Runtime when ItemsPath does not select an array', async () => {
    const out = await run(single({ Type: 'Map', ItemsPath: '$.data', ItemProcessor: processor() }), {
      data: { not: 'a list' },
    });
    expect(out.error).toBe('States.Runtime');
  });

  it('keeps ResultSelector, ResultPath and OutputPath of the Map state', async () => {
    impl.process = (event: { n: number }) => event.n * 10;
    const out = await run(
      single({
        Type: 'Map',
        ItemsPath: '$.items',
        ItemProcessor: processor(),
        ResultPath: '$.scores',
        OutputPath: '$.scores',
      }),
      { items: [{ n: 1 }, { n: 2 }] },
    );
    expect(out.result).toEqual([10, 20]);
  });

  it('refuses ItemSelector on a Distributed Map when the definition is bound', () => {
    const definition = single({
      Type: 'Map',
      ItemReader: READER,
      ItemSelector: { 'value.$': '$$.Map.Item.Value' },
      ItemProcessor: processor(),
    });
    expect(() => bindDefinition(definition, binders)).toThrow(UnsupportedAslError);
    expect(() => bindDefinition(definition, binders)).toThrow(
      /States\.Map: ItemSelector on a Distributed Map/,
    );
    engine.register({ name: 'with-selector', arn: `${ARN}:with-selector`, type: 'STANDARD', definition });
    expect(engine.unsupported()).toContainEqual({
      name: 'with-selector',
      reason: expect.stringMatching(/ItemSelector/),
    });
  });

  it('refuses an ItemReader that is not JSONL from s3:getObject', () => {
    const definition = single({
      Type: 'Map',
      ItemReader: { ...READER, ReaderConfig: { InputType: 'CSV', CSVHeaderLocation: 'FIRST_ROW' } },
      ItemProcessor: processor(),
    });
    expect(() => bindDefinition(definition, binders)).toThrow(UnsupportedAslError);
  });

  it('binds Tasks inside the ItemProcessor with the same binders (an unknown resource is refused)', () => {
    const definition = single({
      Type: 'Map',
      ItemsPath: '$.items',
      ItemProcessor: processor({
        Other: { Type: 'Task', Resource: 'arn:aws:states:::sqs:sendMessage', End: true },
      }),
    });
    expect(() => bindDefinition(definition, binders)).toThrow(/sqs:sendMessage/);
  });
});

describe('statemachines/batch.asl.json with the Distributed Map emulation', () => {
  const definition = JSON.parse(
    readFileSync(join(REPO_ROOT, 'statemachines/batch.asl.json'), 'utf8'),
  ) as AslDefinition;

  /** Registers the batch state machine as `name` and runs one job of it to the end. */
  async function runJob(name: string, jobId: string): Promise<ExecutionDescription> {
    engine.register({ name, arn: `${ARN}:${name}`, type: 'STANDARD', definition });
    const { executionArn } = engine.startExecution({
      stateMachineArn: `${ARN}:${name}`,
      input: JSON.stringify({
        jobId,
        bucket: BUCKET,
        key: 'incoming/breast-cancer/rows.jsonl',
        ensemble: 'breast-cancer',
        format: 'jsonl',
        createdAt: new Date().toISOString(),
      }),
    });
    await engine.drain();
    return engine.describeExecution(executionArn);
  }

  it('binds with the Lambda and Distributed Map binders (nothing unsupported)', () => {
    expect(() => bindDefinition(definition, binders)).not.toThrow();
    const before = engine.unsupported().length;
    engine.register({ name: 'batch-bind', arn: `${ARN}:batch-bind`, type: 'STANDARD', definition });
    expect(engine.unsupported()).toHaveLength(before);
  });

  it('runs a job end to end: rows batched by 250, every member per batch, every row stored once, results written', async () => {
    const rows = Array.from({ length: 600 }, (_, i) => ({
      line: i + 2,
      id: `r${i}`,
      features: [i, i + 0.5],
    }));
    await putText('jobs/job-1/rows.jsonl', jsonl(rows));
    const members = [
      { model: 'm-a', timeoutSeconds: 5 },
      { model: 'm-b', timeoutSeconds: 5 },
    ];
    const runnerCalls: { model: string; rows: number; correlationId: string }[] = [];
    const stored: number[] = [];
    let finalized: Finalized | undefined;
    impl.batchPrepare = (event: { bucket: string; jobId: string }) => ({
      rowsTotal: 600,
      rowsValid: 600,
      rowsMalformed: 0,
      rowsKey: `jobs/${event.jobId}/rows.jsonl`,
      members,
    });
    impl.batchPlan = planRows();
    impl.runner = (event: { model: string; instances: number[][]; correlationId: string }) => {
      runnerCalls.push({
        model: event.model,
        rows: event.instances.length,
        correlationId: event.correlationId,
      });
      return { model: event.model, status: 'ok', probabilities: event.instances.map(() => [0.4, 0.6]) };
    };
    impl.batchStore = (event: { lines: number[]; members: { model: string; status: string }[] }) => {
      stored.push(...event.lines);
      expect(event.members.map((m) => [m.model, m.status])).toEqual([
        ['m-a', 'ok'],
        ['m-b', 'ok'],
      ]);
      return { rows: event.lines.length };
    };
    impl.batchFinalize = (event: Finalized) => {
      finalized = event;
      return { status: 'SUCCEEDED' };
    };
    const d = await runJob('batch-run', 'job-1');
    expect(d.error).toBeUndefined();
    expect(d.status).toBe('SUCCEEDED');
    expect(runnerCalls.map((c) => `${c.model}:${c.rows}`).sort()).toEqual(
      ['m-a:100', 'm-a:250', 'm-a:250', 'm-b:100', 'm-b:250', 'm-b:250'].sort(),
    );
    expect(runnerCalls.every((c) => c.correlationId === 'job-1')).toBe(true);
    expect(stored.sort((a, b) => a - b)).toEqual(rows.map((r) => r.line));
    expect(finalized?.failure).toBeUndefined();
    const key = finalized?.map?.ResultWriterDetails?.Key as string;
    expect(key).toMatch(/^jobs\/job-1\/map\/[^/]+\/manifest\.json$/);
    const manifest = await getJson<{ ResultFiles: { SUCCEEDED: { Key: string }[] } }>(key);
    const succeeded = await getJson<unknown[]>(manifest.ResultFiles.SUCCEEDED[0]?.Key ?? '');
    expect(succeeded).toHaveLength(3);
  });

  it('hands StoreBatch a member past its timeout as timed out, with the seconds its state gave it', async () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ line: i + 2, id: `r${i}`, features: [i, 1] }));
    await putText('jobs/job-3/rows.jsonl', jsonl(rows));
    let storedMembers: Record<string, unknown>[] = [];
    impl.batchPrepare = (event: { jobId: string }) => ({
      rowsTotal: 10,
      rowsValid: 10,
      rowsMalformed: 0,
      rowsKey: `jobs/${event.jobId}/rows.jsonl`,
      members: [
        { model: 'm-a', timeoutSeconds: 5 },
        { model: 'm-slow', timeoutSeconds: 1 },
      ],
    });
    impl.batchPlan = planRows();
    impl.runner = async (event: { model: string; instances: number[][] }) => {
      if (event.model === 'm-slow') await new Promise((r) => setTimeout(r, 1_500));
      return { model: event.model, status: 'ok', probabilities: event.instances.map(() => [0.4, 0.6]) };
    };
    impl.batchStore = (event: { lines: number[]; members: Record<string, unknown>[] }) => {
      storedMembers = event.members;
      return { rows: event.lines.length };
    };
    impl.batchFinalize = () => ({ status: 'SUCCEEDED' });
    expect((await runJob('batch-timeout-run', 'job-3')).status).toBe('SUCCEEDED');
    expect(storedMembers[1]).toMatchObject({
      model: 'm-slow',
      status: 'timeout',
      error: { Error: 'States.Timeout' },
      timeoutSeconds: 1,
    });
    expect(normaliseOutcome(storedMembers[1]).error?.message).toBe(
      'm-slow: did not answer within its 1 s timeout',
    );
  });

  it('scores only what each batch plan leaves: repeats once, cached rows never, a fully cached batch skips the members', async () => {
    // 500 rows: batch 1 (rows 0-249) holds 50 distinct rows five times over; batch 2 (250-499) is
    // all "cached".
    const rows = Array.from({ length: 500 }, (_, i) => ({
      line: i + 2,
      id: `r${i}`,
      features: i < 250 ? [i % 50, 1] : [i, 2],
    }));
    await putText('jobs/job-2/rows.jsonl', jsonl(rows));
    const runnerRows: number[] = [];
    const storedBatches: { lines: number[]; source: number[]; members: unknown[]; cached: unknown[] }[] = [];
    impl.batchPrepare = (event: { jobId: string }) => ({
      rowsTotal: 500,
      rowsValid: 500,
      rowsMalformed: 0,
      rowsKey: `jobs/${event.jobId}/rows.jsonl`,
      members: [{ model: 'm-a', timeoutSeconds: 5 }],
    });
    impl.batchPlan = planRows((row) => row.line >= 252);
    impl.runner = (event: { model: string; instances: number[][] }) => {
      runnerRows.push(event.instances.length);
      return { model: event.model, status: 'ok', probabilities: event.instances.map(() => [0.4, 0.6]) };
    };
    impl.batchStore = (event: (typeof storedBatches)[number]) => {
      storedBatches.push(event);
      return { rows: event.lines.length };
    };
    impl.batchFinalize = () => ({ status: 'SUCCEEDED' });
    expect((await runJob('batch-plan-run', 'job-2')).status).toBe('SUCCEEDED');
    expect(runnerRows).toEqual([50]);
    const [scoredBatch, cachedBatch] = storedBatches.sort((a, b) => (a.lines[0] ?? 0) - (b.lines[0] ?? 0));
    expect(scoredBatch?.source).toEqual(rows.slice(0, 250).map((_, i) => i % 50));
    expect(scoredBatch?.members).toHaveLength(1);
    expect(cachedBatch?.members).toEqual([]);
    expect(cachedBatch?.source).toEqual(rows.slice(250).map((_, i) => -(i + 1)));
    expect(cachedBatch?.cached).toHaveLength(250);
  });
});
