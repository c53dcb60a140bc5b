import { request } from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import {
  compileRoutes,
  MAX_BODY_BYTES,
  matchRoute,
  type RouteTarget,
  startHttpApi,
} from '../../local/http-api.js';
import type { RunningServer } from '../../local/http-util.js';

const route = (method: string, path: string, functionKey = 'api'): RouteTarget => ({
  method,
  path,
  routeKey: `${method} ${path}`,
  functionKey,
});

const routes = [
  route('POST', '/v1/ensembles/{ensemble}/predictions'),
  route('GET', '/v1/ensembles'),
  route('GET', '/v2/models/{name}'),
  route('GET', '/v2/models/{name}/ready'),
  route('POST', '/echo'),
  route('GET', '/binary'),
  route('GET', '/plain'),
  route('GET', '/boom', 'broken'),
];

let server: RunningServer;
let lastEvent: APIGatewayProxyEventV2 | undefined;
const logged: string[] = [];

beforeAll(async () => {
  server = await startHttpApi({
    routes,
    port: 0,
    log: (line) => logged.push(line),
    invoke: async (key, event) => {
      lastEvent = event;
      if (key === 'broken') {
        throw Object.assign(
          new Error('{"errorType":"TypeError","errorMessage":"x is undefined","trace":[]}'),
          {
            name: 'TypeError',
          },
        );
      }
      if (event.rawPath === '/binary') {
        return {
          statusCode: 200,
          headers: { 'Content-Type': 'image/png' },
          body: 'AAEC',
          isBase64Encoded: true,
        };
      }
      if (event.rawPath === '/plain') return { hello: 'world' };
      return {
        statusCode: 201,
        headers: { 'Content-Type': 'application/json', 'X-Custom': 'yes' },
        cookies: ['a=1; Path=/'],
        body: JSON.stringify({ got: event.body ?? null }),
      };
    },
  });
});

afterAll(() => server.close());

describe('request to event mapping (payload format 2.0)', () => {
  it('maps path parameters, the query, lower-cased headers, cookies and a JSON body', async () => {
    const res = await fetch(`${server.url}/v1/ensembles/breast%20cancer/predictions?a=1&b=x&a=2`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Trace': 'abc', Cookie: 'c1=v1; c2=v2' },
      body: '{"instances":[[1,2]]}',
    });
    expect(res.status).toBe(201);
    expect(lastEvent).toMatchObject({
      version: '2.0',
      routeKey: 'POST /v1/ensembles/{ensemble}/predictions',
      rawPath: '/v1/ensembles/breast%20cancer/predictions',
      rawQueryString: 'a=1&b=x&a=2',
      queryStringParameters: { a: '1,2', b: 'x' },
      pathParameters: { ensemble: 'breast cancer' },
      cookies: ['c1=v1', 'c2=v2'],
      body: '{"instances":[[1,2]]}',
      isBase64Encoded: false,
      requestContext: {
        http: {
          method: 'POST',
          path: '/v1/ensembles/breast%20cancer/predictions',
          sourceIp: '127.0.0.1',
          protocol: 'HTTP/1.1',
        },
        routeKey: 'POST /v1/ensembles/{ensemble}/predictions',
        stage: '$default',
      },
    });
    expect(lastEvent?.headers).toMatchObject({ 'content-type': 'application/json', 'x-trace': 'abc' });
    expect(lastEvent?.headers.cookie).toBeUndefined();
    expect(lastEvent?.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(lastEvent?.requestContext.timeEpoch).toBeGreaterThan(Date.now() - 60_000);
    expect(lastEvent?.requestContext.time).toMatch(/^\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
  });

  it('leaves out the query, path parameters and body when there are none', async () => {
    await fetch(`${server.url}/v1/ensembles`);
    expect(lastEvent?.rawQueryString).toBe('');
    expect(lastEvent).not.toHaveProperty('queryStringParameters');
    expect(lastEvent).not.toHaveProperty('pathParameters');
    expect(lastEvent).not.toHaveProperty('body');
  });

  it('base64-encodes a binary body', async () => {
    await fetch(`${server.url}/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: new Uint8Array([0, 1, 2, 255]),
    });
    expect(lastEvent).toMatchObject({ body: 'AAEC/w==', isBase64Encoded: true });
  });

  it('picks the most specific route', () => {
    const compiled = compileRoutes([
      route('GET', '/x/{id}'),
      route('GET', '/x/new'),
      route('ANY', '/{proxy+}'),
    ]);
    expect(matchRoute(compiled, 'GET', '/x/new')?.route.path).toBe('/x/new');
    expect(matchRoute(compiled, 'GET', '/x/42')?.pathParameters).toEqual({ id: '42' });
    expect(matchRoute(compiled, 'DELETE', '/x/42/y')?.pathParameters).toEqual({ proxy: 'x/42/y' });
    expect(matchRoute(compileRoutes(routes), 'GET', '/v2/models/m/ready')?.route.routeKey).toBe(
      'GET /v2/models/{name}/ready',
    );
  });
});

describe('responses', () => {
  it('writes statusCode, headers, cookies and body, and keeps the connection alive', async () => {
    const res = await fetch(`${server.url}/echo`, {
      method: 'POST',
      body: 'hi',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-custom')).toBe('yes');
    expect(res.headers.get('set-cookie')).toBe('a=1; Path=/');
    expect(res.headers.get('connection')).toBe('keep-alive');
    expect(await res.json()).toEqual({ got: 'hi' });
  });

  it('decodes a base64 body', async () => {
    const res = await fetch(`${server.url}/binary`);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([0, 1, 2]);
  });

  it('sends a result without statusCode as a 200 JSON body, as API Gateway does', async () => {
    const res = await fetch(`${server.url}/plain`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ hello: 'world' });
  });
});

describe('errors', () => {
  it('answers 404 in the service error format when no route matches', async () => {
    const res = await fetch(`${server.url}/x`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: 'no route for GET /x' } });
    const wrongMethod = await fetch(`${server.url}/v1/ensembles`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(404);
  });

  it('answers 500 without a stack trace when the handler throws, and logs why', async () => {
    const res = await fetch(`${server.url}/boom`);
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body).toEqual({
      error: { code: 'internal_error', message: 'the broken function failed (TypeError)' },
    });
    expect(logged.at(-1)).toContain('x is undefined');
  });

  it('answers 413 for a declared body over 10 MB without reading it', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${server.url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': MAX_BODY_BYTES + 1 },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
        });
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: text });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write('{"instances":');
    });
    expect(status).toBe(413);
    expect(JSON.parse(body).error.code).toBe('payload_too_large');
  });

  it('answers 413 for a chunked body once it passes 10 MB', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
      });
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (err) => (answered ? undefined : reject(err)));
      const chunk = Buffer.alloc(1024 * 1024, 'a');
      const pump = (n: number) => {
        if (answered || n > 12) return req.end();
        req.write(chunk, () => pump(n + 1));
      };
      pump(0);
    });
    expect(status).toBe(413);
  });
});
