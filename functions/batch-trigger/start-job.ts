import { csvLayout, formatOf, looksBinary } from '../core/batch-rows.js';
import { ensembleOfKey, type JobRecord, jobIdFor, UPLOAD_ID_METADATA, uploadKeyOf } from '../core/jobs.js';
import type { Manifest } from '../core/manifest.js';
import type { BatchStarter, JobStore, ObjectStore } from '../core/ports.js';
import { resolveTarget } from '../core/targets.js';

/** One uploaded object, as an S3 `ObjectCreated` event describes it. */
export interface Upload {
  bucket: string;
  key: string;
  etag: string;
  size: number;
  /** The event's sequencer (every S3 event has one) and, on a versioned bucket, the version. */
  sequencer?: string;
  versionId?: string;
}

export interface TriggerDeps {
  manifest: Manifest;
  jobs: JobStore;
  objects: ObjectStore;
  starter: BatchStarter;
  now?: () => Date;
}

/** What happened to one upload. */
export interface TriggerOutcome {
  jobId: string;
  result: 'started' | 'duplicate' | 'rejected';
  reason?: string;
}

const HEAD_BYTES = 64 * 1024;

/**
 * Checks an upload and starts its batch job. Problems visible from the key and the first 64 KiB
 * (unknown ensemble, unsupported extension, empty, binary, bad header, no rows) fail fast with a
 * FAILED job record saying why; the execution name is the job id, so a duplicated event is a no-op
 * while a new upload of the same file is a new job (see uploadKeyOf).
 */
export async function startJob(upload: Upload, deps: TriggerDeps): Promise<TriggerOutcome> {
  // An uploader may name its upload (the CLI does, to know its job id before the event arrives).
  const uploadId = (await deps.objects.metadata(upload.key))?.[UPLOAD_ID_METADATA];
  const identity = {
    etag: upload.etag,
    ...(upload.sequencer ? { sequencer: upload.sequencer } : {}),
    ...(upload.versionId && upload.versionId !== 'null' ? { versionId: upload.versionId } : {}),
    ...(uploadId ? { uploadId } : {}),
  };
  const jobId = jobIdFor(upload.bucket, upload.key, uploadKeyOf(identity));
  const createdAt = (deps.now?.() ?? new Date()).toISOString();
  const ensembleName = ensembleOfKey(upload.key) ?? '';
  const format = formatOf(upload.key);
  const base: JobRecord = {
    jobId,
    status: 'QUEUED',
    ensemble: ensembleName,
    input: { bucket: upload.bucket, key: upload.key, ...identity },
    format,
    rowsTotal: 0,
    rowsOk: 0,
    rowsFailed: 0,
    rowsDegraded: 0,
    createdAt,
  };
  const reason = await precheck(upload, ensembleName, format, deps);
  if (reason) {
    const created = await deps.jobs.createJob({
      ...base,
      status: 'FAILED',
      finishedAt: createdAt,
      error: { code: 'invalid_batch_file', message: reason },
    });
    return { jobId, result: created ? 'rejected' : 'duplicate', reason };
  }
  const started = await deps.starter.start(jobId, {
    jobId,
    bucket: upload.bucket,
    key: upload.key,
    etag: upload.etag,
    ensemble: ensembleName,
    format,
    createdAt,
  });
  if (started === 'exists') return { jobId, result: 'duplicate' };
  // Prepare may already have written the job (every field but the upload it came from).
  if (!(await deps.jobs.createJob(base))) await deps.jobs.updateJob(jobId, { input: base.input });
  return { jobId, result: 'started' };
}

async function precheck(
  upload: Upload,
  ensembleName: string,
  format: string | undefined,
  deps: TriggerDeps,
): Promise<string | undefined> {
  if (!ensembleName) return `key "${upload.key}" is not of the form incoming/<ensemble>/<name>.csv|.jsonl`;
  let features: readonly string[];
  try {
    features = resolveTarget(deps.manifest, ensembleName, true).features;
  } catch (err) {
    return (err as Error).message;
  }
  if (!format) return `"${upload.key}" is neither .csv nor .jsonl`;
  if (upload.size === 0) return 'the file is empty';
  const head = await deps.objects.head(upload.key, HEAD_BYTES);
  if (head.length === 0) return 'the file is empty';
  if (looksBinary(head)) return 'the file is not text (binary content in the first 64 KiB)';
  const text = new TextDecoder().decode(head);
  const lines = text.split('\n');
  const whole = head.length >= upload.size;
  const rows = lines.slice(format === 'csv' ? 1 : 0).filter((l) => l.trim() !== '');
  if (format === 'csv') {
    if (lines.length === 1 && !whole) return 'the header line is longer than 64 KiB';
    const layout = csvLayout((lines[0] ?? '').replace(/\r$/, ''), features);
    if ('error' in layout) return layout.error;
    if (whole && rows.length === 0) return 'the file has a header but no rows';
  } else if (whole && rows.length === 0) {
    return 'the file has no rows';
  }
  return undefined;
}
