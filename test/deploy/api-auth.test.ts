import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { cleanEnv, ROOT } from './package-run.js';

interface Printed {
  provider: { httpApi?: { authorizers?: Record<string, unknown> } };
  functions: {
    api: { events: { httpApi: string | { method: string; path: string; authorizer?: unknown } }[] };
  };
}

/** `serverless print --format json`: serverless.yml with every variable resolved, nothing built. */
function print(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'node_modules/serverless/bin/serverless.js'), 'print', '--format', 'json'],
      { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('exit', (code) => done({ code, out }));
  });
}

describe('API authorization mode (FANOUT_API_AUTH)', () => {
  it('puts a JWT authorizer on every route but the health probes with FANOUT_API_AUTH=jwt', async () => {
    const { code, out } = await print({
      FANOUT_API_AUTH: 'jwt',
      FANOUT_JWT_ISSUER: 'https://issuer.example.com/',
      FANOUT_JWT_AUDIENCE: 'fanout-clients',
    });
    expect([code, out.slice(0, 200)]).toEqual([0, expect.any(String)]);
    const config = JSON.parse(out) as Printed;
    expect(config.provider.httpApi?.authorizers).toEqual({
      jwt: {
        identitySource: '$request.header.Authorization',
        issuerUrl: 'https://issuer.example.com/',
        audience: 'fanout-clients',
      },
    });
    for (const { httpApi } of config.functions.api.events) {
      if (typeof httpApi === 'string') expect(httpApi).toMatch(/^GET \/v2\/health\/(live|ready)$/);
      else expect([httpApi.path, httpApi.authorizer]).toEqual([httpApi.path, { name: 'jwt' }]);
    }
  }, 60_000);

  it('refuses a mode it does not know', async () => {
    const { code, out } = await print({ FANOUT_API_AUTH: 'none' });
    expect(code).not.toBe(0);
    expect(out).toContain('Cannot resolve variable at "provider.httpApi.authorizers"');
  }, 60_000);
});
