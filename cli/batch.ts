import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { formatOf } from '../functions/core/batch-rows.js';
import { type JobRecord, jobIdFor, UPLOAD_ID_METADATA, uploadKeyOf } from '../functions/core/jobs.js';
import { type BatchArgs, UsageError } from './args.js';
import { progressLine } from './progress.js';
import { apiFetch } from './signed-fetch.js';

/** Where a batch goes: the bucket (and its S3 client) and the API that serves job records. */
export interface BatchTarget {
  s3: S3Client;
  bucket: string;
  api: string;
  /** How to call the API: plain for the local stack, signed or with a token for a deployed one. */
  fetch: typeof fetch;
}

/** How the CLI talks to the world; `fetch` and the clock are injectable for tests. */
export interface CliIo {
  fetch: typeof fetch;
  stdout: (line: string) => void;
  stderr: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
  sleep: (ms: number) => Promise<void>;
}

/**
 * Finds the target: the local stack describes itself at `GET /_local/stack` on its API port;
 * a deployed stack is named by --bucket or --stage (credentials from the usual AWS chain).
 */
export async function findTarget(args: BatchArgs, io: CliIo): Promise<BatchTarget> {
  if (args.bucket || args.stage) {
    const region = args.region ?? 'us-east-1';
    return {
      s3: new S3Client({ region }),
      bucket: args.bucket ?? `fanout-${args.stage}-data`,
      api: args.api,
      fetch: apiFetch(region, args.token),
    };
  }
  let info: {
    s3Endpoint: string;
    bucket: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  };
  try {
    const res = await io.fetch(`${args.api}/_local/stack`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    info = (await res.json()) as typeof info;
  } catch (err) {
    throw new UsageError(
      `no local stack answers at ${args.api} (${(err as Error).message}); start it with \`npm start\`, or pass --stage/--bucket for a deployed stack`,
    );
  }
  return {
    s3: new S3Client({
      region: info.region,
      endpoint: info.s3Endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    bucket: info.bucket,
    api: args.api,
    fetch: io.fetch,
  };
}

/**
 * Checks the ensemble, uploads, follows the job to its end, prints the summary and saves the
 * results (and the error file) when asked. Resolves with the final job record.
 */
export async function runBatch(args: BatchArgs, target: BatchTarget, io: CliIo): Promise<JobRecord> {
  if (!formatOf(args.file)) throw new UsageError(`${args.file}: expected a .csv or .jsonl file`);
  const size = await stat(args.file).then(
    (s) => s.size,
    () => {
      throw new UsageError(`${args.file}: no such file`);
    },
  );
  await checkServed(args.ensemble, target);
  const key = `incoming/${args.ensemble}/${basename(args.file)}`;
  // The upload names itself, so this run knows its job id before the upload event arrives; a
  // second run with the same file is a new upload and a new job.
  const uploadId = randomUUID();
  await new Upload({
    client: target.s3,
    params: {
      Bucket: target.bucket,
      Key: key,
      Body: createReadStream(args.file),
      Metadata: { [UPLOAD_ID_METADATA]: uploadId },
    },
  }).done();
  const jobId = jobIdFor(target.bucket, key, uploadKeyOf({ uploadId }));
  io.stderr.write(`uploaded ${args.file} (${size} bytes) to s3://${target.bucket}/${key}\njob ${jobId}\n`);
  const job = await follow(jobId, args, target, io);
  summarise(job, io);
  if (args.out && job.resultsLocation) {
    await download(target, job.resultsLocation, args.out);
    io.stderr.write(`results saved to ${args.out}\n`);
  }
  const errorsFile = args.errors ?? (args.out ? `${args.out.replace(/\.csv$/i, '')}.errors.csv` : undefined);
  if (errorsFile && job.errorsLocation && job.rowsFailed > 0) {
    await download(target, job.errorsLocation, errorsFile);
    io.stderr.write(
      `errors saved to ${errorsFile} (${job.rowsFailed} row${job.rowsFailed === 1 ? '' : 's'}: line,id,reason)\n`,
    );
  }
  if (args.json) {
    io.stdout(
      JSON.stringify({
        jobId: job.jobId,
        status: job.status,
        rowsTotal: job.rowsTotal,
        rowsOk: job.rowsOk,
        rowsFailed: job.rowsFailed,
        resultsLocation: job.resultsLocation ?? null,
        errorsLocation: job.errorsLocation ?? null,
        ...(job.rowsScored === undefined
          ? {}
          : { rowsCached: job.rowsCached ?? 0, rowsScored: job.rowsScored }),
      }),
    );
  }
  return job;
}

/**
 * Refuses, before anything is uploaded, a name the API does not serve (an ensemble, or a single
 * model). The API's 404 lists what is served.
 */
async function checkServed(name: string, target: BatchTarget): Promise<void> {
  let res: Response;
  try {
    res = await target.fetch(`${target.api}/v2/models/${encodeURIComponent(name)}`);
  } catch (err) {
    throw new Error(`cannot reach the API at ${target.api} to check "${name}": ${(err as Error).message}`);
  }
  if (res.ok) return;
  const body = (await res.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
  const why = body?.error?.message ?? `HTTP ${res.status}`;
  if (res.status === 404) throw new Error(`nothing uploaded: ${why}`);
  throw new Error(`nothing uploaded: checking "${name}" at ${target.api} answered ${res.status}: ${why}`);
}

async function follow(jobId: string, args: BatchArgs, target: BatchTarget, io: CliIo): Promise<JobRecord> {
  const started = Date.now();
  const tty = Boolean(io.stderr.isTTY);
  let lastPrinted = 0;
  for (;;) {
    const res = await target.fetch(`${target.api}/v1/jobs/${encodeURIComponent(jobId)}`);
    if (res.ok) {
      const job = (await res.json()) as JobRecord;
      const done = (job.rowsOk ?? 0) + (job.rowsFailed ?? 0);
      const line = progressLine(done, job.rowsTotal ?? 0, Date.now() - started);
      if (tty) io.stderr.write(`\r${line}`);
      else if (Date.now() - lastPrinted > 2000) {
        io.stderr.write(`${line}\n`);
        lastPrinted = Date.now();
      }
      if (job.status === 'SUCCEEDED' || job.status === 'FAILED') {
        if (tty) io.stderr.write('\n');
        return job;
      }
    } else if (res.status !== 404) {
      throw new Error(`GET /v1/jobs/${jobId} answered ${res.status}: ${await res.text()}`);
    }
    if (Date.now() - started > args.timeoutSeconds * 1000) {
      throw new Error(`job ${jobId} did not finish within ${args.timeoutSeconds} s`);
    }
    await io.sleep(250);
  }
}

function summarise(job: JobRecord, io: CliIo): void {
  const seconds =
    job.startedAt && job.finishedAt ? (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000 : 0;
  const lines = [
    `status   ${job.status}${job.error ? `: ${job.error.message}` : ''}`,
    `rows     ${job.rowsTotal} total, ${job.rowsOk} scored (${job.rowsDegraded ?? 0} degraded), ${job.rowsFailed} failed${seconds ? ` in ${seconds.toFixed(1)} s` : ''}`,
  ];
  const cached = job.rowsCached ?? 0;
  if (job.rowsScored !== undefined && (cached > 0 || job.rowsScored < job.rowsOk)) {
    // Repeated rows are scored once per batch, and cached ones not at all.
    lines.push(
      `members  ran on ${job.rowsScored} distinct rows; ${cached} rows answered from the result cache`,
    );
  }
  if (job.resultsLocation) lines.push(`results  ${job.resultsLocation}`);
  if (job.errorsLocation) lines.push(`errors   ${job.rowsFailed > 0 ? job.errorsLocation : 'none'}`);
  io.stderr.write(`${lines.join('\n')}\n`);
}

async function download(target: BatchTarget, location: string, out: string): Promise<void> {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
  if (!m) throw new Error(`unexpected results location ${location}`);
  const got = await target.s3.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }));
  await pipeline(got.Body as Readable, createWriteStream(out));
}
