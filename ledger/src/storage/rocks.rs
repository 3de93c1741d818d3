//! The RocksDB [`Backend`]: one column family per [`Column`], synced write batches.

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options,
    ReadOptions, WriteOptions,
};

use super::backend::{Backend, BackendError, Column, KeyValue, WriteBatch};

/// Block cache shared by all column families. Merkle nodes and indexes are small and
/// hot; a proof touches ~20 nodes, so keeping them cached is what makes proofs fast.
const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Memtable size of the payload column (the default, 64 MiB, elsewhere).
const PAYLOAD_WRITE_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// Share of the leaf-hash index's memtable given to its bloom filter: ~10 bits per key
/// for its 72-byte entries.
const LEAF_INDEX_MEMTABLE_BLOOM_RATIO: f64 = 0.02;

/// Bound on the write-ahead log across all column families (see `open`).
const MAX_TOTAL_WAL_BYTES: u64 = 128 * 1024 * 1024;

/// A RocksDB database holding one Custos ledger.
pub struct RocksBackend {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for RocksBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RocksBackend({})", self.path.display())
    }
}

fn engine(err: rocksdb::Error) -> BackendError {
    BackendError::Engine(err.into_string())
}

/// Whether files in directory `path` (created if missing) can be opened for direct I/O.
/// RocksDB would fail its first flush, not its open, on a file system that refuses it.
fn supports_direct_io(path: &Path) -> Result<bool, BackendError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |what: &str, e: std::io::Error| {
        BackendError::Engine(format!("{what} {}: {e}", path.display()))
    };
    std::fs::create_dir_all(path).map_err(|e| io("creating", e))?;
    let probe = path.join("DIRECT_IO_PROBE");
    let supported = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    match std::fs::remove_file(&probe) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing a probe file in", e)),
    }
    Ok(supported)
}

impl RocksBackend {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, BackendError> {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);

        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_max_background_jobs(2);
        // Every column family shares one write-ahead log, and a log file is deleted only
        // once every column with data in it has flushed. The small columns (heads, block
        // headers) flush rarely, so without a bound the log grows to the default of four
        // times all write buffers (gigabytes), and a validator restarted after a crash
        // replays all of it before it can vote. This bound forces the stale columns to
        // flush instead, keeping recovery to a fraction of a second.
        db_options.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // Flushes and compactions run at the lowest CPU priority: a 64 MiB memtable flush
        // takes about a second of CPU, and at normal priority it delays the commits
        // running beside it by as much. Below the node's own threads it uses the idle
        // time between blocks; if it falls behind, RocksDB slows writes until it catches
        // up, which bounds the backlog.
        let mut env = rocksdb::Env::new().map_err(engine)?;
        env.lower_thread_pool_cpu_priority();
        env.lower_high_priority_thread_pool_cpu_priority();
        db_options.set_env(&env);
        // Flushes write their file out as they go instead of leaving it all to the final
        // sync: a burst of tens of megabytes of dirty pages otherwise stalls the synced
        // commits queued behind it on the same disk.
        db_options.set_bytes_per_sync(1024 * 1024);
        // Flushes and compactions write their files with direct I/O where the file system
        // allows it: the page cache would only hold a second copy of files RocksDB has
        // just built (it reads what it needs through its own block cache), and copying
        // every flushed byte into it was 4% of a validator's CPU at saturation in
        // `scripts/bench.sh`. File systems without O_DIRECT (tmpfs) keep buffered writes.
        db_options.set_use_direct_io_for_flush_and_compaction(supports_direct_io(path)?);

        // Merkle nodes are read a few at a time at random: small blocks make each read
        // decode and checksum less.
        let mut node_table = BlockBasedOptions::default();
        node_table.set_block_cache(&cache);
        node_table.set_bloom_filter(10.0, false);
        node_table.set_cache_index_and_filter_blocks(true);
        node_table.set_block_size(1024);

