// biome-ignore-all lint/suspicious/noTemplateCurlyInString: serverless variables (`${self:...}`) are what these tests are about.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServerlessConfig, logicalName, ServerlessConfigError } from '../../local/serverless-config.js';

const REPO = join(import.meta.dirname, '..', '..');

describe('the real serverless.yml, resolved for the local stage', () => {
  const config = loadServerlessConfig({ file: join(REPO, 'serverless.yml') });

  it('resolves the service, stage and default region', () => {
    expect(config).toMatchObject({ service: 'fanout', stage: 'local', region: 'us-east-1', root: REPO });
  });

  it('finds each handler module, export, timeout and memory, with serverless logical ids', () => {
    const runner = config.functions.find((f) => f.key === 'runner');
    expect(runner).toMatchObject({
      name: 'fanout-local-runner',
      logicalId: 'RunnerLambdaFunction',
      arn: 'arn:aws:lambda:us-east-1:000000000000:function:fanout-local-runner',
      handlerModule: 'functions/runner/handler',
      handlerExport: 'handler',
      timeoutSeconds: 30,
      memoryMB: 1024,
    });
    // provider defaults apply where a function sets nothing
    expect(config.functions.find((f) => f.key === 'ensemble')).toMatchObject({
      timeoutSeconds: 10,
      memoryMB: 512,
    });
  });

  it('lists the httpApi routes of the api function as route keys', () => {
    const api = config.functions.find((f) => f.key === 'api');
    expect(api?.routes).toContainEqual({
      method: 'POST',
      path: '/v1/ensembles/{ensemble}/predictions',
      routeKey: 'POST /v1/ensembles/{ensemble}/predictions',
    });
    expect(api?.routes.map((r) => r.routeKey)).toContain('GET /v1/predictions/{id}');
    // The catch-all (`path: '*'`), compiled as serverless compiles it.
    expect(api?.routes).toContainEqual({ method: 'ANY', path: '*', routeKey: '$default' });
  });

  it('reads the state machine definitions through ${file(...)} and names them for the stage', () => {
    const inference = config.stateMachines.find((m) => m.key === 'inference');
    expect(inference).toMatchObject({
      id: 'InferenceStateMachine',
      name: 'fanout-local-inference',
      type: 'EXPRESS',
      arn: 'arn:aws:states:us-east-1:000000000000:stateMachine:fanout-local-inference',
    });
    expect(inference?.definition.StartAt).toBe('Requested');
    expect(Object.keys(inference?.definition.States ?? {})).toContain('FanOut');
  });

  it('takes the DynamoDB table from resources with its key schema and TTL attribute', () => {
    expect(config.tables).toEqual([
      expect.objectContaining({
        logicalId: 'FanoutTable',
        tableName: 'fanout-local',
        keySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        ttlAttribute: 'ttl',
      }),
    ]);
  });

  it('turns environment Refs into the local table name and state machine ARN', () => {
    expect(config.environment).toMatchObject({
      FANOUT_TABLE: 'fanout-local',
      FANOUT_INFERENCE_STATE_MACHINE_ARN:
        'arn:aws:states:us-east-1:000000000000:stateMachine:fanout-local-inference',
      FANOUT_MANIFEST: 'models/manifest.json',
    });
  });
});

describe('serverless variables and errors', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-sls-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const load = (yml: string, options: { region?: string; env?: NodeJS.ProcessEnv } = {}) => {
    writeFileSync(join(dir, 'serverless.yml'), yml);
    return loadServerlessConfig({ file: join(dir, 'serverless.yml'), ...options });
  };

  it('resolves opt, self, sls, env, aws, nested variables and embedded ones', () => {
    writeFileSync(
      join(dir, 'def.json'),
      JSON.stringify({ StartAt: 'A', States: { A: { Type: 'Succeed' } } }),
    );
    const config = load(
      [
        'service: svc',
        'custom:',
        '  memory:',
        '    local: 256',
        'provider:',
        "  stage: ${opt:stage, 'dev'}",
        "  region: ${opt:region, 'eu-west-1'}",
        '  memorySize: ${self:custom.memory.${sls:stage}}',
        '  environment:',
        "    FROM_ENV: ${env:FANOUT_TEST_VAR, 'fallback'}",
        '    ACCOUNT: ${aws:accountId}',
        '    MACHINE: { Ref: Flow }',
        '    FN: { "Fn::GetAtt": [MyDashfnLambdaFunction, Arn] }',
        'functions:',
        '  my-fn:',
        '    handler: src/x.main',
        '    name: ${self:service}-${sls:stage}-custom',
        'stepFunctions:',
        '  stateMachines:',
        '    flow:',
        '      id: Flow',
        '      definition: ${file(def.json)}',
      ].join('\n'),
      { env: { FANOUT_TEST_VAR: 'from-env' } },
    );
    expect(config.region).toBe('eu-west-1');
    expect(config.functions[0]).toMatchObject({
      name: 'svc-local-custom',
      memoryMB: 256,
      handlerModule: 'src/x',
    });
    expect(config.environment).toEqual({
      FROM_ENV: 'from-env',
      ACCOUNT: '000000000000',
      MACHINE: 'arn:aws:states:eu-west-1:000000000000:stateMachine:flow',
      FN: 'arn:aws:lambda:eu-west-1:000000000000:function:svc-local-custom',
    });
    expect(config.stateMachines[0]).toMatchObject({ type: 'STANDARD', definition: { StartAt: 'A' } });
  });

  it('names the field of an unknown Ref', () => {
    expect(() => load('service: s\nprovider:\n  environment:\n    X: { Ref: Nope }\n')).toThrow(
      'serverless.yml: provider.environment.X: {Ref: Nope} names no table, bucket, state machine or function here',
    );
  });

  it('names the field of an unsupported variable', () => {
    expect(() => load('service: s\nprovider:\n  region: ${ssm:/x}\n')).toThrow(
      /serverless\.yml: provider\.region: unsupported variable \$\{ssm:\/x\}/,
    );
  });

  it('names the field of a malformed handler', () => {
    expect(() => load('service: s\nfunctions:\n  f:\n    handler: nodot\n')).toThrow(ServerlessConfigError);
    expect(() => load('service: s\nfunctions:\n  f:\n    handler: nodot\n')).toThrow(/functions\.f\.handler/);
  });

  it('names the field of a missing ${file(...)}', () => {
    expect(() =>
      load('service: s\nstepFunctions:\n  stateMachines:\n    m:\n      definition: ${file(missing.json)}\n'),
    ).toThrow(/stepFunctions\.stateMachines\.m\.definition: \$\{file\(missing\.json\)\}: ENOENT/);
  });
});

describe('logicalName', () => {
  it('normalises like serverless does', () => {
    expect(logicalName('batch-prepare_x')).toBe('BatchDashprepareUnderscorex');
    expect(logicalName('batchPrepare')).toBe('BatchPrepare');
  });
});
