import { loadConfig } from '../../functions/core/config.js';
import { ConfigError } from '../../functions/core/errors.js';

describe('configuration from the environment', () => {
  it("reads the runner function's timeout, and leaves it unset where the deployment does not say", () => {
    expect(loadConfig({ FANOUT_RUNNER_TIMEOUT_SECONDS: '30' }).runnerTimeoutSeconds).toBe(30);
    expect(loadConfig({}).runnerTimeoutSeconds).toBeUndefined();
  });

  it.each([
    'thirty',
    '1',
    '30.5',
    '901',
  ])('refuses FANOUT_RUNNER_TIMEOUT_SECONDS=%s, naming the variable', (value) => {
    expect(() => loadConfig({ FANOUT_RUNNER_TIMEOUT_SECONDS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ FANOUT_RUNNER_TIMEOUT_SECONDS: value })).toThrow(
      /^environment variable FANOUT_RUNNER_TIMEOUT_SECONDS: /,
    );
  });

  it("bounds the result cache's memory tier: 10,000 entries for 300 s unless told, 0 entries turns it off", () => {
    expect(loadConfig({}).cacheMemory).toEqual({ maxEntries: 10_000, maxAgeSeconds: 300 });
    expect(
      loadConfig({ FANOUT_CACHE_MEMORY_ENTRIES: '0', FANOUT_CACHE_MEMORY_SECONDS: '60' }).cacheMemory,
    ).toEqual({ maxEntries: 0, maxAgeSeconds: 60 });
  });

  it.each([
    ['FANOUT_CACHE_MEMORY_ENTRIES', '-1'],
    ['FANOUT_CACHE_MEMORY_ENTRIES', 'lots'],
    ['FANOUT_CACHE_MEMORY_SECONDS', '0'],
    ['FANOUT_CACHE_MEMORY_SECONDS', '1.5'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^environment variable ${name}: `));
  });

  it('preloads members only when told (on-demand Lambda instances load what they run), and only true or false', () => {
    expect(loadConfig({}).preloadModels).toBe(false);
    expect(loadConfig({ FANOUT_PRELOAD_MODELS: 'true' }).preloadModels).toBe(true);
    expect(() => loadConfig({ FANOUT_PRELOAD_MODELS: 'yes' })).toThrow(
      /^environment variable FANOUT_PRELOAD_MODELS: /,
    );
  });
});
