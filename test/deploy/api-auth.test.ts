import { printConfig } from './package-run.js';

interface Printed {
  provider: { httpApi?: { authorizers?: Record<string, unknown> } };
  functions: {
    api: { events: { httpApi: string | { method: string; path: string; authorizer?: unknown } }[] };
  };
}

const print = printConfig;

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
