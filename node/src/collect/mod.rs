//! The collector agent (`custos collect`): reads security logs from files, standard input
//! and a syslog listener, signs every event as the collector's next message, keeps it in
//! a crash-safe spool and submits it to the nodes until one confirms it is committed.
//!
//! The path of an event:
//! 1. a source ([`source`]) cuts bytes into events and parses each ([`parse`]); a file
//!    event carries the file's position after it;
//! 2. the signer thread signs a batch of events with consecutive sequence numbers
//!    ([`signer`]), appends them to the spool and syncs it ([`spool`]): only then are
//!    they counted as collected, and only then may they be submitted;
//! 3. the submitter ([`submit`]) sends them to a node, fails over and backs off, and
//!    removes them from the spool once a node confirms they are committed.
//!
//! After a crash the spool gives back the chain tip, the unconfirmed messages and each
//! file's position, so every event is signed once and committed once.

pub mod config;
pub mod enroll;
pub mod parse;
pub mod signer;
pub mod source;
pub mod spool;
pub mod submit;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::sync::mpsc::{Receiver, channel};

use custos_ledger::message::SourceFormat;

use crate::keys::{KeyFile, KeyKind};
use crate::runtime::now_ms;
use config::{CollectConfig, SourceConfig};
use parse::{MAX_EVENT_BYTES, ParseContext, parse_with};
use signer::Signer;
use source::{Event, FileSource, Input};
use spool::{Spool, SpoolRecord};
use submit::{SubmitTiming, Submitter};

/// Events queued between the sources and the signer; a full queue makes sources wait.
pub const INGEST_QUEUE: usize = 8_192;

/// Most events signed and synced to the spool at once.
pub const INGEST_BATCH: usize = 2_048;

/// Counters of one source.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// The source's name.
    pub name: String,
    /// Events read and spooled.
    pub read: AtomicU64,
    /// Of those, events no parser understood (notarized as raw with a parse error).
    pub parse_errors: AtomicU64,
    /// Problems that cost an event or a file (see [`Input::Error`]).
    pub errors: AtomicU64,
    /// Whether the source reached its end.
    pub done: AtomicBool,
}

/// The agent's counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Per source.
    pub sources: Vec<SourceStats>,
    /// Messages signed and spooled (events and heartbeats).
    pub signed: AtomicU64,
    /// Heartbeats among them.
    pub heartbeats: AtomicU64,
    /// Messages confirmed committed by a node during this run.
    pub committed: AtomicU64,
    /// Submissions that failed (node unreachable, timeout).
    pub submit_errors: AtomicU64,
    /// Messages a node refused for good.
    pub refused: AtomicU64,
    /// The last refusal's reason.
    pub last_refusal: Mutex<Option<String>>,
    /// Sources finished.
    pub sources_done: AtomicUsize,
    /// The signer stopped on an error it cannot recover from (the spool failed).
    pub fatal: Mutex<Option<String>>,
}

/// One source's counts, as printed.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SourceCounts {
    /// The source's name.
    pub name: String,
    /// Events read and spooled.
    pub read: u64,
    /// Events notarized as raw because no parser understood them.
    pub parse_errors: u64,
    /// Problems that cost an event or a file.
    pub errors: u64,
}

/// The agent's counts: progress lines, heartbeats and the batch-mode summary.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Per source.
    pub sources: Vec<SourceCounts>,
    /// Events read (all sources).
    pub read: u64,
    /// Messages signed and spooled.
    pub signed: u64,
    /// Messages confirmed committed during this run.
    pub committed: u64,
    /// Messages spooled and not yet confirmed.
    pub pending: u64,
    /// Failed submissions plus source problems.
    pub errors: u64,
    /// Messages refused by a node.
    pub refused: u64,
    /// The collector's last sequence number.
    pub last_sequence: u64,
}

impl Stats {
    fn summary(&self, spool: &Mutex<Spool>) -> Summary {
        let (pending, last_sequence) = {
            let spool = spool.lock().expect("spool lock");
            (spool.pending_len() as u64, spool.tip().0)
        };
        let sources: Vec<SourceCounts> = self
            .sources
            .iter()
            .map(|s| SourceCounts {
                name: s.name.clone(),
                read: s.read.load(Ordering::Relaxed),
                parse_errors: s.parse_errors.load(Ordering::Relaxed),
                errors: s.errors.load(Ordering::Relaxed),
            })
            .collect();
        Summary {
            read: sources.iter().map(|s| s.read).sum(),
            errors: sources.iter().map(|s| s.errors).sum::<u64>()
                + self.submit_errors.load(Ordering::Relaxed),
            sources,
            signed: self.signed.load(Ordering::Relaxed),
            committed: self.committed.load(Ordering::Relaxed),
            pending,
            refused: self.refused.load(Ordering::Relaxed),
            last_sequence,
        }
    }
}

