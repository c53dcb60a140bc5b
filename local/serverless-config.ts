import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Fail, parseYaml, resolveVariables } from './serverless-variables.js';

/** The account id the local stack puts in every ARN (LocalStack and Step Functions Local use the same). */
export const LOCAL_ACCOUNT = '000000000000';

/** One `httpApi` event of a function: `routeKey` is API Gateway's `METHOD /path/{param}` (or `$default`). */
export interface HttpRoute {
  method: string;
  path: string;
  routeKey: string;
}

/** A function of serverless.yml, as the local stack runs it. */
export interface FunctionConfig {
  /** The key under `functions:` (what serverless calls the function). */
  key: string;
  /** The deployed name (`<service>-<stage>-<key>` unless `name:` is set). */
  name: string;
  /** CloudFormation logical id serverless gives it (`RunnerLambdaFunction`). */
  logicalId: string;
  arn: string;
  /** Module path relative to the service folder, without extension (`functions/runner/handler`). */
  handlerModule: string;
  handlerExport: string;
  timeoutSeconds: number;
  memoryMB: number;
  environment: Record<string, string>;
  routes: HttpRoute[];
  s3Events: S3EventConfig[];
}

/** A state machine declared under `stepFunctions.stateMachines`. */
export interface StateMachineConfig {
  key: string;
  /** CloudFormation logical id (`id:`), what `{Ref: ...}` names. */
  id: string;
  name: string;
  arn: string;
  type: 'STANDARD' | 'EXPRESS';
  definition: Record<string, unknown>;
}

/** A DynamoDB table from `resources.Resources`, with what CreateTable needs. */
export interface TableConfig {
  logicalId: string;
  tableName: string;
  keySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
  attributeDefinitions: { AttributeName: string; AttributeType: 'S' | 'N' | 'B' }[];
  globalSecondaryIndexes?: unknown[];
  localSecondaryIndexes?: unknown[];
  /**
   * The TimeToLiveSpecification's attribute when TTL is enabled. dynalite has no UpdateTimeToLive,
   * so the local stack deletes expired items itself (see local/dynamodb.ts); readers check the
   * expiry on every read in any case, as they must on AWS, where deletion lags by up to days.
   */
  ttlAttribute?: string;
}

/** An S3 bucket from `resources.Resources`. */
export interface BucketConfig {
  logicalId: string;
  bucketName: string;
}

/** An `s3` event of a function: uploads to `bucket` matching the rules start the function. */
export interface S3EventConfig {
  /** The bucket name once resolved (`{Ref: DataBucket}` in serverless.yml). */
  bucket: string;
  event: string;
  prefix?: string;
  suffix?: string;
}

/** What the local stack needs from serverless.yml, every variable and reference resolved. */
export interface ServerlessConfig {
  file: string;
  /** The folder holding serverless.yml: handler modules and `${file(...)}` paths are relative to it. */
  root: string;
  service: string;
  stage: string;
  region: string;
  functions: FunctionConfig[];
  stateMachines: StateMachineConfig[];
  tables: TableConfig[];
  buckets: BucketConfig[];
  /** provider.environment merged with every function's environment, `Ref`s resolved. */
  environment: Record<string, string>;
  /** `custom.alarms`, resolved: the thresholds the alarms plugin applies when the stack is packaged. */
  alarms: Record<string, unknown>;
}

/** serverless.yml cannot be used locally; the message starts with the file and the field. */
export class ServerlessConfigError extends Error {
  override name = 'ServerlessConfigError';
}

/** Options for {@link loadServerlessConfig}. */
export interface LoadOptions {
  /** Path of serverless.yml (default: `serverless.yml` in the current folder). */
  file?: string;
  /** `${opt:stage}` and `${sls:stage}`: the local stack deploys to stage `local`. */
  stage?: string;
  /** `${opt:region}`; unset means the file's own default applies. */
  region?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Reads serverless.yml and resolves what the local stack uses: the variables `${self:...}`,
 * `${sls:stage}`, `${opt:stage|region, default}`, `${env:NAME, default}`, `${aws:region|accountId}`
 * and `${file(path)}`, then functions, state machines, DynamoDB tables and the environment with
 * `{Ref}`/`{Fn::GetAtt}` pointing at local names and ARNs. Errors name the file and the field.
 */
export function loadServerlessConfig(options: LoadOptions = {}): ServerlessConfig {
  const file = resolve(options.file ?? 'serverless.yml');
  const shown = file.split('/').pop() ?? file;
  const fail: Fail = (field, message) => {
    throw new ServerlessConfigError(`${shown}: ${field}: ${message}`);
  };
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ServerlessConfigError(`${shown}: cannot read: ${(err as Error).message}`);
  }
  const stage = options.stage ?? 'local';
  const source = record(raw, '(root)', fail);
  const context = {
    doc: source,
    dir: dirname(file),
    stage,
    region: options.region,
    accountId: LOCAL_ACCOUNT,
    env: options.env ?? process.env,
    fail,
  };
  const doc = record(resolveVariables(source, '', context), '(root)', fail);

