import type { JobProgress, JobRecord, RowResult } from '../../functions/core/jobs.js';
import type { JobStore, ObjectStore, ResultCache } from '../../functions/core/ports.js';
import type { CacheEntry } from '../../functions/core/result-cache.js';

/** An in-memory JobStore with the same semantics as the DynamoDB one (conditional create, ADD). */
export class MemoryJobStore implements JobStore {
  readonly jobs = new Map<string, JobRecord>();
  readonly rows = new Map<string, Map<string, RowResult>>();

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
  async putRows(jobId: string, rows: readonly RowResult[]) {
    const table = this.rows.get(jobId) ?? new Map<string, RowResult>();
    for (const r of rows) table.set(r.rowId, structuredClone(r));
    this.rows.set(jobId, table);
  }
}

/** An in-memory bucket. Reads come back in small chunks to exercise streaming code. */
export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, Buffer>();
  constructor(
    readonly bucket = 'test-bucket',
    private readonly chunkSize = 7,
  ) {}

  async read(key: string): Promise<AsyncIterable<Uint8Array>> {
    const body = this.objects.get(key);
    if (!body)
      throw Object.assign(new Error(`s3://${this.bucket}/${key} does not exist`), { name: 'NotFoundError' });
    const size = this.chunkSize;
    return (async function* () {
      for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
    })();
  }
  async head(key: string, bytes: number) {
    return (this.objects.get(key) ?? Buffer.alloc(0)).subarray(0, bytes);
  }
  async write(key: string, body: AsyncIterable<string | Uint8Array> | string) {
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
