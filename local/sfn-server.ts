import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { BodyTooLargeError, listen, type RunningServer, readBody } from './http-util.js';
import { SfnApiError, type StepFunctionsEngine } from './sfn-engine.js';

type Action = (engine: StepFunctionsEngine, body: Record<string, unknown>) => unknown;

const actions: Record<string, Action> = {
  StartSyncExecution: (e, b) => e.startSyncExecution(b),
  StartExecution: (e, b) => e.startExecution(b),
  DescribeExecution: (e, b) => e.describeExecution(b.executionArn),
  ListExecutions: (e, b) => e.listExecutions(b),
  ListStateMachines: (e) => e.listStateMachines(),
  DescribeStateMachine: (e, b) => e.describeStateMachine(b.stateMachineArn),
};

// Well above the 256 KB execution input limit, which the engine reports precisely.
const MAX_REQUEST_BYTES = 1024 * 1024;
const TARGET_PREFIX = 'AWSStepFunctions.';
const CONTENT_TYPE = 'application/x-amz-json-1.0';

/**
 * Serves the Step Functions API on 127.0.0.1 in AWS's JSON 1.0 protocol (`POST /`,
 * `X-Amz-Target: AWSStepFunctions.<Action>`, errors as `{"__type", "message"}` with HTTP 400 and
 * `x-amzn-errortype`), so @aws-sdk/client-sfn talks to it unchanged.
 */
export async function startSfnServer(engine: StepFunctionsEngine, port = 0): Promise<RunningServer> {
  const server = createServer(async (req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    try {
      if (req.method !== 'POST')
        throw new SfnApiError('UnknownOperationException', `${req.method} is not supported`);
      const action = target.startsWith(TARGET_PREFIX)
        ? actions[target.slice(TARGET_PREFIX.length)]
        : undefined;
      if (!action)
        throw new SfnApiError('UnknownOperationException', `unknown operation ${target || '(none)'}`);
      const raw = await readBody(req, MAX_REQUEST_BYTES);
      let body: unknown;
      try {
        body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
      } catch {
        throw new SfnApiError('SerializationException', 'request body is not JSON');
      }
      if (body === null || typeof body !== 'object')
        throw new SfnApiError('SerializationException', 'request body is not an object');
      send(res, 200, await action(engine, body as Record<string, unknown>));
    } catch (err) {
      if (err instanceof SfnApiError) return sendError(res, 400, err.type, err.message);
      if (err instanceof BodyTooLargeError)
        return sendError(res, 413, 'ValidationException', err.message, true);
      sendError(res, 500, 'InternalFailure', (err as Error).message);
    }
  });
  return listen(server, port, 'Step Functions endpoint');
}

function send(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': randomUUID(),
    ...headers,
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, type: string, message: string, close = false): void {
  if (res.headersSent) return void res.destroy();
  send(
    res,
    status,
    { __type: type, message },
    close ? { 'x-amzn-errortype': type, connection: 'close' } : { 'x-amzn-errortype': type },
  );
}
