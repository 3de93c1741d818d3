//! Sources: files (followed across rotation), standard input and a syslog listener. Each
//! turns bytes into [`Event`]s: the raw bytes unchanged, what the parsers read from them,
//! and for files the position after the event, which travels into the spool with it.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::Sender;

use custos_ledger::codec::Text;
use custos_ledger::message::{SourceFormat, UnixMillis};

use super::config::{FormatChoice, Framing};
use super::parse::{
    MAX_EVENT_BYTES, ParseContext, Parsed, ZeekTsvLine, ZeekTsvReader, detect, parse_with,
    read_evtx_file,
};
use super::spool::{FilePosition, SourceMark};
use crate::runtime::now_ms;

/// One event read from a source.
#[derive(Debug)]
pub struct Event {
    /// Index of the source in the configuration.
    pub source: usize,
    /// The bytes as read.
    pub raw: Vec<u8>,
    /// What the parsers read from them.
    pub parsed: Parsed,
    /// The source's position after this event (files only).
    pub mark: Option<SourceMark>,
}

/// What sources send to the signer.
// Events are nearly all of the traffic: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// An event.
    Event(Event),
    /// A source reached its end (batch mode, or the end of standard input).
    Done(usize),
    /// A source hit a problem that cost no event (a file that vanished, an `.evtx`
    /// record that could not be rendered, a syslog connection cut mid-frame).
    Error(usize, String),
    /// Time for a heartbeat.
    Heartbeat,
}

/// Reads events of one source's format, keeping what a format needs across events (the
/// `#fields` header of Zeek TSV logs).
#[derive(Debug)]
pub struct EventParser {
    choice: FormatChoice,
    zeek: Option<ZeekTsvReader>,
}

impl EventParser {
    /// A parser for `choice`.
    pub fn new(choice: FormatChoice) -> Self {
        Self {
            choice,
            zeek: matches!(choice, FormatChoice::Fixed(SourceFormat::ZeekTsv))
                .then(ZeekTsvReader::new),
        }
    }

    /// Parses one event; never fails (see [`super::parse`]).
    pub fn parse(&mut self, raw: &[u8], now: UnixMillis) -> Parsed {
        let context = ParseContext {
            reference_time: Some(now),
        };
        match self.choice {
            FormatChoice::Auto => {
                let format = detect(raw);
                let mut parsed = parse_with(format, raw, &context);
                if format == SourceFormat::Raw {
                    parsed.parse_error = Some(
                        Text::new("auto: the event matches none of the known formats")
                            .expect("short"),
                    );
                }
                parsed
            }
            FormatChoice::Syslog => {
                let format = match detect(raw) {
                    SourceFormat::Syslog5424 => SourceFormat::Syslog5424,
                    _ => SourceFormat::Syslog3164,
                };
                parse_with(format, raw, &context)
            }
            FormatChoice::Fixed(format) => match &mut self.zeek {
                Some(reader) => match reader.line(raw) {
                    // Header lines are part of the file: kept as raw evidence.
                    ZeekTsvLine::Header => parse_with(SourceFormat::Raw, raw, &context),
                    ZeekTsvLine::Event(parsed) => parsed,
                },
                None => parse_with(format, raw, &context),
            },
        }
    }
}

/// A piece of a byte stream cut at newlines.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    /// The line without its newline, or a part of an over-long line.
    pub bytes: Vec<u8>,
    /// Stream offset just after the piece (and its newline).
    pub end: u64,
    /// For a line longer than [`MAX_EVENT_BYTES`]: which part (0, 1, ...) this is.
    pub part: Option<u32>,
}

/// Cuts a byte stream into lines. Empty lines are skipped: they carry no event. A line
/// longer than [`MAX_EVENT_BYTES`] (the payload limit) is cut into parts, each notarized,
/// so nothing is dropped.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buffer: Vec<u8>,
    consumed: u64,
    part: Option<u32>,
}

impl LineSplitter {
    /// A splitter whose stream starts at `offset`.
    pub fn at(offset: u64) -> Self {
        Self {
            buffer: Vec::new(),
            consumed: offset,
            part: None,
        }
    }