/// Options of one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Batch mode: read every source to its end, wait until everything is committed,
    /// then return.
    pub exit_when_idle: bool,
}

/// The outcome of a batch run.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The counts.
    #[serde(flatten)]
    pub summary: Summary,
    /// Whether every event read was committed and nothing was lost or refused.
    pub complete: bool,
}

/// Runs the agent. In batch mode returns when every source is read and every message
/// committed (or refused); otherwise runs until interrupted.
pub async fn run(config: CollectConfig, options: RunOptions) -> anyhow::Result<Outcome> {
    if options.exit_when_idle
        && let Some(syslog) = config
            .sources
            .iter()
            .find(|s| matches!(s, SourceConfig::Syslog { .. }))
    {
        anyhow::bail!(
            "source {:?} is a syslog listener, which has no end: batch mode (--exit-when-idle) reads files and standard input only",
            syslog.name()
        );
    }
    let key = KeyFile::load(&config.key, KeyKind::Collector)?;
    let spool = Spool::open(&config.spool_dir)
        .with_context(|| format!("opening the spool {}", config.spool_dir.display()))?;
    let signer = Signer::new(key, &config.network, &config.client, spool.tip())
        .context("network or client id")?;
    tracing::info!(
        collector = %signer.author(),
        client = %config.client,
        next_sequence = spool.tip().0 + 1,
        pending = spool.pending_len(),
        "collector starting"
    );
    let positions = spool.positions().clone();
    let spool = Arc::new(Mutex::new(spool));
    let stats = Arc::new(Stats {
        sources: config
            .sources
            .iter()
            .map(|s| SourceStats {
                name: s.name(),
                ..SourceStats::default()
            })
            .collect(),
        ..Stats::default()
    });
    let notify = Arc::new(Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(address) = &config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("metrics_listen {address}"))?;
        tracing::info!(address = %listener.local_addr()?, "serving collector metrics");
        tokio::spawn(serve_metrics(listener, stats.clone(), spool.clone()));
    }
    let (tx, rx) = channel::<Input>(INGEST_QUEUE);

    for (index, source) in config.sources.iter().enumerate() {
        match source.clone() {
            SourceConfig::File {
                path,
                format,
                framing,
                ..
            } => {
                let name = source.name();
                let prefix = format!("{name}|");
                let file_source = FileSource {
                    index,
                    positions: positions
                        .iter()
                        .filter(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    name,
                    pattern: path,
                    format,
                    framing: CollectConfig::framing(format, framing),
                    batch: options.exit_when_idle,
                    poll: Duration::from_millis(config.poll_interval_ms),
                    settle: Duration::from_millis(config.settle_ms),
                };
                let (tx, stop) = (tx.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("source-{index}"))
                    .spawn(move || file_source.run(tx, stop))?;
            }
            SourceConfig::Stdin { format, .. } => {
                let tx = tx.clone();
                std::thread::Builder::new()
                    .name("source-stdin".into())
                    .spawn(move || source::run_stdin(index, format, tx))?;
            }
            SourceConfig::Syslog {
                udp, tcp, format, ..
            } => {
                let tx = tx.clone();
                let name = source.name();
                tokio::spawn(async move {
                    if let Err(e) = source::run_syslog(index, udp, tcp, format, tx).await {
                        tracing::error!(source = %name, error = %format!("{e:#}"), "syslog listener failed");
                    }
                });
            }
        }
    }
    if !options.exit_when_idle && config.heartbeat_interval_ms > 0 {
        let tx = tx.clone();
        let interval = Duration::from_millis(config.heartbeat_interval_ms);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if tx.send(Input::Heartbeat).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);

    let ingest = Ingest {
        signer,
        spool: spool.clone(),
        stats: stats.clone(),
        notify: notify.clone(),
        heartbeat_interval_ms: config.heartbeat_interval_ms,
        spool_max_bytes: config.spool_max_bytes,
    };
    let ingest_done = Arc::new(AtomicBool::new(false));
    {
        let ingest_done = ingest_done.clone();
        std::thread::Builder::new()
            .name("signer".into())
            .spawn(move || {
                ingest.run(rx);
                ingest_done.store(true, Ordering::SeqCst);
            })?;
    }

    let submitter = Submitter::new(
        &config.nodes,
        Duration::from_millis(config.request_timeout_ms),
        spool.clone(),
        stats.clone(),
        notify.clone(),
        SubmitTiming {
            batch_messages: config.submit_batch_messages,
            max_in_flight: config.max_in_flight_messages,
            confirm_interval: Duration::from_millis(config.confirm_interval_ms),
            retry_initial: Duration::from_millis(config.retry_initial_ms),
            retry_max: Duration::from_millis(config.retry_max_ms),
            poll: Duration::from_millis(config.poll_interval_ms),
        },
    )?;
    let submit_task = tokio::spawn(submitter.run());

    let progress_every = Duration::from_millis(config.progress_interval_ms.max(1));
    let mut last_progress = tokio::time::Instant::now();
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let outcome = loop {
        let tick = tokio::time::sleep(Duration::from_millis(100));
        tokio::select! {
            _ = &mut interrupted => {
                tracing::info!("interrupted; everything collected is in the spool");
                break None;
            }
            () = tick => {}
        }
        if let Some(error) = stats.fatal.lock().expect("stats lock").clone() {
            stop.store(true, Ordering::Relaxed);
            submit_task.abort();
            anyhow::bail!("collector stopped: {error}");
        }
        if last_progress.elapsed() >= progress_every {
            last_progress = tokio::time::Instant::now();
            progress(&stats, &spool);
        }
        if options.exit_when_idle && ingest_done.load(Ordering::SeqCst) {
            let summary = stats.summary(&spool);
            let refused = summary.refused > 0;
            if summary.pending == 0 || refused {
                break Some(refused);
            }
        }
    };
    stop.store(true, Ordering::Relaxed);
    submit_task.abort();
    {
        let mut spool = spool.lock().expect("spool lock");
        if let Err(e) = spool.save_state() {
            tracing::warn!(error = %e, "could not save the spool state");
        }
    }
    progress(&stats, &spool);
    let summary = stats.summary(&spool);
    let complete = outcome == Some(false) && summary.pending == 0 && summary.errors_lost() == 0;
    Ok(Outcome { summary, complete })
}

