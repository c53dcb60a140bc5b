import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  InvalidExecutionInput,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
  StartSyncExecutionCommand,
  StateMachineDoesNotExist,
} from '@aws-sdk/client-sfn';
import type { RunningServer } from '../../local/http-util.js';
import { lambdaBinder } from '../../local/lambda-binder.js';
import { LambdaDispatcher, type LambdaFunction, type LambdaHandler } from '../../local/lambda-dispatch.js';
import { type MachineSpec, StepFunctionsEngine } from '../../local/sfn-engine.js';
import { startSfnServer } from '../../local/sfn-server.js';
import { lambdaFunction } from '../support/lambda-function.js';

const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine';

// Handlers are given in-process: the module is never loaded.
const fn = (key: string): LambdaFunction =>
  lambdaFunction(key, { handlerModule: 'unused', timeoutSeconds: 10 });

/** A task calling function `work` through the optimised Lambda integration, as our ASL files do. */
const workTask = {
  Type: 'Task',
  Resource: 'arn:aws:states:::lambda:invoke',
  Parameters: { FunctionName: { 'Fn::GetAtt': ['WorkLambdaFunction', 'Arn'] }, 'Payload.$': '$' },
  OutputPath: '$.Payload',
  End: true,
};

const machine = (
  name: string,
  type: 'STANDARD' | 'EXPRESS',
  extra: Record<string, unknown> = {},
): MachineSpec => ({
  name,
  arn: `${ARN}:${name}`,
  type,
  definition: { StartAt: 'Work', States: { Work: workTask }, ...extra },
});

// Tests hold a job open by name until they release it.
const gates = new Map<string, () => void>();
const work: LambdaHandler = async (event) => {
  const e = event as { fail?: string; hold?: string; value?: unknown };
  if (e.fail) {
    const err = new Error(`member ${e.fail} failed`);
    err.name = 'ModelRunError';
    throw err;
  }
  if (e.hold) await new Promise<void>((resolve) => gates.set(e.hold as string, resolve));
  return { echoed: e.value ?? null };
};

let server: RunningServer;
let sfn: SFNClient;
let engine: StepFunctionsEngine;

beforeAll(async () => {
  const dispatcher = new LambdaDispatcher([fn('work')], { root: '.', handlers: { work } });
  engine = new StepFunctionsEngine({ region: 'us-east-1', binders: [lambdaBinder(dispatcher)] });
  engine.register(machine('express', 'EXPRESS'));
  engine.register(machine('standard', 'STANDARD'));
  engine.register(machine('slow', 'EXPRESS', { TimeoutSeconds: 1 }));
  engine.register({
    name: 'fails',
    arn: `${ARN}:fails`,
    type: 'EXPRESS',
    definition: {
      StartAt: 'No',
      States: { No: { Type: 'Fail', Error: 'QuorumNotMetError', Cause: '{"code":"x"}' } },
    },
  });
  engine.register({
    name: 'distributed',
    arn: `${ARN}:distributed`,
    type: 'STANDARD',
    definition: {
      StartAt: 'M',
      States: {
        M: {
          Type: 'Map',
          ItemReader: { Resource: 'arn:aws:states:::s3:getObject', Parameters: { Bucket: 'b', Key: 'k' } },
          ItemProcessor: {
            ProcessorConfig: { Mode: 'DISTRIBUTED' },
            StartAt: 'P',
            States: { P: { Type: 'Pass', End: true } },
          },
          End: true,
        },
      },
    },
  });
  server = await startSfnServer(engine);
  sfn = new SFNClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    // StartSyncExecution is sent to `sync-<host>` unless host prefixes are off: an IP cannot take one.
    disableHostPrefix: true,
  });
});

afterAll(async () => {
  for (const release of gates.values()) release();
  await engine.drain();
  sfn.destroy();
  await server.close();
});

