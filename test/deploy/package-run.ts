import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

/** A CloudFormation resource as serverless writes it. */
export interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string | string[];
  Condition?: string;
}

/** The output of one `npm run package` run. */
export interface Packaged {
  dir: string;
  resources: Record<string, Resource>;
  /** serverless-state.json: the resolved service as serverless saw it. */
  state: { service: { provider: { stage: string; region: string } } };
  /** What `npm run package` printed (for failure messages). */
  output: string;
}

// Variables serverless.yml reads when packaging: unset, so the defaults are what is tested.
const DEPLOY_PARAMETERS = [
  'FANOUT_SAGEMAKER_MEMBERS',
  'FANOUT_API_AUTH',
  'FANOUT_JWT_ISSUER',
  'FANOUT_JWT_AUDIENCE',
  'FANOUT_DATA_BUCKET',
  'FANOUT_ALARM_EMAIL',
];

/** The environment for a serverless command run by a test: defaults only, and no jest flags. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of DEPLOY_PARAMETERS) if (!(k in extra)) delete env[k];
  delete env.NODE_OPTIONS;
  return env;
}

/**
 * Runs `npm run package -- --package <tmp> --stage <stage> --region <region>` (exactly what CI and
 * a developer run, output in a temporary folder so `.serverless/` is left alone) and reads the
 * compiled template. Rejects with the command's output if it fails.
 */
export async function runPackage(stage: string, region: string): Promise<Packaged> {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-package-'));
  const args = ['run', 'package', '--', '--package', dir, '--stage', stage, '--region', region];
  const output = await new Promise<string>((done, fail) => {
    const child = spawn('npm', args, {
      cwd: ROOT,
      env: cleanEnv({ FANOUT_PACKAGE_TIMEOUT: '240' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('error', fail);
    child.on('exit', (code) =>
      code === 0 ? done(out) : fail(new Error(`npm run package exited with ${code}:\n${out.slice(-4000)}`)),
    );
  });
  const template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
  const state = JSON.parse(readFileSync(join(dir, 'serverless-state.json'), 'utf8'));
  return { dir, resources: template.Resources, state, output };
}

/** `serverless print --format json`: serverless.yml with every variable resolved, nothing built. */
export function printConfig(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
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
