import { threadId } from 'node:worker_threads';
import { LambdaDispatcher, type LambdaFunction, LambdaInvocationError } from '../../local/lambda-dispatch.js';
import { parseConcurrency } from '../../local/lambda-pool.js';
import { LOCAL_SDK_TRANSPORT, type WireResponse } from '../../local/sdk-transport.js';
import { invocationFailure, lambdaFunction } from '../support/lambda-function.js';
import { rejection } from '../support/rejection.js';

const fn = (key: string, handlerExport: string, extra: Partial<LambdaFunction> = {}): LambdaFunction =>
  lambdaFunction(key, {
    handlerModule: 'fixtures/instance-handler',
    handlerExport,
    timeoutSeconds: 20,
    ...extra,
  });

interface Answer {
  instance: string;
  threadId: number;
  invocations: number;
  mostAtOnce: number;
  awsRequestId: string;
  functionName?: string;
  table?: string;
}

interface Line {
  line: string;
  stream: string;
  key: string;
}

const root = import.meta.dirname;

/** A dispatcher whose instances log at INFO into `lines`, with `concurrency` instances per function. */
function dispatcher(functions: LambdaFunction[], concurrency = 2) {
  const lines: Line[] = [];
  const d = new LambdaDispatcher(functions, {
    root,
    pool: {
      concurrency: () => concurrency,
      env: () => ({ ...process.env, POWERTOOLS_LOG_LEVEL: 'INFO', FANOUT_TABLE: 'from-the-stack' }),
      onOutput: (line, stream, key) => lines.push({ line, stream, key }),
    },
  });
  return { d, lines };
}

const logged = (lines: Line[]) =>
  lines
    .filter((l) => l.line.startsWith('{"level"'))
    .map((l) => JSON.parse(l.line) as Record<string, unknown>);

const failure = invocationFailure;

