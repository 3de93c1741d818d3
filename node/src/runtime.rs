//! The validator runtime: one task that owns the consensus engine and the commit path,
//! fed by the network, timers and the mempool.
//!
//! Order of effects, which crash safety rests on:
//! 1. a WAL entry is synced before the vote or proposal it records is sent;
//! 2. a decided block is applied to the ledger in one synced batch before the mempool
//!    forgets its messages and before the WAL is cleared;
//! 3. the next height starts only after that.
//!
//! An idle network does not spin: the next height starts when a message is waiting, when
//! a peer is already at it, or when the genesis `empty_block_interval_ms` has passed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

use custos_consensus::{
    self as consensus, Decision, Engine, EngineConfig, Height, Input, Output, Round, StepTimeout,
    TimeoutConfig, ValidatorAddress, ValidatorIndex, ValueId,
};
use custos_ledger::block::{
    Block, BlockBody, BlockHeader, BlockId, CommitCertificate, CommitSignature, CommittedBlock,
    Entry, SignedVote, ValidatorSet, Vote, VoteKind,
};
use custos_ledger::codec::{Bytes, List, Text};
use custos_ledger::crypto::{KeyId, PublicKey, SecretKey, Signature, Signed};
use custos_ledger::genesis::Genesis;
use custos_ledger::hash::{Blake3Hash, Sha256Hash};
use custos_ledger::message::{
    Equivocation, Kind, Message, PayloadDescriptor, SourceFormat, UnixMillis,
};
use custos_ledger::storage::{Ledger, RocksBackend, ValidatedBody};

use crate::chain::Chain;
use crate::config::ConsensusConfig;
use crate::mempool::{Committed as _, Mempool, Prepared};
use crate::metrics::Metrics;
use crate::p2p::{P2pEvent, P2pHandle, Topic};
use crate::wire::{self, ConsensusWire, MempoolBatch, ProposalBody, SyncRequest, SyncResponse};

/// State shared between the runtime, the RPC server and the network handlers.
#[derive(Debug)]
pub struct Shared {
    /// The chain; written only by the runtime's commit path.
    pub chain: RwLock<Chain>,
    /// Waiting messages.
    pub mempool: Mutex<Mempool>,
    /// Signals that the mempool gained messages.
    pub mempool_changed: Notify,
    /// The network.
    pub p2p: P2pHandle,
    /// Names of connected validators, by key.
    pub peers: RwLock<HashMap<[u8; 32], String>>,
    /// Metrics.
    pub metrics: Metrics,
    /// This validator's key.
    pub key: SecretKey,
    /// Genesis hash.
    pub genesis_hash: Sha256Hash,
    /// Authenticated reads served and not yet recorded on the chain.
    pub audit: Mutex<crate::audit::AuditQueue>,
    /// Heights of blocks as they are committed, for subscribers.
    pub committed: tokio::sync::broadcast::Sender<u64>,
    /// Weights of the risk model's sub-scores (configuration `[risk]`).
    pub risk_weights: custos_ledger::risk::RiskWeights,
}

impl Shared {
    /// Admits entries to the mempool. Returns one result per entry, and the admitted
    /// entries, which the caller forwards to the other validators with [`Shared::forward`].
    pub fn admit(
        &self,
        entries: Vec<Entry>,
    ) -> (
        Vec<Result<Sha256Hash, crate::mempool::Rejection>>,
        Vec<Entry>,
    ) {
        let results = {
            let chain = self.chain.read().expect("chain lock");
            let prepared = self.prepare(entries.clone(), &chain);
            let mut mempool = self.mempool.lock().expect("mempool lock");
            let results = mempool.admit_prepared(prepared, chain.membership(), &*chain);
            self.metrics.mempool_messages.set(gauge(mempool.len()));
            results
        };
        let admitted: Vec<Entry> = entries
            .into_iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(e, _)| e)
            .collect();
        if !admitted.is_empty() {
            self.mempool_changed.notify_one();
        }
        (results, admitted)
    }

    /// Checks the signatures of entries to admit, before the mempool is locked (they are
    /// the slow part), skipping those the mempool knows as waiting or just committed.
    fn prepare(&self, entries: Vec<Entry>, chain: &Chain) -> Prepared {
        Prepared::new(entries, chain.membership(), |hash| {
            self.mempool.lock().expect("mempool lock").knows(hash)
        })
    }

    /// Gossips admitted messages to the other validators, in batches under the gossip
    /// size bound. A batch that cannot be sent is only logged: the messages are admitted
    /// here and this validator proposes them in its turn; forwarding lets every proposer
    /// include them sooner.
    pub async fn forward(&self, entries: Vec<Entry>) {
        let mut batch: Vec<Entry> = Vec::new();
        let mut bytes = 0;
        let mut batches = Vec::new();
        for entry in entries {
            let size = entry.payload.len() + 1024;
            if !batch.is_empty()
                && (batch.len() == custos_rpc::MAX_SUBMIT_BATCH
                    || bytes + size > wire::MAX_MEMPOOL_WIRE_BYTES / 2)
            {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += size;
            batch.push(entry);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        for batch in batches {
            let message = MempoolBatch {
                entries: List::new(batch).expect("batch within bound"),
            };
            if let Err(e) = self
                .p2p
                .publish(Topic::Mempool, wire::to_bytes(&message))
                .await
            {
                debug!(error = %e, "mempool gossip not sent");
            }
        }
    }
}

/// Takes the events queued right behind one just received into `taken`, in order, while
/// `take` accepts them (`Ok` with what it made of the event and how many messages that
/// holds) and until they hold `room` messages. The first event `take` refuses ends the
/// run and is returned, to be handled after those taken.
fn take_queued<T, U>(
    events: &mut mpsc::Receiver<T>,
    mut room: usize,
    taken: &mut Vec<U>,
    mut take: impl FnMut(T) -> Result<(U, usize), T>,
) -> Option<T> {
    while room > 0 {
        let Ok(event) = events.try_recv() else {
            break;
        };
        match take(event) {
            Ok((made, messages)) => {
                taken.push(made);
                room = room.saturating_sub(messages);
            }
            Err(other) => return Some(other),
        }
    }
    None
}

/// A count as a gauge value.
fn gauge(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Wall-clock time in milliseconds.
pub fn now_ms() -> UnixMillis {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    UnixMillis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// The consensus write-ahead log: one append-only file of checksummed records.
#[derive(Debug)]
struct Wal {
    file: File,
}

impl Wal {
    fn open(path: &Path) -> anyhow::Result<(Self, Vec<consensus::WalEntry>)> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening WAL {}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let decoded = consensus::wal::decode_records(&bytes)
            .with_context(|| format!("WAL {} is damaged", path.display()))?;
        Ok((Self { file }, decoded.entries))
    }

    fn append(&mut self, entry: &consensus::WalEntry) -> anyhow::Result<()> {
        self.file.write_all(&consensus::wal::encode_record(entry))?;
        self.file.sync_data().context("syncing the WAL")?;
        Ok(())
    }

    fn clear(&mut self) -> anyhow::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        Ok(())
    }
}

/// A peer's answer to a block-sync request, or why there is none.
type SyncAnswer = ([u8; 32], Result<Vec<u8>, String>);

/// What a proposal's judgment depends on besides the chain's head: the block, and the
/// round it is proposed in with its polka's round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct JudgedProposal {
    height: u64,
    round: u32,
    pol_round: Option<u32>,
    block_id: BlockId,
}

impl JudgedProposal {
    fn of(body: &ProposalBody) -> Self {
        Self {
            height: body.height,
            round: body.round,
            pol_round: body.pol_round,
            block_id: body.block_id,
        }
    }
}