const until = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('StartSyncExecution through @aws-sdk/client-sfn', () => {
  it('answers a succeeded execution with its output as a JSON string and real dates', async () => {
    const out = await sfn.send(
      new StartSyncExecutionCommand({
        stateMachineArn: `${ARN}:express`,
        name: 'run-1',
        input: '{"value":7}',
      }),
    );
    expect(out).toMatchObject({
      status: 'SUCCEEDED',
      name: 'run-1',
      stateMachineArn: `${ARN}:express`,
      input: '{"value":7}',
      output: '{"echoed":7}',
    });
    expect(out.executionArn).toMatch(
      /^arn:aws:states:us-east-1:000000000000:express:express:run-1:[0-9a-f-]{36}$/,
    );
    expect(out.startDate).toBeInstanceOf(Date);
    expect(out.stopDate?.getTime()).toBeGreaterThanOrEqual(out.startDate?.getTime() as number);
    expect(out.error).toBeUndefined();
  });

  it("answers a failed task with the Lambda errorType as error and Lambda's JSON error as cause", async () => {
    const out = await sfn.send(
      new StartSyncExecutionCommand({ stateMachineArn: `${ARN}:express`, input: '{"fail":"bc-mlp"}' }),
    );
    expect(out.status).toBe('FAILED');
    expect(out.error).toBe('ModelRunError');
    expect(JSON.parse(out.cause as string)).toEqual({
      errorType: 'ModelRunError',
      errorMessage: 'member bc-mlp failed',
      trace: [],
    });
    expect(out.output).toBeUndefined();
  });

  it('answers a Fail state with its Error and Cause', async () => {
    const out = await sfn.send(new StartSyncExecutionCommand({ stateMachineArn: `${ARN}:fails` }));
    expect(out).toMatchObject({ status: 'FAILED', error: 'QuorumNotMetError', cause: '{"code":"x"}' });
  });

  it('answers TIMED_OUT when the machine exceeds its TimeoutSeconds', async () => {
    const out = await sfn.send(
      new StartSyncExecutionCommand({ stateMachineArn: `${ARN}:slow`, input: '{"hold":"t1"}' }),
    );
    expect(out).toMatchObject({ status: 'TIMED_OUT', error: 'States.Timeout' });
    gates.get('t1')?.();
  });

  it('refuses a Standard state machine as AWS does', async () => {
    await expect(
      sfn.send(new StartSyncExecutionCommand({ stateMachineArn: `${ARN}:standard` })),
    ).rejects.toMatchObject({ name: 'StateMachineTypeNotSupported' });
  });

  it('rejects input that is not JSON, or over 256 KB', async () => {
    await expect(
      sfn.send(new StartSyncExecutionCommand({ stateMachineArn: `${ARN}:express`, input: '{nope' })),
    ).rejects.toBeInstanceOf(InvalidExecutionInput);
    const big = JSON.stringify({ value: 'x'.repeat(262_144) });
    await expect(
      sfn.send(new StartSyncExecutionCommand({ stateMachineArn: `${ARN}:express`, input: big })),
    ).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringContaining('262144') });
  });

  it('reports an unknown state machine', async () => {
    const err = await sfn
      .send(new StartSyncExecutionCommand({ stateMachineArn: `${ARN}:nope` }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateMachineDoesNotExist);
    expect((err as Error).message).toBe(`State Machine Does Not Exist: '${ARN}:nope'`);
    expect((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
  });
});

describe('StartExecution and DescribeExecution', () => {
  it('treats the same name and input as the same execution while it runs, then refuses the name', async () => {
    const input = '{"hold":"job-1","value":1}';
    const first = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: `${ARN}:standard`, name: 'job-1', input }),
    );
    expect(first.executionArn).toBe('arn:aws:states:us-east-1:000000000000:execution:standard:job-1');
    const again = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: `${ARN}:standard`, name: 'job-1', input }),
    );
    expect(again).toMatchObject({ executionArn: first.executionArn, startDate: first.startDate });
    await expect(
      sfn.send(
        new StartExecutionCommand({
          stateMachineArn: `${ARN}:standard`,
          name: 'job-1',
          input: '{"other":1}',
        }),
      ),
    ).rejects.toBeInstanceOf(ExecutionAlreadyExists);

    const running = await sfn.send(new DescribeExecutionCommand({ executionArn: first.executionArn }));
    expect(running).toMatchObject({ status: 'RUNNING', name: 'job-1', input });
    expect(running.stopDate).toBeUndefined();

    await until(async () => gates.has('job-1'));
    gates.get('job-1')?.();
    await until(
      async () =>
        (await sfn.send(new DescribeExecutionCommand({ executionArn: first.executionArn }))).status !==
        'RUNNING',
    );
    const done = await sfn.send(new DescribeExecutionCommand({ executionArn: first.executionArn }));
    expect(done).toMatchObject({ status: 'SUCCEEDED', output: '{"echoed":1}' });
    expect(done.stopDate).toBeInstanceOf(Date);

    // Closed executions keep their name, whatever the input.
    await expect(
      sfn.send(new StartExecutionCommand({ stateMachineArn: `${ARN}:standard`, name: 'job-1', input })),
    ).rejects.toBeInstanceOf(ExecutionAlreadyExists);
  });

  it('lists executions newest first, with a status filter', async () => {
    await sfn.send(
      new StartExecutionCommand({ stateMachineArn: `${ARN}:standard`, name: 'job-2', input: '{"fail":"x"}' }),
    );
    await until(async () => {
      const list = await sfn.send(
        new ListExecutionsCommand({ stateMachineArn: `${ARN}:standard`, statusFilter: 'FAILED' }),
      );
      return (list.executions ?? []).some((e) => e.name === 'job-2');
    });
    const all = await sfn.send(new ListExecutionsCommand({ stateMachineArn: `${ARN}:standard` }));
    expect(all.executions?.[0]?.name).toBe('job-2');
    const failed = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: `${ARN}:standard`, statusFilter: 'FAILED' }),
    );
    expect(failed.executions?.map((e) => e.name)).toEqual(['job-2']);
  });

  it('reports an unknown execution', async () => {
    await expect(
      sfn.send(
        new DescribeExecutionCommand({
          executionArn: `${ARN.replace('stateMachine', 'execution')}:standard:nope`,
        }),
      ),
    ).rejects.toBeInstanceOf(ExecutionDoesNotExist);
  });

  it('refuses to run a definition that needs a feature not emulated yet, but still describes it', async () => {
    await expect(
      sfn.send(new StartExecutionCommand({ stateMachineArn: `${ARN}:distributed` })),
    ).rejects.toMatchObject({
      name: 'InvalidDefinition',
      message: expect.stringContaining('Distributed Map'),
    });
    const described = await sfn.send(
      new DescribeStateMachineCommand({ stateMachineArn: `${ARN}:distributed` }),
    );
    expect(described).toMatchObject({ name: 'distributed', type: 'STANDARD', status: 'ACTIVE' });
  });
});

