import * as z from 'zod';
import { ConfigError } from './errors.js';

const optionalUrl = z.url().optional();

const schema = z.object({
  FANOUT_MANIFEST: z.string().min(1).default('models/manifest.json'),
  FANOUT_TABLE: z.string().min(1).optional(),
  FANOUT_BUCKET: z.string().min(1).optional(),
  FANOUT_INFERENCE_STATE_MACHINE_ARN: z.string().min(1).optional(),
  FANOUT_BATCH_STATE_MACHINE_ARN: z.string().min(1).optional(),
  FANOUT_SAGEMAKER_MEMBERS: z.string().optional(),
  FANOUT_MAX_INSTANCES: z.coerce.number().int().min(1).max(1000).default(100),
  FANOUT_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(6_000_000).default(262_144),
  FANOUT_STAGE: z.string().min(1).default('local'),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  AWS_ENDPOINT_URL_DYNAMODB: optionalUrl,
  AWS_ENDPOINT_URL_SFN: optionalUrl,
  AWS_ENDPOINT_URL_S3: optionalUrl,
  AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: optionalUrl,
  FANOUT_SDK_TRANSPORT: z.string().min(1).optional(),
  FANOUT_S3_FORCE_PATH_STYLE: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
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
  /** The deployment's stage (`sls --stage`): a metric dimension, so two stages never mix. */
  stage: string;
  region: string;
  endpoints: { dynamodb?: string; sfn?: string; s3?: string; sagemakerRuntime?: string };
  s3ForcePathStyle: boolean;
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
    stage: e.FANOUT_STAGE,
    region: e.AWS_REGION,
    endpoints: {
      dynamodb: e.AWS_ENDPOINT_URL_DYNAMODB,
      sfn: e.AWS_ENDPOINT_URL_SFN,
      s3: e.AWS_ENDPOINT_URL_S3,
      sagemakerRuntime: e.AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME,
    },
    s3ForcePathStyle: e.FANOUT_S3_FORCE_PATH_STYLE,
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
