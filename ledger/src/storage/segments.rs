//! Payload segments: the [`Column::Payloads`](super::Column::Payloads) values of a
//! [`RocksBackend`](super::RocksBackend), kept in append-only files beside the database
//! instead of inside it.
//!
//! Payloads are most of what a ledger writes (a kilobyte per message against about 260
//! bytes of envelope and index entries), are written once and never changed. Inside
//! RocksDB each one was copied into the write-ahead log, the memtable and a flushed table
//! (compressed, checksummed) and later rewritten by compactions: about a sixth of a
//! validator's CPU at saturation in `scripts/bench.sh`. Here a block's payloads are one
//! `pwrite` and one `fdatasync`; RocksDB keeps a 20-byte [`PayloadRef`] per payload.
//!
//! Crash safety rests on one order: the payloads are written and synced *before* the
//! RocksDB batch that refers to them (and records the new [`Tail`]) is committed. After a
//! crash between the two, the segment holds bytes past the committed tail, which
//! [`Segments::open`] cuts off; nothing committed refers to them. A segment shorter than
//! the committed tail, or a payload whose checksum fails, is reported, never served.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::backend::BackendError;

/// Size past which the next batch starts a new segment file. A segment may end up
/// larger: one batch's payloads are never split across two files.
pub(super) const SEGMENT_BYTES: u64 = 1 << 30;

/// Where a payload is: its segment, offset and length, and a CRC-32 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PayloadRef {
    segment: u32,
    offset: u64,
    len: u32,
    crc: u32,
}

impl PayloadRef {
    /// Encoded size: segment, offset, length and checksum, big-endian.
    pub(super) const BYTES: usize = 4 + 8 + 4 + 4;

