// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${AWS::Region}` is how rendered ARNs read.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { TTL_ATTRIBUTE } from '../../functions/adapters/dynamodb-cache.js';
import { METRICS, type MetricSpec } from '../../functions/adapters/metrics.js';
import { loadManifest } from '../../functions/core/manifest.js';
import { packageSizes, UNZIPPED_BUDGET_BYTES } from '../../scripts/package-sizes.js';
import { extractZip, zipEntries } from '../../scripts/zip.js';
import {
  allStatements,
  definitionOf,
  findCycle,
  grants,
  invokedFunctions,
  list,
  render,
  roleStatements,
  type Statement,
} from './cfn.js';
import { type Packaged, type Resource, ROOT, runPackage } from './package-run.js';

const STAGE = 'ci';
const REGION = 'eu-west-1';
const BUCKET = `fanout-${STAGE}-data`;
const S3 = `arn:\${AWS::Partition}:s3:::${BUCKET}`;
const STATES = 'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}';

const HANDLERS: Record<string, string> = {
  runner: 'functions/runner/handler.handler',
  ensemble: 'functions/ensemble/handler.handler',
  api: 'functions/api/handler.handler',
  batchTrigger: 'functions/batch-trigger/handler.handler',
  batchPrepare: 'functions/batch-prepare/handler.handler',
  batchPlan: 'functions/batch-plan/handler.handler',
  batchStore: 'functions/batch-store/handler.handler',
  batchFinalize: 'functions/batch-finalize/handler.handler',
};
const logicalId = (key: string) => `${key.charAt(0).toUpperCase()}${key.slice(1)}LambdaFunction`;

// Result-cache entries and prediction records by their partition-key prefix (fine-grained access).
const ONLY = (prefix: string) => ` if {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["${prefix}#*"]}}`;

// What each function's handler calls, and nothing more (its own logs and X-Ray come on top).
const FUNCTION_GRANTS: Record<string, string[]> = {
  runner: [],
  ensemble: [
    `dynamodb:BatchWriteItem FanoutTable.Arn${ONLY('CACHE')}`,
    'dynamodb:GetItem FanoutTable.Arn',
    'dynamodb:UpdateItem FanoutTable.Arn',
  ],
  api: [
    `dynamodb:BatchGetItem FanoutTable.Arn${ONLY('CACHE')}`,
    'dynamodb:DeleteItem FanoutTable.Arn',
    'dynamodb:GetItem FanoutTable.Arn',
    'dynamodb:PutItem FanoutTable.Arn',
    `dynamodb:UpdateItem FanoutTable.Arn${ONLY('PRED')}`,
    'states:StartSyncExecution InferenceStateMachine',
  ],
  batchTrigger: [
    'dynamodb:GetItem FanoutTable.Arn',
    'dynamodb:PutItem FanoutTable.Arn',
    'dynamodb:UpdateItem FanoutTable.Arn',
    `s3:GetObject ${S3}/incoming/*`,
    'sqs:SendMessage BatchTriggerDeadLetterQueue.Arn',
    'states:StartExecution BatchStateMachine',
  ],
  batchPrepare: [
    'dynamodb:UpdateItem FanoutTable.Arn',
    `s3:AbortMultipartUpload ${S3}/jobs/*`,
    `s3:GetObject ${S3}/incoming/*`,
    `s3:PutObject ${S3}/jobs/*`,
  ],
  batchPlan: [`dynamodb:BatchGetItem FanoutTable.Arn${ONLY('CACHE')}`],
  batchStore: [
    'dynamodb:BatchWriteItem FanoutTable.Arn',
    'dynamodb:UpdateItem FanoutTable.Arn',
    `s3:AbortMultipartUpload ${S3}/jobs/*`,
    `s3:PutObject ${S3}/jobs/*`,
  ],
  batchFinalize: [
    'dynamodb:GetItem FanoutTable.Arn',
    'dynamodb:Query FanoutTable.Arn',
    'dynamodb:UpdateItem FanoutTable.Arn',
    `s3:AbortMultipartUpload ${S3}/results/*`,
    `s3:GetObject ${S3}/jobs/*`,
    `s3:ListBucket ${S3} if {"StringLike":{"s3:prefix":["jobs/*"]}}`,
    `s3:PutObject ${S3}/results/*`,
  ],
};

// Actions AWS takes no resource-level permission for: the only ones allowed on Resource "*".
const STAR_RESOURCE_ACTIONS = new Set([
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  'cloudwatch:PutMetricData',
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
]);

const OPEN_ROUTES = ['GET /v2/health/live', 'GET /v2/health/ready'];
const PROTECTED_ROUTES = [
  'POST /v1/ensembles/{ensemble}/predictions',
  'GET /v1/predictions/{id}',
  'GET /v1/ensembles',
  'GET /v1/jobs/{jobId}',
  'GET /v2',
  'GET /v2/models/{name}',
  'GET /v2/models/{name}/ready',
  'POST /v2/models/{name}/infer',
  // The catch-all: a wrong method on a known path reaches the handler, which answers 405.
  '$default',
];

