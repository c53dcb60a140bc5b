import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../local/stack.js';

const NODE = join(REPO_ROOT, 'node_modules/.bin/node');

/** Runs `npm start`'s command (node --import tsx local/main.ts) with the given environment. */
function start(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const { NODE_OPTIONS: _jestOnly, ...inherited } = process.env;
  const child = spawn(NODE, ['--import', 'tsx', 'local/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...inherited, POWERTOOLS_LOG_LEVEL: 'SILENT', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (c: Buffer) => {
    text += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    text += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

async function waitFor(output: () => string, pattern: RegExp, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pattern.test(output())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${pattern}; output so far:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('npm start (local/main.ts)', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'fanout-main-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('prints its endpoints and a ready line, serves, and stops cleanly on SIGTERM', async () => {
    const run = start({ PORT: '0', FANOUT_DATA_DIR: dataDir });
    await waitFor(run.output, /fanout local stack: ready/);
    const api = /fanout local stack: API (http:\/\/127\.0\.0\.1:\d+)/.exec(run.output())?.[1];
    expect(run.output()).toMatch(/fanout local stack: Step Functions http:\/\/127\.0\.0\.1:\d+/);
    expect(run.output()).toMatch(/fanout local stack: DynamoDB http:\/\/127\.0\.0\.1:\d+/);
    const res = await fetch(`${api}/no/such/route`);
    expect(res.status).toBe(404);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('fanout local stack: stopped');
  });

  it('fails with one clear line when the port is taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const run = start({ PORT: String(port), FANOUT_DATA_DIR: dataDir });
      expect(await run.exited).toBe(1);
      const lines = run.output().trim().split('\n');
      expect(lines.at(-1)).toBe(
        `fanout local stack: cannot start: HTTP API: port ${port} on 127.0.0.1 is already in use`,
      );
      expect(run.output()).not.toMatch(/^\s+at /m);
    } finally {
      blocker.close();
    }
  });

  it.each([
    [
      'FANOUT_LOCAL_CONCURRENCY',
      'runner=zero',
      '"runner=zero" is not a concurrency (a whole number from 1 to 256)',
    ],
    ['FANOUT_LOCAL_ISOLATION', 'runer=workers', '"runer=workers" names no function of serverless.yml'],
    [
      'FANOUT_LOCAL_MAP_CONCURRENCY',
      '0',
      'FANOUT_LOCAL_MAP_CONCURRENCY=0 is not a whole number from 1 to 10000',
    ],
  ])('refuses a bad %s with one line naming it', async (variable, value, message) => {
    const run = start({ PORT: '0', FANOUT_DATA_DIR: dataDir, [variable]: value });
    expect(await run.exited).toBe(1);
    const last = run.output().trim().split('\n').at(-1);
    expect(last).toContain('fanout local stack: cannot start: ');
    expect(last).toContain(message);
    expect(run.output()).not.toMatch(/^\s+at /m);
  });
});
