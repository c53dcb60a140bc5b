import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { resetClients, s3Client } from '../functions/adapters/clients.js';
import { metricsEnabled } from '../functions/adapters/metrics.js';
import { checkOnnxFile } from '../functions/adapters/model-checks.js';
import { registerSdkTransport, type SdkService } from '../functions/adapters/sdk-transport.js';
import { resetServedModels } from '../functions/adapters/served.js';
import { loadConfig, resetConfig } from '../functions/core/config.js';
import { loadManifest, localOnnx } from '../functions/core/manifest.js';
import { parseSageMakerMembers } from '../functions/core/served.js';
import type { StateBinder } from './asl-bindings.js';
import { driftRuleOf, functionTimeoutsOf, manifestTimeoutNotes } from './deploy-settings.js';
import { distributedMapBinder } from './distributed-map.js';
import { startDynamo } from './dynamodb.js';
import { jsonPage, type RouteTarget, startHttpApi } from './http-api.js';
import type { RunningServer } from './http-util.js';
import { type LocalEndpoint, requestListenerEndpoint } from './in-process-http.js';
import { concurrentInvokeStore } from './invoke-context.js';
import { fanOutFunctions, parseIsolation, taskFunctions } from './isolation.js';
import { lambdaBinder } from './lambda-binder.js';
import { LambdaDispatcher, type LambdaHandler } from './lambda-dispatch.js';
import { type OutputSink, parseConcurrency } from './lambda-pool.js';
import { MetricsCollector } from './observability/collector.js';
import { observabilityPages } from './observability/pages.js';
import { onEmfLines } from './observability/stdout-hook.js';
import { S3RVER_CREDENTIALS, startS3 } from './s3.js';
import { type LocalSageMaker, startLocalSageMaker } from './sagemaker-endpoint.js';
import {
  LOCAL_SDK_TRANSPORT,
  type LocalSender,
  localSdkTransport,
  type WireSender,
} from './sdk-transport.js';
import { loadServerlessConfig, type ServerlessConfig } from './serverless-config.js';
import { StepFunctionsEngine } from './sfn-engine.js';
import { startSfnServer } from './sfn-server.js';

/** The repository root (this file lives in `<root>/local/`). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');

/** Options for {@link startLocalStack}. */
export interface LocalStackOptions {
  /** HTTP API port (default `PORT`, else 3000; 0 picks a free port). */
  port?: number;
  /** The emulators' ports (default 0: any free port; the URLs are in `urls`). */
  sfnPort?: number;
  dynamodbPort?: number;
  s3Port?: number;
  sagemakerPort?: number;
  /** Data folder (default `FANOUT_DATA_DIR`, else `<repo>/.local-data`). */
  dataDir?: string;
  /** No log lines from the stack itself (handlers still log). */
  quiet?: boolean;
  /** serverless.yml to read (default `<repo>/serverless.yml`). */
  serverlessFile?: string;
  /** Handlers to use instead of the modules serverless.yml names, by function key (tests); they run in-process. */
  handlers?: Record<string, LambdaHandler>;
  /**
   * Where functions run: `workers` (worker-thread instances, one invocation at a time each) or
   * `in-process` (this thread, invocations concurrent), for all (`MODE`) or one (`function=MODE`),
   * comma-separated (default `FANOUT_LOCAL_ISOLATION`, else workers for the functions the state
   * machines' inline Maps fan out to, in-process for the others).
   */
  isolation?: string;
  /**
   * Instances (worker threads) each function may run at once: `N`, `function=N` or both,
   * comma-separated (default `FANOUT_LOCAL_CONCURRENCY`, else one per core).
   */
  concurrency?: string;
  /**
   * Child executions a Distributed Map runs at once, below its MaxConcurrency (default
   * `FANOUT_LOCAL_MAP_CONCURRENCY`, else two per core).
   */
  mapConcurrency?: string;
  /** Where every line a handler instance writes goes (default: this process's stdout/stderr). */
  onOutput?: OutputSink;
  /**
   * Does the init of every function on the synchronous path (HTTP routes and the Express state
   * machines' tasks) before resolving: worker instances up to each function's concurrency, modules
   * of in-process functions imported; so the first request pays no cold start (default true).
   */
  prewarm?: boolean;
  /**
   * Where the EMF lines of in-process handlers come from: `stdout` (default) takes them off this
   * process's stdout as they are written; `none` leaves stdout alone (a caller that runs handlers
   * elsewhere feeds `metrics.ingest` itself).
   */
  emfSource?: 'stdout' | 'none';
}