    /// Offset of the first byte not yet part of a piece.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes held waiting for their newline.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Forgets everything and restarts at `offset` (a truncated file).
    pub fn reset(&mut self, offset: u64) {
        *self = Self::at(offset);
    }

    /// Takes more bytes; appends complete pieces to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Piece>) {
        self.buffer.extend_from_slice(data);
        let mut start = 0;
        while let Some(i) = self.buffer[start..].iter().position(|&b| b == b'\n') {
            let line = &self.buffer[start..start + i];
            let end = self.consumed + (start + i + 1) as u64;
            if !line.is_empty() || self.part.is_some() {
                out.push(Piece {
                    bytes: line.to_vec(),
                    end,
                    part: self.part.map(|p| p + 1),
                });
            }
            self.part = None;
            start += i + 1;
        }
        self.buffer.drain(..start);
        self.consumed += start as u64;
        while self.buffer.len() >= MAX_EVENT_BYTES {
            let part = self.part.map_or(0, |p| p + 1);
            let bytes: Vec<u8> = self.buffer.drain(..MAX_EVENT_BYTES).collect();
            self.consumed += MAX_EVENT_BYTES as u64;
            out.push(Piece {
                bytes,
                end: self.consumed,
                part: Some(part),
            });
            self.part = Some(part);
        }
    }

    /// The stream ended: what is left is the last line.
    pub fn finish(&mut self, out: &mut Vec<Piece>) {
        if self.buffer.is_empty() {
            self.part = None;
            return;
        }
        let bytes = std::mem::take(&mut self.buffer);
        self.consumed += bytes.len() as u64;
        out.push(Piece {
            bytes,
            end: self.consumed,
            part: self.part.take().map(|p| p + 1),
        });
    }
}

