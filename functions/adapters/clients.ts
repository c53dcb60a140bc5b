import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Config } from '../core/config.js';
import { sdkClientOverrides } from './sdk-transport.js';
import { captureClient } from './tracing.js';

/**
 * SDK clients, created lazily once per process and reused across invocations. Endpoints come from
 * the typed configuration so the local stack points the same code at its emulators; where it also
 * names an SDK transport (FANOUT_SDK_TRANSPORT), requests go through it instead of a socket, after
 * the SDK's own middleware and serialisation. On Lambda each call is an X-Ray subsegment (captured
 * clients); elsewhere the clients are plain.
 */
const clients = new Map<string, unknown>();

function once<T>(key: string, make: () => T): T {
  let client = clients.get(key) as T | undefined;
  if (!client) {
    client = make();
    clients.set(key, client);
  }
  return client;
}

/** DynamoDB document client (plain JS values in and out). */
export function dynamoDocClient(config: Config): DynamoDBDocumentClient {
  return once(`ddb:${config.endpoints.dynamodb ?? ''}:${config.sdkTransport ?? ''}`, () =>
    DynamoDBDocumentClient.from(
      captureClient(
        new DynamoDBClient({
          region: config.region,
          endpoint: config.endpoints.dynamodb,
          ...sdkClientOverrides(config.sdkTransport, 'dynamodb'),
        }),
      ),
      {
        marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
      },
    ),
  );
}

/** Step Functions client. */
export function sfnClient(config: Config): SFNClient {
  return once(
    `sfn:${config.endpoints.sfn ?? ''}:${config.sdkTransport ?? ''}`,
    // StartSyncExecution normally goes to a `sync-` host prefix; an endpoint override (the local
    // stack) serves every action on one host, so the prefix must not be added there.
    () =>
      captureClient(
        new SFNClient({
          region: config.region,
          endpoint: config.endpoints.sfn,
          disableHostPrefix: Boolean(config.endpoints.sfn),
          ...sdkClientOverrides(config.sdkTransport, 'sfn'),
        }),
      ),
  );
}

/**
 * S3 client. Checksums only when required: s3rver (the local stack's S3) stores streamed bodies
 * with the SDK's chunk framing inside them otherwise (see shared/REFERENCE.md).
 */
export function s3Client(config: Config): S3Client {
  return once(`s3:${config.endpoints.s3 ?? ''}:${config.sdkTransport ?? ''}`, () =>
    captureClient(
      new S3Client({
        region: config.region,
        endpoint: config.endpoints.s3,
        forcePathStyle: config.s3ForcePathStyle,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        ...sdkClientOverrides(config.sdkTransport, 's3'),
      }),
    ),
  );
}

/** Drops every cached client (the local stack restarts its emulators on new ports in tests). */
export function resetClients(): void {
  for (const c of clients.values()) (c as { destroy?: () => void }).destroy?.();
  clients.clear();
}