/** A running local stack. */
export interface LocalStack {
  urls: { api: string; sfn: string; dynamodb: string; s3: string; sagemaker: string };
  /** The data bucket (serverless.yml's FANOUT_BUCKET) in the local S3. */
  bucket: string;
  /** The local SageMaker runtime (tests set faults on it). */
  sagemaker: LocalSageMaker;
  config: ServerlessConfig;
  engine: StepFunctionsEngine;
  dispatcher: LambdaDispatcher;
  /** The handlers' metrics, collected from their EMF lines: `/metrics` and `/dashboard` serve it. */
  metrics: MetricsCollector;
  dataDir: string;
  /** Members that failed the start check, with the reason (the API and runner refuse them too). */
  notReady: ReadonlyMap<string, string>;
  /** Closes every server and dynalite, waits for running executions, restores process.env. */
  stop(): Promise<void>;
}

/**
 * Starts the local stack on 127.0.0.1: dynalite (tables from serverless.yml, data kept on disk),
 * the Step Functions endpoint running the real ASL with Lambda tasks dispatched in-process, then
 * points the handlers at them through process.env (the same variables as on AWS, plus the SDK's
 * endpoint overrides) and serves the HTTP API routes of serverless.yml.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const log = options.quiet ? () => undefined : (line: string) => console.error(line);
  const config = loadServerlessConfig({
    file: options.serverlessFile ?? resolve(REPO_ROOT, 'serverless.yml'),
  });
  const dataDir = resolve(
    options.dataDir ?? process.env.FANOUT_DATA_DIR ?? resolve(REPO_ROOT, '.local-data'),
  );
  const metrics = new MetricsCollector({ drift: driftRuleOf(config) });
  // Where each function runs: its fan-out functions in worker instances, the rest in this thread,
  // unless FANOUT_LOCAL_ISOLATION says otherwise (decided lazily: the dispatcher resolves refs).
  let fanOut: Set<string> | undefined;
  const isolationOf = parseIsolation(
    options.isolation ?? process.env.FANOUT_LOCAL_ISOLATION,
    config.functions.map((f) => f.key),
    (key) => {
      fanOut ??= fanOutFunctions(
        config.stateMachines.map((m) => m.definition),
        (ref) => dispatcher.resolve(ref),
      );
      return fanOut.has(key) ? 'workers' : 'in-process';
    },
  );
  // Concurrent in-process invocations each keep their own Lambda context (request id, cold start).
  concurrentInvokeStore();
  // Filled once the emulators listen: handler instances reach them without sockets.
  const endpoints = new Map<SdkService, LocalEndpoint>();
  const sendToEmulator: LocalSender = (service, request) => {
    const endpoint = endpoints.get(service);
    if (!endpoint) return Promise.reject(new Error(`the local stack serves no ${service} endpoint now`));
    return endpoint(request);
  };
  // A worker instance's requests, answered with plain data (its transport carries no S3).
  const sendForWorker: WireSender = async (service, request) => {
    const answer = await sendToEmulator(service, request);
    if (answer.body instanceof Readable) {
      answer.body.destroy();
      throw new Error(`${service}: a streamed answer cannot cross to a worker instance`);
    }
    return { ...answer, body: answer.body };
  };
  const dispatcher = new LambdaDispatcher(config.functions, {
    root: config.root,
    handlers: options.handlers,
    isolation: (key) => isolationOf(key),
    pool: {
      concurrency: parseConcurrency(
        options.concurrency ?? process.env.FANOUT_LOCAL_CONCURRENCY,
        config.functions.map((f) => f.key),
      ),
      // The handlers' environment as this thread sees it when an instance starts.
      env: () => ({ ...process.env }),
      sdk: sendForWorker,
      // A worker instance's lines go to this process's stdout and stderr, each before the answer of
      // the invocation that wrote it: its EMF lines reach the metrics collector through the same
      // stdout hook as the in-process handlers' do.
      onOutput: options.onOutput,
    },
  });
  // The Distributed Map binds its children's Tasks with the same binders as the parent's.
  const binders: StateBinder[] = [];
  binders.push(
    lambdaBinder(dispatcher),
    distributedMapBinder({
      s3: () => s3Client(loadConfig()),
      binders: () => binders,
      region: config.region,
      localConcurrency: mapConcurrency(options.mapConcurrency ?? process.env.FANOUT_LOCAL_MAP_CONCURRENCY),
    }),
  );
  const engine = new StepFunctionsEngine({ region: config.region, binders });
  for (const m of config.stateMachines) engine.register(m);
  for (const u of engine.unsupported())
    log(`fanout local stack: state machine ${u.name} cannot run locally: ${u.reason}`);

  let dynamo: RunningServer | undefined;
  let sfn: RunningServer | undefined;
  let api: RunningServer | undefined;
  let s3: RunningServer | undefined;
  let sagemaker: LocalSageMaker | undefined;
  let restoreEnv = () => {};
  // Handlers injected into this thread use the same transport as the instances.
  let unregisterTransport = registerSdkTransport(LOCAL_SDK_TRANSPORT, localSdkTransport(sendToEmulator));
  let stopCollecting = () => {};
  const stop = async () => {
    const errors: unknown[] = [];
    // The API first so no new work arrives, then the executions, then what they use.
    for (const step of [
      () => api?.close(),
      () => sfn?.close(),
      () => s3?.close(),
      () => engine.drain(true),
      () => dispatcher.close(),
      () => sagemaker?.close(),
      () => dynamo?.close(),
    ]) {
      await Promise.resolve()
        .then(step)
        .catch((err: unknown) => errors.push(err));
    }
    api = sfn = dynamo = s3 = sagemaker = undefined;
    endpoints.clear();
    unregisterTransport();
    unregisterTransport = () => {};
    stopCollecting();
    stopCollecting = () => {};
    restoreEnv();
    restoreEnv = () => {};
    resetHandlerCaches();
    if (errors.length) throw errors[0];
  };
  try {
    dynamo = await startDynamo({
      dataDir,
      port: options.dynamodbPort,
      region: config.region,
      tables: config.tables,
      log,
    });
    sfn = await startSfnServer(engine, options.sfnPort ?? 0);
    s3 = await startS3({
      dataDir,
      port: options.s3Port,
      buckets: config.buckets.map((b) => b.bucketName),
      subscribers: config.functions.flatMap((f) =>
        f.s3Events.map((event) => ({ functionKey: f.key, event })),
      ),
      invoke: (key, event) => dispatcher.invoke(key, event),
      log,
    });
    // Every SageMaker member is served by the local runtime unless the environment says otherwise.
    const manifestFile = manifestPath(config).FANOUT_MANIFEST;
    if (!manifestFile) throw new Error('serverless.yml: provider.environment.FANOUT_MANIFEST is required');
    const manifest = loadManifest(manifestFile);
    const sagemakerMembers =
      process.env.FANOUT_SAGEMAKER_MEMBERS ??
      [...manifest.models.values()]
        .filter((m) => m.kind === 'sagemaker')
        .map((m) => m.id)
        .join(',');
    sagemaker = await startLocalSageMaker(
      manifest,
      parseSageMakerMembers(sagemakerMembers, manifest),
      options.sagemakerPort,
    );
    for (const [service, server] of [
      ['dynamodb', dynamo],
      ['sfn', sfn],
      ['sagemaker-runtime', sagemaker],
    ] as const) {
      if (server.requestListener) endpoints.set(service, requestListenerEndpoint(server.requestListener));
    }
    // Objects stream both ways, as over a socket: a large upload or results file is never whole.
    if (s3.requestListener)
      endpoints.set('s3', requestListenerEndpoint(s3.requestListener, { streaming: true }));
    // The start check the runner and the API make, said once here too (the local SageMaker
    // endpoint's files included): a member that fails is not ready and is not run.
    const notReady = new Map<string, string>();
    for (const model of manifest.models.values()) {
      const onnx = localOnnx(model);
      const check = onnx && checkOnnxFile(onnx, manifest.path);
      if (check && !check.ok) notReady.set(model.id, check.reason);
    }
    for (const reason of notReady.values()) log(`fanout local stack: model not ready: ${reason}`);
    for (const note of manifestTimeoutNotes(manifest.models.values(), functionTimeoutsOf(config))) {
      log(`fanout local stack: model timeout cut: ${note}`);
    }
    metrics.serve(
      [...manifest.ensembles.values()].map((e) => ({
        name: e.name,
        members: e.members,
        strategy: e.strategy,
        quorum: e.quorum,
        cacheTtlSeconds: e.cache?.ttlSeconds,
        shadow: e.shadow,
        canary: e.canary,
      })),
    );
    if ((options.emfSource ?? 'stdout') === 'stdout')
      stopCollecting = onEmfLines((line) => metrics.ingest(line));
    restoreEnv = setEnvironment(
      {
        ...config.environment,
        FANOUT_SAGEMAKER_MEMBERS: sagemakerMembers,
        // The runner's instances start with the stack, ahead of any request: they load their
        // members then, as provisioned concurrency would (FANOUT_PRELOAD_MODELS=false turns it off).
        FANOUT_PRELOAD_MODELS: 'true',
      },
      {
        ...manifestPath(config),
        AWS_REGION: config.region,
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.url,
        AWS_ENDPOINT_URL_SFN: sfn.url,
        AWS_ENDPOINT_URL_S3: s3.url,
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: sagemaker.url,
        FANOUT_S3_FORCE_PATH_STYLE: 'true',
        // The handlers' SDK requests go to the emulators without a socket (see sdk-transport.ts).
        FANOUT_SDK_TRANSPORT: LOCAL_SDK_TRANSPORT,
        // In-process handlers run as a Lambda environment that takes several invocations at once
        // (Powertools then keeps each invocation's context apart) and that started on demand (so
        // a function's first invocation reports cold_start). Worker instances get their own.
        AWS_LAMBDA_MAX_CONCURRENCY: '1000',
        AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
        // The stage dimension of every metric: what `/metrics` and the dashboard show as the stack.
        FANOUT_STAGE: 'local',
        // s3rver checks signatures against this key pair; dynalite and the other endpoints take any.
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      },
    );
    resetHandlerCaches();
    if (!metricsEnabled()) {
      log(
        'fanout local stack: metrics are off (POWERTOOLS_METRICS_DISABLED, or POWERTOOLS_DEV without it): /metrics and /dashboard stay empty',
      );
    }
    const observability = observabilityPages(metrics);
    api = await startHttpApi({
      routes: routesOf(config),
      invoke: (key, event) => dispatcher.invoke(key, event),
      port: options.port ?? portFromEnv(),
      log,
      localPages: (path) =>
        path === '/_local/stack'
          ? jsonPage({
              s3Endpoint: s3?.url,
              bucket: process.env.FANOUT_BUCKET,
              region: config.region,
              ...S3RVER_CREDENTIALS,
            })
          : observability(path),
    });
    // As many warm instances as each function may run: a first request's members all start warm.
    if (options.prewarm ?? true) {
      await dispatcher.prewarm(
        syncPathFunctions(config, (ref) => dispatcher.resolve(ref)),
        Number.POSITIVE_INFINITY,
      );
    }
    return {
      urls: { api: api.url, sfn: sfn.url, dynamodb: dynamo.url, s3: s3.url, sagemaker: sagemaker.url },
      bucket: process.env.FANOUT_BUCKET ?? '',
      sagemaker,
      config,
      engine,
      dispatcher,
      metrics,
      dataDir,
      notReady,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** Handlers cache what they derive from the environment; they must see the stack's values. */