  const service = text(doc.service, 'service', fail);
  const provider = record(doc.provider ?? {}, 'provider', fail);
  const region = provider.region === undefined ? 'us-east-1' : text(provider.region, 'provider.region', fail);
  const arnPrefix = (svc: string) => `arn:aws:${svc}:${region}:${LOCAL_ACCOUNT}`;
  const functionsDoc = record(doc.functions ?? {}, 'functions', fail);
  const functions = Object.entries(functionsDoc).map(([key, value]) =>
    functionConfig(key, record(value, `functions.${key}`, fail), {
      service,
      stage,
      provider,
      arnPrefix,
      fail,
    }),
  );
  const stateMachines = stateMachinesOf(doc, arnPrefix, fail);
  const resources = record(
    record(doc.resources ?? {}, 'resources', fail).Resources ?? {},
    'resources.Resources',
    fail,
  );
  const tables = tablesOf(resources, fail);
  const buckets = bucketsOf(resources, `${service}-${stage}`, fail);
  // Buckets that serverless creates for s3 events, declared under provider.s3 by a short key.
  const s3Keys = new Map<string, string>();
  for (const [key, v] of Object.entries(record(provider.s3 ?? {}, 'provider.s3', fail))) {
    const name = text(record(v, `provider.s3.${key}`, fail).name, `provider.s3.${key}.name`, fail);
    s3Keys.set(key, name);
    buckets.push({ logicalId: key, bucketName: name });
  }

  // What `{Ref: X}` and `{Fn::GetAtt: [X, Arn]}` mean locally, by CloudFormation logical id.
  const refs = new Map<string, { ref: string; arn: string }>();
  for (const b of buckets) refs.set(b.logicalId, { ref: b.bucketName, arn: `arn:aws:s3:::${b.bucketName}` });
  for (const t of tables) {
    refs.set(t.logicalId, { ref: t.tableName, arn: `${arnPrefix('dynamodb')}:table/${t.tableName}` });
  }
  for (const m of stateMachines) refs.set(m.id, { ref: m.arn, arn: m.arn });
  for (const f of functions) refs.set(f.logicalId, { ref: f.name, arn: f.arn });
  const value = (v: unknown, field: string) => refValue(v, field, refs, fail);

  const environment: Record<string, string> = {};
  const addEnv = (vars: unknown, at: string) => {
    for (const [k, v] of Object.entries(record(vars ?? {}, at, fail))) {
      const resolved = value(v, `${at}.${k}`);
      // One process runs every handler, so two functions cannot see different values of one variable.
      if (k in environment && environment[k] !== resolved) {
        fail(`${at}.${k}`, `differs from another function's value; the local stack shares one environment`);
      }
      environment[k] = resolved;
    }
  };
  addEnv(provider.environment, 'provider.environment');
  for (const f of functions) {
    const own = (functionsDoc[f.key] as Record<string, unknown>).environment;
    addEnv(own, `functions.${f.key}.environment`);
    for (const k of Object.keys(own ?? {})) f.environment[k] = environment[k] as string;
    f.s3Events = f.s3Events.map((e, i) => ({
      ...e,
      bucket: s3Keys.get(e.bucket) ?? value(e.bucket, `functions.${f.key}.events[${i}].s3.bucket`),
    }));
  }
  return {
    file,
    root: dirname(file),
    service,
    stage,
    region,
    functions,
    stateMachines,
    tables,
    buckets,
    environment,
    alarms: record((doc.custom as Record<string, unknown> | undefined)?.alarms ?? {}, 'custom.alarms', fail),
  };
}

/** serverless's normalisation for logical ids: `my-fn_x` → `MyDashfnUnderscorex`. */
export function logicalName(name: string): string {
  const n = name.replace(/-/g, 'Dash').replace(/_/g, 'Underscore');
  return n.charAt(0).toUpperCase() + n.slice(1);
}

