//! Offered load: pre-signed messages submitted at a paced rate per collector, and commit
//! times observed through a block subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonrpsee::ws_client::WsClientBuilder;

use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::{SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{
    EvidenceKind, Kind, Message, PayloadDescriptor, SourceFormat, UnixMillis,
};
use custos_rpc::{CustosApiClient, SubmitMessage, SubmitStatus};

use super::net::{CLIENT, NETWORK, Validator};

/// Characters of the payloads' padding.
const TEXT: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 /";

/// One pre-signed message.
#[derive(Clone, Debug)]
pub struct Signed1 {
    /// What `custos_submit` takes.
    pub submit: SubmitMessage,
    /// Its leaf hash.
    pub leaf_hash: Sha256Hash,
}

/// A collector's chain of messages, signed ahead so signing costs nothing during the run.
#[derive(Debug)]
pub struct Chain {
    key: SecretKey,
    sequence: u64,
    prev: Sha256Hash,
}

impl Chain {
    /// A chain starting at sequence 1.
    pub fn new(key: SecretKey) -> Self {
        Self {
            key,
            sequence: 0,
            prev: Sha256Hash::ZERO,
        }
    }

    /// The next `count` messages with `payload_bytes` of payload each.
    pub fn sign(&mut self, count: usize, payload_bytes: usize) -> Vec<Signed1> {
        let b64 = base64::engine::general_purpose::STANDARD;
        (0..count)
            .map(|_| {
                self.sequence += 1;
                let mut payload = format!(
                    "<134>1 2026-11-21T10:00:00Z web-01 sshd 4242 - - Failed password for root \
                     from 203.0.113.7 port 52311 ssh2 (line {}) ",
                    self.sequence
                )
                .into_bytes();
                // Log text does not compress much under LZ4; a padding of one repeated
                // byte would, and would flatter the storage figure. Pad with
                // pseudo-random text instead.
                let mut state = self.sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                while payload.len() < payload_bytes {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    payload.push(TEXT[usize::from((state % 64) as u8)]);
                }
                payload.truncate(payload_bytes);
                let message = Message {
                    network: Text::new(NETWORK).expect("short"),
                    author: self.key.public().key_id(),
                    client: Text::new(CLIENT).expect("short"),
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
                Signed1 {
                    submit: SubmitMessage {
                        envelope: b64.encode(envelope.leaf_bytes()),
                        payload: b64.encode(&payload),
                    },
                    leaf_hash: self.prev,
                }
            })
            .collect()
    }
}

/// Signs `per_chain` messages on every chain, in parallel across the machine's cores.
pub fn sign_all(chains: &mut [Chain], per_chain: usize, payload_bytes: usize) -> Vec<Vec<Signed1>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = chains
            .iter_mut()
            .map(|c| scope.spawn(move || c.sign(per_chain, payload_bytes)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

/// When each leaf hash was seen committed, from a block subscription to one validator.
#[derive(Debug, Clone, Default)]
pub struct Commits {
    seen: Arc<Mutex<HashMap<Sha256Hash, Instant>>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl Commits {
    /// Subscribes to `validator`'s blocks and records every leaf's arrival time until the
    /// returned task is aborted.
    pub async fn follow(
        &self,
        validator: &Validator,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let ws = WsClientBuilder::default()
            .max_response_size(64 * 1024 * 1024)
            .build(validator.rpc.replace("http://", "ws://"))
            .await?;
        let mut blocks = ws.subscribe_blocks().await?;
        let seen = self.seen.clone();
        let closed = self.closed.clone();
        Ok(tokio::spawn(async move {
            // The client lives as long as the task.
            let _ws = ws;
            while let Some(Ok(block)) = blocks.next().await {
                let now = Instant::now();
                let mut seen = seen.lock().expect("commits lock");
                for hash in block.leaf_hashes {
                    seen.insert(hash, now);
                }
            }
            closed.store(true, std::sync::atomic::Ordering::SeqCst);
        }))
    }

    /// Whether the subscription ended (the node closed it or went away).
    pub fn closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// When `hash` was seen committed.
    pub fn at(&self, hash: &Sha256Hash) -> Option<Instant> {
        self.seen.lock().expect("commits lock").get(hash).copied()
    }

    /// How many leaves were seen committed.
    pub fn len(&self) -> usize {
        self.seen.lock().expect("commits lock").len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many of `hashes` were seen committed within `[from, to)`.
    pub fn count_between(&self, hashes: &[Sha256Hash], from: Instant, to: Instant) -> usize {
        let seen = self.seen.lock().expect("commits lock");
        hashes
            .iter()
            .filter(|h| seen.get(h).is_some_and(|&t| t >= from && t < to))
            .count()
    }
}

/// Most messages of one collector admitted and not yet committed.
pub const IN_FLIGHT_PER_COLLECTOR: usize = 2_500;

/// What one collector submitted: each message's leaf hash and when it was sent.
pub type Sent = Vec<(Sha256Hash, Instant)>;

/// Submits `messages` in order to `rpc`, `batch` at a time, one batch every `interval`
/// (back to back when zero), until they are all admitted or `until` passes. A batch
/// answered busy (or partly refused) is resent from the first message not admitted, so a
/// collector's chain stays in order. Returns what was admitted and when it was sent, and
/// the messages left unsent (the chain continues with them).
///
/// At most [`IN_FLIGHT_PER_COLLECTOR`] of a collector's messages are admitted but not yet
/// seen committed in `commits` at any time, as a collector agent bounds its unconfirmed
/// window: offered faster than the network commits, the queue stays bounded and the
/// latency measured is the network's, not an ever-growing backlog's.
pub async fn submit_paced(
    rpc: String,
    messages: Vec<Signed1>,
    batch: usize,
    interval: Duration,
    until: Instant,
    commits: Commits,
) -> anyhow::Result<(Sent, Vec<Signed1>)> {
    let client = jsonrpsee::http_client::HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .max_request_size(64 * 1024 * 1024)
        .build(&rpc)?;
    let mut sent: Sent = Vec::with_capacity(messages.len());
    let mut next = 0;
    let mut tick = tokio::time::interval(interval.max(Duration::from_micros(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut confirmed = 0;
    while next < messages.len() && Instant::now() < until {
        if !interval.is_zero() {
            tick.tick().await;
        }
        while confirmed < sent.len() && commits.at(&sent[confirmed].0).is_some() {
            confirmed += 1;
        }
        if sent.len() - confirmed >= IN_FLIGHT_PER_COLLECTOR {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let end = (next + batch).min(messages.len());
        let at = Instant::now();
        let submissions: Vec<SubmitMessage> = messages[next..end]
            .iter()
            .map(|m| m.submit.clone())
            .collect();
        let response = match client.submit(submissions).await {
            Ok(response) => response,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let accepted = response
            .results
            .iter()
            .take_while(|r| {
                matches!(
                    r.status,
                    SubmitStatus::Admitted | SubmitStatus::Duplicate | SubmitStatus::Committed
                )
            })
            .count();
        for m in &messages[next..next + accepted] {
            sent.push((m.leaf_hash, at));
        }
        next += accepted;
        if next < end {
            // Busy: the mempool is full. Back off a little, as a collector would.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut messages = messages;
    Ok((sent, messages.split_off(next)))
}

/// Commit latencies of `sent`, in sorted microseconds; messages never seen committed are
/// counted in the second value.
pub fn latencies(commits: &Commits, sent: &[(Sha256Hash, Instant)]) -> (Vec<u64>, usize) {
    let mut micros = Vec::with_capacity(sent.len());
    let mut missing = 0;
    for (hash, at) in sent {
        match commits.at(hash) {
            Some(done) => {
                micros.push(
                    u64::try_from(done.saturating_duration_since(*at).as_micros())
                        .unwrap_or(u64::MAX),
                );
            }
            None => missing += 1,
        }
    }
    micros.sort_unstable();
    (micros, missing)
}

/// The `per_mille` quantile of sorted microseconds, in milliseconds (nearest rank).
pub fn quantile_ms(sorted_us: &[u64], per_mille: usize) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted_us.len() - 1) * per_mille + 500) / 1000;
    sorted_us[rank] as f64 / 1000.0
}
