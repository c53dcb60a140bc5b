import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NotFoundError, UploadReplacedError, UpstreamError } from '../core/errors.js';
import type { ObjectStore } from '../core/ports.js';

/** The data bucket through the S3 API (AWS, or s3rver in the local stack). */
export class S3ObjectStore implements ObjectStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async read(key: string, expect: { etag?: string } = {}): Promise<AsyncIterable<Uint8Array>> {
    let out: GetObjectCommandOutput;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw this.fail('reading', key, err);
    }
    // The ETag of the bytes this response carries (not a separate HEAD, which could race a PUT).
    // s3rver has no If-Match on GET, so the comparison is here rather than in the request.
    const wanted = unquote(expect.etag);
    const got = unquote(out.ETag);
    if (wanted && got && wanted !== got) {
      (out.Body as Readable | undefined)?.destroy();
      throw new UploadReplacedError(
        `${this.location(key)} was replaced after this job started: the upload had ETag ${wanted}, the bucket now holds ETag ${got} (the newer upload is scored by a job of its own)`,
      );
    }
    return out.Body as Readable;
  }

  async head(key: string, bytes: number): Promise<Uint8Array> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${bytes - 1}` }),
      );
      return (await out.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (err) {
      // An empty object has no byte 0: S3 answers 416 to any range.
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416)
        return new Uint8Array();
      throw this.fail('reading', key, err);
    }
  }

  async metadata(key: string): Promise<Record<string, string> | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Metadata ?? {};
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (err as Error).name === 'NotFound') return undefined;
      throw this.fail('reading the metadata of', key, err);
    }
  }

  async write(
    key: string,
    body: AsyncIterable<string | Uint8Array> | string,
    contentType: string,
    metadata?: Record<string, string>,
  ): Promise<void> {
    try {
      const stream = typeof body === 'string' ? body : Readable.from(body);
      await new Upload({
        client: this.client,
        params: {
          Bucket: this.bucket,
          Key: key,
          Body: stream,
          ContentType: contentType,
          ...(metadata ? { Metadata: metadata } : {}),
        },
        queueSize: 2,
        partSize: 8 * 1024 * 1024,
      }).done();
    } catch (err) {
      throw this.fail('writing', key, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const out = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.fail('listing', prefix, err);
    }
    return keys.sort();
  }

  location(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  private fail(what: string, key: string, err: unknown) {
    if (err instanceof NoSuchKey || (err as Error).name === 'NoSuchKey') {
      return new NotFoundError(`${this.location(key)} does not exist`, { cause: err });
    }
    return new UpstreamError(`${what} ${this.location(key)} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** An ETag without the quotes S3 puts around it in headers (events carry it bare). */
function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}