function stateMachinesOf(
  doc: Record<string, unknown>,
  arnPrefix: (svc: string) => string,
  fail: Fail,
): StateMachineConfig[] {
  const machines = record(
    record(doc.stepFunctions ?? {}, 'stepFunctions', fail).stateMachines ?? {},
    'stepFunctions.stateMachines',
    fail,
  );
  return Object.entries(machines).map(([key, value]) => {
    const at = `stepFunctions.stateMachines.${key}`;
    const m = record(value, at, fail);
    const name = m.name === undefined ? key : text(m.name, `${at}.name`, fail);
    const type = m.type === undefined ? 'STANDARD' : text(m.type, `${at}.type`, fail).toUpperCase();
    if (type !== 'STANDARD' && type !== 'EXPRESS')
      fail(`${at}.type`, `must be STANDARD or EXPRESS, not ${type}`);
    const definition =
      typeof m.definition === 'string' ? parseJson(m.definition, `${at}.definition`, fail) : m.definition;
    return {
      key,
      id: m.id === undefined ? `${logicalName(key)}StepFunctionsStateMachine` : text(m.id, `${at}.id`, fail),
      name,
      arn: `${arnPrefix('states')}:stateMachine:${name}`,
      type: type as 'STANDARD' | 'EXPRESS',
      definition: record(definition, `${at}.definition`, fail),
    };
  });
}

function tablesOf(resources: Record<string, unknown>, fail: Fail): TableConfig[] {
  const tables: TableConfig[] = [];
  for (const [logicalId, value] of Object.entries(resources)) {
    const at = `resources.Resources.${logicalId}`;
    const res = record(value, at, fail);
    if (res.Type !== 'AWS::DynamoDB::Table') continue;
    const props = record(res.Properties, `${at}.Properties`, fail);
    tables.push({
      logicalId,
      tableName:
        props.TableName === undefined ? logicalId : text(props.TableName, `${at}.Properties.TableName`, fail),
      keySchema: list(props.KeySchema, `${at}.Properties.KeySchema`, fail) as TableConfig['keySchema'],
      attributeDefinitions: list(
        props.AttributeDefinitions,
        `${at}.Properties.AttributeDefinitions`,
        fail,
      ) as TableConfig['attributeDefinitions'],
      globalSecondaryIndexes: props.GlobalSecondaryIndexes as unknown[] | undefined,
      localSecondaryIndexes: props.LocalSecondaryIndexes as unknown[] | undefined,
      ttlAttribute: ttlAttributeOf(
        props.TimeToLiveSpecification,
        `${at}.Properties.TimeToLiveSpecification`,
        fail,
      ),
    });
  }
  return tables;
}

function ttlAttributeOf(value: unknown, at: string, fail: Fail): string | undefined {
  if (value === undefined) return undefined;
  const spec = record(value, at, fail);
  if (spec.Enabled !== true && spec.Enabled !== 'true') return undefined;
  return text(spec.AttributeName, `${at}.AttributeName`, fail);
}

function bucketsOf(resources: Record<string, unknown>, prefix: string, fail: Fail): BucketConfig[] {
  const buckets: BucketConfig[] = [];
  for (const [logicalId, value] of Object.entries(resources)) {
    const at = `resources.Resources.${logicalId}`;
    const res = record(value, at, fail);
    if (res.Type !== 'AWS::S3::Bucket') continue;
    const props = record(res.Properties ?? {}, `${at}.Properties`, fail);
    buckets.push({
      logicalId,
      // CloudFormation would generate a name; a stable one keeps local data across restarts.
      bucketName:
        props.BucketName === undefined
          ? `${prefix}-${logicalId}`.toLowerCase()
          : text(props.BucketName, `${at}.Properties.BucketName`, fail),
    });
  }
  return buckets;
}

/** A string, or `{Ref: X}` / `{Fn::GetAtt: [X, Arn]}` resolved to the local name or ARN of X. */
function refValue(
  value: unknown,
  field: string,
  refs: ReadonlyMap<string, { ref: string; arn: string }>,
  fail: Fail,
): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const obj = record(value, field, fail);
  const ref = obj.Ref;
  const getAtt = obj['Fn::GetAtt'];
  if (typeof ref === 'string') {
    return (
      refs.get(ref)?.ref ??
      fail(field, `{Ref: ${ref}} names no table, bucket, state machine or function here`)
    );
  }
  if (Array.isArray(getAtt) && getAtt[1] === 'Arn' && typeof getAtt[0] === 'string') {
    return refs.get(getAtt[0])?.arn ?? fail(field, `Fn::GetAtt ${getAtt[0]}.Arn names nothing known here`);
  }
  return fail(
    field,
    `unsupported value ${JSON.stringify(value)} (a string, {Ref} or {Fn::GetAtt: [X, Arn]})`,
  );
}

