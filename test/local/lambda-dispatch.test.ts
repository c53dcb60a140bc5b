import { join } from 'node:path';
import middy from '@middy/core';
import { LambdaDispatcher, LambdaInvocationError, toLambdaError } from '../../local/lambda-dispatch.js';
import { invocationFailure, lambdaFunction } from '../support/lambda-function.js';
import { rejection } from '../support/rejection.js';

const fn = lambdaFunction;

const root = import.meta.dirname;

const failure = invocationFailure;

describe('LambdaDispatcher', () => {
  it('imports the handler module lazily and calls it with a Lambda context', async () => {
    const d = new LambdaDispatcher([fn('echo')], { root });
    const out = (await d.invoke('echo', { a: 1 })) as Record<string, unknown>;
    expect(out).toMatchObject({
      event: { a: 1 },
      functionName: 'svc-local-echo',
      memoryLimitInMB: '256',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:svc-local-echo',
    });
    expect(out.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.remainingMs).toBeGreaterThan(4000);
  });

  it('passes results through JSON like Lambda: dates become strings, undefined fields vanish', async () => {
    const d = new LambdaDispatcher([fn('echo')], { root });
    const out = (await d.invoke('echo', {})) as Record<string, unknown>;
    expect(out.at).toBe('1970-01-01T00:00:00.000Z');
    expect('dropped' in out).toBe(false);
  });

  it('reports a thrown error as AWS does: name is the errorType, message the JSON error without a trace', async () => {
    class ModelRunError extends Error {
      override name = 'ModelRunError';
    }
    const d = new LambdaDispatcher([fn('boom')], {
      root,
      handlers: {
        boom: async () => {
          throw new ModelRunError('bc-mlp: inference failed');
        },
      },
    });
    const err = await failure(d.invoke('boom', {}));
    expect(err).toBeInstanceOf(LambdaInvocationError);
    expect(err.name).toBe('ModelRunError');
    expect(JSON.parse(err.message)).toEqual({
      errorType: 'ModelRunError',
      errorMessage: 'bc-mlp: inference failed',
      trace: [],
    });
    expect(err.message).not.toMatch(/\bat .*\.ts/);
  });

  it('wraps non-Error throws too', () => {
    expect(JSON.parse(toLambdaError('plain').message)).toEqual({
      errorType: 'Error',
      errorMessage: 'plain',
      trace: [],
    });
  });

  it('times a slow handler out with Lambda error Sandbox.Timedout', async () => {
    const d = new LambdaDispatcher([fn('slow', { timeoutSeconds: 0.05 })], {
      root,
      handlers: { slow: () => new Promise(() => undefined) },
    });
    const err = await failure(d.invoke('slow', {}));
    expect(err.name).toBe('Sandbox.Timedout');
    expect(err.errorMessage).toMatch(/Task timed out after 0\.05 seconds/);
  });

  it("gives middy a real deadline, so middy's own early timeout fires first", async () => {
    const slow = middy(() => new Promise(() => undefined));
    const d = new LambdaDispatcher([fn('slow', { timeoutSeconds: 0.1 })], { root, handlers: { slow } });
    const err = await failure(d.invoke('slow', {}));
    expect(err.name).toBe('TimeoutError');
  });

  it('does not let middy time out a handler that answers in time', async () => {
    const quick = middy(async (event: unknown) => ({ ok: event }));
    const d = new LambdaDispatcher([fn('quick')], { root, handlers: { quick } });
    await expect(d.invoke('quick', 1)).resolves.toEqual({ ok: 1 });
  });

  it.each([
    'in-process',
    'workers',
  ] as const)('fails prewarm, naming the function and why, when a handler cannot load (%s)', async (isolation) => {
    const d = new LambdaDispatcher([fn('echo'), fn('broken', { handlerModule: 'fixtures/broken-handler' })], {
      root,
      isolation,
    });
    try {
      const err = await rejection<Error>(d.prewarm(['echo', 'broken'], 2));
      expect(err.message).toBe(
        'function broken: its handler fixtures/broken-handler.handler cannot load: cannot read models/missing.onnx: no such file',
      );
    } finally {
      await d.close();
    }
  });

  it('says which module is missing and which export is not a function', async () => {
    const d = new LambdaDispatcher(
      [fn('missing', { handlerModule: 'fixtures/nope' }), fn('bad', { handlerExport: 'notAFunction' })],
      { root },
    );
    const missing = await failure(d.invoke('missing', {}));
    expect(missing.name).toBe('Runtime.ImportModuleError');
    expect(missing.errorMessage).toContain('handler module fixtures/nope(.ts|.mts|.js|.mjs) does not exist');
    const bad = await failure(d.invoke('bad', {}));
    expect(bad.errorMessage).toContain('does not export a function "notAFunction"');
    const unknown = await failure(d.invoke('nobody', {}));
    expect(unknown.name).toBe('Lambda.ResourceNotFoundException');
  });

  it('resolves the references a state machine uses to name a function', () => {
    const d = new LambdaDispatcher([fn('runner')], { root: join(root, 'x') });
    expect(d.resolve({ 'Fn::GetAtt': ['RunnerLambdaFunction', 'Arn'] })).toBe('runner');
    expect(d.resolve({ Ref: 'RunnerLambdaFunction' })).toBe('runner');
    expect(d.resolve('arn:aws:lambda:us-east-1:000000000000:function:svc-local-runner:$LATEST')).toBe(
      'runner',
    );
    expect(d.resolve('svc-local-runner')).toBe('runner');
    expect(d.resolve({ 'Fn::GetAtt': ['OtherLambdaFunction', 'Arn'] })).toBeUndefined();
  });

  it('refuses an invocation after close() instead of starting a worker nothing would stop', async () => {
    const used = new LambdaDispatcher([fn('echo')], { root });
    await used.invoke('echo', {});
    await used.close();
    const never = new LambdaDispatcher([fn('echo')], { root });
    await never.close();
    for (const d of [used, never]) {
      const err = await failure(d.invoke('echo', {}));
      expect(err.name).toBe('Lambda.ServiceException');
      expect(err.errorMessage).toContain('stopped');
      await d.prewarm(['echo']);
      expect(d.stats()).toEqual({});
    }
  });
});
