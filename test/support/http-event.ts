import type { APIGatewayProxyEventV2 } from 'aws-lambda';

/** Builds an API Gateway HTTP API (payload 2.0) event the way API Gateway would. */
export function httpEvent(
  routeKey: string,
  opts: {
    path?: string;
    pathParameters?: Record<string, string>;
    body?: unknown;
    headers?: Record<string, string>;
  } = {},
): APIGatewayProxyEventV2 {
  const [method, template] = routeKey.split(' ') as [string, string];
  let path = opts.path ?? template;
  for (const [k, v] of Object.entries(opts.pathParameters ?? {}))
    path = path.replace(`{${k}}`, encodeURIComponent(v));
  const body =
    opts.body === undefined
      ? undefined
      : typeof opts.body === 'string'
        ? opts.body
        : JSON.stringify(opts.body);
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
    pathParameters: opts.pathParameters,
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'jest' },
      requestId: 'req-1',
      routeKey,
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
  };
}