    pub(super) fn encode(&self) -> [u8; Self::BYTES] {
        let mut out = [0; Self::BYTES];
        out[..4].copy_from_slice(&self.segment.to_be_bytes());
        out[4..12].copy_from_slice(&self.offset.to_be_bytes());
        out[12..16].copy_from_slice(&self.len.to_be_bytes());
        out[16..].copy_from_slice(&self.crc.to_be_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, BackendError> {
        let bytes: [u8; Self::BYTES] = fixed(bytes, "a payload reference")?;
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4"));
        Ok(Self {
            segment: u32_at(0),
            offset: u64::from_be_bytes(bytes[4..12].try_into().expect("8")),
            len: u32_at(12),
            crc: u32_at(16),
        })
    }

    fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// Where the next payload goes: a segment and the offset just past its last committed
/// payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Tail {
    segment: u32,
    offset: u64,
}

impl Tail {
    pub(super) const BYTES: usize = 4 + 8;

    pub(super) fn encode(&self) -> [u8; Self::BYTES] {
        let mut out = [0; Self::BYTES];
        out[..4].copy_from_slice(&self.segment.to_be_bytes());
        out[4..].copy_from_slice(&self.offset.to_be_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, BackendError> {
        let bytes: [u8; Self::BYTES] = fixed(bytes, "the payload segment tail")?;
        Ok(Self {
            segment: u32::from_be_bytes(bytes[..4].try_into().expect("4")),
            offset: u64::from_be_bytes(bytes[4..].try_into().expect("8")),
        })
    }
}

/// `bytes` as the `N` bytes a stored record of `what` must be.
fn fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], BackendError> {
    bytes.try_into().map_err(|_| {
        BackendError::Engine(format!(
            "{what} is {} bytes, not {N}: the database is corrupt",
            bytes.len()
        ))
    })
}

/// The segment files of one database.
pub(super) struct Segments {
    dir: PathBuf,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    /// Read handles, opened on first use.
    readers: RwLock<HashMap<u32, Arc<File>>>,
}

/// The segment being appended to. Held locked from [`Writer::stage`] until the batch
/// that refers to the staged payloads is committed or dropped, so batches append one at
/// a time.
pub(super) struct Writer {
    tail: Tail,
    file: File,
    /// The last batch's buffer, kept to lay out the next: a fresh buffer of a block's
    /// payloads is a few megabytes of pages the kernel must fault in and zero.
    buffer: Vec<u8>,
}

/// One batch's payloads, laid out to be appended at `at`.
pub(super) struct Staged {
    at: Tail,
    bytes: Vec<u8>,
}

/// Payloads written and synced, not yet committed: what [`Writer::advance`] needs.
pub(super) struct Written {
    tail: Tail,
    /// The file of a segment the batch started.
    started: Option<File>,
}

impl Written {
    /// The tail to record in the batch that commits these payloads.
    pub(super) fn tail(&self) -> Tail {
        self.tail
    }
}

fn io_error(what: impl std::fmt::Display, e: std::io::Error) -> BackendError {
    BackendError::Engine(format!("{what}: {e}"))
}

/// Syncs a directory, so a file created in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), BackendError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(format!("syncing {}", dir.display()), e))
}

impl Segments {
    /// Opens the segments in `dir` (created if missing) with `tail` as the committed end,
    /// or `None` when the database has never stored a payload. Cuts off what a batch
    /// interrupted by a crash wrote past the tail, and removes segment files it started.
    pub(super) fn open(
        dir: &Path,
        tail: Option<Tail>,
        segment_bytes: u64,
    ) -> Result<Self, BackendError> {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
            // The folder's own entry, so that it survives a crash with what it holds.
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let recorded = tail.is_some();
        let tail = tail.unwrap_or_default();
        let path = segment_path(dir, tail.segment);
        // The segment of a recorded tail was created and synced before the tail was
        // committed: if it is not there, it was lost, and creating it would hide that.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(!recorded)
            .truncate(false)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => BackendError::Engine(format!(
                    "payload segment {} is missing but the database has committed {} bytes \
                     of payloads to it",
                    path.display(),
                    tail.offset
                )),
                _ => io_error(format!("opening {}", path.display()), e),
            })?;
        let len = file
            .metadata()
            .map_err(|e| io_error(format!("reading the size of {}", path.display()), e))?
            .len();
        if len < tail.offset {
            return Err(BackendError::Engine(format!(
                "payload segment {} holds {len} bytes but the database has committed {} \
                 bytes of payloads to it: the file was truncated or replaced",
                path.display(),
                tail.offset
            )));
        }
        if len > tail.offset {
            file.set_len(tail.offset)
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    io_error(
                        format!("cutting uncommitted bytes off {}", path.display()),
                        e,
                    )
                })?;
        }
        let entries = std::fs::read_dir(dir)
            .map_err(|e| io_error(format!("listing {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("listing {}", dir.display()), e))?;
            let started_after_tail = entry
                .file_name()
                .to_str()
                .and_then(segment_number)
                .is_some_and(|n| n > tail.segment);
            if started_after_tail {
                std::fs::remove_file(entry.path()).map_err(|e| {
                    io_error(
                        format!("removing uncommitted {}", entry.path().display()),
                        e,
                    )
                })?;
            }
        }
        sync_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            writer: Mutex::new(Writer {
                tail,
                file,
                buffer: Vec::new(),
            }),
            readers: RwLock::new(HashMap::new()),
        })
    }

    /// The writer, locked.
    pub(super) fn writer(&self) -> MutexGuard<'_, Writer> {
        // A writer poisoned by a panic is still consistent: its tail moves only once a
        // batch is committed.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lays out a batch's `total` bytes of payloads at the writer's tail, or at the start
    /// of the next segment when they would take the current one past its size.
    pub(super) fn stage(&self, writer: &mut Writer, total: usize) -> Staged {
        let tail = writer.tail;
        let at = if total > 0 && tail.offset > 0 && tail.offset + total as u64 > self.segment_bytes
        {
            Tail {
                segment: tail.segment + 1,
                offset: 0,
            }
        } else {
            tail
        };
        let mut bytes = std::mem::take(&mut writer.buffer);
        bytes.clear();
        bytes.reserve(total);
        Staged { at, bytes }
    }

    /// Appends `staged` at its place and syncs it. The tail does not move until
    /// [`Writer::advance`]; if the batch is never submitted for commit (this write
    /// failed), the next one overwrites these bytes.
    pub(super) fn write(&self, writer: &Writer, staged: &Staged) -> Result<Written, BackendError> {
        let started = if staged.at.segment == writer.tail.segment {
            None
        } else {
            let path = segment_path(&self.dir, staged.at.segment);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| io_error(format!("creating {}", path.display()), e))?;
            sync_dir(&self.dir)?;
            Some(file)
        };
        let file = started.as_ref().unwrap_or(&writer.file);
        if staged.bytes.is_empty() {
            // Only empty payloads: nothing to write.
            return Ok(Written {
                tail: staged.at,
                started,
            });
        }
        let path = || segment_path(&self.dir, staged.at.segment);
        file.write_all_at(&staged.bytes, staged.at.offset)
            .map_err(|e| io_error(format!("writing payloads to {}", path().display()), e))?;
        file.sync_data()
            .map_err(|e| io_error(format!("syncing {}", path().display()), e))?;
        drop_cached(file, staged.at.offset, staged.bytes.len());
        Ok(Written {
            tail: Tail {
                segment: staged.at.segment,
                offset: staged.at.offset + staged.bytes.len() as u64,
            },
            started,
        })
    }

    /// The payloads `refs` point to, in order. Payloads stored back to back (a block's)
    /// are read with one call.
    pub(super) fn read(&self, refs: &[PayloadRef]) -> Result<Vec<Vec<u8>>, BackendError> {
        let mut out = Vec::with_capacity(refs.len());
        let mut run_start = 0;
        while run_start < refs.len() {
            let first = refs[run_start];
            let mut run_end = run_start + 1;
            while run_end < refs.len()
                && refs[run_end].segment == first.segment
                && refs[run_end].offset == refs[run_end - 1].end()
            {
                run_end += 1;
            }
            let run = &refs[run_start..run_end];
            let bytes = self.read_range(first.segment, first.offset, run[run.len() - 1].end())?;
            for r in run {
                let start =
                    usize::try_from(r.offset - first.offset).expect("inside the bytes read");
                let payload = &bytes[start..start + r.len as usize];
                if crc32fast::hash(payload) != r.crc {
                    return Err(BackendError::Engine(format!(
                        "the payload at offset {} of {} fails its checksum: the file is corrupt",
                        r.offset,
                        segment_path(&self.dir, r.segment).display()
                    )));
                }
                out.push(payload.to_vec());
            }
            run_start = run_end;
        }
        Ok(out)
    }

    fn read_range(&self, segment: u32, start: u64, end: u64) -> Result<Vec<u8>, BackendError> {
        let file = self.reader(segment)?;
        let len = usize::try_from(end - start).map_err(|_| {
            BackendError::Engine(format!(
                "a payload range of {} bytes does not fit in memory",
                end - start
            ))
        })?;
        let mut bytes = vec![0; len];
        file.read_exact_at(&mut bytes, start).map_err(|e| {
            let path = segment_path(&self.dir, segment);
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                BackendError::Engine(format!(
                    "payload segment {} ends before byte {end}, which the database refers to: \
                     the file was truncated",
                    path.display()
                ))
            } else {
                io_error(format!("reading {}", path.display()), e)
            }
        })?;
        Ok(bytes)
    }

    fn reader(&self, segment: u32) -> Result<Arc<File>, BackendError> {
        if let Some(file) = self
            .readers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&segment)
        {
            return Ok(file.clone());
        }
        let path = segment_path(&self.dir, segment);
        let file = Arc::new(
            File::open(&path).map_err(|e| io_error(format!("opening {}", path.display()), e))?,
        );
        self.readers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(segment, file.clone());
        Ok(file)
    }
}

