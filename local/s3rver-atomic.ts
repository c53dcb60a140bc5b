import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

interface StoredObject {
  bucket: string;
  key: string;
  content: Buffer | NodeJS.ReadableStream;
  metadata: Record<string, string>;
}

/** The part of s3rver's FilesystemStore that the patch replaces or calls. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putObject(object: StoredObject): Promise<{ size: number; md5: string }>;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
}

let applied = false;

/**
 * Makes s3rver's PUT of an object atomic, as S3's is: a GET sees the whole previous object or the
 * whole new one, never a part. s3rver writes the object's file in place (truncating it first) and
 * answers the PUT when its bytes have been handed to the write stream, not when they are written:
 * a GET racing a PUT of the same key, or one right after it on a busy machine, read a truncated
 * file (an empty batch upload, whose job then failed with no rows). Here the bytes go to a
 * temporary file in the same folder, which is renamed over the object once closed, and the
 * metadata (ETag, headers) follows the same way. Call before the first s3rver starts.
 */
export function makeS3rverWritesAtomic(): void {
  if (applied) return;
  applied = true;
  const Store = createRequire(import.meta.url)('s3rver/lib/stores/filesystem') as {
    prototype: FilesystemStore;
  };
  Store.prototype.putObject = async function putObject(this: FilesystemStore, object: StoredObject) {
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(dirname(objectPath), { recursive: true });
    const temporary = `${objectPath}.${randomBytes(6).toString('hex')}.partial`;
    const md5 = createHash('md5');
    let size = 0;
    try {
      const count = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          md5.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      const source = Buffer.isBuffer(object.content) ? [object.content] : object.content;
      await pipeline(source as AsyncIterable<Buffer>, count, createWriteStream(temporary));
      const digest = md5.digest('hex');
      // The metadata first: a reader between the renames pairs the previous bytes with the new
      // ETag (a batch job then sees its upload as replaced, which it is), never new bytes with the
      // previous ETag (which would pass for the upload it was started for).
      await atomicMetadata(this, object, digest);
      await rename(temporary, objectPath);
      return { size, md5: digest };
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
  };
}

async function atomicMetadata(store: FilesystemStore, object: StoredObject, md5: string): Promise<void> {
  const md5Path = store.getResourcePath(object.bucket, object.key, 'object.md5');
  const metadataPath = store.getResourcePath(object.bucket, object.key, 'metadata.json');
  const suffix = `.${randomBytes(6).toString('hex')}.partial`;
  // s3rver's own putMetadata picks the headers and user metadata to keep; it writes the two files
  // in place, so it writes them to temporary paths here, which are then renamed.
  const temporaryStore = Object.create(store) as FilesystemStore;
  temporaryStore.getResourcePath = (bucket, key, resource) =>
    `${store.getResourcePath(bucket, key, resource)}${suffix}`;
  await store.putMetadata.call(temporaryStore, object.bucket, object.key, object.metadata, md5);
  await rename(`${md5Path}${suffix}`, md5Path);
  await rename(`${metadataPath}${suffix}`, metadataPath);
}