/// What a piece parses to: a part of an over-long line is raw, flagged.
fn parse_piece(parser: &mut EventParser, piece: &Piece, now: UnixMillis) -> Parsed {
    match piece.part {
        None => parser.parse(&piece.bytes, now),
        Some(part) => {
            let mut parsed = parse_with(SourceFormat::Raw, &piece.bytes, &ParseContext::default());
            parsed.parse_error = Text::new(format!(
                "line longer than {MAX_EVENT_BYTES} bytes, notarized in parts: this is part {part} (from 0)"
            ))
            .ok();
            parsed
        }
    }
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and `?` one.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The regular files a path or file-name glob names, sorted.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| wildcard_match(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

type FileId = (u64, u64);

fn file_id(meta: &std::fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// The key a file's position is kept under: files are known by device and inode, so a
/// rotated file keeps its position under its new name and its successor starts afresh.
pub fn position_key(source: &str, id: (u64, u64)) -> String {
    format!("{source}|{}:{}", id.0, id.1)
}

/// One file being read.
#[derive(Debug)]
struct Tail {
    id: FileId,
    path: PathBuf,
    file: File,
    splitter: LineSplitter,
    parser: EventParser,
    /// The path no longer names this file: read what is left, then drop it.
    rotated: bool,
    /// The last pass found nothing new.
    idle: bool,
    /// Document framing: size last seen and since when.
    seen_size: u64,
    stable_since: Instant,
    /// Document and evtx framing: the offset (bytes or records) already notarized.
    taken: u64,
}

/// Everything a file source thread needs.
#[derive(Debug)]
pub struct FileSource {
    /// Index of the source.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Path or glob.
    pub pattern: String,
    /// Event format.
    pub format: FormatChoice,
    /// How files are cut into events.
    pub framing: Framing,
    /// Positions of this source's files recovered from the spool, by key.
    pub positions: BTreeMap<String, FilePosition>,
    /// Read every file to its end once, then stop.
    pub batch: bool,
    /// How often to look for new data.
    pub poll: Duration,
    /// How long a document must be stable.
    pub settle: Duration,
}

impl FileSource {
    fn mark(&self, id: FileId, offset: u64) -> SourceMark {
        SourceMark {
            key: position_key(&self.name, id),
            position: FilePosition {
                device: id.0,
                inode: id.1,
                offset,
            },
        }
    }

    /// Runs the source on the current thread until `stop` is set or, in batch mode, every
    /// file is read to its end.
    pub fn run(self, tx: Sender<Input>, stop: Arc<AtomicBool>) {
        let mut tails: BTreeMap<FileId, Tail> = BTreeMap::new();
        let mut finished: HashSet<FileId> = HashSet::new();
        self.resume_rotated(&mut tails, &tx);
        while !stop.load(Ordering::Relaxed) {
            let matched = expand(&self.pattern);
            let mut current: BTreeMap<FileId, PathBuf> = BTreeMap::new();
            for path in matched {
                if let Ok(meta) = std::fs::metadata(&path) {
                    current.insert(file_id(&meta), path);
                }
            }
            for (id, path) in &current {
                if !tails.contains_key(id) && !finished.contains(id) {
                    match self.open_tail(*id, path) {
                        Ok(tail) => {
                            tails.insert(*id, tail);
                        }
                        Err(e) => send(&tx, Input::Error(self.index, e)),
                    }
                }
            }
            let mut all_idle = true;
            for tail in tails.values_mut() {
                match current.get(&tail.id) {
                    Some(path) => tail.path = path.clone(),
                    None if !tail.rotated => {
                        tracing::info!(source = %self.name, file = %tail.path.display(), "file rotated away; reading what is left");
                        tail.rotated = true;
                    }
                    None => {}
                }
                tail.idle = match self.read_tail(tail, &tx) {
                    Ok(progress) => !progress,
                    Err(e) => {
                        send(
                            &tx,
                            Input::Error(
                                self.index,
                                format!("reading {}: {e}", tail.path.display()),
                            ),
                        );
                        true
                    }
                };
                all_idle &= tail.idle;
            }
            // A rotated file with nothing new for a whole pass is finished: the writer
            // has moved on to its successor.
            let done: Vec<FileId> = tails
                .values()
                .filter(|t| t.rotated && t.idle)
                .map(|t| t.id)
                .collect();
            for id in done {
                if let Some(mut tail) = tails.remove(&id) {
                    self.flush(&mut tail, &tx);
                }
                finished.insert(id);
            }
            if self.batch && all_idle {
                for tail in tails.values_mut() {
                    self.flush(tail, &tx);
                }
                send(&tx, Input::Done(self.index));
                return;
            }
            if all_idle {
                std::thread::sleep(self.poll);
            }
        }
    }

    /// After a restart: files this source was reading that no longer match the pattern
    /// (rotated while the agent was down) are found by inode in the pattern's folder and
    /// finished from their position.
    fn resume_rotated(&self, tails: &mut BTreeMap<FileId, Tail>, tx: &Sender<Input>) {
        let matched: HashSet<FileId> = expand(&self.pattern)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| file_id(&m))
            .collect();
        let dir = Path::new(&self.pattern)
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        for position in self.positions.values() {
            let id = (position.device, position.inode);
            if matched.contains(&id) {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let found = entries
                .flatten()
                .map(|e| e.path())
                .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && file_id(&m) == id));
            if let Some(path) = found {
                tracing::info!(source = %self.name, file = %path.display(), offset = position.offset, "finishing a file rotated while the agent was stopped");
                match self.open_tail(id, &path) {
                    Ok(mut tail) => {
                        tail.rotated = true;
                        tails.insert(id, tail);
                    }
                    Err(e) => send(tx, Input::Error(self.index, e)),
                }
            }
        }
    }

    fn open_tail(&self, id: FileId, path: &Path) -> Result<Tail, String> {
        let mut file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut offset = self
            .positions
            .get(&position_key(&self.name, id))
            .map_or(0, |p| p.offset);
        if self.framing == Framing::Lines && offset > size {
            tracing::warn!(source = %self.name, file = %path.display(), offset, size, "file is shorter than the saved position (truncated while stopped): reading from the start");
            offset = 0;
        }
        if self.framing == Framing::Lines {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| format!("seeking {}: {e}", path.display()))?;
        }
        Ok(Tail {
            id,
            path: path.to_path_buf(),
            file,
            splitter: LineSplitter::at(offset),
            parser: EventParser::new(self.format),
            rotated: false,
            idle: false,
            seen_size: u64::MAX,
            stable_since: Instant::now(),
            taken: offset,
        })
    }

    /// Reads what is new; returns whether anything was.
    fn read_tail(&self, tail: &mut Tail, tx: &Sender<Input>) -> std::io::Result<bool> {
        match self.framing {
            Framing::Lines => self.read_lines(tail, tx),
            Framing::Document => self.read_document(tail, tx),
            Framing::Evtx => self.read_evtx(tail, tx),
        }
    }

    fn read_lines(&self, tail: &mut Tail, tx: &Sender<Input>) -> std::io::Result<bool> {
        let size = tail.file.metadata()?.len();
        let read_to = tail.splitter.consumed() + tail.splitter.buffered() as u64;
        if size < read_to {
            // Truncated in place (copytruncate): the new content starts at 0.
            tracing::warn!(source = %self.name, file = %tail.path.display(), size, read_to, "file truncated: reading from the start");
            tail.file.seek(SeekFrom::Start(0))?;
            tail.splitter.reset(0);
        }
        let mut chunk = vec![0u8; 256 * 1024];
        let mut progress = false;
        let mut pieces = Vec::new();
        loop {
            let n = tail.file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            progress = true;
            tail.splitter.push(&chunk[..n], &mut pieces);
            self.send_pieces(tail, &mut pieces, tx);
        }
        Ok(progress)
    }

    fn send_pieces(&self, tail: &mut Tail, pieces: &mut Vec<Piece>, tx: &Sender<Input>) {
        let now = now_ms();
        for piece in pieces.drain(..) {
            let parsed = parse_piece(&mut tail.parser, &piece, now);
            send(
                tx,
                Input::Event(Event {
                    source: self.index,
                    mark: Some(self.mark(tail.id, piece.end)),
                    raw: piece.bytes,
                    parsed,
                }),
            );
        }
    }

    /// The file is finished (batch mode end, or rotated away): its last line counts even
    /// without a newline.
    fn flush(&self, tail: &mut Tail, tx: &Sender<Input>) {
        if self.framing == Framing::Lines {
            let mut pieces = Vec::new();
            tail.splitter.finish(&mut pieces);
            self.send_pieces(tail, &mut pieces, tx);
        }
    }

    fn read_document(&self, tail: &mut Tail, tx: &Sender<Input>) -> std::io::Result<bool> {
        let size = tail.file.metadata()?.len();
        if size != tail.seen_size {
            tail.seen_size = size;
            tail.stable_since = Instant::now();
        }
        let settled = self.batch || tail.rotated || tail.stable_since.elapsed() >= self.settle;
        if size == tail.taken || !settled {
            return Ok(false);
        }
        let mut bytes = Vec::new();
        tail.file.seek(SeekFrom::Start(0))?;
        (&tail.file).take(size).read_to_end(&mut bytes)?;
        let end = bytes.len() as u64;
        let mut pieces = Vec::new();
        if bytes.len() <= MAX_EVENT_BYTES {
            pieces.push(Piece {
                bytes,
                end,
                part: None,
            });
        } else {
            let mut offset = 0u64;
            for (part, chunk) in bytes.chunks(MAX_EVENT_BYTES).enumerate() {
                offset += chunk.len() as u64;
                pieces.push(Piece {
                    bytes: chunk.to_vec(),
                    // Only the last part completes the document.
                    end: if offset == end { end } else { tail.taken },
                    part: Some(u32::try_from(part).unwrap_or(u32::MAX)),
                });
            }
        }
        self.send_pieces(tail, &mut pieces, tx);
        tail.taken = end;
        Ok(true)
    }

    fn read_evtx(&self, tail: &mut Tail, tx: &Sender<Input>) -> std::io::Result<bool> {
        let size = tail.file.metadata()?.len();
        if size == tail.seen_size {
            return Ok(false);
        }
        tail.seen_size = size;
        let evtx = match read_evtx_file(&tail.path) {
            Ok(evtx) => evtx,
            Err(e) => {
                send(tx, Input::Error(self.index, e.to_string()));
                return Ok(false);
            }
        };
        for error in evtx.record_errors {
            send(
                tx,
                Input::Error(
                    self.index,
                    format!(
                        "{}: a record could not be rendered: {error}",
                        tail.path.display()
                    ),
                ),
            );
        }
        let mut progress = false;
        for (n, (raw, parsed)) in evtx.records.into_iter().enumerate() {
            let end = n as u64 + 1;
            if end <= tail.taken {
                continue;
            }
            progress = true;
            send(
                tx,
                Input::Event(Event {
                    source: self.index,
                    raw,
                    parsed,
                    mark: Some(self.mark(tail.id, end)),
                }),
            );
            tail.taken = end;
        }
        Ok(progress)
    }
}

