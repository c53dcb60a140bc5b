// `npm run replay-uploads -- --stage <stage> [--region <region>] [--max <n>] [--dry-run]`:
// replays the upload events the batch trigger of a deployed stack could not handle (its
// dead-letter queue), once their cause is fixed. Exit 0 when every one was replayed, 1 otherwise.
import { parseArgs } from 'node:util';
import { awsReplayPorts, queueUrlOf } from './aws-calls.js';
import { type ReplayOutcome, replayDeadLetters } from './dead-letters.js';

const USAGE = `usage: npm run replay-uploads -- --stage <stage> [--region <region>] [--max <n>] [--dry-run]
       [--queue-url <url>] [--function <name>]

Reads the batch trigger's dead-letter queue (fanout-<stage>-batch-trigger-dlq), invokes the trigger
(fanout-<stage>-batchTrigger) again with each failed upload event, and deletes the ones it handled.
--dry-run lists them with their last error instead. Credentials come from the usual AWS chain and
need sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueUrl and lambda:InvokeFunction.`;

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        stage: { type: 'string' },
        region: { type: 'string' },
        max: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'queue-url': { type: 'string' },
        function: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`replay-uploads: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const stage = values.stage as string | undefined;
  const queueUrl = values['queue-url'] as string | undefined;
  if (!stage && !queueUrl) {
    process.stderr.write(`replay-uploads: --stage (or --queue-url) is required\n${USAGE}\n`);
    return 2;
  }
  const max = Number(values.max ?? 1000);
  if (!Number.isInteger(max) || max < 1) {
    process.stderr.write('replay-uploads: --max must be a positive whole number\n');
    return 2;
  }
  const region = (values.region as string | undefined) ?? process.env.AWS_REGION ?? 'us-east-1';
  const functionName = (values.function as string | undefined) ?? `fanout-${stage}-batchTrigger`;
  const ports = awsReplayPorts({
    region,
    queueUrl: queueUrl ?? (await queueUrlOf(region, `fanout-${stage}-batch-trigger-dlq`)),
    functionName,
  });
  const dryRun = Boolean(values['dry-run']);
  const report = (o: ReplayOutcome) =>
    process.stdout.write(
      `${o.result.padEnd(12)} ${o.uploads.join(' ') || '(no upload in the message)'}\n` +
        `             first failure: ${o.firstError}\n${o.error ? `             now: ${o.error}\n` : ''}`,
    );
  const outcomes = await replayDeadLetters(ports, { max, dryRun, report });
  const count = (r: ReplayOutcome['result']) => outcomes.filter((o) => o.result === r).length;
  process.stdout.write(
    dryRun
      ? `${outcomes.length} failed upload event(s) waiting\n`
      : `${count('replayed')} replayed, ${count('failed again')} failed again, ${count('unreadable')} unreadable\n`,
  );
  return count('failed again') + count('unreadable') === 0 ? 0 : 1;
}

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`replay-uploads: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
