import type { ResultCache } from './ports.js';
import { type CacheEntry, isFresh } from './result-cache.js';

/** How the memory tier is bounded. */
export interface MemoryTierOptions {
  /** Entries kept at most; the least recently used goes first. */
  maxEntries: number;
  /**
   * Seconds an entry is served from memory before it is read from the table again: entries never
   * change under a key (the key covers everything that decides an answer), but an operator may
   * delete them, and this bounds how long a warm instance keeps answering with one.
   */
  maxAgeSeconds: number;
  /** The ensemble's TTL in this deployment's manifest, by name (undefined: not cached here). */
  ttlSeconds: (ensemble: string) => number | undefined;
  now?: () => Date;
}

interface Held {
  entry: CacheEntry;
  /** When it came into memory (epoch ms). */
  since: number;
}

/**
 * A bounded, per-instance memory in front of the result cache's table: a row answered from the
 * table once is answered from memory on this warm instance after that, without a read. Only
 * entries that would answer now (fresh by their own expiry and by the ensemble's TTL, as
 * `lookupFresh` judges them) are kept, and each is dropped when it no longer would: a key whose
 * entry went stale is read from the table again, where a newer answer may be. Writes go to the
 * table first and are kept only once it has them.
 */
export class MemoryTier implements ResultCache {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly table: ResultCache,
    private readonly options: MemoryTierOptions,
  ) {}

  async get(keys: readonly string[]): Promise<Map<string, CacheEntry>> {
    const now = this.now();
    const found = new Map<string, CacheEntry>();
    const missing: string[] = [];
    for (const key of keys) {
      const held = this.held.get(key);
      if (held && this.usable(held, now)) {
        // Most recently used last: the Map's order is the eviction order.
        this.held.delete(key);
        this.held.set(key, held);
        found.set(key, held.entry);
      } else {
        if (held) this.held.delete(key);
        missing.push(key);
      }
    }
    if (missing.length) {
      for (const [key, entry] of await this.table.get(missing)) {
        found.set(key, entry);
        this.keep(key, entry, now);
      }
    }
    return found;
  }

  async put(entries: readonly CacheEntry[]): Promise<void> {
    await this.table.put(entries);
    const now = this.now();
    for (const entry of entries) this.keep(entry.key, entry, now);
  }

  /** Entries held now (for tests and the stack's own figures). */
  get size(): number {
    return this.held.size;
  }

  private keep(key: string, entry: CacheEntry, now: Date): void {
    if (this.options.maxEntries <= 0) return;
    const held = { entry, since: now.getTime() };
    if (!this.usable(held, now)) return;
    this.held.delete(key);
    this.held.set(key, held);
    while (this.held.size > this.options.maxEntries) {
      const oldest = this.held.keys().next().value as string;
      this.held.delete(oldest);
    }
  }

  private usable(held: Held, now: Date): boolean {
    const ttl = this.options.ttlSeconds(held.entry.ensemble);
    return (
      ttl !== undefined &&
      now.getTime() - held.since < this.options.maxAgeSeconds * 1000 &&
      isFresh(held.entry, now, ttl)
    );
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }
}
