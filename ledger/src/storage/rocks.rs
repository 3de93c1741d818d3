//! The RocksDB [`Backend`]: one column family per [`Column`], synced write batches, and
//! the payloads in append-only segment files beside it ([`super::segments`]).

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options,
    ReadOptions, WriteOptions,
};

use super::backend::{Backend, BackendError, Column, KeyValue, WriteBatch};
use super::segments::{PayloadRef, SEGMENT_BYTES, Segments, Tail};

/// Block cache shared by all column families. Merkle nodes and indexes are small and
/// hot; a proof touches ~20 nodes, so keeping them cached is what makes proofs fast.
const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Column family of the payload references: leaf key to [`PayloadRef`].
const PAYLOAD_REFS_CF: &str = "payload_refs";
/// Column family holding the committed [`Tail`] of the payload segments.
const PAYLOAD_TAIL_CF: &str = "payload_tail";
const TAIL_KEY: &[u8] = b"tail";
/// Folder of the payload segments, inside the database's folder.
const SEGMENTS_DIR: &str = "payload_segments";

/// Share of the leaf-hash index's memtable given to its bloom filter: ~10 bits per key
/// for its 72-byte entries.
const LEAF_INDEX_MEMTABLE_BLOOM_RATIO: f64 = 0.02;

/// Bound on the write-ahead log across all column families (see `open`). It bounds what
/// a restarted validator replays. With an estimated 300 bytes of log per message
/// (envelope and index entries; payloads are in the segments) that is about 100,000
/// messages; `scripts/bench.sh` measured rejoins of 0.28–0.39 s with it, and up to 2.6 s
/// with 128 MiB.
const MAX_TOTAL_WAL_BYTES: u64 = 32 * 1024 * 1024;