/// Sends from a source thread; the receiver only goes away when the agent stops.
fn send(tx: &Sender<Input>, input: Input) {
    let _ = tx.blocking_send(input);
}

/// Reads standard input line by line until its end.
pub fn run_stdin(index: usize, format: FormatChoice, tx: Sender<Input>) {
    let mut stdin = std::io::stdin().lock();
    let mut splitter = LineSplitter::default();
    let mut parser = EventParser::new(format);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pieces = Vec::new();
    loop {
        let n = match stdin.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                send(
                    &tx,
                    Input::Error(index, format!("reading standard input: {e}")),
                );
                break;
            }
        };
        splitter.push(&chunk[..n], &mut pieces);
        if stdin_pieces(index, &mut parser, &mut pieces, &tx).is_err() {
            return;
        }
    }
    splitter.finish(&mut pieces);
    let _ = stdin_pieces(index, &mut parser, &mut pieces, &tx);
    send(&tx, Input::Done(index));
}

fn stdin_pieces(
    index: usize,
    parser: &mut EventParser,
    pieces: &mut Vec<Piece>,
    tx: &Sender<Input>,
) -> Result<(), ()> {
    let now = now_ms();
    for piece in pieces.drain(..) {
        let parsed = parse_piece(parser, &piece, now);
        tx.blocking_send(Input::Event(Event {
            source: index,
            raw: piece.bytes,
            parsed,
            mark: None,
        }))
        .map_err(|_| ())?;
    }
    Ok(())
}

