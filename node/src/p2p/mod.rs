//! Validator-to-validator networking: libp2p over TCP with Noise and Yamux, gossip for
//! mempool, consensus and cosignature messages, and request-response for block sync.
//!
//! # Permissioning
//!
//! A node's libp2p identity is its genesis Ed25519 key ([`P2pConfig::identity_seed`]).
//! Noise authenticates the remote key during the handshake; an allow list then refuses
//! every connection whose key is not one of [`P2pConfig::peers`], in both directions, and
//! a dial to a validator's address that is answered by another key fails. Gossip names
//! its publisher without a gossipsub signature (the content is signed by its authors), and
//! a message is delivered and relayed only if that publisher is a validator. A mempool
//! batch, never relayed, must come straight from its publisher, so `from` in
//! [`P2pEvent::Gossip`] is authenticated by the connection; a relayed consensus or
//! cosignature message carries the publisher a validator named (see `gossip::accept`).
//! Topics and the sync protocol carry the network id, so nodes of different networks
//! never exchange messages.
//!
//! # Connectivity
//!
//! Every [`P2pConfig::redial_interval_ms`] the service dials each configured validator it
//! is not connected to, so a restarted or partitioned validator comes back by itself.
//! Connections are pinged ([`PING_INTERVAL`], [`PING_TIMEOUT`]) and closed when a ping
//! fails, so a silently vanished peer is noticed and redialled. A validator counts as
//! connected ([`P2pEvent::PeerConnected`], [`P2pHandle::connected_peers`]) once it is
//! subscribed to all three topics: from then on, gossip to and from it flows.
//!
//! # When the node falls behind
//!
//! The swarm task never waits for the node: waiting would stop it from answering pings
//! and relaying gossip, and a node that awaits a handle call while the task waits on the
//! node would deadlock. Events go through one bounded channel ([`EVENT_CHANNEL_CAPACITY`]
//! events, and at most [`EVENT_QUEUE_BYTES_MAX`] bytes of data not yet taken by the node).
//! When either bound is reached:
//! - gossip is dropped and counted ([`P2pStats::gossip_dropped`]), with one warning per
//!   episode. Gossip is best effort anyway; consensus recovers through its timeouts and
//!   block sync, the mempool through the blocks that include the messages.
//! - sync requests are refused and counted ([`P2pStats::requests_dropped`]): the
//!   requester gets an error at once and asks another validator.
//! - peer events are kept, coalesced to at most two per validator, and delivered as soon
//!   as there is room; the node's view of who is connected is right once it catches up,
//!   but it may then see a validator's gossip before that validator's `PeerConnected`.
//!
//! Handle calls wait when the command channel ([`COMMAND_CHANNEL_CAPACITY`]) is full.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use custos_node::p2p::{P2p, P2pConfig, P2pEvent, Peer, Topic};
//!
//! let peers = vec![Peer {
//!     public_key: [0x11; 32], // from genesis
//!     address: "/dns4/isac.example/tcp/26656".parse()?,
//! }];
//! let config = P2pConfig::new([7; 32], "/ip4/0.0.0.0/tcp/26656".parse()?, "custos-testnet", peers);
//! let (p2p, mut events) = P2p::spawn(config).await?;
//! p2p.publish(Topic::Consensus, b"vote".to_vec()).await.ok();
//! while let Some(event) = events.recv().await {
//!     match event {
//!         P2pEvent::Gossip { topic, from, data } => { /* verify and hand to consensus */ }
//!         P2pEvent::Request { from, data, reply } => { reply.send(b"blocks".to_vec()).ok(); }
//!         P2pEvent::PeerConnected(key) | P2pEvent::PeerDisconnected(key) => {}
//!     }
//! }
//! p2p.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
mod error;
mod event;
mod gossip;
mod service;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use custos_ledger::crypto::PublicKey;
use libp2p::Multiaddr;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

pub use config::{
    DEFAULT_MAX_GOSSIP_BYTES, DEFAULT_MAX_SYNC_BYTES, DEFAULT_REDIAL_INTERVAL_MS,
    DEFAULT_REQUEST_TIMEOUT_MS, MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES, P2pConfig, Peer, peer_id_of,
    public_key_of_seed,
};
pub use error::{P2pError, PublishError, ReplyError, RequestError};
pub use event::{InboundBytes, P2pEvent, Reply};
pub use gossip::{
    DUPLICATE_CACHE_TIME, GOSSIP_FRAME_OVERHEAD_BYTES, HEARTBEAT_INITIAL_DELAY, HEARTBEAT_INTERVAL,
    Topic,
};
pub use service::{
    COMMAND_CHANNEL_CAPACITY, EVENT_CHANNEL_CAPACITY, EVENT_QUEUE_BYTES_MAX,
    MAX_CONNECTIONS_PER_PEER, MAX_PENDING_INCOMING, MAX_PENDING_REPLIES, MAX_PENDING_REQUESTS,
    PING_INTERVAL, PING_TIMEOUT, REPEAT_WARNING_INTERVAL, SYNC_MAX_CONCURRENT_STREAMS,
};

use service::{Command, Service, Shared};

/// Extra time a handle waits for a request's outcome beyond the request timeout, which
/// the swarm task enforces; this only matters if the task has stopped answering.
const REQUEST_TIMEOUT_GRACE: Duration = Duration::from_secs(5);

