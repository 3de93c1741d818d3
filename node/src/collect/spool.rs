//! The crash-safe spool: signed messages on disk from the moment they count as collected
//! until a node confirms they are committed.
//!
//! Layout of the spool folder:
//! - `seg-<first sequence>.spool`: append-only segments of records, each
//!   `magic u32 LE | body length u32 LE | first 8 bytes of BLAKE3(body) | body`, the body
//!   being a borsh [`SpoolRecord`]. A segment is closed at [`SEGMENT_MAX_BYTES`].
//! - `state.json`: the confirmed sequence number, its leaf hash and the source positions
//!   as of that message, replaced atomically (write, sync, rename, sync the folder).
//! - `lock`: held with an exclusive file lock while an agent uses the spool, because two
//!   agents signing with one key would fork the collector's hash chain.
//!
//! Order of effects, which is what makes the spool crash-safe:
//! 1. records are appended and synced ([`Spool::append_synced`]) before the caller counts
//!    the events as collected and before the submitter may read them, so a message a node
//!    has seen is always on disk here (a message signed again after a crash would carry a
//!    different hash under the same sequence number, which the network refuses forever);
//! 2. a record's source position travels inside it, so after a crash the sources resume
//!    exactly after the last spooled event;
//! 3. `state.json` is replaced before the segments it covers are deleted, so the positions
//!    of confirmed records survive their deletion.
//!
//! A torn record at the end of the last segment (a crash during a write) was never synced,
//! so nothing counted it: it is cut off on open. Damage anywhere else is reported, never
//! skipped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use custos_ledger::hash::Sha256Hash;
use custos_ledger::limits::MAX_MESSAGE_BYTES;
use custos_ledger::merkle::hash_leaf;

/// A segment is closed once it holds this much, so confirmed records are deleted in
/// pieces of bounded size instead of one ever-growing file.
pub const SEGMENT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// A record holds one envelope and payload (together at most [`MAX_MESSAGE_BYTES`]) and a
/// source position; anything larger is damage, not a record.
pub const MAX_RECORD_BYTES: usize = MAX_MESSAGE_BYTES + 64 * 1024;

/// Longest source key (a file path) kept in a record.
pub const MAX_SOURCE_KEY_BYTES: usize = 4096;

const RECORD_MAGIC: u32 = 0x4c50_5343; // "CSPL" little-endian
const RECORD_HEADER_BYTES: usize = 16;
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";

/// Where a file source stands: which file (device and inode, so a rotated file is told
/// from its successor) and how far it was read.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct FilePosition {
    /// Device of the file.
    pub device: u64,
    /// Inode of the file.
    pub inode: u64,
    /// Bytes consumed (line and document framing) or records consumed (`.evtx`).
    pub offset: u64,
}

/// The source position an event leaves its source at.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SourceMark {
    /// The source's key: the file's path.
    pub key: String,
    /// The position after the event.
    pub position: FilePosition,
}

/// One spooled message.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SpoolRecord {
    /// The collector's sequence number of the message.
    pub sequence: u64,
    /// The envelope's canonical encoding (the log leaf).
    pub envelope: Vec<u8>,
    /// The raw payload bytes.
    pub payload: Vec<u8>,
    /// Where the event's source stands after it; none for heartbeats, standard input and
    /// syslog.
    pub mark: Option<SourceMark>,
}