describe('the worker pool behind LambdaDispatcher', () => {
  it('runs a handler module in its own thread, with the environment the stack gives it', async () => {
    const { d } = dispatcher([fn('work', 'handler')]);
    try {
      const out = (await d.invoke('work', {})) as Answer;
      expect(out.threadId).not.toBe(threadId);
      expect(out.functionName).toBe('svc-local-work');
      expect(out.table).toBe('from-the-stack');
    } finally {
      await d.close();
    }
  });

  (process.platform === 'linux' ? it : it.skip)(
    'names its thread after the function, so top -H and the bench tell instances from V8 helpers',
    async () => {
      const { d } = dispatcher([fn('batchStoreFunction', 'threadName')]);
      try {
        expect(await d.invoke('batchStoreFunction', {})).toBe('lambda:batchSto');
      } finally {
        await d.close();
      }
    },
  );

  it('keeps an instance warm: one after another, invocations reuse it', async () => {
    const { d } = dispatcher([fn('work', 'handler')]);
    try {
      const a = (await d.invoke('work', {})) as Answer;
      const b = (await d.invoke('work', {})) as Answer;
      expect(b.instance).toBe(a.instance);
      expect(b.invocations).toBe(a.invocations + 1);
      expect(d.stats().work).toMatchObject({ instances: 1, started: 1 });
    } finally {
      await d.close();
    }
  });

  it('runs one invocation at a time per instance, scales to the limit, and queues beyond it', async () => {
    const { d } = dispatcher([fn('work', 'handler')], 2);
    try {
      const answers = (await Promise.all(
        Array.from({ length: 6 }, () => d.invoke('work', { sleepMs: 150 })),
      )) as Answer[];
      const instances = new Set(answers.map((a) => a.instance));
      // Two were started (all busy, below the limit); a slow start may leave one with little work.
      expect(d.stats().work).toMatchObject({ instances: 2, busy: 0, queued: 0, started: 2 });
      expect(instances.size).toBeLessThanOrEqual(2);
      expect(answers.every((a) => a.mostAtOnce === 1)).toBe(true);
      // Each instance counted its own invocations 1, 2, ..., k.
      for (const id of instances) {
        const counts = answers
          .filter((a) => a.instance === id)
          .map((a) => a.invocations)
          .sort((x, y) => x - y);
        expect(counts).toEqual(counts.map((_, i) => i + 1));
      }
    } finally {
      await d.close();
    }
  });

  it("logs each invocation with its own request id, and cold_start only on an instance's first", async () => {
    const { d, lines } = dispatcher([fn('work', 'handler')], 2);
    try {
      const answers = (await Promise.all(
        ['a', 'b', 'c'].map((tag) => d.invoke('work', { sleepMs: 100, tag })),
      )) as Answer[];
      answers.push((await d.invoke('work', { tag: 'd' })) as Answer);
      const logs = logged(lines).filter((l) => l.message === 'working');
      expect(logs).toHaveLength(4);
      expect(new Set(logs.map((l) => l.function_request_id)).size).toBe(4);
      for (const [i, tag] of ['a', 'b', 'c', 'd'].entries()) {
        const log = logs.find((l) => l.tag === tag);
        const answer = answers[i] as Answer;
        expect(log?.function_request_id).toBe(answer.awsRequestId);
        expect(log?.function_name).toBe('svc-local-work');
        // Whichever instance took it: cold on that instance's first invocation only.
        expect(log?.cold_start).toBe(answer.invocations === 1);
      }
      expect(lines.every((l) => l.key === 'work' && l.stream === 'stdout')).toBe(true);
    } finally {
      await d.close();
    }
  });

  it('hands every line an instance writes to onOutput before the invocation answers', async () => {
    const { d, lines } = dispatcher([fn('out', 'write')]);
    try {
      await d.invoke('out', {});
      expect(lines).toEqual([
        { line: '{"_aws":{"CloudWatchMetrics":[]},"n":1}', stream: 'stdout', key: 'out' },
        { line: 'first line', stream: 'stderr', key: 'out' },
        { line: 'second line', stream: 'stderr', key: 'out' },
        { line: 'no newline at the end', stream: 'stdout', key: 'out' },
      ]);
    } finally {
      await d.close();
    }
  });

  it("reports a handler's error as Lambda does and keeps the instance", async () => {
    const { d } = dispatcher([fn('bad', 'fail')]);
    try {
      const err = await failure(d.invoke('bad', {}));
      expect(err).toBeInstanceOf(LambdaInvocationError);
      expect(err.name).toBe('ModelRunError');
      expect(JSON.parse(err.message)).toEqual({
        errorType: 'ModelRunError',
        errorMessage: 'model bc-x: inference failed',
        trace: [],
      });
      await failure(d.invoke('bad', {}));
      expect(d.stats().bad).toMatchObject({ instances: 1, started: 1 });
    } finally {
      await d.close();
    }
  });

  it('times a handler out with Sandbox.Timedout and discards its instance instead of reusing it', async () => {
    const { d } = dispatcher([fn('slow', 'hang', { timeoutSeconds: 1 })]);
    try {
      const err = await failure(d.invoke('slow', {}));
      expect(err.name).toBe('Sandbox.Timedout');
      expect(err.errorMessage).toMatch(
        /^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$/,
      );
      expect(d.stats().slow).toMatchObject({ instances: 0, started: 1 });
      await failure(d.invoke('slow', {}));
      expect(d.stats().slow).toMatchObject({ started: 2 });
    } finally {
      await d.close();
    }
  });

  it('reports an instance that dies as Runtime.ExitError, and starts a new one for the next invocation', async () => {
    const { d } = dispatcher([fn('crash', 'crash'), fn('work', 'handler')]);
    try {
      const err = await failure(d.invoke('crash', {}));
      expect(err.name).toBe('Runtime.ExitError');
      expect(err.errorMessage).toContain('boom outside the handler');
      expect(d.stats().crash).toMatchObject({ instances: 0 });
      // Other functions' instances are untouched.
      await expect(d.invoke('work', {})).resolves.toMatchObject({ invocations: 1 });
    } finally {
      await d.close();
    }
  });

  it('ends a prewarm still waiting on an init when it is closed, instead of leaving it pending', async () => {
    const { d } = dispatcher([fn('slow', 'handler', { handlerModule: 'fixtures/slow-init-handler' })], 1);
    const warming = rejection<Error>(d.prewarm(['slow']));
    while (d.stats().slow?.instances !== 1) await new Promise((r) => setTimeout(r, 20));
    await d.close();
    expect((await warming).message).toBe(
      'function slow: its handler fixtures/slow-init-handler.handler cannot load: the local stack is stopping',
    );
  });

  it('fails queued invocations clearly when it is closed', async () => {
    const { d } = dispatcher([fn('slow', 'hang')], 1);
    const running = failure(d.invoke('slow', {}));
    const queued = failure(d.invoke('slow', {}));
    // Let the instance start and take the first invocation.
    while (d.stats().slow?.busy !== 1) await new Promise((r) => setTimeout(r, 20));
    await d.close();
    expect((await running).name).toBe('Lambda.ServiceException');
    expect((await queued).errorMessage).toContain('stopping');
  });
});