impl Summary {
    /// Events lost to source problems (files that vanished, records that could not be
    /// rendered) plus messages refused.
    pub fn errors_lost(&self) -> u64 {
        self.sources.iter().map(|s| s.errors).sum::<u64>() + self.refused
    }
}

impl Summary {
    /// The counts in the Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, values: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in values {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let per_source = |f: fn(&SourceCounts) -> u64| {
            self.sources
                .iter()
                .map(|s| {
                    let name = s.name.replace('\\', "\\\\").replace('"', "\\\"");
                    (format!("{{source=\"{name}\"}}"), f(s))
                })
                .collect()
        };
        metric(
            "custos_collector_events_read_total",
            "counter",
            "Events read and spooled, per source.",
            per_source(|s| s.read),
        );
        metric(
            "custos_collector_parse_errors_total",
            "counter",
            "Events notarized as raw because no parser understood them, per source.",
            per_source(|s| s.parse_errors),
        );
        metric(
            "custos_collector_source_errors_total",
            "counter",
            "Source problems that cost an event or a file, per source.",
            per_source(|s| s.errors),
        );
        let one = |v: u64| vec![(String::new(), v)];
        metric(
            "custos_collector_signed_total",
            "counter",
            "Messages signed and spooled.",
            one(self.signed),
        );
        metric(
            "custos_collector_committed_total",
            "counter",
            "Messages confirmed committed since start.",
            one(self.committed),
        );
        metric(
            "custos_collector_pending_messages",
            "gauge",
            "Messages spooled and not yet confirmed.",
            one(self.pending),
        );
        metric(
            "custos_collector_errors_total",
            "counter",
            "Failed submissions plus source problems.",
            one(self.errors),
        );
        metric(
            "custos_collector_refused_total",
            "counter",
            "Messages a node refused.",
            one(self.refused),
        );
        metric(
            "custos_collector_last_sequence",
            "gauge",
            "The collector's last sequence number.",
            one(self.last_sequence),
        );
        out
    }
}

/// Largest request read from a metrics client; a scrape is one short GET.
const MAX_SCRAPE_REQUEST_BYTES: usize = 8 * 1024;

