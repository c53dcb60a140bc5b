import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import {
  FanoutError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../core/errors.js';

export type HttpResponse = APIGatewayProxyStructuredResultV2 & { statusCode: number; body: string };

/** A JSON response. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/**
 * The contract's error body. Known errors carry their own status and details; anything else is a
 * 500 that says only the request id: stack traces stay in the logs.
 */
export function errorResponse(err: unknown, requestId: string): HttpResponse {
  if (err instanceof FanoutError && err.status !== 500) {
    return json(
      err.status,
      { error: { code: err.code, message: err.message, details: err.details } },
      err.headers ?? {},
    );
  }
  return json(500, { error: { code: 'internal_error', message: `internal error; request id ${requestId}` } });
}

/**
 * Reads a JSON request body: 415 unless the content type is JSON, 413 over `maxBytes`, 400 for
 * text that does not parse (with the parser's position) or a body that is not a JSON object.
 */
export function readJsonBody(event: APIGatewayProxyEventV2, maxBytes: number): Record<string, unknown> {
  const type = header(event, 'content-type');
  const mediaType = type?.split(';')[0]?.trim().toLowerCase();
  if (!mediaType || !(mediaType === 'application/json' || mediaType.endsWith('+json'))) {
    throw new UnsupportedMediaTypeError(
      `request body must be JSON (Content-Type: application/json), got ${type ? `"${type}"` : 'no Content-Type'}`,
    );
  }
  const raw = event.body ?? '';
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxBytes) {
    throw new PayloadTooLargeError(
      `request body is ${size} bytes; the synchronous API accepts at most ${maxBytes}`,
      {
        details: { limitBytes: maxBytes, bodyBytes: size },
      },
    );
  }
  if (text.trim() === '') throw new ValidationError('request body is empty; expected a JSON object');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`request body is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError('request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** A request header, case-insensitively (API Gateway v2 lower-cases them; tests may not). */
export function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  const headers = event.headers ?? {};
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}