function resetHandlerCaches(): void {
  resetConfig();
  resetClients();
  resetServedModels();
}

/** Functions a synchronous request runs: those behind HTTP routes and the Express machines' tasks. */
function syncPathFunctions(
  config: ServerlessConfig,
  resolve: (ref: unknown) => string | undefined,
): string[] {
  const keys = new Set(config.functions.filter((f) => f.routes.length > 0).map((f) => f.key));
  const express = config.stateMachines.filter((m) => m.type === 'EXPRESS').map((m) => m.definition);
  for (const task of taskFunctions(express, resolve)) keys.add(task.key);
  return [...keys];
}

function routesOf(config: ServerlessConfig): RouteTarget[] {
  return config.functions.flatMap((f) => f.routes.map((r) => ({ ...r, functionKey: f.key })));
}

// Lambda runs handlers with the package root as working folder; the stack may be started elsewhere.
function manifestPath(config: ServerlessConfig): Record<string, string> {
  const path = process.env.FANOUT_MANIFEST ?? config.environment.FANOUT_MANIFEST;
  return path ? { FANOUT_MANIFEST: resolve(config.root, path) } : {};
}

function mapConcurrency(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 10_000)
    throw new Error(`FANOUT_LOCAL_MAP_CONCURRENCY=${raw} is not a whole number from 1 to 10000`);
  return n;
}