async fn serve_metrics(
    listener: tokio::net::TcpListener,
    stats: Arc<Stats>,
    spool: Arc<Mutex<Spool>>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let body = stats.summary(&spool).prometheus();
        tokio::spawn(async move {
            let mut request = vec![0u8; MAX_SCRAPE_REQUEST_BYTES];
            // One read is enough for a scrape request; the body is never used.
            if socket.read(&mut request).await.is_err() {
                return;
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

fn progress(stats: &Stats, spool: &Mutex<Spool>) {
    let s = stats.summary(spool);
    tracing::info!(
        read = s.read,
        signed = s.signed,
        committed = s.committed,
        pending = s.pending,
        errors = s.errors,
        refused = s.refused,
        last_sequence = s.last_sequence,
        "progress"
    );
    if let Some(reason) = stats.last_refusal.lock().expect("stats lock").as_ref() {
        tracing::warn!(%reason, "last refusal");
    }
}

/// The signer thread: signs queued events in batches and syncs them to the spool.
struct Ingest {
    signer: Signer,
    spool: Arc<Mutex<Spool>>,
    stats: Arc<Stats>,
    notify: Arc<Notify>,
    heartbeat_interval_ms: u64,
    spool_max_bytes: u64,
}

impl Ingest {
    fn run(mut self, mut rx: Receiver<Input>) {
        let mut inputs = Vec::with_capacity(INGEST_BATCH);
        while let Some(first) = rx.blocking_recv() {
            inputs.push(first);
            while inputs.len() < INGEST_BATCH {
                match rx.try_recv() {
                    Ok(input) => inputs.push(input),
                    Err(_) => break,
                }
            }
            if let Err(error) = self.batch(&mut inputs) {
                tracing::error!(%error, "the spool failed; stopping");
                *self.stats.fatal.lock().expect("stats lock") = Some(error);
                return;
            }
        }
    }

    fn batch(&mut self, inputs: &mut Vec<Input>) -> Result<(), String> {
        let now = now_ms();
        let mut records: Vec<SpoolRecord> = Vec::with_capacity(inputs.len());
        // (source, parse error) of each event record, counted once synced.
        let mut counted: Vec<(usize, bool)> = Vec::with_capacity(inputs.len());
        let mut done = Vec::new();
        let mut heartbeats = 0;
        for input in inputs.drain(..) {
            match input {
                Input::Event(event) => {
                    for event in fit(event) {
                        counted.push((event.source, event.parsed.parse_error.is_some()));
                        records.push(self.signer.evidence(
                            &event.parsed,
                            event.raw,
                            now,
                            event.mark,
                        ));
                    }
                }
                Input::Done(index) => done.push(index),
                Input::Error(index, error) => {
                    let source = &self.stats.sources[index];
                    source.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(source = %source.name, %error, "source problem");
                }
                Input::Heartbeat => {
                    let status = serde_json::to_vec(&self.stats.summary(&self.spool))
                        .expect("summaries serialize");
                    records.push(
                        self.signer
                            .heartbeat(self.heartbeat_interval_ms, status, now),
                    );
                    heartbeats += 1;
                }
            }
        }
        // Back-pressure: sources wait while the spool is over its budget.
        while self.spool.lock().expect("spool lock").pending_bytes() > self.spool_max_bytes {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.spool
            .lock()
            .expect("spool lock")
            .append_synced(&records)
            .map_err(|e| e.to_string())?;
        for (index, parse_error) in counted {
            let source = &self.stats.sources[index];
            source.read.fetch_add(1, Ordering::Relaxed);
            if parse_error {
                source.parse_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.stats
            .signed
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.stats
            .heartbeats
            .fetch_add(heartbeats, Ordering::Relaxed);
        for index in done {
            self.stats.sources[index]
                .done
                .store(true, Ordering::Relaxed);
            self.stats.sources_done.fetch_add(1, Ordering::Relaxed);
        }
        if !records.is_empty() {
            self.notify.notify_one();
        }
        Ok(())
    }
}

/// An event whose bytes exceed the payload limit (a UDP datagram cannot, a rendered
/// `.evtx` record could) is notarized in parts, raw and flagged, rather than refused.
fn fit(event: Event) -> Vec<Event> {
    if event.raw.len() <= MAX_EVENT_BYTES {
        return vec![event];
    }
    let parts = event.raw.len().div_ceil(MAX_EVENT_BYTES);
    event
        .raw
        .chunks(MAX_EVENT_BYTES)
        .enumerate()
        .map(|(part, chunk)| {
            let mut parsed = parse_with(SourceFormat::Raw, chunk, &ParseContext::default());
            parsed.parse_error = custos_ledger::codec::Text::new(format!(
                "event of {} bytes exceeds the {MAX_EVENT_BYTES}-byte payload limit: part {part} of {parts} (from 0)",
                event.raw.len()
            ))
            .ok();
            Event {
                source: event.source,
                raw: chunk.to_vec(),
                parsed,
                // Only the last part moves the source's position past the event.
                mark: if part + 1 == parts {
                    event.mark.clone()
                } else {
                    None
                },
            }
        })
        .collect()
}