/// The largest UDP datagram.
const MAX_DATAGRAM_BYTES: usize = 65_536;

/// Most TCP syslog senders served at once; more wait to be accepted.
pub const MAX_SYSLOG_CONNECTIONS: usize = 256;

/// Listens for syslog over UDP and TCP until the agent stops.
pub async fn run_syslog(
    index: usize,
    udp: Option<String>,
    tcp: Option<String>,
    format: FormatChoice,
    tx: Sender<Input>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(address) = udp {
        let socket = tokio::net::UdpSocket::bind(&address)
            .await
            .with_context(|| format!("syslog: binding UDP {address}"))?;
        tracing::info!(address = %socket.local_addr()?, "syslog listening on UDP");
        let tx = tx.clone();
        tasks.spawn(async move {
            let mut parser = EventParser::new(format);
            let mut buffer = vec![0u8; MAX_DATAGRAM_BYTES];
            loop {
                let Ok((n, _peer)) = socket.recv_from(&mut buffer).await else {
                    continue;
                };
                let raw = buffer[..n].to_vec();
                let parsed = parser.parse(&raw, now_ms());
                let event = Event {
                    source: index,
                    raw,
                    parsed,
                    mark: None,
                };
                if tx.send(Input::Event(event)).await.is_err() {
                    return;
                }
            }
        });
    }
    if let Some(address) = tcp {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("syslog: binding TCP {address}"))?;
        tracing::info!(address = %listener.local_addr()?, "syslog listening on TCP");
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_SYSLOG_CONNECTIONS));
        tasks.spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let Ok((stream, _peer)) = listener.accept().await else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = syslog_stream(index, stream, format, &tx).await {
                        let _ = tx.send(Input::Error(index, e)).await;
                    }
                    drop(permit);
                });
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Reads one TCP syslog stream: RFC 6587 octet-counted frames (`LEN SP MSG`) or
/// newline-terminated messages, decided per frame by its first byte.
async fn syslog_stream(
    index: usize,
    mut stream: tokio::net::TcpStream,
    format: FormatChoice,
    tx: &Sender<Input>,
) -> Result<(), String> {
    use tokio::io::AsyncReadExt as _;
    let mut parser = EventParser::new(format);
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("syslog TCP read: {e}"))?;
        let closed = n == 0;
        buffer.extend_from_slice(&chunk[..n]);
        let mut frames = Vec::new();
        while let Some(frame) = take_frame(&mut buffer, closed)? {
            frames.push(frame);
        }
        let now = now_ms();
        for raw in frames {
            let parsed = parser.parse(&raw, now);
            let event = Event {
                source: index,
                raw,
                parsed,
                mark: None,
            };
            tx.send(Input::Event(event))
                .await
                .map_err(|_| "agent stopped".to_owned())?;
        }
        if closed {
            return Ok(());
        }
    }
}

