/**
 * A cache of fixed-size metadata tables (L2 tables, refcount blocks) keyed by their file offset, after crosvm's
 * VecCache/CacheMap: a byte budget instead of an entry count, least-recently-used eviction, and dirty tables
 * written back through a callback before they leave. Concurrent misses on one table share a single load.
 */
export interface TableCacheOptions {
  /** Total bytes of tables to keep; at least `minEntries` tables are kept whatever the budget. */
  budgetBytes: number;
  /** Bytes per table (one cluster). */
  tableBytes: number;
  /** Reads the table at `offset` from the file. */
  load(offset: number): Promise<Uint8Array>;
  /** Writes a dirty table back; required before any table is marked dirty. */
  writeBack?(offset: number, table: Uint8Array): Promise<void>;
  /**
   * Runs before any dirty table of this cache is written back: the flush-ordering hook. An L2 cache points it at
   * the refcount cache's flush so a new cluster's refcount always reaches the file before the L2 entry using it.
   */
  beforeWriteBack?(): Promise<void>;
  minEntries?: number;
}

export class TableCache {
  readonly capacity: number;
  private readonly options: TableCacheOptions;
  /** Map iteration order is insertion order: the first key is the least recently used. */
  private readonly tables = new Map<number, Uint8Array>();
  private readonly loading = new Map<number, Promise<Uint8Array>>();
  private readonly dirty = new Set<number>();
  private hitCount = 0;
  private missCount = 0;

  constructor(options: TableCacheOptions) {
    this.options = options;
    this.capacity = Math.max(options.minEntries ?? 2, Math.floor(options.budgetBytes / options.tableBytes));
  }

  /** The cached table, without loading or touching recency: the allocation-free fast path. */
  peek(offset: number): Uint8Array | undefined {
    return this.tables.get(offset);
  }

  /** The table at `offset`, loading it on a miss. */
  async get(offset: number): Promise<Uint8Array> {
    const cached = this.tables.get(offset);
    if (cached !== undefined) {
      this.hitCount++;
      this.touch(offset, cached);
      return cached;
    }
    this.missCount++;
    const pending = this.loading.get(offset);
    if (pending !== undefined) return pending;
    const load = this.loadAndInsert(offset);
    this.loading.set(offset, load);
    try {
      return await load;
    } finally {
      this.loading.delete(offset);
    }
  }

  /** Puts a table the caller built (a fresh L2 table) into the cache, dirty: it is written back later. */
  async insert(offset: number, table: Uint8Array): Promise<void> {
    await this.makeRoom();
    this.tables.set(offset, table);
    this.dirty.add(offset);
  }

  /** Puts a table the caller already wrote to the file into the cache, clean. */
  async insertClean(offset: number, table: Uint8Array): Promise<void> {
    await this.makeRoom();
    this.tables.set(offset, table);
    this.dirty.delete(offset);
  }

  /** Records that the caller changed the cached table at `offset`; it is written back on flush or eviction. */
  markDirty(offset: number): void {
    if (!this.tables.has(offset)) throw new Error(`table at ${offset} is not cached`);
    if (this.options.writeBack === undefined) throw new Error('this cache has no write-back');
    this.dirty.add(offset);
  }

  /**
   * Writes back every dirty table (in offset order, for sequential I/O). Each table is copied and marked clean
   * before its write starts: a change made while the write is in flight marks it dirty again instead of being
   * lost, and the write never sees a half-changed table.
   */
  async flush(): Promise<void> {
    if (this.dirty.size === 0) return;
    await this.options.beforeWriteBack?.();
    const offsets = [...this.dirty].sort((a, b) => a - b);
    for (const offset of offsets) {
      const table = this.tables.get(offset);
      if (table !== undefined && this.dirty.delete(offset)) await this.writeBackCopy(offset, table);
    }
  }

  private async writeBackCopy(offset: number, table: Uint8Array): Promise<void> {
    try {
      await this.options.writeBack?.(offset, table.slice());
    } catch (error) {
      if (this.tables.has(offset)) this.dirty.add(offset);
      throw error;
    }
  }

  /** Forgets a table (after it was freed), dirty or not. */
  drop(offset: number): void {
    this.tables.delete(offset);
    this.dirty.delete(offset);
  }

  /** Forgets every clean table; dirty ones must be flushed first. */
  clear(): void {
    for (const offset of [...this.tables.keys()]) if (!this.dirty.has(offset)) this.tables.delete(offset);
  }

  get size(): number {
    return this.tables.size;
  }

  get stats(): { hits: number; misses: number; dirty: number } {
    return { hits: this.hitCount, misses: this.missCount, dirty: this.dirty.size };
  }

  private async loadAndInsert(offset: number): Promise<Uint8Array> {
    const table = await this.options.load(offset);
    if (table.length !== this.options.tableBytes) {
      throw new Error(`table at ${offset} loaded ${table.length} bytes, expected ${this.options.tableBytes}`);
    }
    // Another caller may have inserted the table while we loaded; keep the cached one (it may be dirty).
    const existing = this.tables.get(offset);
    if (existing !== undefined) return existing;
    await this.makeRoom();
    this.tables.set(offset, table);
    return table;
  }

  private touch(offset: number, table: Uint8Array): void {
    this.tables.delete(offset);
    this.tables.set(offset, table);
  }

  private async makeRoom(): Promise<void> {
    while (this.tables.size >= this.capacity) {
      const victim = this.pickVictim();
      if (victim === undefined) return;
      const table = this.tables.get(victim);
      if (table !== undefined && this.dirty.has(victim)) {
        await this.options.beforeWriteBack?.();
        // Still dirty and still cached after the hook? Write it out before letting it go.
        if (this.dirty.delete(victim)) await this.writeBackCopy(victim, table);
      }
      if (!this.dirty.has(victim)) this.tables.delete(victim);
    }
  }

  /** The least recently used table, preferring clean ones so eviction rarely waits for a write. */
  private pickVictim(): number | undefined {
    let first: number | undefined;
    let scanned = 0;
    for (const offset of this.tables.keys()) {
      first ??= offset;
      if (!this.dirty.has(offset)) return offset;
      if (++scanned >= 8) break;
    }
    return first;
  }
}
