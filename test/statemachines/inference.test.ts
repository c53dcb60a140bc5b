import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { resetClients } from '../../functions/adapters/clients.js';
import { resetServedModels } from '../../functions/adapters/served.js';
import { resetConfig } from '../../functions/core/config.js';
import { normaliseOutcome } from '../../functions/core/outcomes.js';
import { startDynamo } from '../../local/dynamodb.js';
import type { RunningServer } from '../../local/http-util.js';
import { lambdaBinder } from '../../local/lambda-binder.js';
import { LambdaDispatcher, type LambdaHandler } from '../../local/lambda-dispatch.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';
import { StepFunctionsEngine } from '../../local/sfn-engine.js';

// The real statemachines/inference.asl.json, through serverless.yml as the local stack reads it.
const REPO = resolve(import.meta.dirname, '..', '..');
const config = loadServerlessConfig({ file: join(REPO, 'serverless.yml') });
const inference = config.stateMachines.find((m) => m.key === 'inference');
if (!inference) throw new Error('serverless.yml declares no inference state machine');

function engineWith(handlers: Record<string, LambdaHandler>): StepFunctionsEngine {
  const dispatcher = new LambdaDispatcher(config.functions, { root: config.root, handlers });
  const engine = new StepFunctionsEngine({ region: config.region, binders: [lambdaBinder(dispatcher)] });
  engine.register(inference as NonNullable<typeof inference>);
  return engine;
}

interface Member {
  model: string;
  timeoutSeconds: number;
  shadow?: boolean;
}

const request = (ensemble: string, members: Member[], instances: unknown[]) => ({
  id: `test-${crypto.randomUUID()}`,
  ensemble,
  createdAt: '2026-01-01T00:00:00.000Z',
  instances,
  members,
});

const run = (engine: StepFunctionsEngine, input: unknown) =>
  engine.startSyncExecution({ stateMachineArn: inference.arn, input: JSON.stringify(input) });

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const FIVE = ['m1', 'm2', 'm3', 'm4', 'm5'].map((model) => ({ model, timeoutSeconds: 5 }));