let pkg: Packaged;
let R: Record<string, Resource>;
const byType = (type: string) => Object.entries(R).filter(([, r]) => r.Type === type);
const props = (id: string) => {
  const r = R[id];
  if (!r) throw new Error(`no resource ${id} in the template`);
  return r.Properties as Record<string, any>;
};
const roleOf = (functionKey: string) => render(props(logicalId(functionKey)).Role).replace(/\.Arn$/, '');

beforeAll(async () => {
  pkg = await runPackage(STAGE, REGION);
  R = pkg.resources;
}, 300_000);

afterAll(() => {
  if (pkg) rmSync(pkg.dir, { recursive: true, force: true });
});

describe('npm run package (offline, no credentials)', () => {
  it('packages every function for the stage and region given on the command line', () => {
    expect(pkg.state.service.provider).toMatchObject({ stage: STAGE, region: REGION });
    expect(packageSizes(pkg.dir).map((s) => s.function)).toEqual(Object.keys(HANDLERS).sort());
    for (const key of Object.keys(HANDLERS)) {
      expect(props(logicalId(key)).FunctionName).toBe(`fanout-${STAGE}-${key}`);
    }
    expect(pkg.output).toMatch(/runner\s+[\d.]+ MB\s+[\d.]+ MB/);
  });

  it('keeps every package, the runner included, within the 60 MB unzipped budget', () => {
    const sizes = packageSizes(pkg.dir);
    for (const s of sizes) expect(s.unzippedBytes).toBeLessThanOrEqual(UNZIPPED_BUDGET_BYTES);
    // The runner is the one that carries onnxruntime: far above the others, far below 250 MB.
    const runner = sizes.find((s) => s.function === 'runner');
    expect(runner?.unzippedBytes).toBeGreaterThan(20_000_000);
  });

  it('ships onnxruntime-node with the runner only, pruned to linux-x64', () => {
    const runner = zipEntries(readFileSync(join(pkg.dir, 'runner.zip'))).map((e) => e.name);
    const napi = 'node_modules/onnxruntime-node/bin/napi-v6/';
    expect(runner).toContain(`${napi}linux/x64/onnxruntime_binding.node`);
    expect(runner.filter((n) => n.startsWith(napi) && !n.startsWith(`${napi}linux/x64/`))).toEqual([]);
    for (const key of Object.keys(HANDLERS).filter((k) => k !== 'runner')) {
      const names = zipEntries(readFileSync(join(pkg.dir, `${key}.zip`))).map((e) => e.name);
      expect(names.filter((n) => n.startsWith('node_modules/'))).toEqual([]);
    }
  });

  it('packages the manifest and stacking files with every function, the ONNX files with the runner and the API only', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'models/manifest.json'), 'utf8')) as {
      models: { kind: string; file?: string }[];
      ensembles: { stacking?: { file: string } }[];
    };
    const stacking = manifest.ensembles.flatMap((e) => (e.stacking ? [`models/${e.stacking.file}`] : []));
    const onnx = manifest.models.flatMap((m) => (m.kind === 'onnx' && m.file ? [`models/${m.file}`] : []));
    expect(onnx.length).toBeGreaterThan(0);
    for (const [key, handler] of Object.entries(HANDLERS)) {
      const names = zipEntries(readFileSync(join(pkg.dir, `${key}.zip`))).map((e) => e.name);
      expect(names).toContain(`${handler.slice(0, handler.lastIndexOf('.'))}.mjs`);
      expect(names).toEqual(expect.arrayContaining(['models/manifest.json', ...stacking]));
      // The runner scores them; the API reads their signatures to answer readiness.
      if (key === 'runner' || key === 'api') expect(names).toEqual(expect.arrayContaining(onnx));
      else expect(names.filter((n) => n.endsWith('.onnx'))).toEqual([]);
    }
  });
});

