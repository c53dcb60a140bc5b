import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { SFNClient, StartSyncExecutionCommand } from '@aws-sdk/client-sfn';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { loadConfig } from '../../functions/core/config.js';
import { loadManifest } from '../../functions/core/manifest.js';
import type { LambdaHandler } from '../../local/lambda-dispatch.js';
import { type LocalStack, REPO_ROOT, startLocalStack } from '../../local/stack.js';

const golden = JSON.parse(
  readFileSync(join(REPO_ROOT, 'models/breast-cancer/golden/bc-logreg.json'), 'utf8'),
) as {
  rows: number[][];
};
// Every member of the ensemble as the manifest lists it, the SageMaker one included: the stack
// serves it locally.
const MEMBERS =
  loadManifest(join(REPO_ROOT, 'models/manifest.json')).ensembles.get('breast-cancer')?.members ?? [];

/**
 * A stand-in API handler: runs the inference state machine through the SDK exactly as the real
 * one does, from the environment the stack set, so this test depends only on the local stack.
 */
const fixtureApi: LambdaHandler = async (raw) => {
  const event = raw as APIGatewayProxyEventV2;
  if (event.routeKey === 'GET /v1/ensembles') {
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ table: process.env.FANOUT_TABLE }),
    };
  }
  // serverless.yml's catch-all route: what no other route takes.
  if (event.routeKey === '$default') {
    return {
      statusCode: 404,
      body: JSON.stringify({ unrouted: `${event.requestContext.http.method} ${event.rawPath}` }),
    };
  }
  const sfn = new SFNClient({ endpoint: process.env.AWS_ENDPOINT_URL_SFN, disableHostPrefix: true });
  const body = JSON.parse(event.body ?? '{}') as { instances: number[][] };
  const out = await sfn.send(
    new StartSyncExecutionCommand({
      stateMachineArn: process.env.FANOUT_INFERENCE_STATE_MACHINE_ARN,
      input: JSON.stringify({
        id: crypto.randomUUID(),
        ensemble: event.pathParameters?.ensemble,
        createdAt: new Date().toISOString(),
        instances: body.instances,
        members: MEMBERS.map((model) => ({ model, timeoutSeconds: 5 })),
      }),
    }),
  );
  sfn.destroy();
  return {
    statusCode: out.status === 'SUCCEEDED' ? 200 : 503,
    body: out.output ?? JSON.stringify({ error: out.error }),
  };
};

// The fixture answers unless a test switches the real handler in.
let realApi: LambdaHandler | undefined;
const api: LambdaHandler = (event, context) => (realApi ?? fixtureApi)(event, context);

describe('startLocalStack', () => {
  let stack: LocalStack;
  let dataDir: string;
  const before = { ...process.env };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fanout-stack-'));
    delete process.env.FANOUT_TABLE;
    process.env.POWERTOOLS_SERVICE_NAME = 'set-by-caller';
    stack = await startLocalStack({ port: 0, dataDir, quiet: true, handlers: { api } });
  });

  afterAll(async () => {
    await stack?.stop();
    if (before.POWERTOOLS_SERVICE_NAME === undefined) delete process.env.POWERTOOLS_SERVICE_NAME;
    else process.env.POWERTOOLS_SERVICE_NAME = before.POWERTOOLS_SERVICE_NAME;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves every endpoint on 127.0.0.1', () => {
    for (const url of Object.values(stack.urls)) expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("gives the handlers serverless.yml's environment pointing at the local services", () => {
    expect(process.env).toMatchObject({
      FANOUT_TABLE: 'fanout-local',
      FANOUT_INFERENCE_STATE_MACHINE_ARN:
        'arn:aws:states:us-east-1:000000000000:stateMachine:fanout-local-inference',
      AWS_ENDPOINT_URL_DYNAMODB: stack.urls.dynamodb,
      AWS_ENDPOINT_URL_SFN: stack.urls.sfn,
      AWS_REGION: 'us-east-1',
    });
    expect(isAbsolute(process.env.FANOUT_MANIFEST as string)).toBe(true);
    // A variable the caller set wins over serverless.yml (`FANOUT_MANIFEST=... npm start`).
    expect(process.env.POWERTOOLS_SERVICE_NAME).toBe('set-by-caller');
    // The handlers' parsed configuration was reset, so they read these values.
    expect(loadConfig().endpoints.sfn).toBe(stack.urls.sfn);
  });

  it('routes HTTP requests to the function serverless.yml names, with the event API Gateway would send', async () => {
    const res = await fetch(`${stack.urls.api}/v1/ensembles`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ table: 'fanout-local' });
    const unrouted = await fetch(`${stack.urls.api}/nope`, { method: 'DELETE' });
    expect(unrouted.status).toBe(404);
    expect(await unrouted.json()).toEqual({ unrouted: 'DELETE /nope' });
  });

  it('runs a prediction end to end: HTTP, Step Functions, ONNX runners, ensemble, DynamoDB', async () => {
    const res = await fetch(`${stack.urls.api}/v1/ensembles/breast-cancer/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: golden.rows.slice(0, 2) }),
    });
    const record = (await res.json()) as { predictions: unknown[] };
    expect(res.status).toBe(200);
    expect(record).toMatchObject({ ensemble: 'breast-cancer', degraded: false });
    expect(record.predictions).toHaveLength(2);
  });

  it('serves the real API handler through the same dispatcher', async () => {
    realApi = ((await import('../../functions/api/handler.js')) as { handler: LambdaHandler }).handler;
    try {
      const live = await fetch(`${stack.urls.api}/v2/health/live`);
      expect(live.status).toBe(200);
      // Through functions/adapters/clients.ts: its SFN client must not prefix the host
      // (`sync-127.0.0.1` does not resolve) when an endpoint override is set.
      const res = await fetch(`${stack.urls.api}/v1/ensembles/breast-cancer/predictions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: golden.rows.slice(0, 2) }),
      });
      const record = (await res.json()) as { id: string; predictions: unknown[] };
      expect(res.status).toBe(200);
      expect(record.predictions).toHaveLength(2);
      const again = await fetch(`${stack.urls.api}/v1/predictions/${record.id}`);
      expect(again.status).toBe(200);
      expect(((await again.json()) as { id: string }).id).toBe(record.id);
    } finally {
      realApi = undefined;
    }
  });

  it('stops everything and puts the environment back', async () => {
    await stack.stop();
    await expect(fetch(`${stack.urls.sfn}/`, { method: 'POST' })).rejects.toThrow();
    await expect(fetch(`${stack.urls.dynamodb}/`, { method: 'POST' })).rejects.toThrow();
    expect(process.env.FANOUT_TABLE).toBeUndefined();
    expect(process.env.POWERTOOLS_SERVICE_NAME).toBe('set-by-caller');
    expect(process.env.AWS_ENDPOINT_URL_SFN).toBe(before.AWS_ENDPOINT_URL_SFN);
  });
});
