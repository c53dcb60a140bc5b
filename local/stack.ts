import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resetClients } from '../functions/adapters/clients.js';
import { resetServedModels } from '../functions/adapters/served.js';
import { resetConfig } from '../functions/core/config.js';
import { startDynamo } from './dynamodb.js';
import { type RouteTarget, startHttpApi } from './http-api.js';
import type { RunningServer } from './http-util.js';
import { lambdaBinder } from './lambda-binder.js';
import { LambdaDispatcher, type LambdaHandler } from './lambda-dispatch.js';
import { loadServerlessConfig, type ServerlessConfig } from './serverless-config.js';
import { StepFunctionsEngine } from './sfn-engine.js';
import { startSfnServer } from './sfn-server.js';

/** The repository root (this file lives in `<root>/local/`). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');

/** Options for {@link startLocalStack}. */
export interface LocalStackOptions {
  /** HTTP API port (default `PORT`, else 3000; 0 picks a free port). */
  port?: number;
  /** Step Functions and DynamoDB ports (default 0: any free port; the URLs are in `urls`). */
  sfnPort?: number;
  dynamodbPort?: number;
  /** Data folder (default `FANOUT_DATA_DIR`, else `<repo>/.local-data`). */
  dataDir?: string;
  /** No log lines from the stack itself (handlers still log). */
  quiet?: boolean;
  /** serverless.yml to read (default `<repo>/serverless.yml`). */
  serverlessFile?: string;
  /** Handlers to use instead of the modules serverless.yml names, by function key (tests). */
  handlers?: Record<string, LambdaHandler>;
}

/** A running local stack. */
export interface LocalStack {
  urls: { api: string; sfn: string; dynamodb: string };
  config: ServerlessConfig;
  engine: StepFunctionsEngine;
  dispatcher: LambdaDispatcher;
  dataDir: string;
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
  const dispatcher = new LambdaDispatcher(config.functions, {
    root: config.root,
    handlers: options.handlers,
  });
  const engine = new StepFunctionsEngine({ region: config.region, binders: [lambdaBinder(dispatcher)] });
  for (const m of config.stateMachines) engine.register(m);
  for (const u of engine.unsupported())
    log(`fanout local stack: state machine ${u.name} cannot run locally: ${u.reason}`);

  let dynamo: RunningServer | undefined;
  let sfn: RunningServer | undefined;
  let api: RunningServer | undefined;
  let restoreEnv = () => {};
  const stop = async () => {
    const errors: unknown[] = [];
    // The API first so no new work arrives, then the executions, then what they use.
    for (const step of [
      () => api?.close(),
      () => sfn?.close(),
      () => engine.drain(true),
      () => dynamo?.close(),
    ]) {
      await Promise.resolve()
        .then(step)
        .catch((err: unknown) => errors.push(err));
    }
    api = sfn = dynamo = undefined;
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
    });
    sfn = await startSfnServer(engine, options.sfnPort ?? 0);
    restoreEnv = setEnvironment(config.environment, {
      ...manifestPath(config),
      AWS_REGION: config.region,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.url,
      AWS_ENDPOINT_URL_SFN: sfn.url,
    });
    resetHandlerCaches();
    api = await startHttpApi({
      routes: routesOf(config),
      invoke: (key, event) => dispatcher.invoke(key, event),
      port: options.port ?? portFromEnv(),
      log,
    });
    return {
      urls: { api: api.url, sfn: sfn.url, dynamodb: dynamo.url },
      config,
      engine,
      dispatcher,
      dataDir,
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

function routesOf(config: ServerlessConfig): RouteTarget[] {
  return config.functions.flatMap((f) => f.routes.map((r) => ({ ...r, functionKey: f.key })));
}

// Lambda runs handlers with the package root as working folder; the stack may be started elsewhere.
function manifestPath(config: ServerlessConfig): Record<string, string> {
  const path = process.env.FANOUT_MANIFEST ?? config.environment.FANOUT_MANIFEST;
  return path ? { FANOUT_MANIFEST: resolve(config.root, path) } : {};
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