describe('the packages as Lambda loads them', () => {
  const unpacked = new Map<string, string>();
  const unpack = (key: string) => {
    let dir = unpacked.get(key);
    if (!dir) {
      dir = mkdtempSync(join(tmpdir(), `fanout-unpacked-${key}-`));
      extractZip(readFileSync(join(pkg.dir, `${key}.zip`)), dir);
      unpacked.set(key, dir);
    }
    return dir;
  };
  afterAll(() => {
    for (const dir of unpacked.values()) rmSync(dir, { recursive: true, force: true });
  });
  // What every sandbox below gets: the functions' NODE_OPTIONS and shared settings, no credentials.
  const LAMBDA_ENV = {
    PATH: process.env.PATH,
    NODE_OPTIONS: '--enable-source-maps',
    AWS_REGION: REGION,
    FANOUT_TABLE: `fanout-${STAGE}`,
    FANOUT_BUCKET: BUCKET,
    FANOUT_STAGE: STAGE,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };

  it("ships onnxruntime's JavaScript without source maps, nor comments pointing at them", () => {
    const dir = unpack('runner');
    const js: string[] = [];
    for (const pkgDir of ['onnxruntime-node', 'onnxruntime-common']) {
      const names = readdirSync(join(dir, 'node_modules', pkgDir, 'dist'), { recursive: true }) as string[];
      expect(names.filter((n) => n.endsWith('.map'))).toEqual([]);
      js.push(
        ...names.filter((n) => n.endsWith('.js')).map((n) => join(dir, 'node_modules', pkgDir, 'dist', n)),
      );
    }
    expect(js.length).toBeGreaterThan(10);
    expect(js.filter((f) => /^\/\/# sourceMappingURL=/m.test(readFileSync(f, 'utf8')))).toEqual([]);
  });

  // Bundles are split into chunks (esbuild's splitting), all built into one folder: a package that
  // missed a chunk would fail on Lambda only, at the import that needs it.
  it("hold each function's bundle and every chunk it imports, and no other function's code", () => {
    for (const [key, handler] of Object.entries(HANDLERS)) {
      const own = dirname(handler);
      const names = new Set(zipEntries(readFileSync(join(pkg.dir, `${key}.zip`))).map((e) => e.name));
      const code = [...names].filter((n) => n.startsWith('functions/'));
      expect({ key, foreign: code.filter((n) => !n.startsWith(`${own}/`)) }).toEqual({ key, foreign: [] });
      const dir = unpack(key);
      const missing: string[] = [];
      let imports = 0;
      for (const file of code.filter((n) => n.endsWith('.mjs'))) {
        const text = readFileSync(join(dir, file), 'utf8');
        for (const m of text.matchAll(/(?:\bfrom|\bimport\s*\(?)\s*"(\.\/[^"]+)"/g)) {
          imports++;
          const target = posix.join(posix.dirname(file), m[1] as string);
          if (!names.has(target)) missing.push(`${file} -> ${target}`);
        }
      }
      expect({ key, missing }).toEqual({ key, missing: [] });
      // Every bundle imports chunks: none found would mean the pattern no longer matches esbuild's output.
      expect({ key, imports: imports > 0 }).toEqual({ key, imports: true });
    }
  });

  it("load from their zip alone in Lambda's environment (tracer on), and the packaged runner scores a row with a bundled model", () => {
    const model = [...loadManifest(join(ROOT, 'models/manifest.json')).models.values()].find(
      (m) => m.kind === 'onnx',
    );
    if (!model) throw new Error('the manifest has no ONNX model');
    // One Lambda sandbox per function: a fresh node, the package's folder as the task root, the
    // functions' NODE_OPTIONS, no credentials and nothing from this repository.
    const script = `
      const { handler } = await import('./${'HANDLER'}.mjs');
      if (typeof handler !== 'function') throw new Error('no handler export');
      const event = JSON.parse(process.env.EVENT ?? 'null');
      const out = event ? await handler(event, { functionName: 'f', awsRequestId: 'r', getRemainingTimeInMillis: () => 30000 }) : null;
      console.log(JSON.stringify({ ok: true, out }));`;
    for (const [key, handler] of Object.entries(HANDLERS)) {
      const event =
        key === 'runner'
          ? { model: model.id, instances: [Array.from({ length: model.features.length }, () => 0.5)] }
          : null;
      const run = spawnSync(
        join(ROOT, 'node_modules/.bin/node'),
        ['--input-type=module', '-e', script.replace('HANDLER', handler.slice(0, handler.lastIndexOf('.')))],
        {
          cwd: unpack(key),
          encoding: 'utf8',
          timeout: 60_000,
          env: {
            ...LAMBDA_ENV,
            // As on Lambda: the tracer loads (from the bundle); no daemon listens, nothing waits.
            AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
            AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR',
            AWS_XRAY_DAEMON_ADDRESS: '127.0.0.1:9',
            AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
            LAMBDA_TASK_ROOT: unpack(key),
            _HANDLER: handler,
            _X_AMZN_TRACE_ID: 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1',
            FANOUT_MANIFEST: 'models/manifest.json',
            EVENT: JSON.stringify(event),
          },
        },
      );
      const last = run.stdout.trim().split('\n').at(-1) ?? '';
      expect({ key, status: run.status, stderr: run.stderr.slice(-2000) }).toEqual({
        key,
        status: 0,
        stderr: '',
      });
      const { ok, out } = JSON.parse(last) as { ok: boolean; out: any };
      expect(ok).toBe(true);
      if (event) {
        expect(out).toMatchObject({ model: model.id, status: 'ok' });
        expect(out.probabilities).toHaveLength(1);
        expect(Object.keys(out.probabilities[0]).length || out.probabilities[0].length).toBe(
          model.labels.length,
        );
      }
    }
  }, 120_000);

  // In a split bundle a dynamic import() of a CommonJS module kept only its default export
  // (scripts/esbuild-plugins.cjs): the SDK's credential chain failed past its first provider
  // ("n is not a function"), so the packages worked only where the environment has credentials.
  it("sign their SDK calls with a profile's credentials when the environment has none", async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(String(req.headers.authorization ?? ''));
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const home = mkdtempSync(join(tmpdir(), 'fanout-profile-'));
    mkdirSync(join(home, '.aws'));
    writeFileSync(
      join(home, '.aws', 'credentials'),
      '[default]\naws_access_key_id = AKIDFROMPROFILE\naws_secret_access_key = secret\n',
    );
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const script = `
      const { handler } = await import('./functions/batch-trigger/handler.mjs');
      const key = 'incoming/breast-cancer/a.csv';
      const object = { key, eTag: 'e', size: 10, sequencer: '01' };
      const event = { Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'b' }, object } }] };
      await handler(event, { functionName: 'f', awsRequestId: 'r', getRemainingTimeInMillis: () => 30000 }).catch(() => {});`;
    try {
      const code = await new Promise<number | null>((done) => {
        const child = spawn(join(ROOT, 'node_modules/.bin/node'), ['--input-type=module', '-e', script], {
          cwd: unpack('batchTrigger'),
          stdio: 'ignore',
          env: {
            ...LAMBDA_ENV,
            HOME: home,
            AWS_EC2_METADATA_DISABLED: 'true',
            AWS_ENDPOINT_URL_S3: endpoint,
            AWS_ENDPOINT_URL_DYNAMODB: endpoint,
            AWS_ENDPOINT_URL_SFN: endpoint,
            FANOUT_BATCH_STATE_MACHINE_ARN: `arn:aws:states:${REGION}:123456789012:stateMachine:batch`,
          },
        });
        child.on('exit', done);
      });
      expect(code).toBe(0);
      expect(seen.length).toBeGreaterThan(0);
      for (const auth of seen) expect(auth).toContain('Credential=AKIDFROMPROFILE/');
    } finally {
      server.close();
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('functions', () => {
  it('run on nodejs22.x x86_64 with the handlers of serverless.yml, traced', () => {
    for (const [key, handler] of Object.entries(HANDLERS)) {
      expect(props(logicalId(key))).toMatchObject({
        Handler: handler,
        Runtime: 'nodejs22.x',
        Architectures: ['x86_64'],
        TracingConfig: { Mode: 'Active' },
      });
    }
  });

  it('get the shared environment, and a state machine ARN only where it is used', () => {
    for (const key of Object.keys(HANDLERS)) {
      const vars = props(logicalId(key)).Environment.Variables;
      expect(vars).toMatchObject({
        FANOUT_TABLE: { Ref: 'FanoutTable' },
        FANOUT_MANIFEST: 'models/manifest.json',
        FANOUT_BUCKET: BUCKET,
        FANOUT_SAGEMAKER_MEMBERS: '',
        NODE_OPTIONS: '--enable-source-maps',
        FANOUT_STAGE: STAGE,
      });
      const machines = Object.keys(vars).filter((k) => k.endsWith('_STATE_MACHINE_ARN'));
      expect(machines).toEqual(
        key === 'api'
          ? ['FANOUT_INFERENCE_STATE_MACHINE_ARN']
          : key === 'batchTrigger'
            ? ['FANOUT_BATCH_STATE_MACHINE_ARN']
            : [],
      );
    }
  });

  it('form a template without dependency cycles (CloudFormation would refuse it)', () => {
    expect(findCycle(R)).toBeUndefined();
  });
});

describe('IAM: least privilege', () => {
  it('gives each function its own role, assumable by Lambda only', () => {
    const roles = Object.keys(HANDLERS).map(roleOf);
    expect(new Set(roles).size).toBe(roles.length);
    for (const role of roles) {
      expect(R[role]?.Type).toBe('AWS::IAM::Role');
      expect(props(role).AssumeRolePolicyDocument.Statement).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ]);
    }
    expect(byType('AWS::IAM::Role').map(([id]) => id)).not.toContain('IamRoleLambdaExecution');
  });

  it("allows each function what its handler calls, on the table, the bucket's prefixes and the state machines", () => {
    for (const [key, expected] of Object.entries(FUNCTION_GRANTS)) {
      expect([key, grants(R[roleOf(key)] as Resource, ['OwnLogs', 'Tracing'])]).toEqual([key, expected]);
    }
  });

  it('lets each function write its own log group only', () => {
    for (const key of Object.keys(HANDLERS)) {
      const own = roleStatements(R[roleOf(key)] as Resource).find((s) => s.Sid === 'OwnLogs') as Statement;
      expect(list(own.Action as string[]).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      const group = `${key.charAt(0).toUpperCase()}${key.slice(1)}LogGroup`;
      expect(render(own.Resource)).toBe(`${group}.Arn`);
      expect(props(group).LogGroupName).toBe(`/aws/lambda/fanout-${STAGE}-${key}`);
    }
  });

  it('has no wildcard action, and Resource "*" only for what AWS grants on no resource', () => {
    const statements = allStatements(R).filter(({ statement }) => statement.Effect === 'Allow');
    expect(statements.length).toBeGreaterThan(20);
    for (const { owner, statement } of statements) {
      expect([owner, statement.NotAction, statement.NotResource]).toEqual([owner, undefined, undefined]);
      const actions = list(statement.Action as string | string[]);
      expect([owner, actions.filter((a) => a.includes('*'))]).toEqual([owner, []]);
      if (list(statement.Resource).includes('*')) {
        expect([owner, actions.filter((a) => !STAR_RESOURCE_ACTIONS.has(a))]).toEqual([owner, []]);
      }
    }
  });

  it('grants no SageMaker permission when FANOUT_SAGEMAKER_MEMBERS names no endpoint', () => {
    const sagemaker = allStatements(R).filter(({ statement }) =>
      list(statement.Action as string | string[]).some((a) => a.startsWith('sagemaker:')),
    );
    expect(sagemaker).toEqual([]);
  });
});

describe('state machines', () => {
  const machines = [
    { id: 'InferenceStateMachine', file: 'inference', type: 'EXPRESS' },
    { id: 'BatchStateMachine', file: 'batch', type: 'STANDARD' },
  ];

  it.each(machines)('$id runs statemachines/$file.asl.json unchanged once substituted', ({
    id,
    file,
    type,
  }) => {
    const asl = JSON.parse(readFileSync(join(ROOT, `statemachines/${file}.asl.json`), 'utf8'));
    expect(definitionOf(R[id] as Resource)).toEqual(asl);
    expect(props(id)).toMatchObject({ StateMachineType: type, StateMachineName: `fanout-${STAGE}-${file}` });
  });

  it.each(machines)('$id logs to its own log group and is traced by X-Ray', ({ id, file }) => {
    const { LoggingConfiguration: logging, TracingConfiguration: tracing } = props(id);
    expect(tracing).toEqual({ Enabled: true });
    expect(['ERROR', 'ALL']).toContain(logging.Level);
    expect(logging.IncludeExecutionData).toBe(false);
    const group = render(logging.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn).replace(/\.Arn$/, '');
    expect(props(group).LogGroupName).toBe(`/aws/vendedlogs/states/fanout-${STAGE}-${file}`);
  });

  it.each(machines)('$id may invoke exactly the functions its definition names', ({ id }) => {
    const role = R[render(props(id).RoleArn).replace(/\.Arn$/, '')] as Resource;
    const invoke = roleStatements(role).filter((s) =>
      list(s.Action as string[]).includes('lambda:InvokeFunction'),
    );
    expect(invoke.flatMap((s) => list(s.Resource).map(render)).sort()).toEqual(
      invokedFunctions(definitionOf(R[id] as Resource)).map((f) => `${f}.Arn`),
    );
  });

  it('lets the batch Distributed Map run its children, read the rows and write its results, nothing wider', () => {
    const role = R[render(props('BatchStateMachine').RoleArn).replace(/\.Arn$/, '')] as Resource;
    expect(
      props(render(props('BatchStateMachine').RoleArn).replace(/\.Arn$/, '')).AssumeRolePolicyDocument
        .Statement[0].Principal,
    ).toEqual({
      Service: 'states.amazonaws.com',
    });
    expect(grants(role, ['InvokeTasks', 'LogDelivery', 'Tracing'])).toEqual([
      `s3:AbortMultipartUpload ${S3}/jobs/*/map/*`,
      `s3:GetObject ${S3}/jobs/*/map/*`,
      `s3:GetObject ${S3}/jobs/*/rows.jsonl`,
      `s3:ListMultipartUploadParts ${S3}/jobs/*/map/*`,
      `s3:PutObject ${S3}/jobs/*/map/*`,
      `states:DescribeExecution ${STATES}:execution:fanout-${STAGE}-batch/*`,
      `states:StartExecution ${STATES}:stateMachine:fanout-${STAGE}-batch`,
      `states:StopExecution ${STATES}:execution:fanout-${STAGE}-batch/*`,
    ]);
    const inference = R[render(props('InferenceStateMachine').RoleArn).replace(/\.Arn$/, '')] as Resource;
    expect(grants(inference, ['InvokeTasks', 'LogDelivery', 'Tracing'])).toEqual([]);
  });
});

describe('HTTP API', () => {
  const routes = () =>
    Object.fromEntries(
      byType('AWS::ApiGatewayV2::Route').map(([, r]) => [
        (r.Properties as { RouteKey: string }).RouteKey,
        (r.Properties as { AuthorizationType?: string }).AuthorizationType ?? 'NONE',
      ]),
    );

  it('requires IAM authorization on every route but the health probes', () => {
    expect(Object.keys(routes()).sort()).toEqual([...OPEN_ROUTES, ...PROTECTED_ROUTES].sort());
    for (const route of PROTECTED_ROUTES) expect([route, routes()[route]]).toEqual([route, 'AWS_IAM']);
    for (const route of OPEN_ROUTES) expect([route, routes()[route]]).toEqual([route, 'NONE']);
  });

  it('throttles the stage and caps the synchronous body at what a state input takes', () => {
    const [[, stage] = []] = byType('AWS::ApiGatewayV2::Stage');
    const settings = (stage?.Properties as { DefaultRouteSettings: Record<string, number> })
      .DefaultRouteSettings;
    expect(settings.ThrottlingRateLimit).toBeGreaterThan(0);
    expect(settings.ThrottlingBurstLimit).toBeGreaterThanOrEqual(settings.ThrottlingRateLimit as number);
    const vars = props('ApiLambdaFunction').Environment.Variables;
    expect(Number(vars.FANOUT_MAX_BODY_BYTES)).toBeLessThanOrEqual(262_144);
    expect(Number(vars.FANOUT_MAX_INSTANCES)).toBeGreaterThan(0);
  });

  it("tells the functions that plan members the runner's own timeout, so no member waits past it", () => {
    const runner = props('RunnerLambdaFunction').Timeout as number;
    expect(runner).toBeGreaterThan(1);
    for (const fn of ['ApiLambdaFunction', 'BatchPrepareLambdaFunction']) {
      expect([fn, Number(props(fn).Environment.Variables.FANOUT_RUNNER_TIMEOUT_SECONDS)]).toEqual([
        fn,
        runner,
      ]);
    }
  });

  it("bounds the result cache's memory tier in the functions that read the cache (10,000 entries, 300 s)", () => {
    for (const fn of ['ApiLambdaFunction', 'BatchPlanLambdaFunction']) {
      const vars = props(fn).Environment.Variables;
      expect([fn, vars.FANOUT_CACHE_MEMORY_ENTRIES, vars.FANOUT_CACHE_MEMORY_SECONDS]).toEqual([
        fn,
        '10000',
        '300',
      ]);
    }
  });
});

describe('data', () => {
  it('keeps records in an on-demand table with point-in-time recovery and TTL on the result-cache expiry', () => {
    expect(props('FanoutTable')).toMatchObject({
      TableName: `fanout-${STAGE}`,
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      // The result cache's entries expire by this attribute (functions/adapters/dynamodb-cache.ts).
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
  });

  const publicAccessBlocked = {
    BlockPublicAcls: true,
    BlockPublicPolicy: true,
    IgnorePublicAcls: true,
    RestrictPublicBuckets: true,
  };

  it.each([
    ['S3BucketData', BUCKET],
    ['ServerlessDeploymentBucket', 'ServerlessDeploymentBucket'],
  ])('%s is encrypted, blocks public access and refuses plain HTTP', (bucket, policyBucket) => {
    const p = props(bucket);
    expect(p.PublicAccessBlockConfiguration).toEqual(publicAccessBlocked);
    expect(['AES256', 'aws:kms']).toContain(
      p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm,
    );
    const policy = byType('AWS::S3::BucketPolicy').find(
      ([, r]) => render((r.Properties as { Bucket: unknown }).Bucket) === policyBucket,
    );
    const deny = (policy?.[1].Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument
      .Statement[0];
    expect(deny).toMatchObject({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': false } } });
  });

  it('starts the batch trigger for each object created under incoming/, and only there', () => {
    const data = props('S3BucketData');
    expect(data.BucketName).toBe(BUCKET);
    expect(data.NotificationConfiguration.LambdaConfigurations).toEqual([
      {
        Event: 's3:ObjectCreated:*',
        Function: { 'Fn::GetAtt': ['BatchTriggerLambdaFunction', 'Arn'] },
        Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: 'incoming/' }] } },
      },
    ]);
    const permission = byType('AWS::Lambda::Permission')
      .map(([, r]) => r.Properties as Record<string, unknown>)
      .find((p) => p.Principal === 's3.amazonaws.com');
    expect(render(permission?.FunctionName)).toBe('BatchTriggerLambdaFunction.Arn');
    expect(render(permission?.SourceArn)).toBe(S3);
    expect(permission?.SourceAccount).toEqual({ Ref: 'AWS::AccountId' });
  });
});

describe("operations: alarms, the alarm topic, the dashboard and the trigger's dead letters", () => {
  const catalog = METRICS as Record<string, MetricSpec>;
  const manifest = () =>
    JSON.parse(readFileSync(join(ROOT, 'models/manifest.json'), 'utf8')) as {
      models: { id: string; kind: string }[];
      ensembles: {
        name: string;
        members: string[];
        shadow?: string[];
        canary?: { ensemble: string; percent: number };
        cache?: { ttlSeconds: number };
      }[];
    };
  /** The ensembles this package serves: SageMaker members are left out without FANOUT_SAGEMAKER_MEMBERS. */
  const served = () => {
    const m = manifest();
    const kind = new Map(m.models.map((x) => [x.id, x.kind]));
    return m.ensembles.map(({ canary, ...e }) => ({
      ...e,
      members: e.members.filter((id) => kind.get(id) !== 'sagemaker'),
      shadow: (e.shadow ?? []).filter((id) => kind.get(id) !== 'sagemaker'),
      ...(canary ? { canary: canary.ensemble } : {}),
    }));
  };
  const alarms = () =>
    byType('AWS::CloudWatch::Alarm').map(([id, r]) => ({ id, p: r.Properties as Record<string, any> }));
  const dimsOf = (dimensions: { Name: string; Value: unknown }[]) =>
    Object.fromEntries(dimensions.map((d) => [d.Name, render(d.Value)]));
  /** Every metric an alarm reads: namespace, name and dimensions. */
  const alarmMetrics = () =>
    alarms().flatMap(({ id, p }) =>
      p.Metrics
        ? (p.Metrics as any[])
            .filter((q) => q.MetricStat)
            .map((q) => ({
              id,
              namespace: q.MetricStat.Metric.Namespace,
              name: q.MetricStat.Metric.MetricName,
              dims: dimsOf(q.MetricStat.Metric.Dimensions),
            }))
        : [{ id, namespace: p.Namespace, name: p.MetricName, dims: dimsOf(p.Dimensions) }],
    );
  const dashboard = () => {
    const sub = props('FanoutDashboard').DashboardBody['Fn::Sub'] as string;
    const refs = [...sub.matchAll(/\$\{([A-Za-z0-9:]+)(?:\.Arn)?\}/g)].map((m) => m[1] as string);
    return { body: JSON.parse(sub), refs };
  };

  it('sends every alarm to the SNS topic, when it fires and when it clears', () => {
    expect(alarms().length).toBeGreaterThan(10);
    for (const { id, p } of alarms()) {
      expect([id, p.AlarmActions, p.OKActions]).toEqual([
        id,
        [{ Ref: 'AlarmTopic' }],
        [{ Ref: 'AlarmTopic' }],
      ]);
      expect([id, p.AlarmName]).toEqual([id, expect.stringMatching(new RegExp(`^fanout-${STAGE}-`))]);
      expect([id, p.TreatMissingData]).toEqual([id, 'notBreaching']);
    }
  });

  it("lets only this account's CloudWatch alarms publish to the topic, over TLS", () => {
    expect(props('AlarmTopic').TopicName).toBe(`fanout-${STAGE}-alarms`);
    const policy = props('AlarmTopicPolicy');
    expect(policy.Topics).toEqual([{ Ref: 'AlarmTopic' }]);
    const [allow, deny] = policy.PolicyDocument.Statement as Record<string, unknown>[];
    expect(allow).toMatchObject({
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: 'sns:Publish',
      Resource: { Ref: 'AlarmTopic' },
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    });
    expect(deny).toMatchObject({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': false } } });
  });

  it('subscribes an e-mail address to the topic only when FANOUT_ALARM_EMAIL gives one', () => {
    const subscription = R.AlarmEmailSubscription as Resource;
    expect(subscription.Condition).toBe('HasAlarmEmail');
    expect(subscription.Properties).toMatchObject({ TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email' });
    const template = JSON.parse(
      readFileSync(join(pkg.dir, 'cloudformation-template-update-stack.json'), 'utf8'),
    );
    // Unset here: the condition compares '' with '', so no subscription is created.
    expect(template.Conditions.HasAlarmEmail).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
  });

  it('sends upload events the batch trigger keeps failing on to an encrypted dead-letter queue, watched by alarms', () => {
    const [[, config] = []] = byType('AWS::Lambda::EventInvokeConfig');
    expect(config?.Properties).toMatchObject({
      FunctionName: { Ref: 'BatchTriggerLambdaFunction' },
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': ['BatchTriggerDeadLetterQueue', 'Arn'] } },
      },
      MaximumRetryAttempts: 2,
    });
    expect(props('BatchTriggerDeadLetterQueue')).toMatchObject({
      QueueName: `fanout-${STAGE}-batch-trigger-dlq`,
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1_209_600,
    });
    const queuePolicy = props('BatchTriggerDeadLetterQueuePolicy').PolicyDocument.Statement[0];
    expect(queuePolicy).toMatchObject({
      Effect: 'Deny',
      Condition: { Bool: { 'aws:SecureTransport': false } },
    });
    const watched = alarmMetrics().filter((m) => m.namespace !== 'fanout');
    expect(watched.map((m) => `${m.namespace} ${m.name} ${JSON.stringify(m.dims)}`).sort()).toEqual([
      'AWS/Lambda AsyncEventsDropped {"FunctionName":"BatchTriggerLambdaFunction"}',
      'AWS/Lambda DestinationDeliveryFailures {"FunctionName":"BatchTriggerLambdaFunction"}',
      'AWS/Lambda Errors {"FunctionName":"BatchTriggerLambdaFunction"}',
      'AWS/SQS ApproximateNumberOfMessagesVisible {"QueueName":"BatchTriggerDeadLetterQueue.QueueName"}',
    ]);
  });

  it('watches each served ensemble (quorum misses, p99 latency, failed batch jobs, cache errors where it has a cache) and each of its members (failure rate, agreement with the answer)', () => {
    const metrics = alarmMetrics();
    const watching = (name: string, dims: Record<string, string>) =>
      metrics.some(
        (m) => m.name === name && JSON.stringify(m.dims) === JSON.stringify({ stage: STAGE, ...dims }),
      );
    for (const e of served()) {
      for (const name of ['QuorumMisses', 'RequestLatency', 'BatchJobsFailed']) {
        expect([e.name, name, watching(name, { ensemble: e.name })]).toEqual([e.name, name, true]);
      }
      for (const model of e.members) {
        for (const name of ['MemberFailed', 'MemberTimedOut', 'MemberOk']) {
          expect([e.name, model, name, watching(name, { ensemble: e.name, model })]).toEqual([
            e.name,
            model,
            name,
            true,
          ]);
        }
        for (const name of ['MemberRowsAgreed', 'MemberRowsCompared']) {
          expect([e.name, model, name, watching(name, { ensemble: e.name, model, role: 'counted' })]).toEqual(
            [e.name, model, name, true],
          );
        }
      }
      // A shadow's agreement decides its rollout on the dashboard; it pages no one.
      for (const model of e.shadow) {
        expect([
          e.name,
          model,
          watching('MemberRowsAgreed', { ensemble: e.name, model, role: 'shadow' }),
        ]).toEqual([e.name, model, false]);
      }
    }
    // An ensemble with a result cache: its failed reads and writes, on both paths.
    for (const e of served()) {
      for (const path of ['sync', 'batch']) {
        expect([e.name, path, watching('CacheErrors', { ensemble: e.name, path })]).toEqual([
          e.name,
          path,
          e.cache !== undefined,
        ]);
      }
    }
    const p99 = alarms().filter(({ p }) => p.MetricName === 'RequestLatency');
    for (const { p } of p99)
      expect(p).toMatchObject({ ExtendedStatistic: 'p99', Threshold: expect.any(Number) });
  });

  it("reads only metrics of the catalog, with the catalog's dimensions and the stage", () => {
    const ours = alarmMetrics().filter((m) => m.namespace === 'fanout');
    const { body } = dashboard();
    for (const w of body.widgets.filter((x: any) => x.type === 'metric')) {
      for (const line of w.properties.metrics as unknown[][]) {
        if (line[0] === 'fanout') {
          const rest = line.slice(2, -1) as string[];
          const dims: Record<string, string> = {};
          for (let i = 0; i < rest.length; i += 2) dims[rest[i] as string] = rest[i + 1] as string;
          ours.push({ id: w.properties.title, namespace: 'fanout', name: line[1] as string, dims });
        }
        const expression = (line[0] as { expression?: string })?.expression ?? '';
        for (const m of expression.matchAll(/SEARCH\('\{fanout,([^}]*)\} MetricName="(\w+)"/g)) {
          const dims = Object.fromEntries((m[1] as string).split(',').map((k) => [k, STAGE]));
          ours.push({ id: w.properties.title, namespace: 'fanout', name: m[2] as string, dims });
        }
      }
    }
    expect(ours.length).toBeGreaterThan(50);
    for (const m of ours) {
      const spec = catalog[m.name];
      expect([m.id, m.name, spec !== undefined]).toEqual([m.id, m.name, true]);
      expect([m.id, m.name, Object.keys(m.dims).sort()]).toEqual([
        m.id,
        m.name,
        ['stage', ...(spec?.dimensions ?? [])].sort(),
      ]);
      expect([m.id, m.dims.stage]).toEqual([m.id, STAGE]);
    }
  });

  it('draws a dashboard with a row per concern, every member of each ensemble side by side, and every alarm', () => {
    const { body, refs } = dashboard();
    expect(props('FanoutDashboard').DashboardName).toBe(`fanout-${STAGE}`);
    const headings = body.widgets
      .filter((w: any) => w.type === 'text')
      .map((w: any) => w.properties.markdown);
    const cached = served().filter((e) => e.cache);
    expect(cached.length).toBeGreaterThan(0);
    expect(headings.map((h: string) => h.replace(/ ·.*/, ''))).toEqual([
      '## Traffic and latency',
      '## Members side by side',
      '## Agreement',
      '## Failures',
      '## Batch',
      '## Result cache',
    ]);
    const hitRate = body.widgets.find(
      (w: any) => w.properties.title === 'Requests answered from the cache (share)',
    );
    expect(hitRate?.properties.metrics.map((m: any[]) => m[m.length - 1].label)).toEqual(
      cached.map((e) => e.name),
    );
    for (const e of served()) {
      const widget = body.widgets.find(
        (w: any) => w.properties.title === `${e.name}: member latency p99 (ms)`,
      );
      expect([e.name, widget?.properties.metrics.map((m: any[]) => m[m.length - 1].label)]).toEqual([
        e.name,
        e.members,
      ]);
      const rates = body.widgets.find(
        (w: any) => w.properties.title === `${e.name}: member failures + timeouts (share of calls)`,
      );
      expect(
        rates?.properties.metrics.filter((m: any[]) => m[0].expression).map((m: any[]) => m[0].label),
      ).toEqual(e.members);
      // Agreement with the answer: every member, then every shadow, then the canary if there is one.
      const agreement = body.widgets.find(
        (w: any) => w.properties.title === `${e.name}: agreement with the answer (share of rows)`,
      );
      expect([
        e.name,
        agreement?.properties.metrics.filter((m: any[]) => m[0].expression).map((m: any[]) => m[0].label),
      ]).toEqual([
        e.name,
        [
          ...e.members,
          ...(e.shadow ?? []).map((s: string) => `${s} (shadow)`),
          ...(e.canary ? [`canary ${e.canary}`] : []),
        ],
      ]);
    }
    // Fn::Sub fills in the region and the alarms' ARNs: each name is a resource of the template.
    const alarmIds = alarms()
      .map((a) => a.id)
      .sort();
    expect(refs.filter((r) => r !== 'AWS::Region').sort()).toEqual(alarmIds);
    for (const w of body.widgets) expect(w.x + w.width).toBeLessThanOrEqual(24);
  });
});
