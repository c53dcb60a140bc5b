import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { MiddlewareObj } from '@middy/core';
import { type FunctionKey, fanoutMetrics } from './metrics.js';
import { tracingMiddleware } from './tracing.js';

/**
 * What every handler wears, in this order: the X-Ray handler segment (outermost, so it spans the
 * rest), the logger's Lambda context, and the invocation's metrics (published when it ends).
 *
 * ```ts
 * export const handler = middy(work).use(observability('runner', logger));
 * ```
 */
export function observability(functionKey: FunctionKey, logger: Logger): MiddlewareObj[] {
  const tracing = tracingMiddleware();
  // middy refuses an empty middleware, and where nothing is traced there is none.
  return [
    ...(tracing ? [tracing] : []),
    injectLambdaContext(logger),
    fanoutMetrics(functionKey),
  ] as MiddlewareObj[];
}
