import { spawn } from 'node:child_process';
import { ROOT } from './data.js';
import { NODE } from './stack.js';

const MARK = 'BENCH_RESULT ';

/**
 * Runs `bench/child.ts <section>` in a fresh process (its own heap, sessions and environment, so one
 * measurement cannot disturb the next) and answers the JSON it reports. Bounded by `timeoutMs`.
 */
export function runChild<T>(
  section: string,
  options: unknown,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 300_000,
): Promise<T> {
  return new Promise((resolveResult, reject) => {
    const child = spawn(NODE, ['--import', 'tsx', 'bench/child.ts', section], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-20_000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      if (code === 0 && line) return resolveResult(JSON.parse(line.slice(MARK.length)) as T);
      reject(new Error(`bench section ${section} failed (${signal ?? `exit ${code}`}):\n${err || out}`));
    });
    child.stdin.end(JSON.stringify(options));
  });
}

/** The child side: reads the options from stdin, runs `fn`, prints the result line. */
export async function childMain(fn: (options: never) => Promise<unknown>): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const result = await fn((input ? JSON.parse(input) : {}) as never);
  process.stdout.write(`${MARK}${JSON.stringify(result)}\n`);
}
