import { createRequire } from 'node:module';

type Callback = (err: Error | null | undefined, value?: unknown) => void;

interface TableDb {
  get(key: string, cb: Callback): void;
  put(key: string, value: unknown, cb?: Callback): void;
  del(key: string, cb?: Callback): void;
  batch(ops: { type: string; key: string; value?: unknown }[], cb?: Callback): void;
}

/** The private API of classic-level (abstract-level 3) that dynalite's LevelDB goes through. */
interface LevelInternals {
  _get(key: unknown, options: unknown): Promise<unknown>;
  _getSync?(key: unknown, options: unknown): unknown;
  _put(key: unknown, value: unknown, options: { sync?: boolean }): Promise<void>;
  _del(key: unknown, options: { sync?: boolean }): Promise<void>;
  _batch(ops: WriteOp[], options: { sync?: boolean }): Promise<void>;
  _clear(options: unknown): Promise<void>;
}

type WriteOp = { type: 'put'; key: unknown; value: unknown } | { type: 'del'; key: unknown };

interface DynaliteDb {
  create(options: unknown): { tableDb: TableDb; db: unknown };
}

let applied = false;
let storesCached = 0;

/**
 * Makes dynalite servers created after the call cheaper per request, with the same answers (the
 * local stack calls it before it starts dynalite). Two costs dominated a DynamoDB call here:
 * - dynalite reads the table's description from LevelDB before every item operation (twice per
 *   item of a BatchWriteItem); it is now kept in memory ({@link cache});
 * - each LevelDB read and each item write was its own asynchronous native job; reads are now
 *   synchronous and writes of one event-loop turn go as one batch ({@link combineWrites}).
 * Items, indexes, errors and every answer are unchanged; test/local/dynalite-speedup.test.ts
 * runs the same calls against a sped-up and a plain dynalite.
 */
export function speedUpDynalite(): void {
  if (applied) return;
  applied = true;
  const db = createRequire(import.meta.url)('dynalite/db') as DynaliteDb;
  const create = db.create;
  db.create = function (this: unknown, options: unknown) {
    const store = create.call(this, options);
    cache(store.tableDb);
    if (typeof (store.db as LevelInternals)._getSync === 'function')
      combineWrites(store.db as LevelInternals);
    storesCached++;
    return store;
  };
}

/** How many dynalite stores were sped up (a check that the patched module is the one dynalite uses). */
export function spedUpDynaliteStores(): number {
  return storesCached;
}

/**
 * Keeps the last table description read or written, as the JSON LevelDB stores, and hands it out
 * parsed afresh on each read (callers get a new object, as from LevelDB). Descriptions change only
 * through CreateTable, UpdateTable and DeleteTable (and dynalite's status timers), which write them
 * with put/del/batch: a write drops the entry before and after it lands, and a read that raced
 * with a write is not kept.
 */
function cache(tableDb: TableDb): void {
  const kept = new Map<string, string>();
  const versions = new Map<string, number>();
  const bump = (key: string) => {
    kept.delete(key);
    versions.set(key, (versions.get(key) ?? 0) + 1);
  };
  const { get, put, del, batch } = tableDb;
  tableDb.get = (key, cb) => {
    const hit = kept.get(key);
    if (hit !== undefined) {
      setImmediate(cb, null, JSON.parse(hit));
      return;
    }
    const version = versions.get(key) ?? 0;
    get.call(tableDb, key, (err, value) => {
      if (!err && value !== null && typeof value === 'object' && (versions.get(key) ?? 0) === version) {
        kept.set(key, JSON.stringify(value));
      }
      cb(err, value);
    });
  };
  tableDb.put = (key, value, cb) => {
    bump(key);
    put.call(tableDb, key, value, (err) => {
      bump(key);
      cb?.(err);
    });
  };
  tableDb.del = (key, cb) => {
    bump(key);
    del.call(tableDb, key, (err) => {
      bump(key);
      cb?.(err);
    });
  };
  tableDb.batch = (ops, cb) => {
    for (const op of ops) bump(op.key);
    batch.call(tableDb, ops, (err) => {
      for (const op of ops) bump(op.key);
      cb?.(err);
    });
  };
}

/**
 * The LevelDB side of dynalite on disk (classic-level): each read was an asynchronous native call
 * (a thread-pool job, a snapshot taken under LevelDB's lock, a promise) costing 30-130 µs of CPU
 * for a key that is almost always in LevelDB's memory; and each item write was its own write job.
 * Here reads use classic-level's synchronous get (the same read at the same moment, 2-3 µs), and
 * writes issued in the same turn of the event loop go to LevelDB as one atomic batch, in the order
 * they were issued (deletes and batches join the same queue, so order is kept across them); each
 * write still resolves only once LevelDB has it, so dynalite's per-item locks see what they did.
 * Writes asking for `sync` (fsync) are not combined.
 */
function combineWrites(level: LevelInternals): void {
  const getSync = (level._getSync as NonNullable<LevelInternals['_getSync']>).bind(level);
  const batch = level._batch.bind(level);
  const clear = level._clear.bind(level);
  let queue: { ops: WriteOp[]; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const waiting = queue;
    queue = [];
    const ops = waiting.flatMap((w) => w.ops);
    batch(ops, {}).then(
      () => {
        for (const w of waiting) w.resolve();
      },
      (err: unknown) => {
        for (const w of waiting) w.reject(err);
      },
    );
  };
  const enqueue = (ops: WriteOp[]) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ ops, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  const direct = { put: level._put.bind(level), del: level._del.bind(level) };
  level._get = async (key, options) => getSync(key, options);
  level._put = (key, value, options) =>
    options?.sync ? direct.put(key, value, options) : enqueue([{ type: 'put', key, value }]);
  level._del = (key, options) => (options?.sync ? direct.del(key, options) : enqueue([{ type: 'del', key }]));
  level._batch = (ops, options) => (options?.sync ? batch(ops, options) : enqueue(ops));
  level._clear = async (options) => {
    // A clear must not overtake writes already queued before it.
    if (queue.length) await enqueue([]);
    return clear(options);
  };
}
