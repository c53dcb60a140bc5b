// The mini build: building the classic build's schemas (here and in manifest-schema.ts) took 30 ms
// of every function's cold start (the runner's: fresh processes, interleaved); same checks and
// messages.
import * as z from 'zod/mini';
import { ConfigError } from './errors.js';
import { nonEmpty } from './zod-setup.js';

const optionalUrl = z.optional(z.url());
const count = (min: number, max: number, fallback: number) =>
  z._default(z.coerce.number().check(z.int(), z.gte(min), z.lte(max)), fallback);

const schema = z.object({
  FANOUT_MANIFEST: z._default(nonEmpty(), 'models/manifest.json'),
  FANOUT_TABLE: z.optional(nonEmpty()),
  FANOUT_BUCKET: z.optional(nonEmpty()),
  FANOUT_INFERENCE_STATE_MACHINE_ARN: z.optional(nonEmpty()),
  FANOUT_BATCH_STATE_MACHINE_ARN: z.optional(nonEmpty()),
  FANOUT_SAGEMAKER_MEMBERS: z.optional(z.string()),
  FANOUT_MAX_INSTANCES: count(1, 1000, 100),
  FANOUT_MAX_BODY_BYTES: count(1024, 6_000_000, 262_144),
  FANOUT_RUNNER_TIMEOUT_SECONDS: z.optional(z.coerce.number().check(z.int(), z.gte(2), z.lte(900))),
  FANOUT_CACHE_MEMORY_ENTRIES: count(0, 1_000_000, 10_000),
  FANOUT_CACHE_MEMORY_SECONDS: count(1, 86_400, 300),
  FANOUT_STAGE: z._default(nonEmpty(), 'local'),
  AWS_REGION: z._default(nonEmpty(), 'us-east-1'),
  AWS_ENDPOINT_URL_DYNAMODB: optionalUrl,
  AWS_ENDPOINT_URL_SFN: optionalUrl,
  AWS_ENDPOINT_URL_S3: optionalUrl,
  AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: optionalUrl,
  FANOUT_SDK_TRANSPORT: z.optional(nonEmpty()),
  FANOUT_S3_FORCE_PATH_STYLE: z.pipe(
    z._default(z.enum(['true', 'false']), 'false'),
    z.transform((v) => v === 'true'),
  ),
  FANOUT_PRELOAD_MODELS: z.pipe(
    z._default(z.enum(['true', 'false']), 'false'),
    z.transform((v) => v === 'true'),
  ),
});

/** Configuration parsed from the environment, once. */
export interface Config {
  manifestPath: string;
  tableName?: string;
  bucket?: string;
  inferenceStateMachineArn?: string;
  batchStateMachineArn?: string;
  /** SageMaker members this deployment has endpoints for (`id` or `id=endpoint`, comma-separated). */
  sagemakerMembers?: string;
  maxInstances: number;
  maxBodyBytes: number;
  /**
   * The runner function's timeout (serverless.yml's `functions.runner.timeout`): no member may
   * wait longer, or the runner is stopped before its member is timed out by name.
   */
  runnerTimeoutSeconds?: number;
  /**
   * The result cache's memory tier in each warm instance that reads the cache (the API, the batch
   * steps): entries kept at most (0: none, every lookup reads the table), and seconds each is
   * served from memory before the table is read again.
   */
  cacheMemory: { maxEntries: number; maxAgeSeconds: number };
  /** The deployment's stage (`sls --stage`): a metric dimension, so two stages never mix. */
  stage: string;
  region: string;
  endpoints: { dynamodb?: string; sfn?: string; s3?: string; sagemakerRuntime?: string };
  s3ForcePathStyle: boolean;
  /**
   * Whether the runner loads every served ONNX member's session at init rather than on its first
   * call: for instances started ahead of traffic (provisioned concurrency, the local stack's).
   */
  preloadModels: boolean;
  /**
   * Where SDK clients send requests instead of a socket: the name of a transport registered in this
   * process (the local stack sets it for its own handlers; unset on AWS).
   */
  sdkTransport?: string;
}

let cached: Config | undefined;

/** Parses the environment (once per process) and fails fast naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  if (cached && env === process.env) return cached;
  // Parsed once per process: zod's JIT would only slow it (see parseManifest in manifest.ts).
  const parsed = schema.safeParse(env, { jitless: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`environment variable ${String(issue?.path[0])}: ${issue?.message}`);
  }
  const e = parsed.data;
  const config: Config = {
    manifestPath: e.FANOUT_MANIFEST,
    tableName: e.FANOUT_TABLE,
    bucket: e.FANOUT_BUCKET,
    inferenceStateMachineArn: e.FANOUT_INFERENCE_STATE_MACHINE_ARN,
    batchStateMachineArn: e.FANOUT_BATCH_STATE_MACHINE_ARN,
    sagemakerMembers: e.FANOUT_SAGEMAKER_MEMBERS,
    maxInstances: e.FANOUT_MAX_INSTANCES,
    maxBodyBytes: e.FANOUT_MAX_BODY_BYTES,
    runnerTimeoutSeconds: e.FANOUT_RUNNER_TIMEOUT_SECONDS,
    cacheMemory: { maxEntries: e.FANOUT_CACHE_MEMORY_ENTRIES, maxAgeSeconds: e.FANOUT_CACHE_MEMORY_SECONDS },
    stage: e.FANOUT_STAGE,
    region: e.AWS_REGION,
    endpoints: {
      dynamodb: e.AWS_ENDPOINT_URL_DYNAMODB,
      sfn: e.AWS_ENDPOINT_URL_SFN,
      s3: e.AWS_ENDPOINT_URL_S3,
      sagemakerRuntime: e.AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME,
    },
    s3ForcePathStyle: e.FANOUT_S3_FORCE_PATH_STYLE,
    preloadModels: e.FANOUT_PRELOAD_MODELS,
    sdkTransport: e.FANOUT_SDK_TRANSPORT,
  };
  if (env === process.env) cached = config;
  return config;
}

/** Forgets the parsed configuration; the local stack and tests change the environment. */
export function resetConfig(): void {
  cached = undefined;
}

/** A configuration value a handler cannot work without; the error names the variable. */
export function required<T>(value: T | undefined, variable: string): T {
  if (value === undefined) throw new ConfigError(`environment variable ${variable} is required`);
  return value;
}
