import { S3Client } from '@aws-sdk/client-s3';
import { S3RVER_CREDENTIALS } from '../../local/s3.js';
import { http } from './stack-process.js';

/** An outside client of the local stack's S3, as a user's script makes one (signed, path style). */
export function stackS3Client(endpoint: string): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A batch job's record once it has ended, polled through the API (`GET /v1/jobs/{jobId}`). */
export async function finishedJob(
  api: string,
  jobId: string,
  { tries = 400, everyMs = 25 } = {},
): Promise<Record<string, unknown>> {
  for (let i = 0; i < tries; i++) {
    const job = await http('GET', `${api}/v1/jobs/${jobId}`);
    if (job.status === 200 && ['SUCCEEDED', 'FAILED'].includes(job.body.status)) return job.body;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`job ${jobId} did not finish`);
}