describe('state machines', () => {
  it('lists and describes them', async () => {
    const list = await sfn.send(new ListStateMachinesCommand({}));
    expect(list.stateMachines?.map((m) => m.name)).toEqual([
      'express',
      'standard',
      'slow',
      'fails',
      'distributed',
    ]);
    const described = await sfn.send(new DescribeStateMachineCommand({ stateMachineArn: `${ARN}:express` }));
    expect(described).toMatchObject({ name: 'express', type: 'EXPRESS', status: 'ACTIVE' });
    expect(JSON.parse(described.definition as string).StartAt).toBe('Work');
    expect(described.creationDate).toBeInstanceOf(Date);
  });

  it('still reports a malformed definition: the ASL validator runs on every registered machine', () => {
    const e = new StepFunctionsEngine({ region: 'us-east-1', binders: [] });
    expect(() =>
      e.register({
        name: 'broken',
        arn: `${ARN}:broken`,
        type: 'EXPRESS',
        definition: { StartAt: 'A', States: { A: { Type: 'Pass', Next: 'Missing' } } },
      }),
    ).toThrow(/state machine broken: State machine definition is invalid/);
  });

  it('refuses a definition whose Lambda task names no function of serverless.yml', () => {
    const dispatcher = new LambdaDispatcher([fn('work')], { root: '.', handlers: { work } });
    const e = new StepFunctionsEngine({ region: 'us-east-1', binders: [lambdaBinder(dispatcher)] });
    const task = {
      ...workTask,
      Parameters: { FunctionName: { 'Fn::GetAtt': ['GoneLambdaFunction', 'Arn'] } },
    };
    expect(() =>
      e.register({
        name: 'x',
        arn: `${ARN}:x`,
        type: 'EXPRESS',
        definition: { StartAt: 'T', States: { T: task } },
      }),
    ).toThrow(
      /States\.T\.Parameters\.FunctionName: .*GoneLambdaFunction.* names no function of serverless\.yml \(work\)/,
    );
  });
});

describe('the JSON 1.0 wire protocol', () => {
  it('answers an unknown operation with __type, HTTP 400 and x-amzn-errortype', async () => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'x-amz-target': 'AWSStepFunctions.Nope', 'content-type': 'application/x-amz-json-1.0' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
    expect(await res.json()).toEqual({
      __type: 'UnknownOperationException',
      message: 'unknown operation AWSStepFunctions.Nope',
    });
  });
});