/// Takes one frame off the front of `buffer`, if a whole one is there. At the end of the
/// stream, what is left is the last frame.
pub fn take_frame(buffer: &mut Vec<u8>, closed: bool) -> Result<Option<Vec<u8>>, String> {
    // Newlines between frames are not part of any message.
    let skip = buffer
        .iter()
        .take_while(|b| **b == b'\n' || **b == b'\r')
        .count();
    buffer.drain(..skip);
    let Some(first) = buffer.first() else {
        return Ok(None);
    };
    if first.is_ascii_digit() {
        let Some(space) = buffer.iter().position(|b| *b == b' ') else {
            if buffer.len() > 8 || closed {
                return Err("syslog TCP: an octet count longer than 8 digits".into());
            }
            return Ok(None);
        };
        let count: usize = std::str::from_utf8(&buffer[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "syslog TCP: the octet count is not a number".to_owned())?;
        if count > MAX_EVENT_BYTES {
            return Err(format!(
                "syslog TCP: a frame of {count} bytes exceeds the {MAX_EVENT_BYTES}-byte limit"
            ));
        }
        if buffer.len() < space + 1 + count {
            if closed {
                return Err("syslog TCP: the stream ended inside a frame".into());
            }
            return Ok(None);
        }
        let frame = buffer[space + 1..space + 1 + count].to_vec();
        buffer.drain(..space + 1 + count);
        return Ok(Some(frame));
    }
    match buffer.iter().position(|b| *b == b'\n') {
        Some(end) => {
            let frame = buffer[..end].to_vec();
            buffer.drain(..=end);
            Ok(Some(frame))
        }
        None if closed => Ok(Some(std::mem::take(buffer))),
        None if buffer.len() > MAX_EVENT_BYTES => Err(format!(
            "syslog TCP: a message over {MAX_EVENT_BYTES} bytes without a newline"
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_with_positions_and_long_lines_in_parts() {
        let mut splitter = LineSplitter::at(100);
        let mut out = Vec::new();
        splitter.push(b"one\n\ntw", &mut out);
        assert_eq!(
            out,
            vec![Piece {
                bytes: b"one".to_vec(),
                end: 104,
                part: None
            }]
        );
        out.clear();
        splitter.push(b"o\r\n", &mut out);
        assert_eq!(out[0].bytes, b"two\r");
        assert_eq!(out[0].end, 110);
        out.clear();
        let long = vec![b'x'; MAX_EVENT_BYTES + 10];
        splitter.push(&long, &mut out);
        splitter.push(b"\nlast", &mut out);
        splitter.finish(&mut out);
        let parts: Vec<(usize, Option<u32>)> =
            out.iter().map(|p| (p.bytes.len(), p.part)).collect();
        assert_eq!(
            parts,
            vec![(MAX_EVENT_BYTES, Some(0)), (10, Some(1)), (4, None)]
        );
        assert_eq!(out[2].end, 110 + MAX_EVENT_BYTES as u64 + 10 + 1 + 4);
        let mut parser = EventParser::new(FormatChoice::Fixed(SourceFormat::SuricataEve));
        let parsed = parse_piece(&mut parser, &out[1], UnixMillis(0));
        assert_eq!(parsed.format, SourceFormat::Raw);
        assert!(parsed.parse_error.unwrap().as_str().contains("part 1"));
    }

    #[test]
    fn globs_match_file_names() {
        assert!(wildcard_match("*.json", "eve.json"));
        assert!(wildcard_match("eve.json*", "eve.json.1"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("*.json", "eve.jsonl"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*b", "acbd"));
    }

    #[test]
    fn syslog_tcp_frames_by_count_or_newline() {
        let mut buffer = b"11 <13>1 - - x\n<13>plain line\n<14>no newline".to_vec();
        assert_eq!(
            take_frame(&mut buffer, false).unwrap().unwrap(),
            b"<13>1 - - x"
        );
        assert_eq!(
            take_frame(&mut buffer, false).unwrap().unwrap(),
            b"<13>plain line"
        );
        assert_eq!(take_frame(&mut buffer, false).unwrap(), None);
        assert_eq!(
            take_frame(&mut buffer, true).unwrap().unwrap(),
            b"<14>no newline"
        );
        let mut huge = format!("{} x", MAX_EVENT_BYTES + 1).into_bytes();
        assert!(
            take_frame(&mut huge, false)
                .unwrap_err()
                .contains("exceeds")
        );
    }

    #[test]
    fn unknown_lines_in_auto_mode_and_garbage_in_a_fixed_format_are_flagged_raw() {
        let mut auto = EventParser::new(FormatChoice::Auto);
        let parsed = auto.parse(b"\x00\xff\xfe garbage", UnixMillis(0));
        assert_eq!(parsed.format, SourceFormat::Raw);
        assert!(parsed.parse_error.is_some());
        let mut eve = EventParser::new(FormatChoice::Fixed(SourceFormat::SuricataEve));
        let parsed = eve.parse(br#"{"timestamp":"2022-02-08T16:32"#, UnixMillis(0));
        assert_eq!(parsed.format, SourceFormat::Raw);
        assert!(parsed.parse_error.is_some());
    }

    /// Raw bytes and position of the next event, waiting up to five seconds.
    fn next_event(rx: &mut tokio::sync::mpsc::Receiver<Input>) -> (Vec<u8>, u64) {
        let start = Instant::now();
        loop {
            match rx.try_recv() {
                Ok(Input::Event(event)) => {
                    let mark = event.mark.expect("file events carry their position");
                    return (event.raw, mark.position.offset);
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) if start.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("no event within 5 s: {e}"),
            }
        }
    }

    #[test]
    fn a_file_is_followed_across_rename_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"a1\na2\n").unwrap();
        let source = FileSource {
            index: 0,
            name: "app".into(),
            pattern: path.to_string_lossy().into_owned(),
            format: FormatChoice::Fixed(SourceFormat::Raw),
            framing: Framing::Lines,
            positions: BTreeMap::new(),
            batch: false,
            poll: Duration::from_millis(20),
            settle: Duration::from_millis(20),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || source.run(tx, stop))
        };
        assert_eq!(next_event(&mut rx), (b"a1".to_vec(), 3));
        assert_eq!(next_event(&mut rx), (b"a2".to_vec(), 6));
        // Rotation by rename: a late write to the old file is still read, then the new
        // file from its start.
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        let mut old = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("app.log.1"))
            .unwrap();
        std::io::Write::write_all(&mut old, b"a3\n").unwrap();
        std::fs::write(&path, b"b1\nb2\n").unwrap();
        let mut got = vec![
            next_event(&mut rx),
            next_event(&mut rx),
            next_event(&mut rx),
        ];
        got.sort();
        assert_eq!(
            got,
            vec![
                (b"a3".to_vec(), 9),
                (b"b1".to_vec(), 3),
                (b"b2".to_vec(), 6)
            ]
        );
        // Truncation in place (copytruncate): the new content is read from 0.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, b"c\n").unwrap();
        assert_eq!(next_event(&mut rx), (b"c".to_vec(), 2));
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
    }
}