        let descriptors = Column::ALL.iter().map(|column| {
            let mut options = Options::default();
            if *column == Column::Nodes {
                options.set_block_based_table_factory(&node_table);
            } else {
                options.set_block_based_table_factory(&table);
            }
            // LZ4 everywhere: envelopes and payloads (text logs) compress, and so do the
            // index columns' sequential keys and, once compacted, their zeroed sequence
            // numbers (30 bytes per message less at rest in `scripts/bench.sh`). A block
            // of hashes that does not compress is stored as it is.
            options.set_compression_type(rocksdb::DBCompressionType::Lz4);
            if *column == Column::LeafHashIndex {
                // Every message admitted is first looked up here by its leaf hash, and
                // almost always found absent. A bloom filter over the memtable's keys
                // answers most such lookups without searching the skiplist (4-5% of a
                // validator's CPU at saturation in `scripts/bench.sh --profile`).
                options.set_memtable_prefix_bloom_ratio(LEAF_INDEX_MEMTABLE_BLOOM_RATIO);
                options.set_memtable_whole_key_filtering(true);
            }
            if *column == Column::Payloads {
                // The largest column by far: smaller memtables make each flush (which
                // competes with commits for CPU and disk) a quarter as long.
                options.set_write_buffer_size(PAYLOAD_WRITE_BUFFER_BYTES);
            }
            ColumnFamilyDescriptor::new(column.name(), options)
        });
        let db = DB::open_cf_descriptors(&db_options, path, descriptors).map_err(engine)?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Flushes the memtables and compacts every column family, so the files hold what
    /// the ledger occupies at rest, without write-ahead logs or overwritten versions
    /// (benchmarks measure storage per message this way).
    pub fn compact(&self) -> Result<(), BackendError> {
        for column in Column::ALL {
            let cf = self.cf(column);
            self.db.flush_cf(cf).map_err(engine)?;
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    fn cf(&self, column: Column) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(column.name())
            .expect("every column family is created at open")
    }

    fn bounded_read(start: &[u8], end: &[u8]) -> ReadOptions {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(start.to_vec());
        read.set_iterate_upper_bound(end.to_vec());
        read
    }
}

impl Backend for RocksBackend {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        self.db.get_cf(self.cf(column), key).map_err(engine)
    }

    fn multi_get(
        &self,
        column: Column,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        let cf = self.cf(column);
        // Sorted keys let RocksDB serve the batch in one pass over its blocks.
        let sorted = keys.windows(2).all(|w| w[0] <= w[1]);
        self.db
            .batched_multi_get_cf(cf, keys, sorted)
            .into_iter()
            .map(|r| r.map(|v| v.map(|v| v.to_vec())).map_err(engine))
            .collect()
    }

    fn scan(
        &self,
        column: Column,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let iter = self.db.iterator_cf_opt(
            self.cf(column),
            Self::bounded_read(start, end),
            IteratorMode::From(start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (k, v) = item.map_err(engine)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn last_before(
        &self,
        column: Column,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<KeyValue>, BackendError> {
        if start >= end {
            return Ok(None);
        }
        let mut iter = self.db.iterator_cf_opt(
            self.cf(column),
            Self::bounded_read(start, end),
            IteratorMode::End,
        );
        match iter.next() {
            Some(item) => {
                let (k, v) = item.map_err(engine)?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn write(&self, batch: WriteBatch) -> Result<(), BackendError> {
        // Sized up front: a block's batch holds its whole body, and growing it by doubling
        // would copy it several times over.
        // (Keys, values, and a tag, a column id and two lengths per operation.)
        let bytes = batch.data_len() + 16 * batch.len() + 64;
        let mut rocks_batch = rocksdb::WriteBatch::with_capacity_bytes(bytes);
        for (column, key, value) in batch.iter() {
            let cf = self.cf(column);
            match value {
                Some(value) => rocks_batch.put_cf(cf, key, value),
                None => rocks_batch.delete_cf(cf, key),
            }
        }
        let mut options = WriteOptions::default();
        // Evidence acknowledged as committed must survive power loss.
        options.set_sync(true);
        self.db.write_opt(rocks_batch, &options).map_err(engine)
    }
}
