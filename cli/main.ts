import { parseBatchArgs, USAGE, UsageError } from './args.js';
import { findTarget, runBatch } from './batch.js';
import { addModel } from './models.js';
import { MODELS_USAGE, parseModelsArgs } from './models-args.js';
import { checkModels } from './models-check.js';

const HELP = `${USAGE}\n\n${MODELS_USAGE}`;

/** `fanout models add|check ...`: exit 0 when done (add) or all ready (check), 1 otherwise. */
async function models(argv: string[]): Promise<number> {
  const io = {
    out: (line: string) => process.stdout.write(`${line}\n`),
    err: (line: string) => process.stderr.write(`${line}\n`),
  };
  try {
    const args = parseModelsArgs(argv, process.env);
    return args.command === 'add' ? await addModel(args, io) : await checkModels(args, io);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`fanout: ${err.message}\n${MODELS_USAGE}\n`);
      return 2;
    }
    process.stderr.write(`fanout: ${(err as Error).message}\n`);
    return 1;
  }
}

/** `fanout batch ...`: exit 0 when the job succeeded, 1 when it failed, 2 for a usage error. */
async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${HELP}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === 'models') {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(`${MODELS_USAGE}\n`);
      return 0;
    }
    return models(argv);
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const io = {
    fetch,
    stdout: (line: string) => process.stdout.write(`${line}\n`),
    stderr: process.stderr,
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
  };
  try {
    const args = parseBatchArgs(argv, process.env);
    const job = await runBatch(args, await findTarget(args, io), io);
    return job.status === 'SUCCEEDED' ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`fanout: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`fanout: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
