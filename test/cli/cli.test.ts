import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseBatchArgs, UsageError } from '../../cli/args.js';
import { progressLine } from '../../cli/progress.js';
import { apiFetch } from '../../cli/signed-fetch.js';

describe('fanout batch arguments', () => {
  it('targets the local stack on PORT by default', () => {
    const args = parseBatchArgs(['batch', 'rows.csv', '--ensemble', 'wine', '--json'], { PORT: '4123' });
    expect(args).toMatchObject({
      file: 'rows.csv',
      ensemble: 'wine',
      json: true,
      api: 'http://127.0.0.1:4123',
    });
    expect(parseBatchArgs(['batch', 'a.csv', '-e', 'x'], {}).api).toBe('http://127.0.0.1:3000');
  });

  it('takes --out for the results and --errors for the error file', () => {
    expect(
      parseBatchArgs(['batch', 'a.csv', '-e', 'x', '--out', 'r.csv', '--errors', 'bad.csv'], {}),
    ).toMatchObject({
      out: 'r.csv',
      errors: 'bad.csv',
    });
  });

  it.each([
    [['batch', 'a.csv'], '--ensemble <name> is required'],
    [['batch', '--ensemble', 'x'], 'missing <file>'],
    [['score', 'a.csv', '--ensemble', 'x'], 'unknown command "score"'],
    [['batch', 'a.csv', 'b.csv', '--ensemble', 'x'], 'unexpected argument "b.csv"'],
    [['batch', 'a.csv', '--ensemble', 'x', '--timeout', 'soon'], '--timeout must be a positive number'],
    [['batch', 'a.csv', '--ensemble', 'x', '--nope'], "Unknown option '--nope'"],
    [['batch', 'a.csv', '--ensemble', 'x', '--stage', 'dev'], 'needs --api <url>'],
  ])('rejects %j, saying what is wrong', (argv, message) => {
    expect(() => parseBatchArgs(argv, {})).toThrow(UsageError);
    expect(() => parseBatchArgs(argv, {})).toThrow(message);
  });

  it('takes a deployed stack with its API URL and a token', () => {
    const args = parseBatchArgs(
      [
        'batch',
        'a.csv',
        '--ensemble',
        'x',
        '--stage',
        'prod',
        '--api',
        'https://abc.example/',
        '--token',
        't0k',
      ],
      {},
    );
    expect(args).toMatchObject({ stage: 'prod', api: 'https://abc.example', token: 't0k' });
  });
});

describe('the progress line', () => {
  it('shows the share of rows done and the rate', () => {
    expect(progressLine(50, 200, 2000, 10)).toBe('[###.......]  25% 50/200 rows 25 rows/s');
    expect(progressLine(0, 0, 0, 4)).toBe('[....]   0% 0 rows 0 rows/s');
  });
});

describe('requests to a deployed API', () => {
  let headers: IncomingHttpHeaders[] = [];
  let url = '';
  const server = createServer((req, res) => {
    headers.push(req.headers);
    res.end('{}');
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/jobs/job-1`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    headers = [];
  });

  it('carries a bearer token in JWT mode', async () => {
    await apiFetch('us-east-1', 'my-jwt')(url);
    expect(headers[0]?.authorization).toBe('Bearer my-jwt');
  });

  it('is signed with SigV4 for execute-api otherwise', async () => {
    await apiFetch('eu-west-1')(url);
    expect(headers[0]?.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=\w+\/\d{8}\/eu-west-1\/execute-api\/aws4_request/,
    );
    expect(headers[0]?.['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });
});