describe("a worker instance's SDK requests, answered by the main thread", () => {
  /** A dispatcher whose instances' DynamoDB requests get `replies` in turn (an Error is a failed send). */
  function answering(replies: (WireResponse | Error)[]) {
    const seen: string[] = [];
    const d = new LambdaDispatcher([fn('ddb', 'getItem')], {
      root,
      pool: {
        concurrency: () => 1,
        env: () => ({ ...process.env, FANOUT_SDK_TRANSPORT: LOCAL_SDK_TRANSPORT }),
        sdk: async (service, request) => {
          seen.push(`${service} ${request.headers['x-amz-target']}`);
          const reply = replies.shift();
          if (!reply) throw new Error('no reply left');
          if (reply instanceof Error) throw reply;
          return reply;
        },
      },
    });
    return { d, seen };
  }
  const item: WireResponse = {
    statusCode: 200,
    headers: { 'content-type': 'application/x-amz-json-1.0' },
    body: '{"Item":{"pk":{"S":"a"}}}',
  };
  const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

  it('keep the error code of a reset connection, so the SDK retries it as it does in the main thread', async () => {
    const { d, seen } = answering([reset(), item]);
    try {
      expect(await d.invoke('ddb', {})).toEqual({ attempts: 2 });
      expect(seen).toEqual(['dynamodb DynamoDB_20120810.GetItem', 'dynamodb DynamoDB_20120810.GetItem']);
    } finally {
      await d.close();
    }
  });

  it('give up after the retries with the transport error, its code intact', async () => {
    const { d, seen } = answering([reset(), reset(), reset()]);
    try {
      expect(await d.invoke('ddb', {})).toEqual({ error: { name: 'Error', code: 'ECONNRESET' } });
      expect(seen).toHaveLength(3);
    } finally {
      await d.close();
    }
  });
});

describe('parseConcurrency', () => {
  const keys = ['api', 'runner'];

  it('takes a number for every function and per-function numbers', () => {
    const of = parseConcurrency('3,runner=8', keys);
    expect(of('api')).toBe(3);
    expect(of('runner')).toBe(8);
  });

  it('defaults to the number of cores', async () => {
    const { availableParallelism } = await import('node:os');
    expect(parseConcurrency(undefined, keys)('api')).toBe(availableParallelism());
  });

  it('names a bad entry', () => {
    expect(() => parseConcurrency('runner=0', keys)).toThrow(
      'FANOUT_LOCAL_CONCURRENCY: "runner=0" is not a concurrency (a whole number from 1 to 256)',
    );
    expect(() => parseConcurrency('ranner=2', keys)).toThrow(
      'FANOUT_LOCAL_CONCURRENCY: "ranner=2" names no function of serverless.yml (api, runner)',
    );
  });
});
