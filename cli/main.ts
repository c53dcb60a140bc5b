import { parseBatchArgs, USAGE, UsageError } from './args.js';
import { findTarget, runBatch } from './batch.js';

/** `fanout batch ...`: exit 0 when the job succeeded, 1 when it failed, 2 for a usage error. */
async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return argv.length === 0 ? 2 : 0;
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
