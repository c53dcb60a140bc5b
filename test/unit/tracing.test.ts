import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { resolve } from 'node:path';
import {
  annotate,
  captureClient,
  tracer,
  tracingMiddleware,
  tracingWanted,
} from '../../functions/adapters/tracing.js';
import { readDataset } from '../models/data.js';

const ROOT = resolve(import.meta.dirname, '../..');

describe('where fanout traces', () => {
  it.each([
    [{ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x' }, true],
    [{}, false],
    [{ AWS_EXECUTION_ENV: '' }, false],
    [{ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', POWERTOOLS_TRACE_ENABLED: 'false' }, false],
    [{ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', POWERTOOLS_TRACE_ENABLED: 'FALSE' }, false],
    [{ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', AWS_SAM_LOCAL: 'true' }, false],
    [{ AWS_EXECUTION_ENV: 'AWS_Lambda_amplify-mock' }, false],
  ])('%j: %s, as Powertools Tracer decides', (env, expected) => {
    expect(tracingWanted(env)).toBe(expected);
  });
});

describe('outside Lambda (tests, the local stack)', () => {
  it('loads no tracer at all: no segment middleware, clients as they are, annotations ignored', () => {
    expect(tracer).toBeUndefined();
    expect(tracingMiddleware()).toBeUndefined();
    const client = { middlewareStack: {} };
    expect(captureClient(client)).toBe(client);
    expect(() => annotate({ ensemble: 'breast-cancer', predictionId: 'x' })).not.toThrow();
  });
});

describe('on Lambda (its environment, in a process of its own)', () => {
  let daemon: Socket;
  const segments: Record<string, any>[] = [];

  beforeAll(async () => {
    // Stands in for the X-Ray daemon: the SDK sends each closed subsegment here over UDP.
    daemon = createSocket('udp4');
    daemon.on('message', (m) => {
      for (const line of m.toString().split('\n').slice(1)) if (line) segments.push(JSON.parse(line));
    });
    await new Promise<void>((done) => daemon.bind(0, '127.0.0.1', () => done()));
  });

  afterAll(() => daemon.close());

  it("annotates the handler's segment with the member and the correlation id, and records a failure without failing differently", async () => {
    const row = readDataset('data/breast_cancer.csv').rows[0] as number[];
    const out = await new Promise<string>((done, fail) => {
      const child = spawn(
        resolve(ROOT, 'node_modules/.bin/node'),
        ['--import', 'tsx', 'test/unit/fixtures/lambda-tracing.ts'],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            NODE_OPTIONS: '',
            AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
            AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
            LAMBDA_TASK_ROOT: ROOT,
            _HANDLER: 'functions/runner/handler.handler',
            _X_AMZN_TRACE_ID: 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1',
            AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}`,
            // Nothing listens on port 9 (discard) here: the call fails at once, still traced.
            AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
            AWS_MAX_ATTEMPTS: '1',
            POWERTOOLS_LOG_LEVEL: 'SILENT',
            POWERTOOLS_METRICS_DISABLED: 'true',
            FIXTURE_ROW: JSON.stringify(row),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => {
        stdout += c;
      });
      child.stderr.on('data', (c) => {
        stderr += c;
      });
      child.on('error', fail);
      child.on('exit', (code) => (code === 0 ? done(stdout) : fail(new Error(`exit ${code}: ${stderr}`))));
    });
    expect(JSON.parse(out.trim().split('\n').pop() as string)).toEqual({
      tracing: true,
      results: [{ status: 'ok' }, { error: 'NotFoundError' }, { sdk: expect.any(String) }],
    });
    // UDP on loopback: give the last datagram a moment to arrive.
    for (let i = 0; i < 50 && segments.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    const handlerSegments = segments.filter(
      (s) => s.name === '## functions/runner/handler.handler' && s.annotations?.model,
    );
    expect(handlerSegments).toHaveLength(2);
    const [ok, failed] = handlerSegments as [Record<string, any>, Record<string, any>];
    expect(ok.trace_id).toBe('1-5759e988-bd862e3fe1be46a994272793');
    expect(ok.annotations).toMatchObject({
      model: 'bc-logreg',
      correlationId: 'pred-traced-1',
      Service: 'fanout',
      ColdStart: true,
    });
    expect(failed.annotations).toMatchObject({
      model: 'bc-nope',
      correlationId: 'pred-traced-2',
      ColdStart: false,
    });
    expect(failed.fault || failed.error).toBe(true);
    // Responses stay out of traces: they hold scores and can outgrow a segment.
    expect(JSON.stringify(ok)).not.toContain('probabilities');
    // The SDK call is a subsegment of its own, naming the service and the operation.
    const sdk = segments.find((s) => s.name === 'DynamoDB');
    expect(sdk).toMatchObject({ namespace: 'aws', aws: { operation: 'GetItem' } });
  }, 60_000);
});
