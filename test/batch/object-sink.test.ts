import { openSink } from '../../functions/adapters/object-sink.js';
import { MemoryObjectStore } from '../support/memory-stores.js';

/** Enough text to fill the sink's buffers several times over (Node 22 buffers 64 KiB per side). */
const BIG = 'x'.repeat(1023).concat('\n');
const BIG_WRITES = 1000;

type Body = AsyncIterable<string | Uint8Array> | string;

/** A bucket that refuses every upload without reading it. */
class Refusing extends MemoryObjectStore {
  constructor(private readonly reason: string) {
    super();
  }
  override async write(): Promise<void> {
    throw new Error(this.reason);
  }
}

describe('openSink', () => {
  it('stores the pieces written as one object once closed', async () => {
    const objects = new MemoryObjectStore();
    const sink = openSink(objects, 'jobs/j/rows.jsonl', 'application/x-ndjson');
    await sink.write('{"line":2}\n');
    await sink.write('');
    await sink.write('{"line":3,"id":"é"}\n');
    await sink.close();
    expect(objects.text('jobs/j/rows.jsonl')).toBe('{"line":2}\n{"line":3,"id":"é"}\n');
  });

  it('stores an empty object when nothing was written', async () => {
    const objects = new MemoryObjectStore();
    await openSink(objects, 'empty.csv', 'text/csv').close();
    expect(objects.text('empty.csv')).toBe('');
  });

  it('passes the content type to the store', async () => {
    class Recording extends MemoryObjectStore {
      readonly types: (string | undefined)[] = [];
      override async write(key: string, body: Body, contentType?: string) {
        this.types.push(contentType);
        await super.write(key, body);
      }
    }
    const objects = new Recording();
    await openSink(objects, 'a.csv', 'text/csv').close();
    expect(objects.types).toEqual(['text/csv']);
  });

  it('delivers every byte to a store that reads slower than the writer writes', async () => {
    class Slow extends MemoryObjectStore {
      override async write(key: string, body: Body) {
        const slow = (async function* () {
          for await (const chunk of body as AsyncIterable<Uint8Array>) {
            await new Promise((resolve) => setImmediate(resolve));
            yield chunk;
          }
        })();
        await super.write(key, slow);
      }
    }
    const objects = new Slow();
    const sink = openSink(objects, 'big.csv', 'text/csv');
    for (let i = 0; i < BIG_WRITES; i++) await sink.write(BIG);
    await sink.close();
    expect(objects.objects.get('big.csv')?.length).toBe(BIG.length * BIG_WRITES);
  });

  it('rejects a waiting write with the upload error instead of hanging', async () => {
    const objects = new Refusing('SlowDown: reduce your request rate');
    const sink = openSink(objects, 'big.csv', 'text/csv');
    const writeAll = async () => {
      for (let i = 0; i < BIG_WRITES; i++) await sink.write(BIG);
    };
    await expect(writeAll()).rejects.toThrow('SlowDown');
    await expect(sink.close()).rejects.toThrow('SlowDown');
  });

  it('rejects close with the upload error when a small object could not be stored', async () => {
    const objects = new Refusing('AccessDenied');
    const sink = openSink(objects, 'small.csv', 'text/csv');
    await sink.write('a,b\n');
    await expect(sink.close()).rejects.toThrow('AccessDenied');
  });
});
