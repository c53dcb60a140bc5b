import { parseArgs } from 'node:util';

/** Options of `fanout batch`. */
export interface BatchArgs {
  file: string;
  ensemble: string;
  out?: string;
  /** Where to save the error file (default with --out: `<out>.errors.csv`, `.csv` dropped first). */
  errors?: string;
  json: boolean;
  api: string;
  bucket?: string;
  region?: string;
  stage?: string;
  /** A JWT for a deployed API in JWT mode; without it, requests to a deployed API are SigV4-signed. */
  token?: string;
  timeoutSeconds: number;
}

export const USAGE = `usage: fanout batch <file.csv|file.jsonl> --ensemble <name> [--out <results.csv>]
       [--errors <errors.csv>] [--json] [--api <url>] [--stage <stage> | --bucket <bucket>]
       [--region <region>] [--token <jwt>] [--timeout <seconds>]

Checks the ensemble is served, uploads the file for batch scoring, shows progress while the job
runs, and prints where the results and errors are (s3:// locations). --out saves the results
there and, when rows were rejected, the error file next to it (results.csv -> results.errors.csv,
or --errors <file>). Without --stage/--bucket it uses the local stack (npm start) at
http://127.0.0.1:$PORT (3000 by default). For a deployed stack give --api (its URL) and --stage or
--bucket; requests are signed with your AWS credentials, or carry --token in the API's JWT mode.`;

/** Thrown for a command line that cannot be run; the message is shown with the usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses `fanout batch ...`; errors name the flag. */
export function parseBatchArgs(argv: string[], env: NodeJS.ProcessEnv): BatchArgs {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals[0] !== 'batch') throw new UsageError(`unknown command "${positionals[0] ?? ''}"`);
  const file = positionals[1];
  if (!file) throw new UsageError('missing <file>');
  if (positionals.length > 2) throw new UsageError(`unexpected argument "${positionals[2]}"`);
  if (!values.ensemble) throw new UsageError('--ensemble <name> is required');
  if ((values.bucket || values.stage) && !values.api && !env.FANOUT_API_URL) {
    throw new UsageError(
      'a deployed stack needs --api <url> (the HttpApiUrl output of sls deploy) to follow the job',
    );
  }
  const timeoutSeconds = Number(values.timeout ?? 3600);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0)
    throw new UsageError('--timeout must be a positive number');
  const port = env.PORT ?? '3000';
  return {
    file,
    ensemble: values.ensemble,
    out: values.out,
    errors: values.errors,
    json: values.json ?? false,
    api: (values.api ?? env.FANOUT_API_URL ?? `http://127.0.0.1:${port}`).replace(/\/$/, ''),
    bucket: values.bucket,
    stage: values.stage,
    token: values.token ?? env.FANOUT_API_TOKEN,
    region: values.region ?? env.AWS_REGION,
    timeoutSeconds,
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ensemble: { type: 'string', short: 'e' },
      out: { type: 'string', short: 'o' },
      errors: { type: 'string' },
      json: { type: 'boolean' },
      api: { type: 'string' },
      bucket: { type: 'string' },
      stage: { type: 'string' },
      region: { type: 'string' },
      token: { type: 'string' },
      timeout: { type: 'string' },
    },
  });
}