impl Writer {
    /// Takes back a batch's buffer for the next.
    pub(super) fn recycle(&mut self, staged: Staged) {
        self.buffer = staged.bytes;
    }

    /// Moves the tail past written payloads once the batch referring to them has been
    /// submitted for commit, whether or not the commit reported success: a commit that
    /// failed may still have reached the disk (a failed log sync), and then its payloads
    /// must not be overwritten. If it did not, the bytes are a gap nothing refers to.
    pub(super) fn advance(&mut self, written: Written) {
        self.tail = written.tail;
        if let Some(file) = written.started {
            self.file = file;
        }
    }
}

impl Staged {
    /// Adds a payload; returns where it will be.
    pub(super) fn push(&mut self, payload: &[u8]) -> PayloadRef {
        let reference = PayloadRef {
            segment: self.at.segment,
            offset: self.at.offset + self.bytes.len() as u64,
            len: u32::try_from(payload.len()).expect("payloads are far below 4 GiB"),
            crc: crc32fast::hash(payload),
        };
        self.bytes.extend_from_slice(payload);
        reference
    }
}

fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:08}.seg"))
}

/// The number of a segment file name, `None` for other files.
fn segment_number(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Lets the kernel drop the (synced, clean) page-cache copy of bytes just written.
///
/// Payloads are read rarely and long after (bundles, block sync), so caching them only
/// takes memory. Freeing the pages at once also lets the next block's write reuse them:
/// writing into pages the kernel has not touched for a while was the single largest cost
/// of the payload write on virtual machines, whose hosts reclaim idle guest memory.
fn drop_cached(file: &File, offset: u64, len: usize) {
    let Some(len) = std::num::NonZeroU64::new(len as u64) else {
        return;
    };
    // Advice only: a kernel that ignores it keeps the pages cached, which is harmless.
    let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
}
