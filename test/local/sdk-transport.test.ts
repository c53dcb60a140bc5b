import { createServer, type RequestListener } from 'node:http';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import dynalite from 'dynalite';
import { registerSdkTransport, sdkClientOverrides } from '../../functions/adapters/sdk-transport.js';
import { requestListenerEndpoint } from '../../local/in-process-http.js';
import { type LocalRequest, localSdkTransport } from '../../local/sdk-transport.js';

const credentials = { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' };

describe('the local SDK transport', () => {
  // dynalite never listens here: if a request reached for a socket, it would fail.
  const server = dynalite({ createTableMs: 0 });
  const listener = server.listeners('request')[0] as RequestListener;
  const seen: LocalRequest[] = [];
  const endpoint = requestListenerEndpoint(listener);
  const transport = localSdkTransport((_service, request) => {
    seen.push(request);
    return endpoint(request);
  });
  const client = new DynamoDBClient({
    region: 'eu-west-1',
    endpoint: 'http://127.0.0.1:9',
    credentials,
    ...transport.overrides('dynamodb', {}),
  });

  beforeAll(async () => {
    await client.send(
      new CreateTableCommand({
        TableName: 'items',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    // dynalite makes a table ACTIVE on its next turn, as AWS does after a while.
    for (let i = 0; i < 100; i++) {
      const out = await client.send(new DescribeTableCommand({ TableName: 'items' }));
      if (out.Table?.TableStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  afterAll(async () => {
    client.destroy();
    await new Promise((r) => server.close(() => r(undefined)));
  });

  it("carries the SDK's serialised requests to the emulator's own request handling, without a socket", async () => {
    await client.send(new PutItemCommand({ TableName: 'items', Item: { pk: { S: 'a' }, n: { N: '1' } } }));
    const out = await client.send(new GetItemCommand({ TableName: 'items', Key: { pk: { S: 'a' } } }));
    expect(out.Item).toEqual({ pk: { S: 'a' }, n: { N: '1' } });
    const last = seen.at(-1) as LocalRequest;
    expect(last).toMatchObject({ method: 'POST', path: '/' });
    expect(last.headers['x-amz-target']).toBe('DynamoDB_20120810.GetItem');
  });

  it("surfaces the emulator's errors as the SDK's typed exceptions", async () => {
    const put = new PutItemCommand({
      TableName: 'items',
      Item: { pk: { S: 'a' } },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    await expect(client.send(put)).rejects.toBeInstanceOf(ConditionalCheckFailedException);
  });

  it('signs with a well-formed SigV4 header for the caller, region and service, without computing a signature', () => {
    const auth = (seen.at(-1) as LocalRequest).headers.authorization;
    expect(auth).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDLOCAL\/\d{8}\/eu-west-1\/dynamodb\/aws4_request, SignedHeaders=host;x-amz-date, Signature=0{64}$/,
    );
    expect((seen.at(-1) as LocalRequest).headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it("honours the client's request timeout as a TimeoutError, as throwOnRequestTimeout does", async () => {
    const silent = createServer(() => undefined);
    const slow = localSdkTransport((_s, request) =>
      requestListenerEndpoint(silent.listeners('request')[0] as RequestListener)(request),
    );
    const sagemaker = new SageMakerRuntimeClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials,
      maxAttempts: 1,
      ...slow.overrides('sagemaker-runtime', { requestTimeout: 50 }),
    });
    const call = sagemaker.send(
      new InvokeEndpointCommand({ EndpointName: 'e', ContentType: 'text/csv', Body: new Uint8Array([49]) }),
    );
    await expect(call).rejects.toMatchObject({ name: 'TimeoutError' });
    sagemaker.destroy();
  });

  it('reports a server that drops the request as a connection reset', async () => {
    const rude = requestListenerEndpoint((_req, res) => res.destroy());
    await expect(rude({ method: 'POST', path: '/', headers: {} })).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
  });
});

describe('sdkClientOverrides', () => {
  it('leaves the SDK defaults alone when no transport is configured (as on AWS)', () => {
    expect(sdkClientOverrides(undefined, 'dynamodb')).toEqual({});
  });

  it('uses the transport registered under the configured name, until it is unregistered', () => {
    const overrides = { httpAuthSchemes: [] };
    const unregister = registerSdkTransport('test-transport', { overrides: () => overrides });
    expect(sdkClientOverrides('test-transport', 'sfn')).toBe(overrides);
    unregister();
    expect(() => sdkClientOverrides('test-transport', 'sfn')).toThrow(
      'environment variable FANOUT_SDK_TRANSPORT: no SDK transport "test-transport" is registered in this process',
    );
  });
});
