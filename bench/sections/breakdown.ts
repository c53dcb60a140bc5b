import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { dynamoDocClient, sfnClient } from '../../functions/adapters/clients.js';
import { DynamoPredictionStore } from '../../functions/adapters/dynamodb-store.js';
import { servedModels } from '../../functions/adapters/served.js';
import { SfnInferenceExecutor } from '../../functions/adapters/sfn-executor.js';
import { handler as apiHandler } from '../../functions/api/handler.js';
import type { PredictionRecord } from '../../functions/core/combine.js';
import { loadConfig } from '../../functions/core/config.js';
import type { InferenceInput, PredictionStore } from '../../functions/core/ports.js';
import { fanOutMembers } from '../../functions/core/targets.js';
import { handler as ensembleHandler } from '../../functions/ensemble/handler.js';
import { storeResult } from '../../functions/ensemble/store-result.js';
import { handler as runnerHandler } from '../../functions/runner/handler.js';
import { lambdaBinder } from '../../local/lambda-binder.js';
import { LambdaDispatcher, lambdaContext } from '../../local/lambda-dispatch.js';
import { StepFunctionsEngine } from '../../local/sfn-engine.js';
import { REPO_ROOT, startLocalStack } from '../../local/stack.js';
import { PredictClient } from '../lib/client.js';
import { median, percentile, round } from '../lib/stats.js';

/** Options of the in-process breakdown. */
export interface BreakdownOptions {
  dataDir: string;
  ensemble: string;
  rows: number[][];
  /** Rounds over every layer (interleaved, so background load hits every layer alike). */
  rounds: number;
  /** Timed calls of each layer per round (after a warm-up). */
  calls: number;
}

/** One measured layer: what a call at that level includes, and its median. */
export interface Layer {
  key: string;
  label: string;
  /** Median ms of one call at this level. */
  p50Ms: number;
  p90Ms: number;
}

/** The breakdown: every layer, and the cost attributed to each part of the path. */
export interface BreakdownResult {
  layers: Layer[];
  /** Cost of each part, ms: differences between nested layers, or a part measured alone. */
  parts: Record<string, number>;
  /** Sum of the parts (compare with the in-process end-to-end median). */
  sumOfPartsMs: number;
  e2eInProcessP50Ms: number;
}

type Timed = () => Promise<unknown>;

/**
 * Times every layer of the synchronous path inside one process, on the local stack started
 * in-process (the same code `npm start` runs, with the same isolation: the member runners in
 * worker instances, the other functions in this thread), from the outside in:
 * HTTP request -> Lambda dispatch of the API -> API handler -> SDK StartSyncExecution (in-process
 * transport) -> Step Functions engine -> (Map of runner Lambdas in workers, ensemble Lambda) ->
 * DynamoDB put. Each layer is called the way the layer above calls it, so differences between
 * nested layers are what each layer adds; the parts that run inside the engine are also timed
 * alone, and the SDK calls also as an outside client makes them (socket, SigV4) for comparison.
 */
