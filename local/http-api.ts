import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { BodyTooLargeError, listen, type RunningServer, readBody } from './http-util.js';
import type { HttpRoute } from './serverless-config.js';

/** API Gateway's request payload limit. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** A route and the function serverless.yml sends it to. */
export interface RouteTarget extends HttpRoute {
  functionKey: string;
}

/** Calls a function with an event and returns its (JSON) result; throws when the function fails. */
export type Invoke = (functionKey: string, event: APIGatewayProxyEventV2) => Promise<unknown>;

/** Options for {@link startHttpApi}. */
export interface HttpApiOptions {
  routes: readonly RouteTarget[];
  invoke: Invoke;
  port?: number;
  /** Where handler failures are reported (the client only gets a generic 500). */
  log?: (line: string) => void;
  /**
   * GET paths the local stack answers itself, outside serverless.yml and never part of the
   * deployed API (`/metrics`, `/dashboard`, `/_local/stack`, which tells the CLI where the stack's
   * S3 is): a page for the path, or undefined to fall through to serverless.yml's routes.
   */
  localPages?: (path: string) => LocalPage | undefined | Promise<LocalPage | undefined>;
}

/** A local stack page: what `localPages` answers for a path. */
export interface LocalPage {
  status?: number;
  contentType: string;
  body: string | Buffer;
  headers?: Record<string, string>;
}

/** A local page of JSON. */
export const jsonPage = (value: unknown): LocalPage => ({
  contentType: 'application/json',
  body: JSON.stringify(value),
});

interface CompiledRoute extends RouteTarget {
  segments: string[];
  /** Higher wins: API Gateway prefers static segments, then parameters, then greedy `{x+}`. */
  rank: number;
}

/** A matched route with its decoded path parameters. */
export interface RouteMatch {
  route: RouteTarget;
  pathParameters: Record<string, string>;
}

/** Sorts routes by API Gateway's precedence so the first match is the one AWS would pick. */
export function compileRoutes(routes: readonly RouteTarget[]): CompiledRoute[] {
  return routes
    .map((r) => {
      const segments = r.path === '*' ? [] : r.path.split('/').slice(1);
      const statics = segments.filter((s) => !s.startsWith('{')).length;
      const greedy = segments.some((s) => s.endsWith('+}')) || r.path === '*';
      const rank =
        (greedy ? 0 : 1_000_000) + statics * 1000 + segments.length + (r.method === 'ANY' ? 0 : 0.5);
      return { ...r, segments, rank };
    })
    .sort((a, b) => b.rank - a.rank);
}

/** Finds the route for `METHOD /path` (`ANY` and `{proxy+}` included), or undefined. */
export function matchRoute(
  routes: readonly CompiledRoute[],
  method: string,
  path: string,
): RouteMatch | undefined {
  const parts = path.split('/').slice(1);
  for (const route of routes) {
    if (route.method !== 'ANY' && route.method !== method) continue;
    if (route.path === '*') return { route, pathParameters: {} };
    const params = matchSegments(route.segments, parts);
    if (params) return { route, pathParameters: params };
  }
  return undefined;
}

function matchSegments(
  segments: readonly string[],
  parts: readonly string[],
): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string;
    const part = parts[i];
    if (seg.startsWith('{') && seg.endsWith('+}')) {
      if (part === undefined || part === '') return undefined;
      params[seg.slice(1, -2)] = decode(parts.slice(i).join('/'));
      return params;
    }
    if (part === undefined) return undefined;
    if (seg.startsWith('{')) {
      if (part === '') return undefined;
      params[seg.slice(1, -1)] = decode(part);
    } else if (seg !== part) return undefined;
  }
  return parts.length === segments.length ? params : undefined;
}

const TEXT_TYPE =
  /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql)|[^;]*\+(json|xml))/i;

