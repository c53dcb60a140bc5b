import { createHash } from 'node:crypto';
import type { PredictionRecord } from '../../functions/core/combine.js';
import { UploadReplacedError } from '../../functions/core/errors.js';
import type { JobProgress, JobRecord, RowResult, StoredRows } from '../../functions/core/jobs.js';
import type {
  Claim,
  IdEntry,
  IdempotencyStore,
  JobStore,
  ObjectStore,
  PredictionStore,
  PutResult,
  ResultCache,
} from '../../functions/core/ports.js';
import type { CacheEntry } from '../../functions/core/result-cache.js';

type Item =
  | { state: 'completed'; record: PredictionRecord; requestHash?: string }
  | { state: 'in-progress'; ensemble: string; requestHash: string; expiresAt: number; token: string };

/**
 * An in-memory prediction store with the DynamoDB one's semantics: one item per id, a claim is a
 * conditional put (free or expired), the record completes a claim and never overwrites a record.
 */
export class MemoryPredictionStore implements PredictionStore, IdempotencyStore {
  readonly items = new Map<string, Item>();
  puts = 0;
  claims = 0;

  async putPrediction(record: PredictionRecord): Promise<PutResult> {
    const item = this.items.get(record.id);
    if (item?.state === 'completed') return { record: structuredClone(item.record), created: false };
    this.puts++;
    this.items.set(record.id, {
      state: 'completed',
      record: structuredClone(record),
      requestHash: item?.requestHash,
    });
    return { record, created: true };
  }
  async getPrediction(id: string) {
    const item = this.items.get(id);
    return item?.state === 'completed' ? structuredClone(item.record) : undefined;
  }
  async getEntry(id: string): Promise<IdEntry | undefined> {
    const item = this.items.get(id);
    if (!item) return undefined;
    if (item.state === 'completed') return structuredClone(item);
    const { token: _token, ...rest } = item;
    return { ...rest };
  }
  async claim(claim: Claim, nowMs: number) {
    const item = this.items.get(claim.id);
    if (item && !(item.state === 'in-progress' && item.expiresAt < nowMs)) {
      return { claimed: false as const, existing: await this.getEntry(claim.id) };
    }
    this.claims++;
    this.items.set(claim.id, { state: 'in-progress', ...claim });
    return { claimed: true as const };
  }
  async release(id: string, token: string) {
    const item = this.items.get(id);
    if (item?.state === 'in-progress' && item.token === token) this.items.delete(id);
  }
}

/** An in-memory JobStore with the same semantics as the DynamoDB one (conditional create, ADD). */
export class MemoryJobStore implements JobStore {
  readonly jobs = new Map<string, JobRecord>();
  readonly batches = new Map<string, Map<number, StoredRows>>();

  async createJob(job: JobRecord) {
    if (this.jobs.has(job.jobId)) return false;
    this.jobs.set(job.jobId, structuredClone(job));
    return true;
  }
  async getJob(jobId: string) {
    const job = this.jobs.get(jobId);
    return job && structuredClone(job);
  }
  async updateJob(jobId: string, patch: Partial<JobRecord>) {
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    this.jobs.set(jobId, {
      ...(this.jobs.get(jobId) ?? ({ jobId } as JobRecord)),
      ...structuredClone(defined),
    });
  }
  async addProgress(jobId: string, p: JobProgress) {
    const job = this.jobs.get(jobId) ?? ({ jobId, rowsOk: 0, rowsFailed: 0, rowsDegraded: 0 } as JobRecord);
    job.rowsOk = (job.rowsOk ?? 0) + p.rowsOk;
    job.rowsFailed = (job.rowsFailed ?? 0) + p.rowsFailed;
    job.rowsDegraded = (job.rowsDegraded ?? 0) + p.rowsDegraded;
    job.rowsCached = (job.rowsCached ?? 0) + (p.rowsCached ?? 0);
    job.rowsScored = (job.rowsScored ?? 0) + (p.rowsScored ?? 0);
    this.jobs.set(jobId, job);
  }
  async putBatch(jobId: string, batch: StoredRows) {
    const table = this.batches.get(jobId) ?? new Map<number, StoredRows>();
    table.set(batch.firstLine, structuredClone(batch));
    this.batches.set(jobId, table);
  }
  async batchCounts(jobId: string) {
    return [...(this.batches.get(jobId)?.values() ?? [])]
      .sort((a, b) => a.firstLine - b.firstLine)
      .map(({ firstLine, cached, scored }) => ({ firstLine, cached, scored }));
  }
  /** Every stored row of the job, in line order. */
  rowsOf(jobId: string): RowResult[] {
    return [...(this.batches.get(jobId)?.values() ?? [])]
      .sort((a, b) => a.firstLine - b.firstLine)
      .flatMap((b) => b.rows);
  }
}

