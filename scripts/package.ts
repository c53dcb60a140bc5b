/**
 * `npm run package [-- --stage prod --region eu-west-1 --package dir]`: `serverless package` with no
 * AWS credentials and no network beyond the npm registry (or its cache), bounded by a timeout, then
 * the unzipped size of every function package checked against the budget.
 *
 * Why the timeout: if an install step inside serverless-esbuild's packager fails (onnxruntime-node's
 * postinstall is the known case), `serverless package` never exits. FANOUT_PACKAGE_TIMEOUT (seconds,
 * default 300) bounds it; the whole process group is killed and the exit code is 124, as timeout(1).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { formatSizes, overBudget, packageSizes } from './package-sizes.js';

const ROOT = resolve(import.meta.dirname, '..');
const SERVERLESS = resolve(ROOT, 'node_modules/serverless/bin/serverless.js');

const args = process.argv.slice(2);
const timeoutSeconds = Number(process.env.FANOUT_PACKAGE_TIMEOUT ?? 300);
if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
  console.error(`FANOUT_PACKAGE_TIMEOUT=${process.env.FANOUT_PACKAGE_TIMEOUT} is not a number of seconds`);
  process.exit(2);
}

// Packaging must not depend on who runs it: no credentials, no profile, no instance metadata.
const env: NodeJS.ProcessEnv = { ...process.env };
for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'])
  delete env[k];
Object.assign(env, {
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/fanout-package-credentials',
  AWS_CONFIG_FILE: '/nonexistent/fanout-package-config',
  AWS_EC2_METADATA_DISABLED: 'true',
  // onnxruntime-node's postinstall downloads CUDA add-ons from a host that may be unreachable.
  ONNXRUNTIME_NODE_INSTALL: 'skip',
  SLS_TELEMETRY_DISABLED: '1',
});

const started = Date.now();
const child = spawn(process.execPath, [SERVERLESS, 'package', ...args], {
  cwd: ROOT,
  env,
  stdio: 'inherit',
  // Its own process group, so a timeout also ends the npm installs it started.
  detached: true,
});

let timedOut = false;
const timer = setTimeout(() => {
  timedOut = true;
  console.error(`\nnpm run package: no result after ${timeoutSeconds} s; stopping serverless`);
  killGroup('SIGTERM');
  setTimeout(() => killGroup('SIGKILL'), 5000).unref();
}, timeoutSeconds * 1000);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killGroup(signal);
    process.exit(130);
  });
}

child.on('exit', (code, signal) => {
  clearTimeout(timer);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (timedOut) process.exit(124);
  if (code !== 0) {
    console.error(
      `npm run package: serverless package failed (${signal ?? `exit ${code}`}) after ${seconds} s`,
    );
    process.exit(code ?? 1);
  }
  const sizes = packageSizes(resolve(ROOT, outputDir(args)));
  console.log(`\nPackaged in ${seconds} s. Function packages:\n${formatSizes(sizes)}`);
  const over = overBudget(sizes);
  if (over.length > 0) {
    console.error(`\n${over.join('\n')}`);
    process.exit(1);
  }
});

function killGroup(signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Where serverless writes the packages: `--package dir` (or `-p`), else `.serverless`. */
function outputDir(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a.startsWith('--package=')) return a.slice('--package='.length);
    if ((a === '--package' || a === '-p') && argv[i + 1]) return argv[i + 1] as string;
  }
  return '.serverless';
}
