import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLAIM_SECONDS, WAIT_MS } from '../../functions/api/idempotency.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';

// The claim's two constants only hold while the deployed timeouts leave them room: edited there
// without a look here, a claim could expire under a request still running.
const ROOT = join(import.meta.dirname, '..', '..');
const inference = JSON.parse(readFileSync(join(ROOT, 'statemachines/inference.asl.json'), 'utf8'));
const config = loadServerlessConfig({ file: join(ROOT, 'serverless.yml') });
const apiTimeout = config.functions.find((f) => f.key === 'api')?.timeoutSeconds ?? Number.NaN;

describe("an idempotency claim's timing, against the deployed timeouts", () => {
  it('holds an id longer than an inference execution or the API function can run', () => {
    expect(CLAIM_SECONDS).toBeGreaterThan(inference.TimeoutSeconds);
    expect(CLAIM_SECONDS).toBeGreaterThan(apiTimeout);
  });

  it('lets a concurrent repeat wait for the first answer only as long as its own function can', () => {
    expect(WAIT_MS / 1000).toBeLessThan(apiTimeout);
  });
});