function portFromEnv(): number {
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT=${process.env.PORT} is not a port number`);
  return port;
}

// Variables that configure Node itself: setting them in-process would only leak into child processes.
const NOT_FOR_IN_PROCESS = new Set(['NODE_OPTIONS']);

/**
 * Sets the handlers' environment and returns how to put the previous one back. serverless.yml's
 * values apply unless the variable is already set (so `FANOUT_MANIFEST=... npm start` works);
 * `forced` ones (the local endpoints) always apply.
 */
function setEnvironment(defaults: Record<string, string>, forced: Record<string, string>): () => void {
  const previous = new Map<string, string | undefined>();
  const set = (k: string, v: string) => {
    if (!previous.has(k)) previous.set(k, process.env[k]);
    process.env[k] = v;
  };
  for (const [k, v] of Object.entries(defaults)) {
    if (!NOT_FOR_IN_PROCESS.has(k) && process.env[k] === undefined) set(k, v);
  }
  for (const [k, v] of Object.entries(forced)) set(k, v);
  // The SDK needs some credentials to sign with; dynalite and the local endpoint accept any.
  if (!process.env.AWS_ACCESS_KEY_ID) set('AWS_ACCESS_KEY_ID', 'local');
  if (!process.env.AWS_SECRET_ACCESS_KEY) set('AWS_SECRET_ACCESS_KEY', 'local');
  return () => {
    for (const [k, v] of previous) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