describe('inference state machine with fake runner and ensemble', () => {
  // One engine (the ASL is validated once); each test swaps the fakes behind it.
  const fakes: Record<string, LambdaHandler> = {};
  const engine = engineWith({
    runner: (event, context) => (fakes.runner as LambdaHandler)(event, context),
    ensemble: (event, context) => (fakes.ensemble as LambdaHandler)(event, context),
  });
  const use = (runner: LambdaHandler, ensemble: LambdaHandler = ensembleOk) =>
    Object.assign(fakes, { runner, ensemble });
  let seen: Record<string, unknown> | undefined;
  const ensembleOk: LambdaHandler = async (event) => {
    seen = event as Record<string, unknown>;
    return { outcome: 'ok', created: true, record: { id: seen.id, stored: true } };
  };
  const runnerOk = (failing?: string, hanging?: string): LambdaHandler =>
    async function runner(event) {
      const { model, instances } = event as { model: string; instances: unknown[] };
      if (model === hanging) return new Promise(() => undefined);
      if (model === failing) {
        throw Object.assign(new Error(`${model}: inference failed`), { name: 'ModelRunError' });
      }
      return { model, status: 'ok', probabilities: instances.map(() => [0.25, 0.75]) };
    };

  beforeEach(() => {
    seen = undefined;
  });

  it('fans out to every member and hands the ensemble step all results and the row count', async () => {
    use(runnerOk());
    const input = request('e', FIVE, [[1], [2], [3]]);
    const out = await run(engine, input);
    expect(out.status).toBe('SUCCEEDED');
    expect(JSON.parse(out.output as string)).toEqual({ id: input.id, stored: true });
    expect(seen).toMatchObject({ id: input.id, ensemble: 'e', createdAt: input.createdAt, rows: 3 });
    const members = seen?.members as { model: string; status: string; probabilities: number[][] }[];
    expect(members.map((m) => m.model)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    for (const m of members)
      expect(m).toMatchObject({
        status: 'ok',
        probabilities: [
          [0.25, 0.75],
          [0.25, 0.75],
          [0.25, 0.75],
        ],
      });
  });

  it('hands the ensemble step the ensemble the client asked for, which defaults to the one serving', async () => {
    use(runnerOk());
    await run(engine, { ...request('canary-e', FIVE, [[1]]), requested: 'e' });
    expect(seen).toMatchObject({ ensemble: 'canary-e', requested: 'e' });
    await run(engine, request('e', FIVE, [[1]]));
    expect(seen).toMatchObject({ ensemble: 'e', requested: 'e' });
  });

  it('runs shadow members in the same Map, with the same catch', async () => {
    use(runnerOk('m6'));
    const members = [...FIVE, { model: 'm6', timeoutSeconds: 5, shadow: true }];
    const out = await run(engine, request('e', members, [[1]]));
    expect(out.status).toBe('SUCCEEDED');
    const results = seen?.members as Record<string, unknown>[];
    expect(results.map((m) => m.model)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    expect(results[5]).toMatchObject({ model: 'm6', status: 'failed', error: { Error: 'ModelRunError' } });
  });

  it("turns a failing member into {model, status: failed, error: {Error, Cause}} with Lambda's error in Cause", async () => {
    use(runnerOk('m3'));
    const out = await run(engine, request('e', FIVE, [[1]]));
    expect(out.status).toBe('SUCCEEDED');
    const failed = (seen?.members as Record<string, unknown>[]).find((m) => m.model === 'm3');
    expect(failed).toEqual({
      model: 'm3',
      status: 'failed',
      error: { Error: 'ModelRunError', Cause: expect.any(String) },
      startedAt: expect.stringMatching(ISO_MS),
      endedAt: expect.stringMatching(ISO_MS),
    });
    const cause = JSON.parse((failed?.error as { Cause: string }).Cause);
    expect(cause).toEqual({ errorType: 'ModelRunError', errorMessage: 'm3: inference failed', trace: [] });
  });

  it("honours each member's TimeoutSecondsPath: a member past its timeout is reported as timeout", async () => {
    use(runnerOk(undefined, 'm2'));
    const members = FIVE.map((m) => (m.model === 'm2' ? { ...m, timeoutSeconds: 1 } : m));
    const out = await run(engine, request('e', members, [[1]]));
    expect(out.status).toBe('SUCCEEDED');
    const results = seen?.members as Record<string, unknown>[];
    const timedOut = results.find((m) => m.model === 'm2');
    expect(timedOut).toEqual({
      model: 'm2',
      status: 'timeout',
      error: { Error: 'States.Timeout', Cause: expect.any(String) },
      timeoutSeconds: 1,
      startedAt: expect.stringMatching(ISO_MS),
      endedAt: expect.stringMatching(ISO_MS),
    });
    // The member reports the time it was given before it was cut off, and says what it was given.
    expect(normaliseOutcome(timedOut).latencyMs).toBeGreaterThanOrEqual(1000);
    expect(normaliseOutcome(timedOut).error?.message).toBe('m2: did not answer within its 1 s timeout');
    expect(results.filter((m) => m.status === 'ok')).toHaveLength(4);
  });

  it('stamps a failed member with the time from the fan-out to its catch, so it reports its latency', async () => {
    use(async (event) => {
      const { model } = event as { model: string };
      if (model !== 'm4') return { model, status: 'ok', probabilities: [[0.5, 0.5]] };
      await new Promise((r) => setTimeout(r, 120));
      throw Object.assign(new Error('m4: endpoint refused'), { name: 'ModelRunError' });
    });
    const out = await run(engine, request('e', FIVE, [[1]]));
    expect(out.status).toBe('SUCCEEDED');
    const failed = normaliseOutcome((seen?.members as unknown[])[3]);
    expect(failed).toMatchObject({
      model: 'm4',
      status: 'failed',
      error: { message: 'm4: endpoint refused' },
    });
    expect(failed.latencyMs).toBeGreaterThanOrEqual(120);
    expect(failed.latencyMs).toBeLessThan(5000);
  });

  it("fails the execution with the ensemble step's error and cause when the quorum is not met", async () => {
    const cause = JSON.stringify({
      code: 'quorum_not_met',
      message: 'ensemble "e": 1 of 5 members answered',
    });
    use(runnerOk(), async () => ({ outcome: 'failed', error: 'QuorumNotMetError', cause }));
    const out = await run(engine, request('e', FIVE, [[1]]));
    expect(out).toMatchObject({ status: 'FAILED', error: 'QuorumNotMetError', cause });
    expect(out.output).toBeUndefined();
  });
});

describe('inference state machine with the real runner (ONNX) and ensemble (DynamoDB) handlers', () => {
  const golden = (model: string) =>
    JSON.parse(readFileSync(join(REPO, 'models/breast-cancer/golden', `${model}.json`), 'utf8')) as {
      rows: number[][];
      probabilities: number[][];
    };
  const ONNX = ['bc-logreg', 'bc-random-forest', 'bc-mlp', 'bc-torch-mlp'];
  const rows = golden('bc-logreg').rows.slice(0, 3);
  const table = config.tables[0]?.tableName as string;
  let dataDir: string;
  let dynamo: RunningServer;
  let engine: StepFunctionsEngine;
  let slowModel: string | undefined;
  const saved = { ...process.env };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fanout-inference-'));
    // A manifest of the ONNX members plus members whose model file is missing, to fail for real.
    const real = JSON.parse(readFileSync(join(REPO, 'models/manifest.json'), 'utf8'));
    const models = real.models
      .filter((m: { id: string }) => ONNX.includes(m.id))
      .map((m: { file: string }) => ({ ...m, file: join(REPO, 'models', m.file) }));
    const broken = (id: string) => ({ ...models[0], id, file: join(dataDir, `${id}.onnx`) });
    const manifest = {
      ...real,
      models: [...models, broken('bc-broken'), broken('bc-broken-too')],
      ensembles: [
        { name: 'bc-four', members: ONNX, strategy: 'soft-vote', quorum: 3 },
        {
          name: 'bc-with-broken',
          members: ['bc-logreg', 'bc-mlp', 'bc-broken'],
          strategy: 'soft-vote',
          quorum: 2,
        },
        {
          name: 'bc-broken-shadow',
          members: ['bc-logreg', 'bc-mlp'],
          strategy: 'soft-vote',
          quorum: 2,
          shadow: ['bc-broken', 'bc-random-forest'],
        },
        {
          name: 'bc-mostly-broken',
          members: ['bc-logreg', 'bc-broken', 'bc-broken-too'],
          strategy: 'soft-vote',
          quorum: 2,
        },
      ],
    };
    writeFileSync(join(dataDir, 'manifest.json'), JSON.stringify(manifest));
    dynamo = await startDynamo({ dataDir, region: config.region, tables: config.tables });
    Object.assign(process.env, {
      FANOUT_MANIFEST: join(dataDir, 'manifest.json'),
      FANOUT_TABLE: table,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.url,
      AWS_REGION: config.region,
    });
    resetConfig();
    resetClients();
    resetServedModels();
    const { handler: runner } = (await import('../../functions/runner/handler.js')) as {
      handler: LambdaHandler;
    };
    // The real runner, except that one chosen member never answers (to exercise the timeout path).
    const maybeSlow: LambdaHandler = (event, context) =>
      (event as { model: string }).model === slowModel
        ? new Promise(() => undefined)
        : runner(event, context);
    engine = engineWith({ runner: maybeSlow });
  });

  afterAll(async () => {
    resetClients();
    await dynamo.close();
    process.env = saved;
    resetConfig();
    resetServedModels();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const members = (ids: string[], timeoutSeconds = 5) => ids.map((model) => ({ model, timeoutSeconds }));

  it('scores every member, combines them and stores the record', async () => {
    const input = request('bc-four', members(ONNX), rows);
    const out = await run(engine, input);
    expect(out.status).toBe('SUCCEEDED');
    const record = JSON.parse(out.output as string);
    expect(record).toMatchObject({
      id: input.id,
      ensemble: 'bc-four',
      strategy: 'soft-vote',
      degraded: false,
    });
    expect(record.members.map((m: { status: string }) => m.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    // Soft vote is the mean of the members' golden probabilities.
    rows.forEach((_, i) => {
      const mean =
        ONNX.map((m) => golden(m).probabilities[i]?.[1] as number).reduce((a, b) => a + b) / ONNX.length;
      expect(record.predictions[i].probabilities.benign).toBeCloseTo(mean, 5);
    });
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: dynamo.url, region: config.region }),
    );
    const stored = await db.send(
      new GetCommand({ TableName: table, Key: { pk: `PRED#${input.id}`, sk: 'PRED' } }),
    );
    db.destroy();
    expect(stored.Item?.record).toEqual(record);
  });

  it('reports a member whose model file is missing as not ready, naming it and the file, and answers degraded', async () => {
    const out = await run(
      engine,
      request('bc-with-broken', members(['bc-logreg', 'bc-mlp', 'bc-broken']), rows),
    );
    expect(out.status).toBe('SUCCEEDED');
    const record = JSON.parse(out.output as string);
    expect(record.degraded).toBe(true);
    const broken = record.members.find((m: { model: string }) => m.model === 'bc-broken');
    expect(broken).toMatchObject({ status: 'failed', error: { name: 'ModelNotReadyError' } });
    expect(broken.error.message).toBe(
      `bc-broken: model file ${join(dataDir, 'bc-broken.onnx')} does not exist: check "file" in ${join(dataDir, 'manifest.json')}`,
    );
    // It was refused at once, not run: its failure took no member timeout.
    expect(broken.latencyMs).toBeLessThan(1000);
    expect(JSON.stringify(record)).not.toMatch(/\bat .*\.(ts|js):\d+/);
  });

  it('reports a member that does not answer within its timeout as timeout', async () => {
    slowModel = 'bc-mlp';
    try {
      const ids = ['bc-logreg', 'bc-mlp', 'bc-broken'];
      const input = request(
        'bc-with-broken',
        members(ids).map((m) => (m.model === 'bc-mlp' ? { ...m, timeoutSeconds: 1 } : m)),
        rows,
      );
      const out = await run(engine, input);
      // bc-broken failed and bc-mlp timed out: one answer is below the quorum of 2.
      expect(out).toMatchObject({ status: 'FAILED', error: 'QuorumNotMetError' });
      const cause = JSON.parse(out.cause as string);
      // The request gave bc-mlp 1 s of its manifest's longer timeout: the message says both.
      const written = JSON.parse(readFileSync(join(dataDir, 'manifest.json'), 'utf8'));
      const manifestSeconds = written.models.find((m: { id: string }) => m.id === 'bc-mlp').timeoutSeconds;
      expect(manifestSeconds).toBeGreaterThan(1);
      expect(cause.details.failed).toContainEqual(
        expect.objectContaining({
          model: 'bc-mlp',
          status: 'timeout',
          error: expect.objectContaining({
            message: `bc-mlp: did not answer within 1 s, the most its caller could wait (its manifest timeout, ${manifestSeconds} s, was cut to that)`,
          }),
        }),
      );
    } finally {
      slowModel = undefined;
    }
  });

  it('answers from the counted members alone when shadows fail or time out: not degraded, quorum met', async () => {
    slowModel = 'bc-random-forest';
    try {
      const input = request(
        'bc-broken-shadow',
        [
          ...members(['bc-logreg', 'bc-mlp']),
          { model: 'bc-broken', timeoutSeconds: 5, shadow: true },
          { model: 'bc-random-forest', timeoutSeconds: 1, shadow: true },
        ],
        rows,
      );
      const out = await run(engine, input);
      expect(out.status).toBe('SUCCEEDED');
      const record = JSON.parse(out.output as string);
      expect(record.degraded).toBe(false);
      expect(record.members.map((m: Record<string, unknown>) => [m.model, m.status, m.shadow])).toEqual([
        ['bc-logreg', 'ok', undefined],
        ['bc-mlp', 'ok', undefined],
        ['bc-broken', 'failed', true],
        ['bc-random-forest', 'timeout', true],
      ]);
      rows.forEach((_, i) => {
        const mean =
          ((golden('bc-logreg').probabilities[i]?.[1] as number) +
            (golden('bc-mlp').probabilities[i]?.[1] as number)) /
          2;
        expect(record.predictions[i].probabilities.benign).toBeCloseTo(mean, 5);
        // Agreement counts the two counted members only.
        const label = record.predictions[i].label;
        const agreeing = ['bc-logreg', 'bc-mlp'].filter((m) => {
          const p = golden(m).probabilities[i] as number[];
          return (p[1] as number) > (p[0] as number) ? label === 'benign' : label === 'malignant';
        });
        expect(record.predictions[i].uncertainty.agreement).toBe(agreeing.length / 2);
      });
    } finally {
      slowModel = undefined;
    }
  });

  it('fails the execution with QuorumNotMetError and a cause naming the failed members', async () => {
    const ids = ['bc-logreg', 'bc-broken', 'bc-broken-too'];
    const out = await run(engine, request('bc-mostly-broken', members(ids), rows));
    expect(out).toMatchObject({ status: 'FAILED', error: 'QuorumNotMetError' });
    const cause = JSON.parse(out.cause as string);
    expect(cause.code).toBe('quorum_not_met');
    expect(cause.message).toContain('1 of 3 members answered, quorum is 2');
    expect(cause.details.failed.map((f: { model: string }) => f.model)).toEqual([
      'bc-broken',
      'bc-broken-too',
    ]);
  });
});
