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
});