export async function measureBreakdown(options: BreakdownOptions): Promise<BreakdownResult> {
  const stack = await startLocalStack({ port: 0, dataDir: options.dataDir, quiet: true });
  const client = new PredictClient(stack.urls.api);
  const cleanups: (() => unknown)[] = [];
  try {
    const config = loadConfig();
    const { manifest } = servedModels(config);
    const ensemble = manifest.ensembles.get(options.ensemble);
    if (!ensemble) throw new Error(`no ensemble ${options.ensemble}`);
    const fn = (key: string) => {
      const f = stack.config.functions.find((x) => x.key === key);
      if (!f) throw new Error(`serverless.yml has no function ${key}`);
      return f;
    };
    const ctx = (key: string): Context => lambdaContext(fn(key), Date.now() + 30_000);
    const machine = stack.config.stateMachines.find((m) => m.type === 'EXPRESS');
    if (!machine) throw new Error('serverless.yml has no Express state machine');

    let i = 0;
    const row = () => options.rows[i++ % options.rows.length] as number[];
    const input = (): InferenceInput => ({
      id: randomUUID(),
      ensemble: ensemble.name,
      requested: ensemble.name,
      createdAt: new Date().toISOString(),
      instances: [row()],
      members: fanOutMembers(manifest, ensemble),
    });
    const event = (): APIGatewayProxyEventV2 => apiEvent(ensemble.name, row());
    const ok = (what: string) => (r: unknown) => {
      const status = (r as { statusCode?: number; status?: number })?.statusCode;
      if (status !== undefined && status !== 200)
        throw new Error(`${what} answered ${status}: ${JSON.stringify(r)}`);
      return r;
    };

    // What the members and the ensemble step answer, to feed layers that run without them.
    const sample = input();
    const outcomes = await Promise.all(
      sample.members.map((m) =>
        runnerHandler(
          { model: m.model, instances: sample.instances, correlationId: sample.id },
          ctx('runner'),
        ),
      ),
    );
    const ensembleEvent = () => ({
      id: randomUUID(),
      ensemble: ensemble.name,
      createdAt: new Date().toISOString(),
      rows: 1,
      members: outcomes,
    });
    const memory = new MemoryStore();
    const combined = await storeResult(ensembleEvent(), manifest, memory);
    if (combined.outcome !== 'ok') throw new Error('the sample prediction did not meet its quorum');
    const record = combined.record;

    // The engine again, with every Lambda answering at once: the interpreter and dispatch alone.
    const fakes = new LambdaDispatcher(stack.config.functions, {
      root: stack.config.root,
      handlers: {
        runner: (e) => outcomes.find((o) => o.model === (e as { model: string }).model),
        ensemble: () => ({ outcome: 'ok', created: true, record }),
      },
    });
    const bareEngine = new StepFunctionsEngine({
      region: stack.config.region,
      binders: [lambdaBinder(fakes)],
    });
    bareEngine.register(machine);

    // The handlers' clients: FANOUT_SDK_TRANSPORT points them at the emulators in-process.
    const executor = new SfnInferenceExecutor(sfnClient(config), machine.arn);
    const store = new DynamoPredictionStore(dynamoDocClient(config), config.tableName as string);
    // The same calls as a client outside the stack makes them: with no transport named, the
    // factories give the SDK's socket handler and SigV4 against the emulators' endpoints, signed
    // with the key pair the stack put in the environment. The stack's stop drops these clients.
    const outside = { ...config, sdkTransport: undefined };
    const socketExecutor = new SfnInferenceExecutor(sfnClient(outside), machine.arn);
    const socketStore = new DynamoPredictionStore(dynamoDocClient(outside), config.tableName as string);
    // A worker instance that answers at once: what one invocation through the pool costs.
    const noop = stack.config.functions[0] as (typeof stack.config.functions)[number];
    const workerNoop = new LambdaDispatcher(
      [{ ...noop, key: 'noop', handlerModule: 'bench/lib/noop-handler', handlerExport: 'handler' }],
      { root: REPO_ROOT, pool: { concurrency: () => 1 } },
    );
    cleanups.push(() => workerNoop.close());
    const startSync = (engine: StepFunctionsEngine) => async () => {
      const out = await engine.startSyncExecution({
        stateMachineArn: machine.arn,
        input: JSON.stringify(input()),
      });
      if (out.status !== 'SUCCEEDED') throw new Error(`execution ${out.status}: ${out.error} ${out.cause}`);
    };
    const runnerEvent = (model: string) => ({ model, instances: [row()], correlationId: 'bench' });

    const layers: { key: string; label: string; fn: Timed }[] = [
      {
        key: 'http',
        label: 'HTTP request to the local API (client + server + event mapping), everything below',
        fn: async () => {
          const a = await client.predict(ensemble.name, row());
          if (a.status !== 200) throw new Error(`HTTP ${a.status}: ${a.body}`);
        },
      },
      {
        key: 'dispatchApi',
        label: 'Lambda dispatch of the API function (no HTTP), everything below',
        fn: () => stack.dispatcher.invoke('api', event()).then(ok('api')),
      },
      {
        key: 'apiHandler',
        label: 'API handler called directly (middy, validation, response), everything below',
        fn: () => (apiHandler(event(), ctx('api')) as Promise<unknown>).then(ok('api handler')),
      },
      {
        key: 'sdkStartSync',
        label:
          'SDK StartSyncExecution through the in-process transport (as the API calls it), everything below',
        fn: () => executor.run(input()),
      },
      {
        key: 'sdkStartSyncSocket',
        label: 'The same SDK call as an outside client makes it (socket, SigV4), everything below',
        fn: () => socketExecutor.run(input()),
      },
      {
        key: 'engine',
        label: 'Step Functions engine in-process (ASL, dispatch, members, ensemble, store)',
        fn: startSync(stack.engine),
      },
      {
        key: 'engineBare',
        label: 'The same ASL with Lambdas that answer at once (interpreter + in-process dispatch)',
        fn: startSync(bareEngine),
      },
      {
        key: 'dispatchNoop',
        label: 'One in-process Lambda dispatch of a handler that answers at once',
        fn: () => fakes.invoke('ensemble', {}),
      },
      {
        key: 'dispatchWorkerNoop',
        label: 'One invocation of a worker instance whose handler answers at once (the messages)',
        fn: () => workerNoop.invoke('noop', runnerEvent(ensemble.members[0] as string)),
      },
      {
        key: 'membersWorkers',
        label: "Every member through the stack's runner instances (worker threads), started together",
        fn: () => Promise.all(ensemble.members.map((m) => stack.dispatcher.invoke('runner', runnerEvent(m)))),
      },
      {
        key: 'membersParallel',
        label: 'Every member through the runner handler in this thread, started together (Promise.all)',
        fn: () => Promise.all(ensemble.members.map((m) => runnerHandler(runnerEvent(m), ctx('runner')))),
      },
      {
        key: 'ensembleHandler',
        label: 'Ensemble handler called directly (combine + quorum + DynamoDB put)',
        fn: () => ensembleHandler(ensembleEvent(), ctx('ensemble')) as Promise<unknown>,
      },
      {
        key: 'combine',
        label: 'Combine alone (soft vote + quorum, in-memory store)',
        fn: () => storeResult(ensembleEvent(), manifest, memory),
      },
      {
        key: 'dynamoPut',
        label:
          'DynamoDB put alone (conditional PutItem, SDK through the in-process transport to dynalite on disk)',
        fn: () => store.putPrediction({ ...record, id: randomUUID() }),
      },
      {
        key: 'dynamoPutSocket',
        label: 'The same put as an outside client makes it (socket, SigV4)',
        fn: () => socketStore.putPrediction({ ...record, id: randomUUID() }),
      },
    ];
    for (const m of ensemble.members) {
      layers.push({
        key: `member:${m}`,
        label: `Runner handler alone: ${m}`,
        fn: () => runnerHandler(runnerEvent(m), ctx('runner')) as Promise<unknown>,
      });
    }

    const samples = new Map<string, number[]>(layers.map((l) => [l.key, []]));
    for (const layer of layers)
      for (let w = 0; w < Math.max(5, Math.ceil(options.calls / 5)); w++) await layer.fn();
    // Interleaved call by call: a burst of background load lands on every layer alike.
    for (let r = 0; r < options.rounds; r++) {
      for (let c = 0; c < options.calls; c++) {
        for (const layer of layers) {
          const t = performance.now();
          await layer.fn();
          (samples.get(layer.key) as number[]).push(performance.now() - t);
        }
      }
    }
    const p50 = (key: string) => median(samples.get(key) as number[]);
    const memberKeys = ensemble.members.map((m) => `member:${m}`);
    const parts: Record<string, number> = {
      httpLayer: p50('http') - p50('dispatchApi'),
      apiDispatch: p50('dispatchApi') - p50('apiHandler'),
      apiHandler: p50('apiHandler') - p50('sdkStartSync'),
      sdkClient: p50('sdkStartSync') - p50('engine'),
      stateMachine: p50('engineBare'),
      members: p50('membersWorkers'),
      combine: p50('combine'),
      dynamoPut: p50('dynamoPut'),
      ensembleHandlerRest: p50('ensembleHandler') - p50('combine') - p50('dynamoPut'),
    };
    const roundedParts = Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, round(v, 3)]));
    return {
      layers: layers.map((l) => ({
        key: l.key,
        label: l.label,
        p50Ms: round(p50(l.key), 3),
        p90Ms: round(percentile(samples.get(l.key) as number[], 0.9), 3),
      })),
      parts: {
        ...roundedParts,
        slowestMemberHandler: round(Math.max(...memberKeys.map(p50)), 3),
        membersInThisThread: round(p50('membersParallel'), 3),
        workerInvocation: round(p50('dispatchWorkerNoop'), 3),
        // What an outside client's socket and SigV4 would add to the handlers' two SDK calls.
        sfnSocketSigV4: round(p50('sdkStartSyncSocket') - p50('sdkStartSync'), 3),
        dynamoSocketSigV4: round(p50('dynamoPutSocket') - p50('dynamoPut'), 3),
        engineUnexplained: round(
          p50('engine') - p50('engineBare') - p50('membersWorkers') - p50('ensembleHandler'),
          3,
        ),
      },
      sumOfPartsMs: round(
        Object.values(parts).reduce((s, v) => s + v, 0),
        3,
      ),
      e2eInProcessP50Ms: round(p50('http'), 3),
    };
  } finally {
    client.close();
    for (const cleanup of cleanups) await cleanup();
    await stack.stop();
  }
}

/** An API Gateway HTTP API (payload 2.0) event for a one-row prediction. */
function apiEvent(ensemble: string, row: number[]): APIGatewayProxyEventV2 {
  const routeKey = 'POST /v1/ensembles/{ensemble}/predictions';
  const path = `/v1/ensembles/${ensemble}/predictions`;
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', host: '127.0.0.1' },
    pathParameters: { ensemble },
    body: JSON.stringify({ instances: [row] }),
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: '127.0.0.1',
      domainPrefix: '127',
      http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: '',
      timeEpoch: Date.now(),
    },
  };
}

/** A prediction store in memory: the ensemble step's combine without the write. */
class MemoryStore implements PredictionStore {
  async putPrediction(record: PredictionRecord) {
    return { record, created: true };
  }
  async getPrediction() {
    return undefined;
  }
}
