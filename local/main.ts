import { relative } from 'node:path';
import { type LocalStack, startLocalStack } from './stack.js';

// `npm start`: the whole stack on 127.0.0.1, one line per endpoint, then `ready`; Ctrl-C stops it.
const PREFIX = 'fanout local stack:';

function optionalPort(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${name}=${raw} is not a port number`);
  return port;
}

async function main(): Promise<void> {
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      sfnPort: optionalPort('FANOUT_SFN_PORT'),
      dynamodbPort: optionalPort('FANOUT_DYNAMODB_PORT'),
      s3Port: optionalPort('FANOUT_S3_PORT'),
      sagemakerPort: optionalPort('FANOUT_SAGEMAKER_PORT'),
    });
  } catch (err) {
    // One line, no stack: these are configuration problems (port taken, bad serverless.yml).
    console.error(`${PREFIX} cannot start: ${(err as Error).message}`);
    process.exitCode = 1;
    return;
  }
  const data = relative(process.cwd(), stack.dataDir) || '.';
  console.log(`${PREFIX} API ${stack.urls.api}`);
  console.log(`${PREFIX} Step Functions ${stack.urls.sfn}`);
  console.log(`${PREFIX} DynamoDB ${stack.urls.dynamodb} (data in ${data})`);
  console.log(
    `${PREFIX} S3 ${stack.urls.s3} (bucket ${stack.bucket}; upload to incoming/<ensemble>/ to score a file)`,
  );
  console.log(`${PREFIX} SageMaker runtime ${stack.urls.sagemaker}`);
  console.log(
    `${PREFIX} dashboard ${stack.urls.api}/dashboard, Prometheus metrics ${stack.urls.api}/metrics`,
  );
  console.log(`${PREFIX} ready`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${PREFIX} ${signal}, stopping`);
    try {
      await stack.stop();
      console.log(`${PREFIX} stopped`);
      // Warm handler state (ONNX sessions, SDK agents) may hold the event loop open; we are done.
      process.exit(0);
    } catch (err) {
      console.error(`${PREFIX} stop failed: ${(err as Error).message}`);
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

await main();
