import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

/** A local stack running as its own process, started exactly as `npm start` starts it. */
export interface StackProcess {
  api: string;
  dynamodb: string;
  output: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = resolve(ROOT, 'node_modules/.bin/node');

/**
 * Spawns `node --import tsx local/main.ts` (what `npm start` runs) on free ports with its own data
 * folder, and resolves once it prints `ready`. Rejects with the process output if it exits first.
 */
export function startStackProcess(dataDir: string, env: Record<string, string> = {}): Promise<StackProcess> {
  const child: ChildProcess = spawn(NODE, ['--import', 'tsx', 'local/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', FANOUT_DATA_DIR: dataDir, POWERTOOLS_LOG_LEVEL: 'WARN', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`local stack did not start within 60 s:\n${out}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const api = /fanout local stack: API (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      if (api && out.includes('fanout local stack: ready')) {
        clearTimeout(timer);
        resolveStart({
          api,
          dynamodb: /fanout local stack: DynamoDB (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? '',
          output: () => out,
          stop: async () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`local stack exited with ${code} before it was ready:\n${out}`));
    });
  });
}

/** JSON over HTTP, answering status, headers and the parsed body. */
export async function http(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: the raw text is the body.
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