/// What can go wrong with the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file operation failed.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another agent holds the spool.
    #[error(
        "spool {0} is in use by another collector process; two agents signing with one key would fork its chain"
    )]
    Locked(PathBuf),
    /// A record in the middle of the spool is damaged.
    #[error("spool segment {path} is damaged at byte {offset}: {reason}; restore it from backup")]
    Damaged {
        /// The segment.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The state file does not parse.
    #[error("spool state {path} is not valid: {reason}")]
    BadState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Records must be appended with consecutive sequence numbers.
    #[error("spool expects sequence {expected} next, got {got}")]
    OutOfOrder {
        /// The next sequence number.
        expected: u64,
        /// The one given.
        got: u64,
    },
    /// A record is larger than any valid message.
    #[error("record of {len_bytes} bytes exceeds the {max_bytes}-byte record limit")]
    TooLarge {
        /// Its size.
        len_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SpoolState {
    confirmed_sequence: u64,
    confirmed_hash: Sha256Hash,
    positions: BTreeMap<String, FilePosition>,
}

impl Default for SpoolState {
    fn default() -> Self {
        Self {
            confirmed_sequence: 0,
            confirmed_hash: Sha256Hash::ZERO,
            positions: BTreeMap::new(),
        }
    }
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    last_sequence: u64,
    size_bytes: u64,
}

#[derive(Debug)]
struct Pending {
    sequence: u64,
    segment: u64,
    offset: u64,
    len: u32,
    leaf_hash: Sha256Hash,
    mark: Option<SourceMark>,
}

/// A spooled message read back for submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spooled {
    /// Its sequence number.
    pub sequence: u64,
    /// Its leaf hash.
    pub leaf_hash: Sha256Hash,
    /// The envelope's canonical encoding.
    pub envelope: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// The spool; see the module docs.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    _lock: File,
    written: SpoolState,
    confirmed: u64,
    confirmed_hash: Sha256Hash,
    confirmed_positions: BTreeMap<String, FilePosition>,
    tip: (u64, Sha256Hash),
    positions: BTreeMap<String, FilePosition>,
    pending: VecDeque<Pending>,
    pending_bytes: u64,
    segments: BTreeMap<u64, Segment>,
    writer: Option<(u64, File)>,
    readers: HashMap<u64, File>,
}

fn segment_name(first_sequence: u64) -> String {
    format!("seg-{first_sequence:020}.spool")
}

fn checksum(body: &[u8]) -> [u8; 8] {
    let hash = blake3::hash(body);
    let mut out = [0; 8];
    out.copy_from_slice(&hash.as_bytes()[..8]);
    out
}

/// Splits `bytes` (a whole segment) into records; returns them with their offsets, and the
/// length of the valid prefix with the reason the rest is not valid, if any.
fn scan(bytes: &[u8]) -> (Vec<(u64, u32, SpoolRecord)>, u64, Option<String>) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < RECORD_HEADER_BYTES {
            return (
                records,
                at as u64,
                Some("a record header is cut off".into()),
            );
        }
        let magic = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if magic != RECORD_MAGIC {
            return (records, at as u64, Some("no record starts here".into()));
        }
        let len_usize = len as usize;
        if len_usize > MAX_RECORD_BYTES {
            return (
                records,
                at as u64,
                Some(format!("record length {len} exceeds {MAX_RECORD_BYTES}")),
            );
        }
        if rest.len() < RECORD_HEADER_BYTES + len_usize {
            return (records, at as u64, Some("a record body is cut off".into()));
        }
        let body = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len_usize];
        if checksum(body) != rest[8..16] {
            return (records, at as u64, Some("record checksum mismatch".into()));
        }
        match borsh::from_slice::<SpoolRecord>(body) {
            Ok(record) => records.push((at as u64, len, record)),
            Err(e) => {
                return (
                    records,
                    at as u64,
                    Some(format!("record does not decode: {e}")),
                );
            }
        }
        at += RECORD_HEADER_BYTES + len_usize;
    }
    (records, at as u64, None)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovering from a crash: the tip of the
    /// collector's chain, every unconfirmed message and the source positions come back
    /// as they were after the last synced append.
    pub fn open(dir: &Path) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        // File locks are std since 1.89; the workspace already builds with a newer
        // toolchain (let chains), and a spool shared by two agents must be refused.
        #[allow(clippy::incompatible_msrv)]
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Locked(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let state_path = dir.join(STATE_FILE);
        let written: SpoolState = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SpoolError::BadState {
                path: state_path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SpoolState::default(),
            Err(e) => return Err(io(&state_path)(e)),
        };
        let mut spool = Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            confirmed: written.confirmed_sequence,
            confirmed_hash: written.confirmed_hash,
            confirmed_positions: written.positions.clone(),
            tip: (written.confirmed_sequence, written.confirmed_hash),
            positions: written.positions.clone(),
            written,
            pending: VecDeque::new(),
            pending_bytes: 0,
            segments: BTreeMap::new(),
            writer: None,
            readers: HashMap::new(),
        };
        spool.recover()?;
        Ok(spool)
    }

    fn recover(&mut self) -> Result<(), SpoolError> {
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(first) = name
                .strip_prefix("seg-")
                .and_then(|n| n.strip_suffix(".spool"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let count = firsts.len();
        for (i, first) in firsts.into_iter().enumerate() {
            let path = self.dir.join(segment_name(first));
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let (records, valid_len, damage) = scan(&bytes);
            if let Some(reason) = damage {
                if i + 1 < count {
                    return Err(SpoolError::Damaged {
                        path,
                        offset: valid_len,
                        reason,
                    });
                }
                // The torn tail of the last segment was never synced: nothing counted it.
                tracing::warn!(segment = %path.display(), offset = valid_len, %reason, "cutting off an unsynced record at the end of the spool");
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io(&path))?;
                file.set_len(valid_len).map_err(io(&path))?;
                file.sync_all().map_err(io(&path))?;
            }
            let mut last_sequence = first.saturating_sub(1);
            for (offset, len, record) in records {
                let leaf_hash = hash_leaf(&record.envelope);
                last_sequence = record.sequence;
                if record.sequence <= self.confirmed {
                    continue;
                }
                if record.sequence != self.tip.0 + 1 {
                    return Err(SpoolError::Damaged {
                        path,
                        offset,
                        reason: format!(
                            "sequence {} follows {}; records must be consecutive",
                            record.sequence, self.tip.0
                        ),
                    });
                }
                self.tip = (record.sequence, leaf_hash);
                if let Some(mark) = &record.mark {
                    self.positions
                        .insert(mark.key.clone(), mark.position.clone());
                }
                self.pending_bytes += u64::from(len);
                self.pending.push_back(Pending {
                    sequence: record.sequence,
                    segment: first,
                    offset,
                    len,
                    leaf_hash,
                    mark: record.mark,
                });
            }
            self.segments.insert(
                first,
                Segment {
                    path,
                    last_sequence,
                    size_bytes: valid_len,
                },
            );
        }
        // Segments wholly confirmed before a crash can go now.
        self.delete_confirmed_segments()?;
        Ok(())
    }

    /// Sequence number and leaf hash of the last spooled message: the chain continues
    /// from here. `(0, ZERO)` for a new collector.
    pub fn tip(&self) -> (u64, Sha256Hash) {
        self.tip
    }

    /// The position of every file source after the last spooled event.
    pub fn positions(&self) -> &BTreeMap<String, FilePosition> {
        &self.positions
    }

    /// The highest sequence number a node confirmed as committed.
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Messages spooled and not yet confirmed.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Their size on disk.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Appends records (consecutive sequence numbers continuing [`Spool::tip`]) and syncs
    /// them to disk. Returns once they are durable; only then may the events count as
    /// collected. On error nothing of this call counts: the caller must stop.
    pub fn append_synced(&mut self, records: &[SpoolRecord]) -> Result<(), SpoolError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut expected = self.tip.0 + 1;
        let mut encoded = Vec::new();
        let mut entries = Vec::with_capacity(records.len());
        for record in records {
            if record.sequence != expected {
                return Err(SpoolError::OutOfOrder {
                    expected,
                    got: record.sequence,
                });
            }
            expected += 1;
            let body = borsh::to_vec(record).expect("records serialize");
            if body.len() > MAX_RECORD_BYTES {
                return Err(SpoolError::TooLarge {
                    len_bytes: body.len(),
                    max_bytes: MAX_RECORD_BYTES,
                });
            }
            let len = u32::try_from(body.len()).expect("bounded by MAX_RECORD_BYTES");
            let offset_in_batch = encoded.len() as u64;
            encoded.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
            encoded.extend_from_slice(&len.to_le_bytes());
            encoded.extend_from_slice(&checksum(&body));
            encoded.extend_from_slice(&body);
            entries.push((offset_in_batch, len, hash_leaf(&record.envelope)));
        }
        let first = records[0].sequence;
        let segment_id = self.writable_segment(first)?;
        let segment = self
            .segments
            .get_mut(&segment_id)
            .expect("writable segment");
        let base = segment.size_bytes;
        let (_, file) = self.writer.as_mut().expect("writer open");
        let write = file.write_all(&encoded).and_then(|()| file.sync_data());
        if let Err(e) = write {
            // Whatever part reached the file is cut off again on the next open.
            self.writer = None;
            return Err(io(&segment.path)(e));
        }
        segment.size_bytes += encoded.len() as u64;
        segment.last_sequence = expected - 1;
        for (record, (offset_in_batch, len, leaf_hash)) in records.iter().zip(entries) {
            self.tip = (record.sequence, leaf_hash);
            if let Some(mark) = &record.mark {
                self.positions
                    .insert(mark.key.clone(), mark.position.clone());
            }
            self.pending_bytes += u64::from(len);
            self.pending.push_back(Pending {
                sequence: record.sequence,
                segment: segment_id,
                offset: base + offset_in_batch,
                len,
                leaf_hash,
                mark: record.mark.clone(),
            });
        }
        Ok(())
    }

    /// The segment to append to, starting a new one (named by `first`) when there is none
    /// or the current one is full.
    fn writable_segment(&mut self, first: u64) -> Result<u64, SpoolError> {
        let current = self
            .segments
            .last_key_value()
            .map(|(id, s)| (*id, s.size_bytes));
        match current {
            Some((id, size)) if size < SEGMENT_MAX_BYTES => {
                if self.writer.as_ref().is_none_or(|(w, _)| *w != id) {
                    let path = self.segments[&id].path.clone();
                    let file = OpenOptions::new()
                        .append(true)
                        .open(&path)
                        .map_err(io(&path))?;
                    self.writer = Some((id, file));
                }
                Ok(id)
            }
            _ => {
                let path = self.dir.join(segment_name(first));
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .open(&path)
                    .map_err(io(&path))?;
                sync_dir(&self.dir)?;
                self.segments.insert(
                    first,
                    Segment {
                        path,
                        last_sequence: first - 1,
                        size_bytes: 0,
                    },
                );
                self.writer = Some((first, file));
                Ok(first)
            }
        }
    }

    /// Up to `max_messages` (and about `max_bytes`) pending messages with sequence number
    /// `from` or higher, in order.
    pub fn read_pending(
        &mut self,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<Spooled>, SpoolError> {
        let start = self.pending.partition_point(|p| p.sequence < from);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for i in start..self.pending.len() {
            if out.len() >= max_messages
                || (!out.is_empty() && bytes + self.pending[i].len as usize > max_bytes)
            {
                break;
            }
            let p = &self.pending[i];
            let (segment, offset, len) = (p.segment, p.offset, p.len);
            bytes += len as usize;
            let path = self.segments[&segment].path.clone();
            if let std::collections::hash_map::Entry::Vacant(slot) = self.readers.entry(segment) {
                slot.insert(File::open(&path).map_err(io(&path))?);
            }
            let file = &self.readers[&segment];
            let mut buffer = vec![0u8; RECORD_HEADER_BYTES + len as usize];
            file.read_exact_at(&mut buffer, offset).map_err(io(&path))?;
            let body = &buffer[RECORD_HEADER_BYTES..];
            let damaged = |reason: String| SpoolError::Damaged {
                path: path.clone(),
                offset,
                reason,
            };
            if checksum(body) != buffer[8..16] {
                return Err(damaged("record checksum mismatch".into()));
            }
            let record: SpoolRecord =
                borsh::from_slice(body).map_err(|e| damaged(e.to_string()))?;
            out.push(Spooled {
                sequence: record.sequence,
                leaf_hash: self.pending[i].leaf_hash,
                envelope: record.envelope,
                payload: record.payload,
            });
        }
        Ok(out)
    }

    /// The leaf hash of pending message `sequence`, if it is pending.
    pub fn pending_hash(&self, sequence: u64) -> Option<Sha256Hash> {
        let i = self.pending.partition_point(|p| p.sequence < sequence);
        self.pending
            .get(i)
            .filter(|p| p.sequence == sequence)
            .map(|p| p.leaf_hash)
    }

    /// Records that a node confirmed every message up to `sequence` as committed (the
    /// hash chain makes a committed message vouch for all before it). Deletes segments
    /// that hold only confirmed messages, after saving the state that replaces them.
    pub fn confirm(&mut self, sequence: u64) -> Result<(), SpoolError> {
        while let Some(front) = self.pending.front() {
            if front.sequence > sequence {
                break;
            }
            let p = self.pending.pop_front().expect("front exists");
            self.pending_bytes -= u64::from(p.len);
            self.confirmed = p.sequence;
            self.confirmed_hash = p.leaf_hash;
            if let Some(mark) = p.mark {
                self.confirmed_positions.insert(mark.key, mark.position);
            }
        }
        self.delete_confirmed_segments()
    }

    fn delete_confirmed_segments(&mut self) -> Result<(), SpoolError> {
        let last = self.segments.last_key_value().map(|(id, _)| *id);
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|(id, s)| s.last_sequence <= self.confirmed && Some(**id) != last)
            .map(|(id, _)| *id)
            .collect();
        // The last segment is kept while it is being written; it is emptied by rolling
        // over once full.
        if done.is_empty() {
            return Ok(());
        }
        self.save_state()?;
        for id in done {
            let segment = self.segments.remove(&id).expect("listed");
            self.readers.remove(&id);
            std::fs::remove_file(&segment.path).map_err(io(&segment.path))?;
        }
        sync_dir(&self.dir)
    }

    /// Writes the confirmed state (sequence, hash, positions) atomically. Called before
    /// segments are deleted, and by the agent from time to time so a restart resubmits
    /// less.
    pub fn save_state(&mut self) -> Result<(), SpoolError> {
        if self.written.confirmed_sequence == self.confirmed {
            return Ok(());
        }
        let state = SpoolState {
            confirmed_sequence: self.confirmed,
            confirmed_hash: self.confirmed_hash,
            positions: self.confirmed_positions.clone(),
        };
        let path = self.dir.join(STATE_FILE);
        let temporary = self.dir.join("state.json.new");
        let json = serde_json::to_vec_pretty(&state).expect("state serializes");
        let mut file = File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.written = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence: u64, mark: Option<(&str, u64)>) -> SpoolRecord {
        SpoolRecord {
            sequence,
            envelope: format!("envelope {sequence}").into_bytes(),
            payload: vec![b'p'; (sequence % 7) as usize],
            mark: mark.map(|(key, offset)| SourceMark {
                key: key.into(),
                position: FilePosition {
                    device: 1,
                    inode: 2,
                    offset,
                },
            }),
        }
    }

    #[test]
    fn appended_records_survive_a_reopen_until_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path()).unwrap();
            assert_eq!(spool.tip(), (0, Sha256Hash::ZERO));
            let records: Vec<_> = (1..=5).map(|s| record(s, Some(("a", s * 10)))).collect();
            spool.append_synced(&records).unwrap();
            spool.confirm(2).unwrap();
            assert_eq!(spool.pending_len(), 3);
        }
        let mut spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.tip().0, 5);
        assert_eq!(spool.tip().1, hash_leaf(b"envelope 5"));
        assert_eq!(spool.positions()["a"].offset, 50);
        // Confirmation was not saved: everything since the saved state is pending again,
        // and resubmitting it is answered "committed" by the network.
        let pending = spool.read_pending(1, 100, usize::MAX).unwrap();
        assert_eq!(
            pending.iter().map(|p| p.sequence).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(pending[3].envelope, b"envelope 4");
        assert_eq!(pending[3].payload, record(4, None).payload);
        assert!(matches!(
            spool.append_synced(&[record(7, None)]),
            Err(SpoolError::OutOfOrder {
                expected: 6,
                got: 7
            })
        ));
    }

    #[test]
    fn a_second_agent_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(dir.path()).unwrap();
        assert!(matches!(
            Spool::open(dir.path()),
            Err(SpoolError::Locked(_))
        ));
    }

    #[test]
    fn a_torn_tail_is_cut_and_damage_elsewhere_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path()).unwrap();
            spool
                .append_synced(&[record(1, Some(("a", 1))), record(2, Some(("a", 2)))])
                .unwrap();
        }
        let segment = dir.path().join(segment_name(1));
        let mut bytes = std::fs::read(&segment).unwrap();
        let full = bytes.len();
        // A crash in the middle of writing record 3.
        bytes.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.extend_from_slice(b"partial");
        std::fs::write(&segment, &bytes).unwrap();
        {
            let mut spool = Spool::open(dir.path()).unwrap();
            assert_eq!(spool.tip().0, 2);
            assert_eq!(spool.positions()["a"].offset, 2);
            assert_eq!(std::fs::metadata(&segment).unwrap().len(), full as u64);
            spool.append_synced(&[record(3, None)]).unwrap();
            assert_eq!(spool.read_pending(3, 1, usize::MAX).unwrap()[0].sequence, 3);
        }
        // A flipped bit inside a record of a segment that is not the last: refused.
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[RECORD_HEADER_BYTES + 3] ^= 1;
        std::fs::write(&segment, &bytes).unwrap();
        std::fs::write(dir.path().join(segment_name(4)), b"").unwrap();
        match Spool::open(dir.path()) {
            Err(SpoolError::Damaged { offset, reason, .. }) => {
                assert_eq!(offset, 0);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn confirmed_segments_are_deleted_and_positions_kept() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; 1024 * 1024];
        {
            let mut spool = Spool::open(dir.path()).unwrap();
            // 70 records of 1 MiB: two segments.
            for s in 1..=70u64 {
                let mut r = record(s, Some(("f", s)));
                r.payload = big.clone();
                spool.append_synced(&[r]).unwrap();
            }
            assert_eq!(spool.segments.len(), 2);
            spool.confirm(68).unwrap();
            assert_eq!(
                spool.segments.len(),
                1,
                "the full, confirmed segment is gone"
            );
            assert_eq!(spool.pending_len(), 2);
        }
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.confirmed(), spool.written.confirmed_sequence);
        assert!(spool.confirmed() >= 60);
        assert_eq!(spool.tip().0, 70);
        assert_eq!(spool.positions()["f"].offset, 70);
        assert_eq!(spool.pending_len() as u64, 70 - spool.confirmed());
    }
}
