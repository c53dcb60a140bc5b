import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ObjectStore } from '../core/ports.js';

/** A text object written piece by piece, with backpressure; nothing is buffered whole. */
export interface ObjectSink {
  write(text: string): Promise<void>;
  close(): Promise<void>;
}

/** Opens a streaming upload of `key`; `close` waits for the object to be stored. */
export function openSink(objects: ObjectStore, key: string, contentType: string): ObjectSink {
  const stream = new PassThrough();
  const done = objects.write(key, stream, contentType);
  // If the upload fails, writers waiting for 'drain' must not hang: surface its error instead.
  const failed = done.then(
    () => new Promise<never>(() => {}),
    (err: unknown) => Promise.reject(err),
  );
  failed.catch(() => {});
  return {
    async write(text) {
      if (!stream.write(text)) await Promise.race([once(stream, 'drain'), failed]);
    },
    async close() {
      stream.end();
      await done;
    },
  };
}
