import type { LambdaFunction, LambdaInvocationError } from '../../local/lambda-dispatch.js';
import { rejection } from './rejection.js';

/** A function as serverless.yml would declare it, with a handler from test/local/fixtures. */
export const lambdaFunction = (key: string, extra: Partial<LambdaFunction> = {}): LambdaFunction => ({
  key,
  name: `svc-local-${key}`,
  logicalId: `${key.charAt(0).toUpperCase()}${key.slice(1)}LambdaFunction`,
  arn: `arn:aws:lambda:us-east-1:000000000000:function:svc-local-${key}`,
  handlerModule: 'fixtures/echo-handler',
  handlerExport: 'handler',
  timeoutSeconds: 5,
  memoryMB: 256,
  ...extra,
});

/** The Lambda error an invocation expected to fail rejected with. */
export const invocationFailure = (p: Promise<unknown>) => rejection<LambdaInvocationError>(p);