/** Builds the API Gateway HTTP API (payload format 2.0) event for a request and its body. */
export function toHttpApiEvent(
  req: IncomingMessage,
  body: Buffer,
  match: RouteMatch,
  now = new Date(),
): APIGatewayProxyEventV2 {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQueryString = q < 0 ? '' : url.slice(q + 1);
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (name === 'cookie') {
      cookies = (Array.isArray(value) ? value.join('; ') : value).split(/;\s*/).filter(Boolean);
      continue;
    }
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const method = (req.method ?? 'GET').toUpperCase();
  const requestId = randomUUID();
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: match.route.routeKey,
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? '127.0.0.1',
      domainPrefix: (headers.host ?? 'local').split('.')[0] as string,
      http: {
        method,
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: match.route.routeKey,
      stage: '$default',
      time: apiGatewayTime(now),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
  if (cookies) event.cookies = cookies;
  const query = queryParameters(rawQueryString);
  if (query) event.queryStringParameters = query;
  if (Object.keys(match.pathParameters).length) event.pathParameters = match.pathParameters;
  if (body.length) {
    const type = headers['content-type'];
    const text = type === undefined ? isUtf8(body) : TEXT_TYPE.test(type);
    event.body = body.toString(text ? 'utf8' : 'base64');
    event.isBase64Encoded = !text;
  }
  return event;
}

/**
 * Serves serverless.yml's `httpApi` routes on 127.0.0.1: each request becomes a payload 2.0 event
 * for the routed function, and its answer becomes the HTTP response. Errors use the service's
 * `{"error": {"code", "message"}}` shape and never carry a stack trace.
 */
export async function startHttpApi(options: HttpApiOptions): Promise<RunningServer> {
  const routes = compileRoutes(options.routes);
  const server = createServer({ keepAlive: true }, (req, res) => {
    handle(req, res, routes, options).catch((err: unknown) => {
      options.log?.(`http api: ${(err as Error).message}`);
      sendError(res, 500, 'internal_error', 'the local HTTP API failed to answer');
    });
  });
  // curl sends `Expect: 100-continue` for large bodies: refuse oversized ones before they are sent.
  server.on('checkContinue', (req, res) => {
    if (Number(req.headers['content-length']) > MAX_BODY_BYTES) return tooLarge(res);
    res.writeContinue();
    server.emit('request', req, res);
  });
  return listen(server, options.port ?? 3000, 'HTTP API');
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  routes: CompiledRoute[],
  options: HttpApiOptions,
) {
  const method = (req.method ?? 'GET').toUpperCase();
  const path = (req.url ?? '/').split('?')[0] as string;
  const page = method === 'GET' ? await options.localPages?.(path) : undefined;
  if (page) {
    req.resume();
    const body = typeof page.body === 'string' ? Buffer.from(page.body) : page.body;
    res.writeHead(page.status ?? 200, {
      ...page.headers,
      'content-type': page.contentType,
      'content-length': body.length,
    });
    return void res.end(body);
  }
  const match = matchRoute(routes, method, path);
  if (!match) {
    req.resume();
    return sendError(res, 404, 'not_found', `no route for ${method} ${path}`);
  }
  let body: Buffer;
  try {
    body = await readBody(req, MAX_BODY_BYTES);
  } catch (err) {
    if (err instanceof BodyTooLargeError) return tooLarge(res);
    throw err;
  }
  let result: unknown;
  try {
    result = await options.invoke(match.route.functionKey, toHttpApiEvent(req, body, match));
  } catch (err) {
    options.log?.(
      `${match.route.routeKey}: function ${match.route.functionKey} failed: ${(err as Error).name}: ${lambdaMessage(err)}`,
    );
    return sendError(
      res,
      500,
      'internal_error',
      `the ${match.route.functionKey} function failed (${(err as Error).name})`,
    );
  }
  writeResult(res, result);
}

/** Applies API Gateway's rules for a payload 2.0 answer: a structured result, or anything else as JSON. */
function writeResult(res: ServerResponse, result: unknown): void {
  const structured =
    result !== null && typeof result === 'object' && 'statusCode' in result
      ? (result as APIGatewayProxyStructuredResultV2)
      : undefined;
  if (!structured) {
    const body = typeof result === 'string' ? result : JSON.stringify(result);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    return void res.end(body);
  }
  const body = Buffer.from(structured.body ?? '', structured.isBase64Encoded ? 'base64' : 'utf8');
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(structured.headers ?? {})) headers[k.toLowerCase()] = String(v);
  if (structured.cookies?.length) headers['set-cookie'] = structured.cookies;
  headers['content-length'] = String(body.length);
  res.writeHead(structured.statusCode ?? 200, headers);
  res.end(body);
}

function tooLarge(res: ServerResponse): void {
  // The rest of the body is never read: the connection closes after the answer.
  res.shouldKeepAlive = false;
  sendError(res, 413, 'payload_too_large', `request body exceeds API Gateway's ${MAX_BODY_BYTES} bytes`);
  res.once('finish', () => res.socket?.destroySoon());
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function lambdaMessage(err: unknown): string {
  const message = (err as Error).message ?? String(err);
  try {
    const parsed = JSON.parse(message) as { errorMessage?: unknown };
    return typeof parsed.errorMessage === 'string' ? parsed.errorMessage : message;
  } catch {
    return message;
  }
}

function queryParameters(raw: string): Record<string, string> | undefined {
  if (!raw) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = k in out ? `${out[k]},${v}` : v;
  return Object.keys(out).length ? out : undefined;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function isUtf8(body: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(body);
    return true;
  } catch {
    return false;
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** API Gateway's `requestContext.time`, e.g. `12/Mar/2020:19:03:58 +0000`. */
function apiGatewayTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