function functionConfig(
  key: string,
  f: Record<string, unknown>,
  ctx: {
    service: string;
    stage: string;
    provider: Record<string, unknown>;
    arnPrefix: (svc: string) => string;
    fail: Fail;
  },
): FunctionConfig {
  const { fail, provider } = ctx;
  const at = `functions.${key}`;
  const handler = text(f.handler, `${at}.handler`, fail);
  const dot = handler.lastIndexOf('.');
  if (dot <= 0 || dot === handler.length - 1) {
    fail(`${at}.handler`, `"${handler}" is not <module path>.<export name>`);
  }
  const name = f.name === undefined ? `${ctx.service}-${ctx.stage}-${key}` : text(f.name, `${at}.name`, fail);
  const num = (value: unknown, field: string, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    return Number.isFinite(n) && n > 0 ? n : fail(field, `must be a positive number, not ${String(value)}`);
  };
  const events = list(f.events ?? [], `${at}.events`, fail);
  const routes: HttpRoute[] = [];
  const s3Events: FunctionConfig['s3Events'] = [];
  events.forEach((event, i) => {
    const e = record(event, `${at}.events[${i}]`, fail);
    if (e.httpApi !== undefined) routes.push(httpRoute(e.httpApi, `${at}.events[${i}].httpApi`, fail));
    if (e.s3 !== undefined) s3Events.push(s3Event(e.s3, `${at}.events[${i}].s3`, fail));
  });
  return {
    key,
    name,
    logicalId: `${logicalName(key)}LambdaFunction`,
    arn: `${ctx.arnPrefix('lambda')}:function:${name}`,
    handlerModule: handler.slice(0, dot),
    handlerExport: handler.slice(dot + 1),
    timeoutSeconds: num(f.timeout, `${at}.timeout`, num(provider.timeout, 'provider.timeout', 6)),
    memoryMB: num(f.memorySize, `${at}.memorySize`, num(provider.memorySize, 'provider.memorySize', 1024)),
    environment: {},
    routes,
    s3Events,
  };
}

function s3Event(value: unknown, field: string, fail: Fail): S3EventConfig {
  // Short form `s3: bucket-name` or the long form with event and prefix/suffix rules.
  if (typeof value === 'string') return { bucket: value, event: 's3:ObjectCreated:*' };
  const obj = record(value, field, fail);
  const out: S3EventConfig = {
    bucket: obj.bucket as string,
    event: obj.event === undefined ? 's3:ObjectCreated:*' : text(obj.event, `${field}.event`, fail),
  };
  for (const rule of list(obj.rules ?? [], `${field}.rules`, fail)) {
    const r = rule as Record<string, unknown>;
    if (typeof r.prefix === 'string') out.prefix = r.prefix;
    if (typeof r.suffix === 'string') out.suffix = r.suffix;
  }
  return out;
}

function httpRoute(value: unknown, field: string, fail: Fail): HttpRoute {
  let method: string;
  let path: string;
  if (value === '*') return { method: 'ANY', path: '*', routeKey: '$default' };
  if (typeof value === 'string') {
    const parts = value.trim().split(/\s+/);
    if (parts.length !== 2) fail(field, `"${value}" is not "METHOD /path"`);
    [method, path] = parts as [string, string];
  } else {
    const obj = record(value, field, fail);
    path = text(obj.path, `${field}.path`, fail);
    // `{path: '*'}` (method omitted or '*') is the catch-all, as serverless compiles it.
    if (path === '*') {
      if (obj.method !== undefined && obj.method !== '*') fail(`${field}.path`, '"*" takes no method');
      return { method: 'ANY', path: '*', routeKey: '$default' };
    }
    method = text(obj.method, `${field}.method`, fail);
  }
  method = method === '*' ? 'ANY' : method.toUpperCase();
  if (!path.startsWith('/')) fail(field, `path "${path}" must start with /`);
  return { method, path, routeKey: `${method} ${path}` };
}

function record(value: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return fail(
      field,
      `must be a mapping, not ${value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value}`,
    );
  }
  return value as Record<string, unknown>;
}

function list(value: unknown, field: string, fail: Fail): unknown[] {
  return Array.isArray(value) ? value : fail(field, `must be a list, not ${typeof value}`);
}

function text(value: unknown, field: string, fail: Fail): string {
  return typeof value === 'string' && value.length > 0
    ? value
    : fail(field, `must be a non-empty string, not ${JSON.stringify(value) ?? 'undefined'}`);
}

function parseJson(source: string, field: string, fail: Fail): unknown {
  try {
    return JSON.parse(source);
  } catch (err) {
    return fail(field, `is not JSON: ${(err as Error).message}`);
  }
}