/// Counters of the service since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct P2pStats {
    /// Gossip messages handed to the node.
    pub gossip_delivered: u64,
    /// Gossip messages from validators dropped because the node was not reading.
    pub gossip_dropped: u64,
    /// Gossip messages rejected (publisher not a validator, unknown topic, too large).
    pub gossip_rejected: u64,
    /// Sync requests handed to the node.
    pub requests_delivered: u64,
    /// Sync requests refused because the node was not reading or had too many unanswered.
    pub requests_dropped: u64,
    /// Incoming connections refused (key not in the validator set, or over a limit).
    pub connections_refused: u64,
}

/// Starts the p2p service.
#[derive(Debug)]
pub struct P2p;

impl P2p {
    /// Checks the configuration, starts listening and runs the swarm on a tokio task.
    /// Returns once the listen address is bound. Dialling the validators starts at once.
    ///
    /// The receiver yields [`P2pEvent`]s; read it continuously (see the module docs for
    /// what happens when the node falls behind). Dropping every handle stops the service.
    pub async fn spawn(
        config: P2pConfig,
    ) -> Result<(P2pHandle, mpsc::Receiver<P2pEvent>), P2pError> {
        let checked = config::check(config)?;
        let local_key = checked.local_key;
        let max_gossip_bytes = checked.max_gossip_bytes;
        let max_sync_bytes = checked.max_sync_bytes;
        let request_timeout = checked.request_timeout;
        // Validators are named by their ledger key id in every log line.
        let span = tracing::info_span!("p2p", local = %PublicKey(local_key).key_id());

        let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let (done_tx, done_rx) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let service = Service::start(checked, events_tx, shared.clone())
            .instrument(span.clone())
            .await?;
        tokio::spawn(service.run(commands_rx, done_tx).instrument(span));

        let handle = P2pHandle {
            commands: commands_tx,
            done: done_rx,
            shared,
            local_key,
            max_gossip_bytes,
            max_sync_bytes,
            request_timeout,
        };
        Ok((handle, events_rx))
    }
}

/// Controls a running p2p service. Cheap to clone; the service stops when
/// [`P2pHandle::shutdown`] is called or every handle is dropped.
#[derive(Debug, Clone)]
pub struct P2pHandle {
    commands: mpsc::Sender<Command>,
    done: watch::Receiver<bool>,
    shared: Arc<Shared>,
    local_key: [u8; 32],
    max_gossip_bytes: usize,
    max_sync_bytes: usize,
    request_timeout: Duration,
}

impl P2pHandle {
    /// Our validator public key (derived from the identity seed).
    pub fn local_key(&self) -> [u8; 32] {
        self.local_key
    }

    /// The addresses the service listens on (with the actual port if port 0 was asked).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared
            .listen_addrs
            .lock()
            .expect("lock poisoned")
            .clone()
    }

    /// Validators currently connected and subscribed to every topic, sorted.
    pub fn connected_peers(&self) -> Vec<[u8; 32]> {
        self.shared
            .connected
            .lock()
            .expect("lock poisoned")
            .iter()
            .copied()
            .collect()
    }

    /// Counters since start.
    pub fn stats(&self) -> P2pStats {
        self.shared.counters.snapshot()
    }

    /// Publishes `data` on `topic` to every connected validator (signed with our key).
    /// We do not receive our own message back.
    ///
    /// `Ok` means the message was queued for at least one validator; gossipsub keeps no
    /// copy for validators that connect later, so `NoPeers` while alone is normal.
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), PublishError> {
        if data.len() > self.max_gossip_bytes {
            return Err(PublishError::TooLarge {
                len: data.len(),
                max: self.max_gossip_bytes,
            });
        }
        let (done, outcome) = oneshot::channel();
        self.commands
            .send(Command::Publish { topic, data, done })
            .await
            .map_err(|_| PublishError::Shutdown)?;
        outcome.await.map_err(|_| PublishError::Shutdown)?
    }

    /// Sends a block-sync request to a connected validator and waits for its response,
    /// at most [`P2pConfig::request_timeout_ms`].
    pub async fn request(&self, peer: [u8; 32], data: Vec<u8>) -> Result<Vec<u8>, RequestError> {
        if data.len() > self.max_sync_bytes {
            return Err(RequestError::TooLarge {
                len: data.len(),
                max: self.max_sync_bytes,
            });
        }
        let (done, outcome) = oneshot::channel();
        self.commands
            .send(Command::Request { peer, data, done })
            .await
            .map_err(|_| RequestError::Shutdown)?;
        match tokio::time::timeout(self.request_timeout + REQUEST_TIMEOUT_GRACE, outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::Shutdown),
            Err(_) => Err(RequestError::Timeout {
                timeout_ms: u64::try_from(self.request_timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Stops the service: closes every connection and the listener, and returns once the
    /// listen port is free. Waiting requests fail with `Shutdown`. Idempotent.
    pub async fn shutdown(&self) {
        // A closed channel means the task is already gone.
        let _ = self.commands.send(Command::Shutdown).await;
        let mut done = self.done.clone();
        // An error means the task ended without reporting (it panicked): also stopped.
        let _ = done.wait_for(|stopped| *stopped).await;
    }

    /// Whether the service is still running.
    pub fn is_running(&self) -> bool {
        !*self.done.borrow() && !self.commands.is_closed()
    }
}