/** An in-memory bucket. Reads come back in small chunks to exercise streaming code. */
export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, Buffer>();
  constructor(
    readonly bucket = 'test-bucket',
    private readonly chunkSize = 7,
  ) {}

  async read(key: string, expect: { etag?: string } = {}): Promise<AsyncIterable<Uint8Array>> {
    const body = this.objects.get(key);
    if (!body)
      throw Object.assign(new Error(`s3://${this.bucket}/${key} does not exist`), { name: 'NotFoundError' });
    const wanted = expect.etag?.replace(/^"|"$/g, '');
    if (wanted && wanted !== etagOf(body)) {
      throw new UploadReplacedError(
        `s3://${this.bucket}/${key} was replaced (ETag ${wanted} is now ${etagOf(body)})`,
      );
    }
    const size = this.chunkSize;
    return (async function* () {
      for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
    })();
  }
  /** User metadata by key, as an uploader set it (`x-amz-meta-*`). */
  readonly metadataOf = new Map<string, Record<string, string>>();

  async head(key: string, bytes: number) {
    return (this.objects.get(key) ?? Buffer.alloc(0)).subarray(0, bytes);
  }
  async metadata(key: string) {
    return this.objects.has(key) ? { ...(this.metadataOf.get(key) ?? {}) } : undefined;
  }
  async write(
    key: string,
    body: AsyncIterable<string | Uint8Array> | string,
    _contentType?: string,
    metadata?: Record<string, string>,
  ) {
    if (metadata) this.metadataOf.set(key, { ...metadata });
    else this.metadataOf.delete(key);
    if (typeof body === 'string') {
      this.objects.set(key, Buffer.from(body));
      return;
    }
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(Buffer.from(chunk));
    this.objects.set(key, Buffer.concat(parts));
  }
  async list(prefix: string) {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  location(key: string) {
    return `s3://${this.bucket}/${key}`;
  }
  text(key: string): string | undefined {
    return this.objects.get(key)?.toString('utf8');
  }
}

/**
 * An in-memory ResultCache with DynamoDB's behaviour: expired entries stay until deleted (readers
 * check the expiry), a put replaces. Reads and writes can be made to fail.
 */
export class MemoryResultCache implements ResultCache {
  readonly entries = new Map<string, CacheEntry>();
  readonly reads: string[][] = [];
  readonly writes: CacheEntry[][] = [];
  failReads?: Error;
  failWrites?: Error;

  async get(keys: readonly string[]) {
    this.reads.push([...keys]);
    if (this.failReads) throw this.failReads;
    const out = new Map<string, CacheEntry>();
    for (const k of keys) {
      const e = this.entries.get(k);
      if (e) out.set(k, structuredClone(e));
    }
    return out;
  }
  async put(entries: readonly CacheEntry[]) {
    if (this.failWrites) throw this.failWrites;
    this.writes.push(structuredClone([...entries]));
    for (const e of entries) this.entries.set(e.key, structuredClone(e));
  }
}

/** The ETag S3 gives a single-part upload: the MD5 of its bytes, in hex. */
export function etagOf(body: Buffer | string): string {
  return createHash('md5').update(body).digest('hex');
}