/// A RocksDB database holding one Custos ledger.
///
/// [`Column::Payloads`] is not stored in RocksDB: its values go to [`Segments`] and RocksDB
/// keeps a [`PayloadRef`] for each, written in the same batch as the rest. Databases from
/// before the segments keep their payloads in the `payloads` column family, where they
/// are still read (`legacy_payloads`); new payloads never go there.
pub struct RocksBackend {
    db: DB,
    path: PathBuf,
    segments: Segments,
    /// Whether the `payloads` column family holds payloads written before the segments.
    legacy_payloads: bool,
    /// How the next commit fails, in tests of what a failed commit leaves.
    #[cfg(test)]
    commit_fault: std::sync::Mutex<Option<tests::CommitFault>>,
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
        Self::open_with(path, SEGMENT_BYTES)
    }

    fn open_with(path: &Path, segment_bytes: u64) -> Result<Self, BackendError> {
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
            ColumnFamilyDescriptor::new(column.name(), options)
        });
        let internal = [PAYLOAD_REFS_CF, PAYLOAD_TAIL_CF].map(|name| {
            let mut options = Options::default();
            options.set_block_based_table_factory(&table);
            options.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, options)
        });
        let db = DB::open_cf_descriptors(&db_options, path, descriptors.chain(internal))
            .map_err(engine)?;
        let tail_cf = db.cf_handle(PAYLOAD_TAIL_CF).expect("created at open");
        let tail = db
            .get_cf(tail_cf, TAIL_KEY)
            .map_err(engine)?
            .map(|bytes| Tail::decode(&bytes))
            .transpose()?;
        let legacy_cf = db
            .cf_handle(Column::Payloads.name())
            .expect("created at open");
        let legacy_payloads = db
            .iterator_cf(legacy_cf, IteratorMode::Start)
            .next()
            .is_some();
        let segments = Segments::open(&path.join(SEGMENTS_DIR), tail, segment_bytes)?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            segments,
            legacy_payloads,
            #[cfg(test)]
            commit_fault: std::sync::Mutex::new(None),
        })
    }

    /// Flushes the memtables and compacts every column family, so the files hold what
    /// the ledger occupies at rest, without write-ahead logs or overwritten versions
    /// (benchmarks measure storage per message this way).
    pub fn compact(&self) -> Result<(), BackendError> {
        let names = Column::ALL.map(Column::name);
        for name in names.iter().chain(&[PAYLOAD_REFS_CF, PAYLOAD_TAIL_CF]) {
            let cf = self.db.cf_handle(name).expect("created at open");
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

    fn refs_cf(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(PAYLOAD_REFS_CF).expect("created at open")
    }

    /// Replaces payload references by the payloads they point to.
    fn resolve(&self, refs: Vec<KeyValue>) -> Result<Vec<KeyValue>, BackendError> {
        let decoded = refs
            .iter()
            .map(|(_, r)| PayloadRef::decode(r))
            .collect::<Result<Vec<_>, _>>()?;
        let payloads = self.segments.read(&decoded)?;
        Ok(refs.into_iter().map(|(k, _)| k).zip(payloads).collect())
    }

    /// Commits a RocksDB batch. A failure leaves the batch's fate unknown: RocksDB may
    /// have made it durable before failing (a failed log sync), and then replays it at
    /// the next open.
    fn commit(
        &self,
        batch: rocksdb::WriteBatch,
        options: &WriteOptions,
    ) -> Result<(), BackendError> {
        #[cfg(test)]
        if let Some(fault) = self.commit_fault.lock().expect("not poisoned").take() {
            if fault == tests::CommitFault::Durable {
                self.db.write_opt(batch, options).map_err(engine)?;
            }
            return Err(BackendError::Engine(format!(
                "injected commit failure ({fault:?})"
            )));
        }
        self.db.write_opt(batch, options).map_err(engine)
    }

    fn bounded_read(start: &[u8], end: &[u8]) -> ReadOptions {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(start.to_vec());
        read.set_iterate_upper_bound(end.to_vec());
        read
    }
}

/// Reads of one column family, whatever it holds.
impl RocksBackend {
    fn scan_cf(
        &self,
        cf: &rocksdb::ColumnFamily,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let iter = self.db.iterator_cf_opt(
            cf,
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

    fn last_before_cf(
        &self,
        cf: &rocksdb::ColumnFamily,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<KeyValue>, BackendError> {
        if start >= end {
            return Ok(None);
        }
        let mut iter =
            self.db
                .iterator_cf_opt(cf, Self::bounded_read(start, end), IteratorMode::End);
        match iter.next() {
            Some(item) => {
                let (k, v) = item.map_err(engine)?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn multi_get_cf(
        &self,
        cf: &rocksdb::ColumnFamily,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        // Sorted keys let RocksDB serve the batch in one pass over its blocks.
        let sorted = keys.windows(2).all(|w| w[0] <= w[1]);
        self.db
            .batched_multi_get_cf(cf, keys, sorted)
            .into_iter()
            .map(|r| r.map(|v| v.map(|v| v.to_vec())).map_err(engine))
            .collect()
    }
}

impl Backend for RocksBackend {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.multi_get(column, &[key])?.pop().flatten())
    }

    fn multi_get(
        &self,
        column: Column,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        if column != Column::Payloads {
            return self.multi_get_cf(self.cf(column), keys);
        }
        let references = self.multi_get_cf(self.refs_cf(), keys)?;
        let decoded = references
            .iter()
            .flatten()
            .map(|r| PayloadRef::decode(r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut payloads = self.segments.read(&decoded)?.into_iter();
        let mut found = Vec::with_capacity(keys.len());
        for (key, reference) in keys.iter().zip(references) {
            found.push(match reference {
                Some(_) => payloads.next(),
                None if self.legacy_payloads => {
                    self.db.get_cf(self.cf(column), key).map_err(engine)?
                }
                None => None,
            });
        }
        Ok(found)
    }

    fn scan(
        &self,
        column: Column,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError> {
        if column != Column::Payloads {
            return self.scan_cf(self.cf(column), start, end, limit);
        }
        let mut found = self.resolve(self.scan_cf(self.refs_cf(), start, end, limit)?)?;
        if self.legacy_payloads {
            found.extend(self.scan_cf(self.cf(column), start, end, limit)?);
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found.truncate(limit);
        }
        Ok(found)
    }

    fn last_before(
        &self,
        column: Column,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<KeyValue>, BackendError> {
        if column != Column::Payloads {
            return self.last_before_cf(self.cf(column), start, end);
        }
        let stored = match self.last_before_cf(self.refs_cf(), start, end)? {
            Some((key, reference)) => {
                let reference = PayloadRef::decode(&reference)?;
                Some((key, self.segments.read(&[reference])?.remove(0)))
            }
            None => None,
        };
        let legacy = if self.legacy_payloads {
            self.last_before_cf(self.cf(column), start, end)?
        } else {
            None
        };
        Ok(stored
            .into_iter()
            .chain(legacy)
            .max_by(|a, b| a.0.cmp(&b.0)))
    }

    fn write(&self, batch: &WriteBatch) -> Result<(), BackendError> {
        let payloads = batch
            .iter()
            .filter(|(column, _, value)| *column == Column::Payloads && value.is_some());
        let (payload_count, payload_bytes) = payloads
            .fold((0, 0), |(count, bytes), (_, _, value)| {
                (count + 1, bytes + value.map_or(0, <[u8]>::len))
            });
        // Sized up front: a block's batch holds an envelope and index entries per message,
        // and growing it by doubling would copy it several times over. Payloads are
        // replaced by their references. (Keys, values, and a tag, a column id and two
        // lengths per operation.)
        let bytes = batch.data_len() - payload_bytes
            + PayloadRef::BYTES * payload_count
            + 16 * batch.len()
            + 64;
        let mut rocks_batch = rocksdb::WriteBatch::with_capacity_bytes(bytes);
        // Batches with payloads append to the segments one at a time, in commit order.
        let mut writer = (payload_count > 0).then(|| self.segments.writer());
        let mut staged = writer
            .as_mut()
            .map(|writer| self.segments.stage(writer, payload_bytes));
        for (column, key, value) in batch.iter() {
            match (column, value, staged.as_mut()) {
                (Column::Payloads, Some(payload), staged) => {
                    let staged = staged.expect("staged for every batch with payloads");
                    rocks_batch.put_cf(self.refs_cf(), key, staged.push(payload).encode());
                    if self.legacy_payloads {
                        // An older value stored inline would otherwise be read beside it.
                        rocks_batch.delete_cf(self.cf(column), key);
                    }
                }
                (Column::Payloads, None, _) => {
                    rocks_batch.delete_cf(self.refs_cf(), key);
                    rocks_batch.delete_cf(self.cf(column), key);
                }
                (_, Some(value), _) => rocks_batch.put_cf(self.cf(column), key, value),
                (_, None, _) => rocks_batch.delete_cf(self.cf(column), key),
            }
        }
        // The payloads are durable before the references to them are committed.
        let written = match (writer.as_mut(), staged) {
            (Some(writer), Some(staged)) => {
                let written = self.segments.write(writer, &staged);
                writer.recycle(staged);
                let written = written?;
                let tail_cf = self.db.cf_handle(PAYLOAD_TAIL_CF).expect("created at open");
                rocks_batch.put_cf(tail_cf, TAIL_KEY, written.tail().encode());
                Some(written)
            }
            _ => None,
        };
        let mut options = WriteOptions::default();
        // Evidence acknowledged as committed must survive power loss.
        options.set_sync(true);
        let committed = self.commit(rocks_batch, &options);
        if let (Some(writer), Some(written)) = (writer.as_mut(), written) {
            // Also when the commit failed: it may have reached the disk all the same.
            writer.advance(written);
        }
        committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments this small roll over every few payloads.
    const SMALL_SEGMENT: u64 = 64;

    /// How [`RocksBackend::commit`] fails when told to.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum CommitFault {
        /// The batch reached the disk, then the commit reported a failure.
        Durable,
        /// The batch was not committed.
        Lost,
    }

    /// A new database in a new folder, with small segments.
    fn fresh() -> (tempfile::TempDir, RocksBackend) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = reopen(dir.path());
        (dir, backend)
    }

    fn reopen(dir: &Path) -> RocksBackend {
        RocksBackend::open_with(dir, SMALL_SEGMENT).expect("open")
    }

    fn key(index: u64) -> [u8; 8] {
        index.to_be_bytes()
    }

    fn payload(index: u64) -> Vec<u8> {
        format!("payload {index:04} is thirty-two bytes").into_bytes()
    }

    /// Stores payloads `range` in one batch, with an envelope beside each.
    fn store(backend: &RocksBackend, range: std::ops::Range<u64>) {
        let mut batch = WriteBatch::new();
        for index in range {
            batch.put(Column::Envelopes, key(index), b"envelope");
            batch.put(Column::Payloads, key(index), payload(index));
        }
        backend.write(&batch).expect("write");
    }

    fn segment_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(SEGMENTS_DIR))
            .expect("segments folder")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        names
    }

    /// A closed database holding payloads 0 and 1, and the path of its one segment.
    fn two_payloads_stored() -> (tempfile::TempDir, PathBuf) {
        let (dir, backend) = fresh();
        store(&backend, 0..2);
        drop(backend);
        let first = segment(dir.path(), "00000000.seg");
        (dir, first)
    }

    fn segment(dir: &Path, name: &str) -> PathBuf {
        dir.join(SEGMENTS_DIR).join(name)
    }

    fn assert_reads(backend: &RocksBackend, count: u64) {
        for index in 0..count {
            assert_eq!(
                backend.get(Column::Payloads, &key(index)).expect("get"),
                Some(payload(index))
            );
        }
        let (start, end) = (key(0), key(count));
        let scanned = backend
            .scan(Column::Payloads, &start, &end, usize::MAX)
            .expect("scan");
        let expected: Vec<KeyValue> = (0..count).map(|i| (key(i).to_vec(), payload(i))).collect();
        assert_eq!(scanned, expected);
        assert_eq!(
            backend
                .scan(Column::Payloads, &start, &end, 2)
                .expect("scan"),
            expected[..2]
        );
        let keys: Vec<[u8; 8]> = (0..count + 1).rev().map(key).collect();
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let mut got = backend
            .multi_get(Column::Payloads, &keys)
            .expect("multi_get");
        assert_eq!(got.remove(0), None, "one past the last was never stored");
        assert_eq!(
            got,
            (0..count)
                .rev()
                .map(|i| Some(payload(i)))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            backend
                .last_before(Column::Payloads, &start, &end)
                .expect("last_before"),
            expected.last().cloned()
        );
    }

    #[test]
    fn payloads_are_kept_in_segments_and_read_back_after_reopening() {
        let (dir, backend) = fresh();
        store(&backend, 0..3);
        store(&backend, 3..4);
        store(&backend, 4..7);
        assert_reads(&backend, 7);
        assert_eq!(
            backend.get(Column::Envelopes, &key(5)).expect("get"),
            Some(b"envelope".to_vec())
        );
        drop(backend);
        // 96 bytes, then 32 (would pass 64: a new segment), then 96 (a new one again).
        assert_eq!(
            segment_files(dir.path()),
            ["00000000.seg", "00000001.seg", "00000002.seg"]
        );
        let backend = reopen(dir.path());
        assert_reads(&backend, 7);
        store(&backend, 7..8);
        assert_reads(&backend, 8);
    }

    #[test]
    fn empty_payloads_are_stored_and_read_as_empty() {
        let (_dir, backend) = fresh();
        // A batch whose only payload is empty, then one mixing empty and not.
        let mut batch = WriteBatch::new();
        batch.put(Column::Payloads, key(0), []);
        backend.write(&batch).expect("write");
        let mut batch = WriteBatch::new();
        batch.put(Column::Payloads, key(1), payload(1));
        batch.put(Column::Payloads, key(2), []);
        backend.write(&batch).expect("write");
        let expected = vec![
            (key(0).to_vec(), Vec::new()),
            (key(1).to_vec(), payload(1)),
            (key(2).to_vec(), Vec::new()),
        ];
        assert_eq!(
            backend
                .scan(Column::Payloads, &key(0), &key(3), 10)
                .expect("scan"),
            expected
        );
        assert_eq!(
            backend.get(Column::Payloads, &key(0)).expect("get"),
            Some(Vec::new())
        );
    }

    #[test]
    fn what_an_interrupted_batch_wrote_past_the_tail_is_cut_off_at_open() {
        let (dir, first) = two_payloads_stored();
        let committed = std::fs::metadata(&first).expect("segment").len();
        // A crash after the payloads were synced and before their batch committed.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&first)
            .expect("open");
        std::io::Write::write_all(&mut file, b"uncommitted payload bytes").expect("append");
        std::fs::write(segment(dir.path(), "00000001.seg"), b"uncommitted segment").expect("write");

        let backend = reopen(dir.path());
        assert_eq!(std::fs::metadata(&first).expect("segment").len(), committed);
        assert_eq!(segment_files(dir.path()), ["00000000.seg"]);
        assert_reads(&backend, 2);
        store(&backend, 2..4);
        assert_reads(&backend, 4);
    }

    #[test]
    fn the_payloads_of_a_failed_commit_are_never_overwritten() {
        for fault in [CommitFault::Durable, CommitFault::Lost] {
            let (dir, backend) = fresh();
            store(&backend, 0..1);
            *backend.commit_fault.lock().expect("lock") = Some(fault);
            let mut batch = WriteBatch::new();
            batch.put(Column::Payloads, key(1), payload(1));
            let err = backend.write(&batch).expect_err("the commit fails");
            assert!(err.to_string().contains("injected"), "{err}");
            store(&backend, 2..3);
            drop(backend);

            // A commit that failed after reaching the disk is replayed at open; its
            // payload is intact because the next batch was appended after it.
            let backend = reopen(dir.path());
            let found = backend
                .scan(Column::Payloads, &key(0), &key(3), 10)
                .expect("every stored payload passes its checksum");
            let mut expected = vec![(key(0).to_vec(), payload(0))];
            if fault == CommitFault::Durable {
                expected.push((key(1).to_vec(), payload(1)));
            }
            expected.push((key(2).to_vec(), payload(2)));
            assert_eq!(found, expected, "{fault:?}");
        }
    }

    #[test]
    fn a_segment_shorter_than_what_was_committed_is_refused_at_open() {
        let (dir, first) = two_payloads_stored();
        let committed = std::fs::metadata(&first).expect("segment").len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&first)
            .expect("open");
        file.set_len(committed - 1).expect("truncate");
        drop(file);
        let err = RocksBackend::open_with(dir.path(), SMALL_SEGMENT)
            .expect_err("a truncated segment must not open");
        assert!(
            err.to_string()
                .contains(&format!("holds {} bytes", committed - 1)),
            "{err}"
        );
        assert!(err.to_string().contains("truncated or replaced"), "{err}");
        // Nothing was cut or removed on the way: restoring the byte restores the ledger.
        assert_eq!(
            std::fs::metadata(&first).expect("segment").len(),
            committed - 1
        );
    }

    #[test]
    fn a_missing_segment_is_refused_at_open_and_not_recreated() {
        let (dir, first) = two_payloads_stored();
        std::fs::remove_file(&first).expect("remove");
        let err = RocksBackend::open_with(dir.path(), SMALL_SEGMENT)
            .expect_err("a missing segment must not open");
        assert!(err.to_string().contains("00000000.seg is missing"), "{err}");
        let committed = format!("committed {} bytes", 2 * payload(0).len());
        assert!(err.to_string().contains(&committed), "{err}");
        assert!(!first.exists(), "an empty segment was created in its place");
    }

    #[test]
    fn a_corrupt_payload_is_reported_not_served() {
        let (dir, backend) = fresh();
        store(&backend, 0..2);
        let first = segment(dir.path(), "00000000.seg");
        let mut bytes = std::fs::read(&first).expect("segment");
        // The second payload's first byte.
        bytes[payload(0).len()] ^= 0x20;
        std::fs::write(&first, &bytes).expect("write");

        assert_eq!(
            backend.get(Column::Payloads, &key(0)).expect("get"),
            Some(payload(0))
        );
        for err in [
            backend.get(Column::Payloads, &key(1)).expect_err("corrupt"),
            backend
                .scan(Column::Payloads, &key(0), &key(2), 10)
                .expect_err("corrupt"),
        ] {
            assert!(err.to_string().contains("fails its checksum"), "{err}");
            assert!(err.to_string().contains("00000000.seg"), "{err}");
        }
    }

    #[test]
    fn payloads_stored_inside_rocksdb_by_older_versions_are_still_read() {
        let (dir, backend) = fresh();
        let legacy = backend.cf(Column::Payloads);
        for index in 0..3 {
            backend
                .db
                .put_cf(legacy, key(index), payload(index))
                .expect("put");
        }
        drop(backend);
        let backend = reopen(dir.path());
        store(&backend, 3..4);
        assert_reads(&backend, 4);
        assert_eq!(
            backend
                .last_before(Column::Payloads, &key(0), &key(2))
                .expect("last_before"),
            Some((key(1).to_vec(), payload(1)))
        );

        // A payload stored again replaces the older copy, which is no longer read.
        let mut batch = WriteBatch::new();
        batch.put(Column::Payloads, key(2), b"stored again");
        backend.write(&batch).expect("put");
        let replaced = Some((key(2).to_vec(), b"stored again".to_vec()));
        let scanned = backend
            .scan(Column::Payloads, &key(2), &key(3), 10)
            .expect("scan");
        assert_eq!(scanned, Vec::from_iter(replaced.clone()));
        assert_eq!(
            backend
                .last_before(Column::Payloads, &key(0), &key(3))
                .expect("last_before"),
            replaced
        );

        // A deleted payload is gone from both places.
        let mut batch = WriteBatch::new();
        batch.delete(Column::Payloads, key(1));
        batch.delete(Column::Payloads, key(3));
        backend.write(&batch).expect("delete");
        for index in [1, 3] {
            assert_eq!(
                backend.get(Column::Payloads, &key(index)).expect("get"),
                None
            );
        }
        let keys: Vec<Vec<u8>> = backend
            .scan(Column::Payloads, &key(0), &key(4), 10)
            .expect("scan")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, [key(0).to_vec(), key(2).to_vec()]);
    }
}