/// The consensus engine's view of a signed proposal by `proposer`.
fn engine_proposal(body: &ProposalBody, proposer: ValidatorIndex) -> consensus::Proposal {
    consensus::Proposal {
        height: Height::new(body.height),
        round: Round::new(body.round),
        value: ValueId(body.block_id.0),
        pol_round: body.pol_round.map(Round::new),
        proposer,
    }
}

/// Messages fetched for a compact proposal: the proposal to assemble again, its publisher,
/// the messages that arrived and how many no peer sent.
type FetchedEntries = (ConsensusWire, [u8; 32], Vec<Entry>, usize);

/// How long a peer has to send a proposed block or messages this validator lacks. The
/// loop waits this long for a decided block it lacks (not serving peers meanwhile), so it
/// is kept short.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages buffered for a height that has not started.
const EARLY_MESSAGES_MAX: usize = 1024;

/// Most messages of the mempool batches from the network admitted together (batches
/// queued one behind the other): their signatures are verified in one batch, and Ed25519
/// batch verification costs about a tenth less per signature over 1,024 signatures than
/// over 250, a collector's usual batch, which its validator gossips as it came.
const COALESCED_GOSSIP_MESSAGES: usize = 1024;

/// How often a validator resends its own proposal and votes of the current round: a peer
/// that lost them (a partition, a restart) can only leave the round by receiving them.
const RESEND_INTERVAL: Duration = Duration::from_millis(1_000);

/// How long a validator one height behind a peer waits for its own decision before
/// fetching the block by sync.
const SYNC_GRACE: Duration = Duration::from_millis(1_000);

/// The validators to ask for something this validator lacks, in order: `first` if given,
/// then other connected validators, [`FETCH_ATTEMPTS`] at most.
fn peers_to_ask(shared: &Shared, first: Option<[u8; 32]>) -> Vec<[u8; 32]> {
    let connected = shared.peers.read().expect("peers lock");
    first
        .into_iter()
        .chain(
            connected
                .keys()
                .copied()
                .filter(|&peer| Some(peer) != first),
        )
        .take(FETCH_ATTEMPTS)
        .collect()
}

/// Asks peers for messages by leaf hash: `first` (the proposer, which holds them all),
/// then other connected validators for whatever is still missing. Returns what arrived;
/// the caller checks each message against the block it assembles.
async fn fetch_entries(
    shared: &Shared,
    first: [u8; 32],
    missing: Vec<Sha256Hash>,
) -> (Vec<Entry>, usize) {
    let mut wanted: HashSet<Sha256Hash> = missing.into_iter().collect();
    let mut entries = Vec::new();
    for peer in peers_to_ask(shared, Some(first)) {
        let leaves = List::new(wanted.iter().copied().collect()).expect("at most a block's leaves");
        let request = wire::to_bytes(&SyncRequest::Entries { leaves });
        let answer = tokio::time::timeout(FETCH_TIMEOUT, shared.p2p.request(peer, request)).await;
        let Ok(Ok(bytes)) = answer else {
            continue;
        };
        let Ok(SyncResponse::Entries(sent)) = wire::sync_response_from_bytes(&bytes) else {
            continue;
        };
        for entry in sent.into_vec() {
            // The leaf hash covers the payload's digest, not its bytes: a message is taken
            // only with the payload its envelope names.
            if entry.envelope.body.payload.check(&entry.payload).is_ok()
                && wanted.remove(&entry.envelope.leaf_hash())
            {
                entries.push(entry);
            }
        }
        if wanted.is_empty() {
            break;
        }
    }
    (entries, wanted.len())
}

/// A committed message by leaf hash, with its payload (none if the payload was redacted or
/// the ledger cannot be read).
fn committed_entry(ledger: &Ledger<RocksBackend>, leaf: &Sha256Hash) -> Option<Entry> {
    let index = ledger.leaf_index(leaf).ok()??;
    let envelope = ledger.envelope(index).ok()??;
    let payload = ledger.payload(index).ok()??;
    Some(Entry {
        envelope,
        payload: Bytes::new(payload).ok()?,
    })
}

fn wire_height(message: &ConsensusWire) -> u64 {
    match message {
        ConsensusWire::Proposal { signed, .. } => signed.body.height,
        ConsensusWire::Vote(vote) => vote.body.height,
    }
}

/// Most proposals waiting for missing messages at once; a byzantine proposer cannot make
/// a validator start more fetches than this.
const FETCHES_IN_FLIGHT: usize = 4;

/// Peers asked for a decided block or a proposal's missing messages before the runtime
/// gives up (on a decision it then waits for block sync; on a proposal, until its next
/// copy).
const FETCH_ATTEMPTS: usize = 3;

/// The runtime.
pub struct Runtime {
    shared: Arc<Shared>,
    network: Text<custos_ledger::limits::NetworkIdLen>,
    me: KeyId,
    engine: Engine,
    ledger_validators: ValidatorSet,
    consensus_validators: consensus::ValidatorSet,
    wal: Wal,
    blocks: HashMap<ValueId, Block>,
    /// Blocks of the current height this validator built or judged valid, as checked:
    /// committing one of them does not hash its payloads and leaves again.
    validated: HashMap<ValueId, ValidatedBody>,
    timeouts_tx: mpsc::UnboundedSender<consensus::Timeout>,
    timeouts_rx: mpsc::UnboundedReceiver<consensus::Timeout>,
    /// The height to start next, while idle.
    pending_height: Option<u64>,
    early: Vec<(ConsensusWire, [u8; 32])>,
    /// Early messages to feed once their height has started.
    replay: VecDeque<(ConsensusWire, [u8; 32])>,
    /// A peer that is ahead, and when to sync from it.
    behind: Option<([u8; 32], Instant)>,
    /// A block-sync request is on its way.
    sync_in_flight: bool,
    sync_tx: mpsc::UnboundedSender<SyncAnswer>,
    sync_rx: mpsc::UnboundedReceiver<SyncAnswer>,
    /// Messages fetched from peers to assemble proposals of the current height.
    fetched: HashMap<Sha256Hash, Entry>,
    /// Proposed blocks whose missing messages are being asked of peers.
    fetching: HashSet<BlockId>,
    /// Proposals of the current height whose block was judged valid: a copy of one (a
    /// resend, once a second while the height lasts) is not judged again. A block valid at
    /// one moment stays valid for its height (the head and membership are fixed, and the
    /// clock only moves towards a block's time); one judged invalid is judged again, as
    /// the clock may have caught up with it.
    judged_valid: HashSet<JudgedProposal>,
    entries_tx: mpsc::UnboundedSender<FetchedEntries>,
    entries_rx: mpsc::UnboundedReceiver<FetchedEntries>,
    height_started: Instant,
    genesis: Genesis,
    /// Checkpoint cosigning.
    cosigning: crate::cosign::Cosigning<custos_ledger::storage::RocksBackend>,
    /// Cosignatures to gossip.
    outbox: Vec<Vec<u8>>,
    /// Anchor receipts from the anchor service, to commit as this validator's messages.
    receipts_rx: mpsc::UnboundedReceiver<custos_ledger::message::AnchorReceipt>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn timeouts(config: &ConsensusConfig) -> TimeoutConfig {
    let step = |base_ms| StepTimeout {
        base_ms,
        delta_ms: config.timeout_increase_ms,
    };
    TimeoutConfig {
        propose: step(config.propose_timeout_ms),
        prevote: step(config.vote_timeout_ms),
        precommit: step(config.vote_timeout_ms),
    }
}

impl Runtime {
    /// Prepares the runtime; `run` starts it. Anchor receipts sent on `receipts` are
    /// committed as this validator's messages.
    pub fn new(
        shared: Arc<Shared>,
        genesis: Genesis,
        consensus_config: &ConsensusConfig,
        wal_path: &Path,
        receipts: mpsc::UnboundedReceiver<custos_ledger::message::AnchorReceipt>,
    ) -> anyhow::Result<(Self, Vec<consensus::WalEntry>)> {
        let ledger_validators = genesis.validators.clone();
        let consensus_validators = consensus::ValidatorSet::new(
            ledger_validators
                .validators()
                .iter()
                .map(|v| consensus::Validator {
                    address: ValidatorAddress(v.key.0),
                    power: v.power,
                })
                .collect(),
        )
        .context("genesis validator set is not usable for consensus")?;
        let me = shared.key.public().key_id();
        let mut config = EngineConfig::new(ValidatorAddress(shared.key.public().0));
        config.timeouts = timeouts(consensus_config);
        let (wal, entries) = Wal::open(wal_path)?;
        let (timeouts_tx, timeouts_rx) = mpsc::unbounded_channel();
        let (sync_tx, sync_rx) = mpsc::unbounded_channel();
        let (entries_tx, entries_rx) = mpsc::unbounded_channel();
        let ledger = shared.chain.read().expect("chain lock").ledger.clone();
        let cosigning = crate::cosign::Cosigning::new(ledger, &genesis, &shared.key)
            .context("loading the checkpoint cosigning state")?;
        let runtime = Self {
            cosigning,
            outbox: Vec::new(),
            receipts_rx: receipts,
            network: genesis.network.clone(),
            shared,
            me,
            engine: Engine::new(config),
            ledger_validators,
            consensus_validators,
            wal,
            blocks: HashMap::new(),
            validated: HashMap::new(),
            timeouts_tx,
            timeouts_rx,
            pending_height: None,
            early: Vec::new(),
            replay: VecDeque::new(),
            behind: None,
            sync_in_flight: false,
            sync_tx,
            sync_rx,
            fetched: HashMap::new(),
            fetching: HashSet::new(),
            judged_valid: HashSet::new(),
            entries_tx,
            entries_rx,
            height_started: Instant::now(),
            genesis,
        };
        Ok((runtime, entries))
    }

