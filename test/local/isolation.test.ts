import { join } from 'node:path';
import { jest } from '@jest/globals';
import { concurrentInvokeStore } from '../../local/invoke-context.js';
import { fanOutFunctions, parseIsolation } from '../../local/isolation.js';
import { LambdaDispatcher } from '../../local/lambda-dispatch.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';
import { REPO_ROOT } from '../../local/stack.js';
import { lambdaFunction } from '../support/lambda-function.js';

describe('fanOutFunctions', () => {
  it("finds the functions the state machines' inline Maps run per item: the member runner", () => {
    const config = loadServerlessConfig({ file: join(REPO_ROOT, 'serverless.yml') });
    const d = new LambdaDispatcher(config.functions, { root: config.root });
    const keys = fanOutFunctions(
      config.stateMachines.map((m) => m.definition),
      (ref) => d.resolve(ref),
    );
    // The batch machine's StoreBatch runs inside the Distributed Map but not in an inline Map.
    expect([...keys]).toEqual(['runner']);
  });

  it('looks inside Parallel branches and nested Maps, not at Tasks outside any inline Map', () => {
    const task = (fn: string) => ({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: fn },
      End: true,
    });
    const definition = {
      StartAt: 'A',
      States: {
        A: task('outside'),
        B: {
          Type: 'Parallel',
          Branches: [
            {
              StartAt: 'M',
              States: {
                M: { Type: 'Map', ItemProcessor: { StartAt: 'T', States: { T: task('inMap') } }, End: true },
              },
            },
          ],
          End: true,
        },
        D: {
          Type: 'Map',
          ItemReader: { Resource: 'arn:aws:states:::s3:getObject' },
          ItemProcessor: {
            ProcessorConfig: { Mode: 'DISTRIBUTED' },
            StartAt: 'S',
            States: {
              S: task('child'),
              N: { Type: 'Map', Iterator: { StartAt: 'U', States: { U: task('nested') } } },
            },
          },
          End: true,
        },
      },
    };
    const keys = fanOutFunctions([definition], (ref) => (typeof ref === 'string' ? ref : undefined));
    expect([...keys].sort()).toEqual(['inMap', 'nested']);
  });
});

describe('parseIsolation', () => {
  const keys = ['api', 'runner'];
  const byDefault = (key: string) => (key === 'runner' ? 'workers' : 'in-process');

  it('keeps the default for what it does not name', () => {
    const of = parseIsolation(undefined, keys, byDefault);
    expect([of('api'), of('runner')]).toEqual(['in-process', 'workers']);
  });

  it('takes one mode for every function and per-function modes', () => {
    expect(parseIsolation('workers', keys, byDefault)('api')).toBe('workers');
    const of = parseIsolation('in-process,runner=in-process', keys, byDefault);
    expect([of('api'), of('runner')]).toEqual(['in-process', 'in-process']);
  });

  it('names a bad entry', () => {
    expect(() => parseIsolation('threads', keys, byDefault)).toThrow(
      'FANOUT_LOCAL_ISOLATION: "threads" is not an isolation (workers or in-process)',
    );
    expect(() => parseIsolation('runer=workers', keys, byDefault)).toThrow(
      'FANOUT_LOCAL_ISOLATION: "runer=workers" names no function of serverless.yml (api, runner)',
    );
  });
});

describe('in-process invocations of one function at once', () => {
  const saved = { ...process.env };

  afterEach(() => {
    for (const k of [
      'POWERTOOLS_LOG_LEVEL',
      'AWS_LAMBDA_MAX_CONCURRENCY',
      'AWS_LAMBDA_INITIALIZATION_TYPE',
    ]) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    jest.restoreAllMocks();
  });

  it("log each with its own request id, and cold_start on the function's first only", async () => {
    // What the local stack sets for its in-process functions.
    Object.assign(process.env, {
      POWERTOOLS_LOG_LEVEL: 'INFO',
      AWS_LAMBDA_MAX_CONCURRENCY: '1000',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    });
    concurrentInvokeStore();
    const lines: string[] = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const fn = lambdaFunction('work', { handlerModule: 'fixtures/instance-handler', timeoutSeconds: 10 });
    const d = new LambdaDispatcher([fn], { root: import.meta.dirname, isolation: 'in-process' });
    // Overlapping invocations: each awaits while the others log.
    const answers = (await Promise.all(
      ['a', 'b', 'c'].map((tag) => d.invoke('work', { sleepMs: 50, tag })),
    )) as { awsRequestId: string; instance: string; mostAtOnce: number }[];
    const logs = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // Before and after the sleep: the later lines are written while the others' contexts are set.
    expect(logs).toHaveLength(6);
    // One module instance, three invocations at once (as in a multi-concurrency environment).
    expect(new Set(answers.map((a) => a.instance)).size).toBe(1);
    expect(Math.max(...answers.map((a) => a.mostAtOnce))).toBe(3);
    for (const [i, tag] of ['a', 'b', 'c'].entries()) {
      const own = logs.filter((l) => l.tag === tag);
      expect(own.map((l) => l.message)).toEqual(['working', 'finished']);
      for (const l of own) expect(l.function_request_id).toBe(answers[i]?.awsRequestId);
      expect(own[0]?.cold_start).toBe(own[1]?.cold_start);
    }
    expect(logs.filter((l) => l.cold_start === true)).toHaveLength(2);
  });
});
