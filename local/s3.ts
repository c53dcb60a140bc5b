import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import S3rver from 's3rver';
import { decodeS3Key } from '../functions/core/jobs.js';
import { HOST, type RunningServer } from './http-util.js';
import { makeS3rverWritesAtomic } from './s3rver-atomic.js';
import type { S3EventConfig } from './serverless-config.js';

/** s3rver accepts this key pair only; the stack signs every S3 call with it. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** A function to call for uploads matching one of its `s3` events. */
export interface S3Subscriber {
  functionKey: string;
  event: S3EventConfig;
}

/** Options for {@link startS3}. */
export interface S3Options {
  dataDir: string;
  port?: number;
  buckets: readonly string[];
  subscribers: readonly S3Subscriber[];
  /** Invokes a function asynchronously, like S3 invoking Lambda; errors are only logged. */
  invoke: (functionKey: string, event: unknown) => Promise<unknown>;
  log: (line: string) => void;
}

/**
 * S3 on 127.0.0.1 (s3rver, objects kept on disk under `<dataDir>/s3`). Uploads raise the real S3
 * event shape in-process; each `ObjectCreated` event that matches a function's `s3` event in
 * serverless.yml (bucket, event type, prefix, suffix) invokes it, as S3 notifications do on AWS.
 */
export async function startS3(options: S3Options): Promise<RunningServer> {
  makeS3rverWritesAtomic();
  const directory = join(options.dataDir, 's3');
  mkdirSync(directory, { recursive: true });
  const server = new S3rver({
    address: HOST,
    port: options.port ?? 0,
    silent: true,
    directory,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  const pending = new Set<Promise<unknown>>();
  server.on('event', (raw: unknown) => {
    const event = JSON.parse(JSON.stringify(raw)) as { Records?: S3Record[] };
    for (const record of event.Records ?? []) {
      // s3rver reports the raw key; S3 URL-encodes it (spaces as '+'), and handlers decode it so.
      record.s3.object.key = encodeKey(record.s3.object.key);
      // s3rver's sequencer is Date.now(), a number two PUTs in one millisecond share; S3's is a hex
      // string that grows with each PUT of a key. The batch trigger tells uploads apart by it.
      record.s3.object.sequencer = nextSequencer();
      for (const s of options.subscribers) {
        if (!matches(s.event, record)) continue;
        const call = options
          .invoke(s.functionKey, { Records: [record] })
          .catch((err: unknown) =>
            options.log(
              `fanout local stack: ${s.functionKey} failed on ${record.s3.object.key}: ${(err as Error).message}`,
            ),
          )
          .finally(() => pending.delete(call));
        pending.add(call);
      }
    }
  });
  const { port } = await server.run();
  return {
    url: `http://${HOST}:${port}`,
    port,
    // s3rver is a Koa app: the same routing, checks and events for requests made in this process.
    requestListener: server.callback(),
    close: async () => {
      await server.close();
      await Promise.allSettled(pending);
    },
  };
}

interface S3Record {
  eventName: string;
  s3: { bucket: { name: string }; object: { key: string; sequencer?: unknown } };
}

let lastSequencer = 0n;

/**
 * A sequencer as S3 writes one: upper-case hex, 18 digits, increasing with every PUT (here across
 * the whole process, which also makes it increase per key): the time in milliseconds, shifted to
 * leave room for 65,536 PUTs within one millisecond.
 */
export function nextSequencer(): string {
  const now = BigInt(Date.now()) << 16n;
  lastSequencer = now > lastSequencer ? now : lastSequencer + 1n;
  return lastSequencer.toString(16).toUpperCase().padStart(18, '0');
}

/** S3 notification matching: bucket, event type (with `*`), key prefix and suffix. */
export function matches(config: S3EventConfig, record: S3Record): boolean {
  if (record.s3.bucket.name !== config.bucket) return false;
  const wanted = config.event.replace(/^s3:/, '');
  const type = wanted.endsWith(':*') ? wanted.slice(0, -1) : wanted;
  const ok = wanted.endsWith(':*') ? record.eventName.startsWith(type) : record.eventName === type;
  const key = decodeS3Key(record.s3.object.key);
  return ok && key.startsWith(config.prefix ?? '') && key.endsWith(config.suffix ?? '');
}

/** A key encoded the way S3 event notifications encode it. */
export function encodeKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/gi, '/');
}
