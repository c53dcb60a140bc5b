import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifest } from '../../functions/core/manifest.js';
import { REPO_ROOT, startLocalStack } from '../../local/stack.js';

// The runner's worker instances start with the stack, ahead of any request: each loads every ONNX
// member of the manifest at init (FANOUT_PRELOAD_MODELS, on by default locally), as an instance of
// provisioned concurrency would, unless the user turns it off.
const onnxMembers = [...loadManifest(join(REPO_ROOT, 'models/manifest.json')).models.values()]
  .filter((m) => m.kind === 'onnx')
  .map((m) => m.id);

async function preloadLines(env: Record<string, string>): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-preload-'));
  const saved = { ...process.env };
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'INFO' }, env);
  const lines: Record<string, unknown>[] = [];
  try {
    const stack = await startLocalStack({
      port: 0,
      dataDir: dir,
      quiet: true,
      onOutput: (line, _stream, key) => {
        if (key === 'runner' && line.includes('"models preloaded"')) lines.push(JSON.parse(line));
      },
    });
    await stack.stop();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

describe("the local stack's runner instances", () => {
  it('load every ONNX member of the manifest before the first request', async () => {
    const lines = await preloadLines({});
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect((line.loaded as string[]).sort()).toEqual([...onnxMembers].sort());
      expect(line.failed).toBeUndefined();
    }
  }, 60_000);

  it('load none when the user sets FANOUT_PRELOAD_MODELS=false', async () => {
    expect(await preloadLines({ FANOUT_PRELOAD_MODELS: 'false' })).toEqual([]);
  }, 60_000);
});
