import type { Tracer } from '@aws-lambda-powertools/tracer';
// The middleware alone imports no X-Ray code (only the Powertools commons).
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { MiddlewareObj } from '@middy/core';

/**
 * Tracing with Powertools Tracer (AWS X-Ray) where Powertools would trace: inside Lambda
 * (`AWS_EXECUTION_ENV` set), not under SAM or Amplify's local runners, and not when
 * `POWERTOOLS_TRACE_ENABLED=false`. Anywhere else (the local stack, tests, the benchmark) the
 * tracer is not even imported.
 *
 * Why not simply import it everywhere and let it disable itself: importing it loads
 * aws-xray-sdk-core, which creates a cls-hooked namespace at load and with it an async hook for the
 * whole process. Measured on this machine, a loop of two million awaits took 0.3-0.5 s without it
 * and 4.9-8.1 s with the tracer merely imported, tracing disabled. On Lambda that price buys the
 * traces; elsewhere it would buy nothing.
 */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.POWERTOOLS_TRACE_ENABLED ?? '').toLowerCase() === 'false') return false;
  const runtime = env.AWS_EXECUTION_ENV ?? '';
  return runtime !== '' && runtime !== 'AWS_Lambda_amplify-mock' && !env.AWS_SAM_LOCAL;
}

/**
 * The process's tracer, or undefined where nothing is traced. Decided once, at load; the tracer's
 * module is imported only then (tracer-module.ts says why it is a module of its own).
 */
export const tracer: Tracer | undefined = tracingWanted()
  ? new (await import('./tracer-module.js')).Tracer({ serviceName: 'fanout' })
  : undefined;

/** A value X-Ray can index: annotations are what a trace search filters on. */
export type Annotation = string | number | boolean | undefined;

/**
 * Annotates the current (handler) segment, so `annotation.<key> = "<value>"` finds the trace in
 * X-Ray. Undefined values are skipped. Never throws: tracing must not fail a request.
 */
export function annotate(values: Record<string, Annotation>): void {
  if (!tracer?.isTracingEnabled()) return;
  try {
    for (const [key, value] of Object.entries(values))
      if (value !== undefined) tracer.putAnnotation(key, value);
  } catch {
    // A missing segment or a rejected key costs the annotation, not the request.
  }
}

/** An AWS SDK v3 client whose calls become X-Ray subsegments where tracing is on; as is elsewhere. */
export function captureClient<T>(client: T): T {
  return tracer ? tracer.captureAWSv3Client(client) : client;
}

/**
 * The handler's segment (`## <handler>`), with cold start and service annotations and errors
 * recorded; responses are not (they hold scores and can exceed a segment's 64 KB). Undefined where
 * tracing is off.
 */
export function tracingMiddleware(): MiddlewareObj | undefined {
  return tracer ? captureLambdaHandler(tracer, { captureResponse: false }) : undefined;
}
