//! Inclusion-proof reads over JSON-RPC against one node holding a large log.
//!
//! ```sh
//! cargo bench --profile release -p custos-node --bench proof_reads
//! cargo bench --profile release -p custos-node --bench proof_reads -- --messages 100000 --seconds 3
//! ```
//!
//! It writes a one-validator chain of `--messages` signed evidence messages (default
//! 1,000,000, in blocks of 10,000 with commit certificates, through the node's own commit
//! path into RocksDB), starts a real `custos` process on it, checks a sample of proofs
//! against the served checkpoint, then runs `custos_getInclusionProof` by leaf hash from
//! concurrent HTTP keep-alive clients at several concurrencies, each for `--seconds`. It
//! prints a table and, last, one JSON line. Client and node share this machine's cores,
//! so the figures are a floor for a node with its own machine. The issue's target: at
//! least 5,000 reads/s with p99 at most 5 ms.

// A benchmark's output is its result: progress on stderr, the table and JSON on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

use custos_ledger::block::{
    Block, BlockBody, BlockHeader, CommitCertificate, CommitSignature, CommittedBlock, Entry, Vote,
    VoteKind,
};
use custos_ledger::codec::{Bytes, List, Text};
use custos_ledger::crypto::{SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle;
use custos_ledger::message::{
    EvidenceKind, Kind, Message, PayloadDescriptor, SourceFormat, UnixMillis,
};
use custos_ledger::storage::{Ledger, RocksBackend};
use custos_node::chain::Chain;
use custos_node::keys::{KeyFile, KeyKind};
use custos_rpc::CustosApiClient;

const NETWORK: &str = "custos-bench";
const MESSAGES_PER_BLOCK: u64 = 10_000;
/// Collectors whose chains are signed in parallel while the log is written.
const COLLECTORS: usize = 4;
/// A typical log line.
const PAYLOAD_BYTES: usize = 400;
/// Every this many leaves, one leaf hash is kept to be asked about.
const SAMPLE_EVERY: u64 = 97;
/// Proofs verified against the checkpoint before the load starts.
const VERIFIED_SAMPLE: usize = 200;
const CONCURRENCIES: [usize; 4] = [1, 4, 16, 64];

struct Args {
    messages: u64,
    seconds: u64,
}

impl Args {
    fn parse() -> anyhow::Result<Self> {
        let mut args = Self {
            messages: 1_000_000,
            seconds: 10,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| -> anyhow::Result<u64> {
                it.next()
                    .with_context(|| format!("{name} needs a value"))?
                    .parse()
                    .with_context(|| format!("{name} takes a whole number"))
            };
            match arg.as_str() {
                "--messages" => args.messages = value("--messages")?,
                "--seconds" => args.seconds = value("--seconds")?,
                // cargo bench passes --bench to every bench binary.
                "--bench" => {}
                other => bail!("unknown argument {other}; use --messages N and --seconds S"),
            }
        }
        if args.messages == 0 || args.seconds == 0 {
            bail!("--messages and --seconds must be at least 1");
        }
        Ok(args)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One collector's chain state while messages are signed.
struct Collector {
    key: SecretKey,
    sequence: u64,
    prev: Sha256Hash,
}

impl Collector {
    fn sign(&mut self, count: u64) -> Vec<Entry> {
        (0..count)
            .map(|_| {
                self.sequence += 1;
                let mut payload = format!("bench line {} ", self.sequence).into_bytes();
                payload.resize(PAYLOAD_BYTES, b'.');
                let message = Message {
                    network: Text::new(NETWORK).expect("short"),
                    author: self.key.public().key_id(),
                    client: Text::new("client0").expect("short"),
                    sequence: self.sequence,
                    prev: self.prev,
                    kind: Kind::Evidence {
                        evidence: EvidenceKind::LogLine,
                    },
                    format: SourceFormat::Raw,
                    occurred_at: None,
                    observed_at: UnixMillis(self.sequence),
                    severity: None,
                    rule_id: None,
                    host: None,
                    attack_ids: List::empty(),
                    references: List::empty(),
                    parse_error: None,
                    payload: PayloadDescriptor::of(
                        Text::new("text/plain").expect("short"),
                        &payload,
                    ),
                };
                let envelope = Signed::sign(message, &self.key);
                self.prev = envelope.leaf_hash();
                Entry {
                    envelope,
                    payload: Bytes::new(payload).expect("small"),
                }
            })
            .collect()
    }
}

/// Writes keys, genesis, the node's configuration and a chain of `messages` messages
/// under `root`; returns the RPC URL the node will serve and the sampled leaf hashes.
fn populate(root: &Path, messages: u64) -> anyhow::Result<(String, Vec<Sha256Hash>)> {
    std::fs::create_dir_all(root.join("keys"))?;
    let (file, validator) = KeyFile::generate(KeyKind::Validator);
    file.write_new(&root.join("keys/v0.json"))?;
    let p2p = free_port()?;
    let rpc = free_port()?;
    let mut spec = format!(
        "network = \"{NETWORK}\"\nlog_origin = \"custos.bench/log\"\n\
         [[validators]]\nname = \"v0\"\norg = \"org0\"\nrole = \"control-center\"\n\
         key = \"keys/v0.json\"\np2p_address = \"/ip4/127.0.0.1/tcp/{p2p}\"\n\
         [[organisations]]\nid = \"client0\"\nrole = \"client\"\nkey = \"keys/client0.json\"\n"
    );
    KeyFile::generate(KeyKind::Organisation)
        .0
        .write_new(&root.join("keys/client0.json"))?;
    let mut collectors = Vec::new();
    for i in 0..COLLECTORS {
        let (file, key) = KeyFile::generate(KeyKind::Collector);
        file.write_new(&root.join(format!("keys/c{i}.json")))?;
        spec.push_str(&format!(
            "[[collectors]]\nname = \"c{i}\"\nclient = \"client0\"\nkey = \"keys/c{i}.json\"\n"
        ));
        collectors.push(Collector {
            key,
            sequence: 0,
            prev: Sha256Hash::ZERO,
        });
    }
    std::fs::write(root.join("network.toml"), spec)?;
    let genesis = custos_node::genesis_spec::build(&root.join("network.toml"), UnixMillis(1))?;
    std::fs::write(root.join("genesis.json"), serde_json::to_string(&genesis)?)?;
    let vdir = root.join("v0");
    std::fs::create_dir_all(&vdir)?;
    std::fs::write(
        vdir.join("node.toml"),
        format!(
            "data_dir = \".\"\ngenesis = \"../genesis.json\"\nvalidator_key = \"../keys/v0.json\"\n\
             p2p_listen = \"/ip4/127.0.0.1/tcp/{p2p}\"\nrpc_listen = \"127.0.0.1:{rpc}\"\n"
        ),
    )?;

    let ledger = Arc::new(Ledger::open(RocksBackend::open(&vdir.join("ledger"))?)?);
    let mut chain = Chain::open(ledger, genesis.clone())?;
    let mut sample = Vec::new();
    let started = Instant::now();
    // Block times in the recent past, one millisecond apart, so the node's own next
    // block follows them.
    let first_time_ms = custos_node::runtime::now_ms().0 - 3_600_000;
    let mut written = 0;
    while written < messages {
        let in_block = MESSAGES_PER_BLOCK.min(messages - written);
        let per_collector = in_block.div_ceil(COLLECTORS as u64);
        let mut left = in_block;
        let shares: Vec<u64> = (0..COLLECTORS)
            .map(|_| {
                let share = per_collector.min(left);
                left -= share;
                share
            })
            .collect();
        let signed: Vec<Vec<Entry>> = std::thread::scope(|scope| {
            let handles: Vec<_> = collectors
                .iter_mut()
                .zip(&shares)
                .map(|(c, &share)| scope.spawn(move || c.sign(share)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("signing thread"))
                .collect()
        });
        let entries: Vec<Entry> = signed.into_iter().flatten().collect();
        let leaf_hashes: Vec<Sha256Hash> = entries.iter().map(|e| e.envelope.leaf_hash()).collect();
        for (i, hash) in leaf_hashes.iter().enumerate() {
            if (written + i as u64) % SAMPLE_EVERY == 0 {
                sample.push(*hash);
            }
        }
        let head = chain.head()?;
        let log = merkle::append(&chain.ledger.nodes()?, head.log.tree_size, &leaf_hashes)
            .map_err(|e| anyhow::anyhow!("appending to the log: {e}"))?
            .root;
        let body = BlockBody {
            entries: List::new(entries)?,
        };
        let header = BlockHeader {
            network: genesis.network.clone(),
            height: head.height + 1,
            round: 0,
            proposer: validator.public().key_id(),
            time: UnixMillis(first_time_ms + head.height + 1),
            parent: head.block_id,
            body_hash: body.hash(),
            log_size: log.tree_size,
            log_root: log.hash,
        };
        let vote = Vote {
            network: genesis.network.clone(),
            height: header.height,
            round: 0,
            kind: VoteKind::Precommit,
            block: Some(header.id()),
            validator: validator.public().key_id(),
        };
        let certificate = CommitCertificate {
            height: header.height,
            round: 0,
            block: header.id(),
            signatures: List::new(vec![CommitSignature {
                validator: validator.public().key_id(),
                signature: Signed::sign(vote, &validator).signature,
            }])?,
        };
        chain.commit(&CommittedBlock {
            block: Block { header, body },
            certificate,
        })?;
        written += in_block;
        if (written / MESSAGES_PER_BLOCK) % 10 == 0 || written == messages {
            let elapsed = started.elapsed().as_secs_f64();
            eprintln!(
                "populating: {written}/{messages} messages, {:.0} messages/s",
                written as f64 / elapsed
            );
        }
    }
    Ok((format!("http://127.0.0.1:{rpc}"), sample))
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The result of one concurrency level.
struct Level {
    concurrency: usize,
    reads: usize,
    errors: usize,
    reads_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// The `per_mille` quantile of sorted microseconds, in milliseconds (nearest rank).
fn percentile(sorted_us: &[u32], per_mille: usize) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((sorted_us.len() - 1) * per_mille + 500) / 1000;
    f64::from(sorted_us[rank]) / 1000.0
}

async fn load(
    url: &str,
    sample: Arc<Vec<Sha256Hash>>,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Level> {
    let clients: Vec<HttpClient> = (0..concurrency)
        .map(|_| HttpClientBuilder::default().build(url))
        .collect::<Result<_, _>>()?;
    let warm_until = Instant::now() + Duration::from_millis(500);
    let started = warm_until;
    let stop = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (worker, client) in clients.into_iter().enumerate() {
        let sample = sample.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies_us = Vec::new();
            let mut errors = 0usize;
            let mut next = worker * 7919;
            loop {
                let hash = sample[next % sample.len()];
                next += concurrency;
                let begun = Instant::now();
                if begun >= stop {
                    break;
                }
                let ok = client.get_inclusion_proof(hash, None).await.is_ok();
                if begun >= warm_until {
                    if ok {
                        let us = begun.elapsed().as_micros();
                        latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies_us, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies_us.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64().min(seconds as f64);
    latencies_us.sort_unstable();
    Ok(Level {
        concurrency,
        reads: latencies_us.len(),
        errors,
        reads_per_s: latencies_us.len() as f64 / elapsed,
        p50_ms: percentile(&latencies_us, 500),
        p99_ms: percentile(&latencies_us, 990),
        max_ms: percentile(&latencies_us, 1000),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    let dir = tempfile::tempdir()?;
    let (url, sample) = populate(dir.path(), args.messages)?;
    let store_bytes = dir_bytes(&dir.path().join("v0/ledger"))?;
    eprintln!(
        "starting the node ({} MB of RocksDB)",
        store_bytes / 1_000_000
    );
    let _node = Node(
        Command::new(env!("CARGO_BIN_EXE_custos"))
            .args(["node", "run", "--config"])
            .arg(dir.path().join("v0/node.toml"))
            .current_dir(dir.path().join("v0"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting custos")?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = HttpClientBuilder::default().build(&url)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            match client.status().await {
                Ok(status) if status.log_size >= args.messages => break status,
                _ if Instant::now() > deadline => bail!("the node did not serve within 120 s"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        // The figures mean nothing if the answers are wrong: verify a sample first.
        for hash in sample.iter().take(VERIFIED_SAMPLE) {
            let proof = client.get_inclusion_proof(*hash, None).await?;
            merkle::verify_inclusion(
                hash.as_bytes(),
                proof.leaf_index,
                proof.tree_size,
                &proof.path,
                proof.root.as_bytes(),
            )
            .with_context(|| format!("the proof of {hash} does not verify"))?;
            if proof.tree_size < args.messages {
                bail!("proof against tree size {}, below the log", proof.tree_size);
            }
        }
        eprintln!(
            "node serves {} messages at height {}; {} proofs verified; {} leaf hashes to ask about",
            status.log_size,
            status.height,
            VERIFIED_SAMPLE.min(sample.len()),
            sample.len()
        );
        let sample = Arc::new(sample);
        let mut levels = Vec::new();
        for concurrency in CONCURRENCIES {
            let level = load(&url, sample.clone(), concurrency, args.seconds).await?;
            eprintln!(
                "concurrency {:>3}: {:>8.0} reads/s  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  errors {}",
                level.concurrency,
                level.reads_per_s,
                level.p50_ms,
                level.p99_ms,
                level.max_ms,
                level.errors
            );
            levels.push(level);
        }
        report(&levels, args.messages);
        Ok(())
    })
}

fn dir_bytes(path: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Prints the Markdown table and, last, the JSON line: the best throughput and the level
/// that gave it, and whether some level met the target on both counts.
fn report(levels: &[Level], messages: u64) {
    const TARGET_READS_PER_S: f64 = 5_000.0;
    const TARGET_P99_MS: f64 = 5.0;
    println!("| concurrency | reads/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for l in levels {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            l.concurrency, l.reads_per_s, l.p50_ms, l.p99_ms, l.max_ms, l.errors
        );
    }
    let best = levels
        .iter()
        .max_by(|a, b| a.reads_per_s.total_cmp(&b.reads_per_s))
        .expect("at least one level");
    let meets = levels
        .iter()
        .any(|l| l.reads_per_s >= TARGET_READS_PER_S && l.p99_ms <= TARGET_P99_MS && l.errors == 0);
    let total_reads: usize = levels.iter().map(|l| l.reads).sum();
    println!(
        "{}",
        serde_json::json!({
            "bench": "proof_reads",
            "messages": messages,
            "reads": total_reads,
            "reads_per_s": best.reads_per_s.round(),
            "p50_ms": best.p50_ms,
            "p99_ms": best.p99_ms,
            "concurrency": best.concurrency,
            "levels": levels.iter().map(|l| serde_json::json!({
                "concurrency": l.concurrency,
                "reads_per_s": l.reads_per_s.round(),
                "p50_ms": l.p50_ms,
                "p99_ms": l.p99_ms,
                "errors": l.errors,
            })).collect::<Vec<_>>(),
            "target": { "reads_per_s": TARGET_READS_PER_S, "p99_ms": TARGET_P99_MS },
            "meets_target": meets,
        })
    );
}