    fn head_height(&self) -> u64 {
        self.shared
            .chain
            .read()
            .expect("chain lock")
            .head()
            .map_or(0, |h| h.height)
    }

    fn engine_height(&self) -> u64 {
        self.engine.height().map_or(0, Height::get)
    }

    fn key_of(&self, index: ValidatorIndex) -> Option<PublicKey> {
        self.ledger_validators
            .validators()
            .get(index.as_usize())
            .map(|v| v.key)
    }

    fn index_of(&self, id: &KeyId) -> Option<ValidatorIndex> {
        self.ledger_validators
            .validators()
            .iter()
            .position(|v| v.key.key_id() == *id)
            .and_then(|i| u32::try_from(i).ok())
            .map(ValidatorIndex::new)
    }

    fn name_of_key(&self, key: &[u8; 32]) -> String {
        self.ledger_validators
            .validators()
            .iter()
            .find(|v| v.key.0 == *key)
            .map_or_else(|| hex::encode(key), |v| v.name.to_string())
    }

    /// Runs until the network handle closes.
    pub async fn run(
        mut self,
        wal_entries: Vec<consensus::WalEntry>,
        mut events: mpsc::Receiver<P2pEvent>,
    ) -> anyhow::Result<()> {
        let start = self.head_height() + 1;
        self.start_height(start, wal_entries).await?;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_resend = Instant::now();
        let shared = self.shared.clone();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(P2pEvent::Gossip { topic: Topic::Mempool, from, data }) => {
                        let mut batches = vec![self.decode_mempool_gossip(from, data)];
                        let room = COALESCED_GOSSIP_MESSAGES.saturating_sub(batches[0].1.len());
                        let next = take_queued(&mut events, room, &mut batches, |event| match event {
                            P2pEvent::Gossip { topic: Topic::Mempool, from, data } => {
                                let batch = self.decode_mempool_gossip(from, data);
                                let count = batch.1.len();
                                Ok((batch, count))
                            }
                            other => Err(other),
                        });
                        self.on_mempool_gossip(batches).await?;
                        if let Some(event) = next {
                            self.on_network(event).await?;
                        }
                    }
                    Some(event) => self.on_network(event).await?,
                    None => return Ok(()),
                },
                Some(timeout) = self.timeouts_rx.recv() => {
                    self.process(Input::TimeoutElapsed(timeout)).await?;
                }
                Some((peer, result)) = self.sync_rx.recv() => self.on_blocks(peer, result)?,
                Some((proposal, from, entries, unfetched)) = self.entries_rx.recv() => {
                    self.on_fetched(proposal, from, entries, unfetched).await?;
                }
                Some(receipt) = self.receipts_rx.recv() => self.record_anchor(receipt).await,
                () = shared.mempool_changed.notified() => {}
                _ = tick.tick() => {
                    self.flush_audit().await;
                    if last_resend.elapsed() >= RESEND_INTERVAL {
                        last_resend = Instant::now();
                        self.resend_own_messages().await;
                        if let Some(wire) = self.cosigning.to_resend() {
                            self.outbox.push(wire.to_bytes());
                        }
                    }
                    if let Some((peer, due)) = self.behind
                        && Instant::now() >= due
                        && !self.sync_in_flight
                    {
                        self.behind = None;
                        self.request_blocks(peer);
                    }
                }
            }
            self.after_event().await?;
        }
    }

    /// Starts the pending height if it is due, and feeds messages that arrived for it
    /// before it started.
    async fn after_event(&mut self) -> anyhow::Result<()> {
        for bytes in std::mem::take(&mut self.outbox) {
            if let Err(e) = self.shared.p2p.publish(Topic::Cosignatures, bytes).await {
                debug!(error = %e, "cosignature not sent");
            }
        }
        self.maybe_start_pending().await?;
        while let Some((message, from)) = self.replay.pop_front() {
            self.on_consensus(message, from).await?;
        }
        Ok(())
    }

    /// Starts `height` with the recovered WAL entries, or marks it pending while idle.
    async fn start_height(
        &mut self,
        height: u64,
        wal: Vec<consensus::WalEntry>,
    ) -> anyhow::Result<()> {
        if wal.is_empty() && !self.should_start_now() {
            self.pending_height = Some(height);
            return Ok(());
        }
        self.pending_height = None;
        self.behind = None;
        self.height_started = Instant::now();
        self.shared
            .metrics
            .height
            .set(i64::try_from(height).unwrap_or(i64::MAX));
        info!(height, "starting height");
        self.process(Input::StartHeight {
            height: Height::new(height),
            validators: self.consensus_validators.clone(),
            wal,
        })
        .await?;
        // Messages that arrived early for this height are fed now; others are dropped.
        let early = std::mem::take(&mut self.early);
        self.replay
            .extend(early.into_iter().filter(|(m, _)| wire_height(m) == height));
        Ok(())
    }

    fn should_start_now(&self) -> bool {
        if !self.shared.mempool.lock().expect("mempool lock").is_empty() {
            return true;
        }
        let interval = self.genesis.params.empty_block_interval_ms;
        if interval == 0 {
            return false;
        }
        let last = self
            .shared
            .chain
            .read()
            .expect("chain lock")
            .head()
            .map_or(self.genesis.genesis_time, |h| h.time);
        now_ms().0 >= last.0.saturating_add(interval)
    }

    async fn maybe_start_pending(&mut self) -> anyhow::Result<()> {
        if let Some(height) = self.pending_height
            && self.should_start_now()
        {
            self.start_height(height, Vec::new()).await?;
        }
        Ok(())
    }

    /// A mempool batch gossiped by `from`, decoded; an undecodable one is logged and
    /// yields no messages.
    fn decode_mempool_gossip(
        &self,
        from: [u8; 32],
        data: crate::p2p::InboundBytes,
    ) -> ([u8; 32], Vec<Entry>) {
        match wire::mempool_from_bytes(&data.into_vec()) {
            Ok(batch) => (from, batch.entries.into_vec()),
            Err(e) => {
                warn!(peer = %self.name_of_key(&from), error = %e, "undecodable mempool batch");
                (from, Vec::new())
            }
        }
    }

    /// Admits mempool batches gossiped by other validators, in order, verifying all their
    /// signatures in one batch. Gossiped messages are admitted without forwarding again:
    /// every validator is subscribed to the topic.
    async fn on_mempool_gossip(
        &mut self,
        batches: Vec<([u8; 32], Vec<Entry>)>,
    ) -> anyhow::Result<()> {
        let sizes: Vec<([u8; 32], usize)> =
            batches.iter().map(|(from, b)| (*from, b.len())).collect();
        let entries: Vec<Entry> = batches.into_iter().flat_map(|(_, b)| b).collect();
        if entries.is_empty() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let results = {
            let chain = shared.chain.read().expect("chain lock");
            let prepared = shared.prepare(entries, &chain);
            let mut mempool = shared.mempool.lock().expect("mempool lock");
            let r = mempool.admit_prepared(prepared, chain.membership(), &*chain);
            shared.metrics.mempool_messages.set(gauge(mempool.len()));
            r
        };
        let mut results = results.iter();
        let mut any_admitted = false;
        for (from, total) in sizes {
            let admitted = results.by_ref().take(total).filter(|r| r.is_ok()).count();
            any_admitted |= admitted > 0;
            debug!(peer = %self.name_of_key(&from), admitted, total, "mempool gossip");
        }
        if any_admitted {
            self.maybe_start_pending().await?;
        }
        Ok(())
    }

    async fn on_network(&mut self, event: P2pEvent) -> anyhow::Result<()> {
        match event {
            P2pEvent::Gossip {
                topic: Topic::Consensus,
                from,
                data,
            } => match wire::consensus_from_bytes(&data.into_vec()) {
                Ok(message) => self.on_consensus(message, from).await?,
                Err(e) => {
                    warn!(publisher = %self.name_of_key(&from), error = %e, "undecodable consensus message")
                }
            },
            P2pEvent::Gossip {
                topic: Topic::Mempool,
                from,
                data,
            } => {
                let batch = self.decode_mempool_gossip(from, data);
                self.on_mempool_gossip(vec![batch]).await?;
            }
            P2pEvent::Gossip {
                topic: Topic::Cosignatures,
                from,
                data,
            } => match self.cosigning.on_gossip(&from, &data.into_vec()) {
                Ok(()) => self.store_quorum_checkpoints(),
                Err(e) => {
                    warn!(publisher = %self.name_of_key(&from), error = %e, "cosignature refused")
                }
            },
            P2pEvent::Request { from, data, reply } => {
                let response = self.serve_sync(&data.into_vec());
                if let Err(e) = reply.send(response) {
                    debug!(peer = %self.name_of_key(&from), error = %e, "sync reply not sent");
                }
            }
            P2pEvent::PeerConnected(key) => {
                let name = self.name_of_key(&key);
                info!(peer = %name, "peer connected");
                // A peer that (re)connects may be ahead: ask it for blocks now rather than
                // waiting for its next consensus message.
                if self.behind.is_none() {
                    self.behind = Some((key, Instant::now()));
                }
                {
                    let mut peers = self.shared.peers.write().expect("peers lock");
                    peers.insert(key, name);
                    self.shared.metrics.peers.set(gauge(peers.len()));
                }
                // It may have missed this round's proposal and votes (a validator's first
                // proposal is often sent before anyone is connected): send them now rather
                // than at the next resend.
                self.resend_own_messages().await;
            }
            P2pEvent::PeerDisconnected(key) => {
                info!(peer = %self.name_of_key(&key), "peer disconnected");
                let mut peers = self.shared.peers.write().expect("peers lock");
                peers.remove(&key);
                self.shared.metrics.peers.set(gauge(peers.len()));
            }
        }
        Ok(())
    }

    async fn on_consensus(&mut self, message: ConsensusWire, from: [u8; 32]) -> anyhow::Result<()> {
        let height = wire_height(&message);
        let current = self.pending_height.unwrap_or(self.engine_height());
        if height < current {
            return Ok(()); // a height this validator has finished
        }
        if height > current {
            if self.early.len() < EARLY_MESSAGES_MAX {
                self.early.push((message, from));
            }
            // One height ahead: the peer decided a height this validator is still
            // deciding; give our own decision a moment before syncing. Further ahead: this
            // validator missed blocks, sync at once.
            let grace = if height == current + 1 {
                SYNC_GRACE
            } else {
                Duration::ZERO
            };
            if self.behind.is_none() {
                self.behind = Some((from, Instant::now() + grace));
            }
            return Ok(());
        }
        if self.pending_height.is_some() {
            // A peer started this height: so do we, then replay its message.
            self.early.push((message, from));
            return self.start_height(height, Vec::new()).await;
        }
        match message {
            ConsensusWire::Proposal {
                signed,
                header,
                leaves,
            } => {
                let Some(proposer) = self.check_proposal(&signed, &header) else {
                    return Ok(());
                };
                if self
                    .judged_valid
                    .contains(&JudgedProposal::of(&signed.body))
                {
                    // A copy of a proposal judged valid (a resend): its block is held.
                    let proposal = engine_proposal(&signed.body, proposer);
                    return self
                        .process(Input::Proposal {
                            proposal,
                            valid: true,
                        })
                        .await;
                }
                let Some(block) = self.assemble(&signed, header, leaves, from) else {
                    return Ok(());
                };
                self.on_proposal(signed, proposer, block).await
            }
            ConsensusWire::Vote(vote) => self.on_vote(vote).await,
        }
    }

    /// The proposer's index, if the proposal is signed by the round's network member it
    /// names and the header is the block it names.
    fn check_proposal(
        &self,
        signed: &Signed<ProposalBody>,
        header: &BlockHeader,
    ) -> Option<ValidatorIndex> {
        let body = &signed.body;
        let Some(proposer) = self.index_of(&body.proposer) else {
            warn!(proposer = %body.proposer, "proposal from a key outside the validator set");
            return None;
        };
        let key = self.key_of(proposer).expect("index from the set");
        if body.network != self.network || signed.verify(&key).is_err() {
            warn!(proposer = %body.proposer, "proposal with a bad signature or network");
            return None;
        }
        if header.id() != body.block_id {
            warn!(proposer = %body.proposer, "proposal's header does not match its block id");
            return None;
        }
        let expected = self
            .consensus_validators
            .proposer(Height::new(body.height), Round::new(body.round));
        if proposer != expected {
            warn!(
                proposer = %body.proposer,
                height = body.height,
                round = body.round,
                "proposal signed by a validator that is not the round's proposer"
            );
            return None;
        }
        Some(proposer)
    }

    /// Rebuilds a compact proposal's block from the messages this validator holds. When
    /// some are missing, asks peers for them (the proposer first) without blocking the
    /// loop; the proposal comes back through `entries_rx` with what they sent. One fetch
    /// per block id is out at a time, and at most [`FETCHES_IN_FLIGHT`] in all; a fetch that
    /// comes back short lets the block's next copy (a resend, a re-proposal) try again.
    fn assemble(
        &mut self,
        signed: &Signed<ProposalBody>,
        header: Box<BlockHeader>,
        leaves: List<Sha256Hash, custos_ledger::limits::BlockMessageCount>,
        from: [u8; 32],
    ) -> Option<Block> {
        let block_id = signed.body.block_id;
        if let Some(block) = self.blocks.get(&ValueId(block_id.0)) {
            return Some(block.clone());
        }
        // A block holds each message once and at most `max_block_messages`: refused here,
        // before anything is looked up or copied for it.
        let distinct: HashSet<&Sha256Hash> = leaves.iter().collect();
        if distinct.len() != leaves.len()
            || leaves.len() as u64 > u64::from(self.genesis.params.max_block_messages)
        {
            warn!(
                proposer = %signed.body.proposer,
                leaves = leaves.len(),
                distinct = distinct.len(),
                "proposal names repeated messages or more than a block holds"
            );
            return None;
        }
        let budget = usize::try_from(self.genesis.params.max_block_bytes).unwrap_or(usize::MAX);
        let (found, over) = {
            let mempool = self.shared.mempool.lock().expect("mempool lock");
            self.lookup_entries(&leaves, &mempool, None, budget)
        };
        if over {
            warn!(
                proposer = %signed.body.proposer,
                max = budget,
                "proposal's messages are larger than a block may be"
            );
            return None;
        }
        let missing: Vec<Sha256Hash> = leaves
            .iter()
            .zip(&found)
            .filter(|(_, entry)| entry.is_none())
            .map(|(leaf, _)| *leaf)
            .collect();
        if missing.is_empty() {
            let entries = found
                .into_iter()
                .map(|e| e.expect("none missing"))
                .collect();
            let body = BlockBody {
                entries: List::new(entries).expect("as many entries as leaves"),
            };
            return Some(Block {
                header: *header,
                body,
            });
        }
        let height = signed.body.height;
        if self.fetching.contains(&block_id) {
            // Another copy (a resend) while its fetch is out.
            debug!(
                height,
                "proposal still lacks messages; already asking peers"
            );
            return None;
        }
        if self.fetching.len() >= FETCHES_IN_FLIGHT {
            warn!(
                height,
                "too many proposals are waiting for messages; this one waits for its next copy"
            );
            return None;
        }
        self.fetching.insert(block_id);
        info!(
            height,
            missing = missing.len(),
            total = leaves.len(),
            "fetching the proposal's missing messages"
        );
        let proposal = ConsensusWire::Proposal {
            signed: signed.clone(),
            header,
            leaves,
        };
        let shared = self.shared.clone();
        let tx = self.entries_tx.clone();
        tokio::spawn(async move {
            let (entries, unfetched) = fetch_entries(&shared, from, missing).await;
            // The runtime may have stopped; then nobody needs the messages.
            let _ = tx.send((proposal, from, entries, unfetched));
        });
        None
    }

    /// Takes messages fetched for a proposal and judges the proposal again.
    async fn on_fetched(
        &mut self,
        proposal: ConsensusWire,
        from: [u8; 32],
        entries: Vec<Entry>,
        unfetched: usize,
    ) -> anyhow::Result<()> {
        let ConsensusWire::Proposal { signed, .. } = &proposal else {
            return Ok(()); // only proposals are fetched for
        };
        let block_id = signed.body.block_id;
        let height = signed.body.height;
        self.fetching.remove(&block_id);
        if height < self.pending_height.unwrap_or(self.engine_height()) {
            return Ok(()); // decided meanwhile: its messages are not needed any more
        }
        if unfetched > 0 {
            // No peer answered in time, or none holds them (a faulty proposer's).
            info!(
                height,
                unfetched,
                "no peer sent some of a proposal's messages; not voting for it until its next copy"
            );
            return Ok(());
        }
        for entry in entries {
            self.fetched.insert(entry.envelope.leaf_hash(), entry);
        }
        self.on_consensus(proposal, from).await
    }

    /// Each leaf's message if this validator holds it: waiting in the mempool, fetched
    /// for this height, in a block proposed at this height (taken from there only with
    /// the payload its envelope names, since a proposed block may be invalid), or, given
    /// `committed`, in the ledger. Copies stop at `budget` bytes: the leaves after that
    /// come back missing, and the flag says so.
    fn lookup_entries(
        &self,
        leaves: &[Sha256Hash],
        mempool: &Mempool,
        committed: Option<&Ledger<RocksBackend>>,
        budget: usize,
    ) -> (Vec<Option<Entry>>, bool) {
        let mut held: Vec<Option<&Entry>> = leaves
            .iter()
            .map(|leaf| mempool.get(leaf).or_else(|| self.fetched.get(leaf)))
            .collect();
        if held.iter().any(Option::is_none) && !self.blocks.is_empty() {
            let proposed: HashMap<Sha256Hash, &Entry> = self
                .blocks
                .values()
                .flat_map(|block| block.body.entries.iter())
                .map(|entry| (entry.envelope.leaf_hash(), entry))
                .collect();
            for (slot, leaf) in held.iter_mut().zip(leaves) {
                if slot.is_none() {
                    *slot = proposed
                        .get(leaf)
                        .copied()
                        .filter(|entry| entry.envelope.body.payload.check(&entry.payload).is_ok());
                }
            }
        }
        let mut bytes = 0usize;
        let mut over = false;
        let found = held
            .into_iter()
            .zip(leaves)
            .map(|(entry, leaf)| {
                if over {
                    return None;
                }
                let entry = match entry {
                    Some(entry) => entry.clone(),
                    None => committed_entry(committed?, leaf)?,
                };
                bytes = bytes.saturating_add(borsh::object_length(&entry).unwrap_or(usize::MAX));
                over = bytes > budget;
                (!over).then_some(entry)
            })
            .collect();
        (found, over)
    }

    async fn on_proposal(
        &mut self,
        signed: Signed<ProposalBody>,
        proposer: ValidatorIndex,
        block: Block,
    ) -> anyhow::Result<()> {
        let body = &signed.body;
        let proposer_of = |round: u32| {
            let index = self
                .consensus_validators
                .proposer(Height::new(body.height), Round::new(round));
            self.key_of(index).expect("proposer in set").key_id()
        };
        let validated = {
            let chain = self.shared.chain.read().expect("chain lock");
            let mempool = self.shared.mempool.lock().expect("mempool lock");
            match chain.validate_block(
                &block,
                proposer_of,
                body.round,
                body.pol_round,
                now_ms(),
                &mempool,
            ) {
                Ok(validated) => Some(validated),
                Err(e) => {
                    warn!(height = body.height, round = body.round, error = %e, "invalid block proposed");
                    None
                }
            }
        };
        let valid = validated.is_some();
        let proposal = engine_proposal(body, proposer);
        if let Some(validated) = validated {
            self.judged_valid.insert(JudgedProposal::of(body));
            self.validated.insert(proposal.value, validated);
        }
        // Kept for deciding or re-proposing it later, unless its body is not the one its
        // header names: such a block can never be decided, and storing it would fail.
        if valid || block.check_body().is_ok() {
            self.blocks.insert(proposal.value, block);
        }
        self.process(Input::Proposal { proposal, valid }).await
    }

    async fn on_vote(&mut self, signed: SignedVote) -> anyhow::Result<()> {
        let vote = &signed.body;
        let Some(index) = self.index_of(&vote.validator) else {
            warn!(validator = %vote.validator, "vote from a key outside the validator set");
            return Ok(());
        };
        let key = self.key_of(index).expect("index from the set");
        if vote.network != self.network || signed.verify(&key).is_err() {
            warn!(validator = %vote.validator, "vote with a bad signature or network");
            return Ok(());
        }
        let input = Input::Vote(consensus::SignedVote {
            vote: consensus::Vote {
                height: Height::new(vote.height),
                round: Round::new(vote.round),
                kind: match vote.kind {
                    VoteKind::Prevote => consensus::VoteKind::Prevote,
                    VoteKind::Precommit => consensus::VoteKind::Precommit,
                },
                value: vote.block.map(|b| ValueId(b.0)),
                validator: index,
            },
            signature: consensus::Signature::new(signed.signature.0.to_vec())
                .expect("64 bytes is within the engine's bound"),
        });
        self.process(input).await
    }

    fn ledger_vote(&self, vote: &consensus::Vote) -> Vote {
        Vote {
            network: self.network.clone(),
            height: vote.height.get(),
            round: vote.round.get(),
            kind: match vote.kind {
                consensus::VoteKind::Prevote => VoteKind::Prevote,
                consensus::VoteKind::Precommit => VoteKind::Precommit,
            },
            block: vote.value.map(|v| Blake3Hash(v.0)),
            validator: self.me,
        }
    }

    /// Feeds an input and carries out the outputs, in order, including the inputs they
    /// lead to (our own votes and proposals come back as inputs).
    async fn process(&mut self, input: Input) -> anyhow::Result<()> {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let outputs = match self.engine.process(input) {
                Ok(outputs) => outputs,
                Err(e) => {
                    warn!(error = %e, "consensus input refused");
                    continue;
                }
            };
            for output in outputs {
                match output {
                    Output::PersistWal(entry) => self.wal.append(&entry)?,
                    Output::BroadcastProposal(proposal) => {
                        if let Some(input) = self.broadcast_proposal(proposal).await {
                            queue.push_back(input);
                        }
                    }
                    Output::BroadcastVote(vote) => queue.push_back(self.broadcast_vote(vote).await),
                    Output::ScheduleTimeout {
                        timeout,
                        duration_ms,
                    } => {
                        let tx = self.timeouts_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(duration_ms)).await;
                            // The runtime may have stopped; then nobody needs the timeout.
                            let _ = tx.send(timeout);
                        });
                    }
                    Output::RequestValue { height, round } => {
                        queue.push_back(self.build_value(height, round)?);
                    }
                    Output::Decide(decision) => self.decide(decision).await?,
                    Output::Evidence(evidence) => self.record_equivocation(&evidence).await,
                    Output::Dropped(reason) => debug!(%reason, "consensus dropped a message"),
                }
            }
        }
        self.shared
            .metrics
            .round
            .set(i64::from(self.engine.round().get()));
        Ok(())
    }

    fn build_value(&mut self, height: Height, round: Round) -> anyhow::Result<Input> {
        let (block, validated) = {
            let chain = self.shared.chain.read().expect("chain lock");
            let mempool = self.shared.mempool.lock().expect("mempool lock");
            chain.build_validated(&mempool, self.me, round.get(), now_ms())?
        };
        let value = ValueId(block.header.id().0);
        self.validated.insert(value, validated);
        info!(
            height = height.get(),
            round = round.get(),
            messages = block.body.entries.len(),
            "proposing block"
        );
        self.blocks.insert(value, block);
        Ok(Input::ValueReady {
            height,
            round,
            value,
        })
    }

    async fn broadcast_proposal(&mut self, proposal: consensus::Proposal) -> Option<Input> {
        let block = match self.blocks.get(&proposal.value) {
            Some(block) => block.clone(),
            None => {
                self.fetch_proposed(proposal.height.get(), proposal.value)
                    .await?
            }
        };
        self.publish_proposal(proposal, block).await;
        Some(Input::Proposal {
            proposal,
            valid: true,
        })
    }

    async fn broadcast_vote(&mut self, vote: consensus::Vote) -> Input {
        let signed = Signed::sign(self.ledger_vote(&vote), &self.shared.key);
        let message = ConsensusWire::Vote(signed.clone());
        if let Err(e) = self
            .shared
            .p2p
            .publish(Topic::Consensus, wire::to_bytes(&message))
            .await
        {
            debug!(error = %e, "vote not sent");
        }
        Input::Vote(consensus::SignedVote {
            vote,
            signature: consensus::Signature::new(signed.signature.0.to_vec()).expect("64 bytes"),
        })
    }

    /// A vote the engine holds, as it travels on the wire (with its original signature).
    fn wire_vote(&self, vote: &consensus::SignedVote) -> Option<SignedVote> {
        let key = self.key_of(vote.vote.validator)?;
        let signature: [u8; 64] = vote.signature.as_bytes().try_into().ok()?;
        Some(Signed {
            body: Vote {
                validator: key.key_id(),
                ..self.ledger_vote(&vote.vote)
            },
            signature: Signature(signature),
        })
    }

    async fn publish_votes(&self, votes: Vec<SignedVote>) {
        for vote in votes {
            let bytes = wire::to_bytes(&ConsensusWire::Vote(vote));
            if let Err(e) = self.shared.p2p.publish(Topic::Consensus, bytes).await {
                debug!(error = %e, "vote not sent");
                return;
            }
        }
    }

    /// Resends this validator's proposal and votes of the current round (re-signed:
    /// Ed25519 signatures are deterministic, so they are the same bytes).
    async fn resend_own_messages(&mut self) {
        if self.pending_height.is_some() || self.engine.height().is_none() {
            return;
        }
        let round = self.engine.round();
        if let Some(proposal) = self.engine.own_proposal(round)
            && let Some(block) = self.blocks.get(&proposal.value).cloned()
        {
            self.publish_proposal(proposal, block).await;
        }
        let own: Vec<SignedVote> = self
            .engine
            .own_votes(round)
            .map(|vote| Signed::sign(self.ledger_vote(&vote), &self.shared.key))
            .collect();
        self.publish_votes(own).await;
    }

    async fn publish_proposal(&self, proposal: consensus::Proposal, block: Block) {
        let body = ProposalBody {
            network: self.network.clone(),
            height: proposal.height.get(),
            round: proposal.round.get(),
            pol_round: proposal.pol_round.map(Round::get),
            block_id: Blake3Hash(proposal.value.0),
            proposer: self.me,
        };
        let leaves = block
            .body
            .entries
            .iter()
            .map(|entry| entry.envelope.leaf_hash())
            .collect();
        let message = ConsensusWire::Proposal {
            signed: Signed::sign(body, &self.shared.key),
            header: Box::new(block.header),
            leaves: List::new(leaves).expect("as many leaves as the block has messages"),
        };
        if let Err(e) = self
            .shared
            .p2p
            .publish(Topic::Consensus, wire::to_bytes(&message))
            .await
        {
            warn!(error = %e, "proposal not sent");
        }
        // A re-proposal is acted on only by validators holding the polka of its valid
        // round (L28): send those prevotes along.
        if let Some(pol_round) = proposal.pol_round {
            let polka: Vec<SignedVote> = self
                .engine
                .votes(pol_round, consensus::VoteKind::Prevote)
                .filter(|v| v.vote.value == Some(proposal.value))
                .filter_map(|v| self.wire_vote(v))
                .collect();
            self.publish_votes(polka).await;
        }
    }

    /// Asks peers for a proposed block this validator does not hold.
    async fn fetch_proposed(&mut self, height: u64, value: ValueId) -> Option<Block> {
        let request = wire::to_bytes(&SyncRequest::Proposed {
            height,
            block_id: Blake3Hash(value.0),
        });
        for peer in peers_to_ask(&self.shared, None) {
            let answer = tokio::time::timeout(
                FETCH_TIMEOUT,
                self.shared.p2p.request(peer, request.clone()),
            );
            let Ok(Ok(bytes)) = answer.await else {
                continue;
            };
            if let Ok(SyncResponse::Proposed(Some(block))) = wire::sync_response_from_bytes(&bytes)
                && block.header.id().0 == value.0
                && block.check_body().is_ok()
            {
                self.blocks.insert(value, (*block).clone());
                return Some(*block);
            }
        }
        warn!(height, "could not fetch a proposed block from any peer");
        None
    }

    async fn decide(&mut self, decision: Decision) -> anyhow::Result<()> {
        let height = decision.height.get();
        // Taken, not copied: the height's blocks are dropped once one is committed.
        let block = match self.blocks.remove(&decision.value) {
            Some(block) => block,
            None => match self.fetch_proposed(height, decision.value).await {
                Some(block) => block,
                None => {
                    // Block sync will bring the block with its certificate.
                    warn!(
                        height,
                        "decided a block this validator does not have; waiting for sync"
                    );
                    return Ok(());
                }
            },
        };
        let signatures = decision
            .commit
            .iter()
            .filter_map(|vote| {
                let key = self.key_of(vote.vote.validator)?;
                let bytes: [u8; 64] = vote.signature.as_bytes().try_into().ok()?;
                Some(CommitSignature {
                    validator: key.key_id(),
                    signature: Signature(bytes),
                })
            })
            .collect();
        let certificate = CommitCertificate {
            height,
            round: decision.round.get(),
            block: block.header.id(),
            signatures: List::new(signatures).context("commit larger than the validator set")?,
        };
        let validated = self.validated.remove(&decision.value);
        self.commit(&CommittedBlock { block, certificate }, validated)?;
        self.shared
            .metrics
            .commit_latency
            .observe(self.height_started.elapsed().as_secs_f64());
        // Started from the main loop (`after_event`), when the next height is due.
        self.pending_height = Some(height + 1);
        Ok(())
    }

    /// Applies a block (decided here or synced) and moves the mempool on. `validated` is
    /// the block's body as this validator built or judged it at this head, if it did.
    fn commit(
        &mut self,
        committed: &CommittedBlock,
        validated: Option<ValidatedBody>,
    ) -> anyhow::Result<()> {
        let header = &committed.block.header;
        let mut parent_time = self.genesis.genesis_time;
        let applied = {
            let mut chain = self.shared.chain.write().expect("chain lock");
            if let Ok(head) = chain.head() {
                parent_time = head.time;
            }
            let applied = match validated {
                Some(validated) => chain.commit_validated(committed, validated),
                None => chain.commit(committed),
            }
            .with_context(|| format!("storing block {}", header.height))?;
            let mut mempool = self.shared.mempool.lock().expect("mempool lock");
            for (hash, reason) in
                mempool.on_commit(&applied.leaf_hashes, chain.membership(), &*chain)
            {
                warn!(leaf = %hash, %reason, "waiting message invalidated by a committed block");
            }
            self.shared
                .metrics
                .mempool_messages
                .set(gauge(mempool.len()));
            applied
        };
        self.wal.clear()?;
        self.blocks.clear();
        self.validated.clear();
        self.fetched.clear();
        self.judged_valid.clear();
        // No subscriber is not an error.
        let _ = self.shared.committed.send(header.height);
        self.shared
            .metrics
            .log_size
            .set(i64::try_from(applied.head.log.tree_size).unwrap_or(i64::MAX));
        self.shared
            .metrics
            .committed_messages
            .inc_by(applied.leaf_hashes.len() as u64);
        info!(
            height = header.height,
            round = header.round,
            messages = applied.leaf_hashes.len(),
            log_size = applied.head.log.tree_size,
            root = %applied.head.log.hash,
            "committed block"
        );
        if crate::cosign::is_checkpoint_block(
            parent_time,
            header.time,
            self.genesis.params.checkpoint_interval_ms,
        ) {
            self.cosign(applied.head.log);
        }
        self.store_quorum_checkpoints();
        Ok(())
    }

    /// Cosigns the log after a checkpoint block and queues the cosignature for gossip.
    /// A failure is logged, not fatal: consensus goes on without this cosignature.
    fn cosign(&mut self, log: custos_ledger::merkle::Root) {
        let now_s = now_ms().0 / 1000;
        match self.cosigning.cosign(log, now_s) {
            Ok(Some(wire)) => {
                debug!(tree_size = log.tree_size, "cosigned checkpoint");
                self.outbox.push(wire.to_bytes());
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "checkpoint not cosigned"),
        }
    }

    /// Stores pending checkpoints that have a quorum within the log.
    fn store_quorum_checkpoints(&mut self) {
        match self.cosigning.complete() {
            Ok(stored) => {
                for tree_size in stored {
                    info!(tree_size, "quorum checkpoint stored");
                    let size = i64::try_from(tree_size).unwrap_or(i64::MAX);
                    if size > self.shared.metrics.checkpoint_size.get() {
                        self.shared.metrics.checkpoint_size.set(size);
                    }
                }
            }
            Err(e) => warn!(error = %e, "pending checkpoints not checked"),
        }
    }

    /// Commits an anchor receipt from the anchor service as this validator's message.
    async fn record_anchor(&self, receipt: custos_ledger::message::AnchorReceipt) {
        info!(
            chain_id = receipt.chain_id,
            tx = %hex::encode(receipt.tx_hash),
            block = receipt.block_number,
            tree_size = receipt.tree_size,
            "committing anchor receipt"
        );
        self.shared
            .metrics
            .anchored_size
            .set(i64::try_from(receipt.tree_size).unwrap_or(i64::MAX));
        let entry = self.own_message(Kind::AnchorReceipt(receipt));
        let (results, admitted) = self.shared.admit(vec![entry]);
        if let Some(Err(e)) = results.first() {
            warn!(error = %e, "anchor receipt not admitted");
        }
        self.shared.forward(admitted).await;
    }

    /// Asks a peer that is ahead for the committed blocks after our head. The request runs
    /// on its own task: the loop keeps serving peers (who may be asking us at the same
    /// moment) and the answer comes back through `sync_rx`.
    fn request_blocks(&mut self, peer: [u8; 32]) {
        if self.sync_in_flight {
            return;
        }
        self.sync_in_flight = true;
        let request = wire::to_bytes(&SyncRequest::Blocks {
            from_height: self.head_height() + 1,
        });
        let p2p = self.shared.p2p.clone();
        let tx = self.sync_tx.clone();
        tokio::spawn(async move {
            let result = p2p.request(peer, request).await.map_err(|e| e.to_string());
            // The runtime may have stopped; then nobody needs the answer.
            let _ = tx.send((peer, result));
        });
    }

    /// Applies the blocks a peer sent, verifying each commit certificate, and asks for more
    /// while the peer has them; then restarts consensus at the new height.
    fn on_blocks(&mut self, peer: [u8; 32], result: Result<Vec<u8>, String>) -> anyhow::Result<()> {
        self.sync_in_flight = false;
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(e) => {
                debug!(peer = %self.name_of_key(&peer), error = %e, "sync request failed");
                return Ok(());
            }
        };
        let blocks = match wire::sync_response_from_bytes(&bytes) {
            Ok(SyncResponse::Blocks(blocks)) => blocks.into_vec(),
            Ok(SyncResponse::Proposed(_) | SyncResponse::Entries(_)) | Err(_) => {
                warn!(peer = %self.name_of_key(&peer), "peer answered block sync with something else");
                return Ok(());
            }
        };
        let mut applied = 0;
        for committed in blocks {
            let header = &committed.block.header;
            if header.height != self.head_height() + 1 {
                continue; // already applied, by consensus or an earlier answer
            }
            if let Err(e) = self.ledger_validators.verify_commit(
                &self.network,
                header.height,
                &header.id(),
                &committed.certificate,
            ) {
                warn!(peer = %self.name_of_key(&peer), height = header.height, error = %e, "synced block has an invalid commit certificate");
                return Ok(());
            }
            self.commit(&committed, None)?;
            applied += 1;
        }
        if applied > 0 {
            // The peer may have more: ask again at once.
            self.behind = Some((peer, Instant::now()));
            let next = self.head_height() + 1;
            if next > self.engine_height() {
                info!(height = next, applied, "caught up by block sync");
                self.pending_height = Some(next);
            }
        }
        Ok(())
    }

    fn serve_sync(&self, request: &[u8]) -> Vec<u8> {
        let response = match wire::sync_request_from_bytes(request) {
            Ok(SyncRequest::Blocks { from_height }) => {
                let chain = self.shared.chain.read().expect("chain lock");
                let mut blocks = Vec::new();
                let mut bytes = 0;
                let mut height = from_height;
                while blocks.len() < <wire::SyncBlocksLen as custos_ledger::limits::Limit>::MAX {
                    let Ok(Some(block)) = chain.ledger.block(height) else {
                        break;
                    };
                    let size = wire::to_bytes(&block).len();
                    if !blocks.is_empty() && bytes + size > wire::MAX_SYNC_RESPONSE_BYTES / 2 {
                        break;
                    }
                    bytes += size;
                    blocks.push(block);
                    height += 1;
                }
                SyncResponse::Blocks(List::new(blocks).expect("bounded by the loop"))
            }
            Ok(SyncRequest::Proposed { height, block_id }) => {
                let proposed = self.blocks.get(&ValueId(block_id.0)).cloned();
                // Committed here already (the requester is a moment behind): from the ledger,
                // read whole only when the header is the one asked for.
                let committed = || {
                    let ledger = self.shared.chain.read().expect("chain lock").ledger.clone();
                    let header = ledger.header(height).ok()??;
                    if header.id() != block_id {
                        return None;
                    }
                    Some(ledger.block(height).ok()??.block)
                };
                SyncResponse::Proposed(proposed.or_else(committed).map(Box::new))
            }
            Ok(SyncRequest::Entries { leaves }) => {
                let mut seen = HashSet::new();
                let leaves: Vec<Sha256Hash> = leaves
                    .into_vec()
                    .into_iter()
                    .filter(|leaf| seen.insert(*leaf))
                    .collect();
                // Messages committed here already are answered from the ledger: the
                // requester is a moment behind (still deciding the height the others just
                // decided), and with them it can judge the block and commit it on the
                // precommits it holds instead of waiting for block sync. Bounded like a
                // block-sync answer: the leaves of an honest request come from one block,
                // so this cuts only a request for more than a block's worth.
                let ledger = self.shared.chain.read().expect("chain lock").ledger.clone();
                let (found, _) = {
                    let mempool = self.shared.mempool.lock().expect("mempool lock");
                    let budget = wire::MAX_SYNC_RESPONSE_BYTES / 2;
                    self.lookup_entries(&leaves, &mempool, Some(&ledger), budget)
                };
                let entries: Vec<Entry> = found.into_iter().flatten().collect();
                SyncResponse::Entries(List::new(entries).expect("at most one per leaf"))
            }
            Err(e) => {
                debug!(error = %e, "undecodable sync request");
                SyncResponse::Blocks(List::empty())
            }
        };
        wire::to_bytes(&response)
    }

    /// Commits conflicting votes as evidence: a message signed by this validator.
    async fn record_equivocation(&self, evidence: &consensus::Equivocation) {
        let Some(key) = self.key_of(evidence.first.vote.validator) else {
            return;
        };
        let encode_vote = |vote: &consensus::SignedVote| -> Option<Bytes<_>> {
            Bytes::new(wire::to_bytes(&self.wire_vote(vote)?)).ok()
        };
        let (Some(vote_a), Some(vote_b)) =
            (encode_vote(&evidence.first), encode_vote(&evidence.second))
        else {
            return;
        };
        warn!(validator = %key.key_id(), height = evidence.first.vote.height.get(), "equivocation detected; committing evidence");
        let kind = Kind::Equivocation(Equivocation {
            validator: key.key_id(),
            vote_a,
            vote_b,
        });
        let entry = self.own_message(kind);
        let (results, admitted) = self.shared.admit(vec![entry]);
        if let Some(Err(e)) = results.first() {
            warn!(error = %e, "equivocation evidence not admitted");
        }
        self.shared.forward(admitted).await;
    }

    /// Records queued reads as access-audit messages of this validator, when due.
    async fn flush_audit(&self) {
        let records = {
            let mut queue = self.shared.audit.lock().expect("audit lock");
            if !queue.due(Instant::now()) {
                return;
            }
            queue.drain()
        };
        let mut forwarded = Vec::new();
        // One at a time: each continues the sequence chain of the one admitted before.
        for record in records {
            let entry = self.own_message(Kind::AccessAudit(record));
            let (results, admitted) = self.shared.admit(vec![entry]);
            if let Some(Err(e)) = results.first() {
                warn!(error = %e, "access-audit record not admitted");
            }
            forwarded.extend(admitted);
        }
        self.shared.forward(forwarded).await;
    }

    /// A message authored by this validator, continuing its own chain.
    fn own_message(&self, kind: Kind) -> Entry {
        let tip = {
            let chain = self.shared.chain.read().expect("chain lock");
            let mempool = self.shared.mempool.lock().expect("mempool lock");
            mempool
                .author_tip(&self.me, &*chain)
                .or_else(|| chain.author_tip(&self.me))
        };
        let (sequence, prev) = tip.unwrap_or((0, Sha256Hash::ZERO));
        let org = self
            .ledger_validators
            .get(&self.me)
            .map(|v| v.org.clone())
            .expect("this node is a validator");
        let payload: &[u8] = b"";
        let message = Message {
            network: self.network.clone(),
            author: self.me,
            client: org,
            sequence: sequence + 1,
            prev,
            kind,
            format: SourceFormat::Custos,
            occurred_at: None,
            observed_at: now_ms(),
            severity: None,
            rule_id: None,
            host: None,
            attack_ids: List::empty(),
            references: List::empty(),
            parse_error: None,
            payload: PayloadDescriptor::of(
                Text::new("application/octet-stream").expect("short"),
                payload,
            ),
        };
        Entry {
            envelope: Signed::sign(message, &self.shared.key),
            payload: Bytes::new(payload.to_vec()).expect("empty payload"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events of two kinds: `Ok(n)` stands for a mempool batch of `n` messages, `Err(id)`
    /// for any other event.
    type Event = Result<usize, &'static str>;

    fn queue(events: &[Event]) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(16);
        for event in events {
            tx.try_send(*event).expect("room in the queue");
        }
        rx
    }

    fn take_batches(
        events: &mut mpsc::Receiver<Event>,
        room: usize,
    ) -> (Vec<usize>, Option<Event>) {
        let mut taken = Vec::new();
        let next = take_queued(events, room, &mut taken, |event| match event {
            Ok(n) => Ok((n, n)),
            other => Err(other),
        });
        (taken, next)
    }

    #[test]
    fn queued_batches_are_taken_in_order_up_to_the_first_other_event() {
        let mut events = queue(&[Ok(250), Ok(250), Err("vote"), Ok(250)]);
        assert_eq!(
            take_batches(&mut events, 1024),
            (vec![250, 250], Some(Err("vote")))
        );
        // What came after the other event stays queued, for the next turn of the loop.
        assert_eq!(events.try_recv(), Ok(Ok(250)));
        assert!(events.try_recv().is_err());
    }

    #[test]
    fn taking_stops_once_the_room_is_filled() {
        let mut events = queue(&[Ok(250), Ok(500), Ok(250), Ok(1)]);
        // 250 + 500 leaves room for more; the next batch fills it (it is not split).
        assert_eq!(take_batches(&mut events, 774), (vec![250, 500, 250], None));
        // No room: nothing is taken.
        assert_eq!(take_batches(&mut events, 0), (Vec::new(), None));
        assert_eq!(take_batches(&mut events, 1024), (vec![1], None));
        // An empty queue ends the run.
        assert_eq!(take_batches(&mut events, 1024), (Vec::new(), None));
    }
}
