import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { OnnxScorer } from '../functions/adapters/onnx-scorer.js';
import { validateInstances } from '../functions/core/instances.js';
import {
  localOnnx,
  type Manifest,
  type OnnxModelSpec,
  type SageMakerModelSpec,
} from '../functions/core/manifest.js';
import { BodyTooLargeError, listen, type RunningServer, readBody } from './http-util.js';
import { LOCAL_ACCOUNT } from './serverless-config.js';

/** Faults the local endpoint can be told to produce, by endpoint name (failure tests). */
export type EndpointFault =
  | { kind: 'model-error'; status: number; message: string }
  | { kind: 'throttle'; times: number }
  | { kind: 'delay'; ms: number };

/** A running local SageMaker runtime. */
export interface LocalSageMaker extends RunningServer {
  /** Makes the next invocations of `endpoint` fail or stall; `undefined` clears it. */
  setFault(endpoint: string, fault: EndpointFault | undefined): void;
}

/** SageMaker's invocation payload limit. */
const MAX_BODY = 6 * 1024 * 1024;

/**
 * The SageMaker runtime InvokeEndpoint API (`POST /endpoints/{name}/invocations`, restJson1
 * errors) serving each `kind: sagemaker` member's bundled ONNX file, so the runner's real SDK path
 * runs locally: text/csv or application/json in, the manifest's answer shape out.
 */
export async function startLocalSageMaker(
  manifest: Manifest,
  endpointNames: ReadonlyMap<string, string>,
  port = 0,
): Promise<LocalSageMaker> {
  const byEndpoint = new Map<string, { model: SageMakerModelSpec; onnx: OnnxModelSpec }>();
  for (const model of manifest.models.values()) {
    const onnx = localOnnx(model);
    if (model.kind !== 'sagemaker' || !onnx) continue;
    byEndpoint.set(endpointNames.get(model.id) ?? model.endpoint.name, { model, onnx });
  }
  const scorer = new OnnxScorer();
  // An endpoint is InService with its model loaded: the first invocation does not load it. A file
  // that fails to load fails its invocations, named, as the runner's start check said at start.
  await scorer.preload([...byEndpoint.values()].map((v) => v.onnx));
  const faults = new Map<string, EndpointFault>();

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => error(res, 500, 'InternalFailure', (err as Error).message));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const m = /^\/endpoints\/([^/]+)\/invocations$/.exec((req.url ?? '').split('?')[0] ?? '');
    if (req.method !== 'POST' || !m)
      return error(res, 404, 'UnknownOperationException', `no operation ${req.method} ${req.url}`);
    const name = decodeURIComponent(m[1] as string);
    const served = byEndpoint.get(name);
    if (!served) {
      return error(res, 400, 'ValidationError', `Endpoint ${name} of account ${LOCAL_ACCOUNT} not found.`);
    }
    let body: Buffer;
    try {
      body = await readBody(req, MAX_BODY);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return error(res, 413, 'ValidationError', 'payload exceeds 6 MB');
      throw err;
    }
    const fault = faults.get(name);
    if (fault?.kind === 'throttle' && fault.times > 0) {
      fault.times--;
      return error(res, 400, 'ThrottlingException', 'Rate exceeded');
    }
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'model-error') return modelError(res, name, fault.status, fault.message);
    const rows = parseRows(body.toString('utf8'), req.headers['content-type'] ?? '', served.onnx.features);
    if (typeof rows === 'string') return modelError(res, name, 400, rows);
    const probabilities = await scorer.score(served.onnx, rows);
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-amzn-invoked-production-variant': 'AllTraffic',
    });
    res.end(JSON.stringify(shape(probabilities, served.model)));
  }

  const running = await listen(server, port, 'local SageMaker runtime');
  return {
    ...running,
    setFault: (endpoint, fault) => {
      if (fault) faults.set(endpoint, { ...fault });
      else faults.delete(endpoint);
    },
    close: async () => {
      await running.close();
      await scorer.close();
    },
  };
}

/** Rows from a CSV or JSON (`{"instances": [...]}` or a bare list) body, or why not. */
function parseRows(text: string, contentType: string, features: readonly string[]): number[][] | string {
  const type = contentType.split(';')[0]?.trim().toLowerCase();
  try {
    if (type === 'text/csv') {
      const rows = text
        .split(/\r?\n/)
        .filter((l) => l.trim() !== '')
        .map((l) => l.split(',').map((v) => (v.trim() === '' ? Number.NaN : Number(v))));
      return validateInstances(rows, features, 'csv rows');
    }
    if (type === 'application/json') {
      const doc = JSON.parse(text) as unknown;
      const list = Array.isArray(doc) ? doc : (doc as { instances?: unknown })?.instances;
      return validateInstances(list, features);
    }
    return `unsupported content type "${contentType}"; use text/csv or application/json`;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The answer in the shape the manifest says the endpoint returns. */
function shape(probabilities: number[][], model: SageMakerModelSpec): unknown {
  const { format, field } = model.endpoint.response;
  const list =
    format === 'positive-score'
      ? probabilities.map((p) => p[1])
      : format === 'named-fields'
        ? probabilities.map((p) => Object.fromEntries(model.labels.map((l, i) => [l, p[i]])))
        : probabilities;
  return field ? { [field]: list } : list;
}

function error(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
  res.end(JSON.stringify({ __type: type, message }));
}

/** What SageMaker answers when the model container itself returned an error. */
function modelError(res: ServerResponse, endpoint: string, status: number, message: string): void {
  res.writeHead(424, { 'content-type': 'application/json', 'x-amzn-errortype': 'ModelError' });
  res.end(
    JSON.stringify({
      __type: 'ModelError',
      ErrorCode: 'CLIENT_ERROR_FROM_MODEL',
      OriginalStatusCode: status,
      OriginalMessage: message,
      Message: `Received client error (${status}) from primary with message "${message}". See the logs of endpoint ${endpoint}.`,
    }),
  );
}
