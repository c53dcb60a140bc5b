import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalStack, REPO_ROOT, startLocalStack } from '../../local/stack.js';

const golden = JSON.parse(
  readFileSync(join(REPO_ROOT, 'models/breast-cancer/golden/bc-logreg.json'), 'utf8'),
) as { rows: number[][] };

describe("a worker instance's output in the local stack", () => {
  let stack: LocalStack;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fanout-worker-output-'));
    stack = await startLocalStack({ port: 0, dataDir, quiet: true });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("reaches the metrics collector: the runner's cold start, counted in its worker, is in /metrics", async () => {
    const res = await fetch(`${stack.urls.api}/v1/ensembles/breast-cancer/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: golden.rows.slice(0, 1) }),
    });
    expect(res.status).toBe(200);
    // The runner runs in worker instances here (the fan-out); its lines arrive before its answers.
    expect(stack.dispatcher.stats().runner?.started).toBeGreaterThan(0);
    const text = await stack.metrics.metricsText();
    const coldStarts = text.split('\n').filter((l) => /cold_starts/.test(l) && l.includes('runner'));
    expect(coldStarts.length).toBeGreaterThan(0);
  });
});
