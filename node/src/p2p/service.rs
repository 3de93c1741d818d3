//! The swarm task: owns the libp2p swarm, executes commands from handles and turns swarm
//! events into [`P2pEvent`]s.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::futures::future::BoxFuture;
use libp2p::futures::stream::FuturesUnordered;
use libp2p::futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, allow_block_list, connection_limits, noise, ping, tcp,
    yamux,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, trace, warn};

use super::config::{Checked, Validator};
use super::error::{P2pError, PublishError, RequestError};
use super::event::{ByteBudget, P2pEvent, PeerEventQueue, Reply};
use super::gossip::{self, ALL_TOPIC_BITS, Gossipsub, Topics};
use super::sync::{self, SyncCodec};
use super::{P2pStats, Topic};

/// Events waiting for the node. Sized for bursts: a block's worth of mempool gossip
/// arriving while the node commits a block. When it is full, gossip and requests are
/// dropped (and counted) instead of stalling the swarm; see [`super`] for why.
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;

/// Bytes of gossip and request data queued for the node and not yet taken. The count bound
/// alone would allow 4096 maximal blocks (gigabytes); this keeps a stalled node's queue at
/// a few maximal blocks. Must hold at least one maximal gossip message and one maximal
/// request.
pub const EVENT_QUEUE_BYTES_MAX: usize = 256 * 1024 * 1024;

const _: () = assert!(EVENT_QUEUE_BYTES_MAX >= 2 * super::config::MAX_MESSAGE_BYTES);

/// Commands from handles waiting for the swarm task. Handles wait when it is full, which
/// only happens if the node issues commands faster than the task runs them.
pub const COMMAND_CHANNEL_CAPACITY: usize = 1024;

/// Outbound sync requests waiting for responses; a syncing node needs a window of a few
/// blocks per peer, not hundreds.
pub const MAX_PENDING_REQUESTS: usize = 256;

/// Inbound sync requests handed to the node and not yet answered. Further requests are
/// refused at once (the requester sees a failure and can ask another validator).
pub const MAX_PENDING_REPLIES: usize = 256;

/// Streams per connection for sync (both directions), so one peer cannot open thousands.
pub const SYNC_MAX_CONCURRENT_STREAMS: usize = 64;

/// Connections to one validator. Two validators dialling each other at the same time end
/// up with two; more would be waste.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;

/// Incoming connections still in the Noise handshake. Strangers can occupy these slots
/// (their key is only known after the handshake), so they are bounded; validators also
/// dial out, so a full inbound queue does not cut a validator off.
pub const MAX_PENDING_INCOMING: u32 = 64;

/// How often each connection is pinged. TCP can take many minutes to notice a peer that
/// vanished without closing (power loss, partition); pings notice within
/// interval + timeout, after which the connection is closed and redialling starts.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// How long a ping may take. Generous, because a ping can queue behind a multi-MiB block
/// on a slow link.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Validators keep their connections open however idle; liveness is the ping's job.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Least time between two warnings of one repetitive kind (a stranger redialling every
/// second, a wrong key answering at a validator's address); the ones in between are
/// counted and the count is reported with the next warning.
pub const REPEAT_WARNING_INTERVAL: Duration = Duration::from_secs(30);

/// How long start-up waits for the listener to report its address.
const LISTEN_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Refuses every connection whose authenticated key is not a configured validator.
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    gossip: Gossipsub,
    sync: request_response::Behaviour<SyncCodec>,
    ping: ping::Behaviour,
}

/// A request from a handle to the swarm task.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
        done: oneshot::Sender<Result<(), PublishError>>,
    },
    Request {
        peer: [u8; 32],
        data: Vec<u8>,
        done: oneshot::Sender<Result<Vec<u8>, RequestError>>,
    },
    Shutdown,
}

/// Counters behind [`P2pStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    gossip_delivered: AtomicU64,
    gossip_dropped: AtomicU64,
    gossip_rejected: AtomicU64,
    requests_delivered: AtomicU64,
    requests_dropped: AtomicU64,
    connections_refused: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> P2pStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        P2pStats {
            gossip_delivered: load(&self.gossip_delivered),
            gossip_dropped: load(&self.gossip_dropped),
            gossip_rejected: load(&self.gossip_rejected),
            requests_delivered: load(&self.requests_delivered),
            requests_dropped: load(&self.requests_dropped),
            connections_refused: load(&self.connections_refused),
        }
    }
}

fn bump(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

/// State shared between the swarm task and handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) connected: Mutex<BTreeSet<[u8; 32]>>,
    pub(crate) listen_addrs: Mutex<Vec<Multiaddr>>,
    pub(crate) counters: Counters,
}

/// A connected validator.
#[derive(Debug, Default)]
struct PeerState {
    /// Topics it told us it subscribes to, as [`Topic::bit`]s.
    topics: u8,
    /// Whether the node was told it is connected.
    announced: bool,
}

/// Fails if the TCP port of `address` is already bound.
///
/// libp2p binds listeners with `SO_REUSEPORT`, so a second node started on the same port
/// would bind as well and the kernel would split incoming connections between the two.
/// A plain bind (without `SO_REUSEPORT`) fails when the port is taken, which turns that
/// mistake into a start-up error.
fn refuse_port_in_use(address: &Multiaddr) -> Result<(), String> {
    let mut ip = None;
    let mut port = None;
    for protocol in address.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) if port != 0 => std::net::TcpListener::bind((ip, port))
            .map(drop)
            .map_err(|error| {
                format!("port {port} is not free ({error}); is another node running?")
            }),
        _ => Ok(()),
    }
}

/// Lets one warning through per [`REPEAT_WARNING_INTERVAL`] and counts the rest.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(number suppressed since the last one)` if a warning may be logged now.
    fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REPEAT_WARNING_INTERVAL)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// An error with its sources, for log lines (libp2p wraps the useful part).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

type PendingReply =
    BoxFuture<'static, (request_response::ResponseChannel<Vec<u8>>, Option<Vec<u8>>)>;

pub(crate) struct Service {
    swarm: Swarm<Behaviour>,
    topics: Topics,
    validators: HashMap<PeerId, Validator>,
    by_key: HashMap<[u8; 32], PeerId>,
    peers: HashMap<PeerId, PeerState>,
    events: mpsc::Sender<P2pEvent>,
    peer_events: PeerEventQueue,
    budget: ByteBudget,
    pending_requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, RequestError>>>,
    pending_replies: FuturesUnordered<PendingReply>,
    shared: Arc<Shared>,
    max_sync_bytes: usize,
    max_gossip_bytes: usize,
    request_timeout: Duration,
    redial_interval: Duration,
    /// Whether gossip is currently being dropped; logs once per episode, not per message.
    dropping: bool,
    refused_warnings: Throttle,
    /// Per validator, keyed by the validator dialled (so bounded by the validator set).
    wrong_key_warnings: HashMap<PeerId, Throttle>,
}

fn build_swarm(checked: &Checked, topics: &Topics) -> Result<Swarm<Behaviour>, P2pError> {
    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer_id in checked.validators.keys() {
        allow.allow_peer(*peer_id);
    }
    let peers = u32::try_from(checked.validators.len()).unwrap_or(u32::MAX);
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
            .with_max_established(Some(peers.saturating_mul(MAX_CONNECTIONS_PER_PEER))),
    );
    let gossip = gossip::behaviour(
        &checked.keypair,
        topics,
        checked.validators.len(),
        checked.max_gossip_bytes,
    )?;
    let sync = request_response::Behaviour::with_codec(
        SyncCodec::new(checked.max_sync_bytes),
        [(sync::protocol(&checked.network_id)?, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(checked.request_timeout)
            .with_max_concurrent_streams(SYNC_MAX_CONCURRENT_STREAMS),
    );
    let ping = ping::Behaviour::new(
        ping::Config::new()
            .with_interval(PING_INTERVAL)
            .with_timeout(PING_TIMEOUT),
    );
    let behaviour = Behaviour {
        allow,
        limits,
        gossip,
        sync,
        ping,
    };
    let transport_error = |reason: String| P2pError::Libp2pConfig {
        what: "transport",
        reason,
    };
    let swarm = SwarmBuilder::with_existing_identity(checked.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|error| transport_error(error.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|error| transport_error(error.to_string()))?
        .with_swarm_config(|config| config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

impl Service {
    /// Builds the swarm and starts listening; returns once the listen address is known.
    pub(crate) async fn start(
        checked: Checked,
        events: mpsc::Sender<P2pEvent>,
        shared: Arc<Shared>,
    ) -> Result<Self, P2pError> {
        let topics = Topics::new(&checked.network_id);
        let mut swarm = build_swarm(&checked, &topics)?;
        let listen_error = |reason: String| P2pError::Listen {
            address: checked.listen.clone(),
            reason,
        };
        refuse_port_in_use(&checked.listen).map_err(listen_error)?;
        swarm
            .listen_on(checked.listen.clone())
            .map_err(|error| listen_error(error.to_string()))?;
        if !checked.local_is_validator {
            warn!(
                key = %hex::encode(checked.local_key),
                "our key is not in the validator set; validators will refuse our connections"
            );
        }
        let by_key = checked
            .validators
            .iter()
            .map(|(peer_id, validator)| (validator.key, *peer_id))
            .collect();
        let mut service = Self {
            swarm,
            topics,
            by_key,
            validators: checked.validators,
            peers: HashMap::new(),
            events,
            peer_events: PeerEventQueue::default(),
            budget: ByteBudget::new(EVENT_QUEUE_BYTES_MAX),
            pending_requests: HashMap::new(),
            pending_replies: FuturesUnordered::new(),
            shared,
            max_sync_bytes: checked.max_sync_bytes,
            max_gossip_bytes: checked.max_gossip_bytes,
            request_timeout: checked.request_timeout,
            redial_interval: checked.redial_interval,
            dropping: false,
            refused_warnings: Throttle::default(),
            wrong_key_warnings: HashMap::new(),
        };
        match tokio::time::timeout(LISTEN_STARTUP_TIMEOUT, service.wait_listening()).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(listen_error(reason)),
            Err(_) => {
                return Err(listen_error(format!(
                    "no listen address reported within {} s",
                    LISTEN_STARTUP_TIMEOUT.as_secs()
                )));
            }
        }
        info!(
            key = %hex::encode(checked.local_key),
            peer_id = %service.swarm.local_peer_id(),
            listen = ?service.shared.listen_addrs.lock().expect("lock poisoned").clone(),
            validators = service.validators.len(),
            network = %checked.network_id,
            "p2p listening"
        );
        Ok(service)
    }

    /// Polls the swarm until the listener reports its address; `Err` says why it closed.
    async fn wait_listening(&mut self) -> Result<(), String> {
        loop {
            let event = self.swarm.select_next_some().await;
            match event {
                SwarmEvent::NewListenAddr { .. } => {
                    self.on_swarm_event(event);
                    return Ok(());
                }
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(match reason {
                        Ok(()) => "the listener closed".to_owned(),
                        Err(error) => format!("the listener failed: {error}"),
                    });
                }
                other => self.on_swarm_event(other),
            }
        }
    }

    /// Runs until a shutdown command or until every handle is dropped.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        done: watch::Sender<bool>,
    ) {
        let mut redial = tokio::time::interval(self.redial_interval);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A clone, so the permit borrows neither `self` nor the handlers' `&mut self`.
            let events = self.events.clone();
            tokio::select! {
                permit = events.reserve(), if !self.peer_events.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.peer_events.pop() {
                            permit.send(event);
                        }
                    }
                    // The node dropped its receiver: nobody will read peer events.
                    Err(_) => self.peer_events.clear(),
                },
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some((channel, response)) = self.pending_replies.next(), if !self.pending_replies.is_empty() => {
                    self.on_reply(channel, response);
                }
                _ = redial.tick() => self.redial(),
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
            }
        }
        info!(peer_id = %self.swarm.local_peer_id(), "p2p stopping");
        self.shared.connected.lock().expect("lock poisoned").clear();
        self.shared
            .listen_addrs
            .lock()
            .expect("lock poisoned")
            .clear();
        // Dropping the swarm closes the listener and every connection; waiting requests
        // see their senders dropped and report `Shutdown`.
        drop(self);
        let _ = done.send(true);
    }

    fn redial(&mut self) {
        for (peer_id, validator) in &self.validators {
            if self.swarm.is_connected(peer_id) {
                continue;
            }
            let opts = DialOpts::peer_id(*peer_id)
                .addresses(vec![validator.address.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                // Dial from a fresh port: reusing the listen port would make two validators
                // dialling each other at once collide on the same TCP 4-tuple.
                .allocate_new_port()
                .build();
            if let Err(error) = self.swarm.dial(opts) {
                debug!(validator = %validator.key_id, %error, "cannot dial");
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, done } => {
                let ident = self.topics.ident(topic).clone();
                let len = data.len();
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(ident, data)
                    .map(|id| trace!(?topic, len, message_id = %id, "published"))
                    .map_err(|error| publish_error(error, topic, self.max_gossip_bytes, len));
                let _ = done.send(result);
            }
            Command::Request { peer, data, done } => {
                let result = self.send_request(peer, data);
                match result {
                    Ok(request_id) => {
                        self.pending_requests.insert(request_id, done);
                    }
                    Err(error) => {
                        let _ = done.send(Err(error));
                    }
                }
            }
            Command::Shutdown => {}
        }
    }

    fn send_request(
        &mut self,
        peer: [u8; 32],
        data: Vec<u8>,
    ) -> Result<OutboundRequestId, RequestError> {
        let peer_id = *self
            .by_key
            .get(&peer)
            .ok_or_else(|| RequestError::UnknownPeer {
                key_hex: hex::encode(peer),
            })?;
        // Requests go only to connected validators: letting request-response dial on its
        // own would bypass the redial policy and hide an unreachable peer behind a timeout.
        if !self.swarm.is_connected(&peer_id) {
            return Err(RequestError::NotConnected {
                key_hex: hex::encode(peer),
            });
        }
        if self.pending_requests.len() >= MAX_PENDING_REQUESTS {
            return Err(RequestError::TooManyPending {
                max: MAX_PENDING_REQUESTS,
            });
        }
        Ok(self.swarm.behaviour_mut().sync.send_request(&peer_id, data))
    }

    fn on_reply(
        &mut self,
        channel: request_response::ResponseChannel<Vec<u8>>,
        response: Option<Vec<u8>>,
    ) {
        // Without a response the channel is dropped, which fails the request at once on
        // the requester's side instead of letting it wait for its timeout.
        if let Some(response) = response
            && self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, response)
                .is_err()
        {
            debug!("sync response not sent: the request had already expired");
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) => {
                info!(validator = %self.name(&peer), %error, "ping failed; closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                // Transport level only: the node hears of the validator once it has
                // subscribed to every topic (see `announce`).
                debug!(
                    validator = %self.name(&peer_id),
                    address = %endpoint.get_remote_address(),
                    connections = num_established.get(),
                    "connection established"
                );
                self.peers.entry(peer_id).or_default();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                debug!(
                    validator = %self.name(&peer_id),
                    connections = num_established,
                    cause = ?cause,
                    "connection closed"
                );
                if num_established == 0
                    && let Some(state) = self.peers.remove(&peer_id)
                    && state.announced
                {
                    self.announce(peer_id, false);
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => match error {
                ListenError::Denied { cause } => {
                    bump(&self.shared.counters.connections_refused);
                    if let Some(suppressed) = self.refused_warnings.allow() {
                        warn!(
                            remote = %send_back_addr,
                            peer_id = ?peer_id,
                            reason = %error_chain(&cause),
                            refused_before_unlogged = suppressed,
                            "refused incoming connection"
                        );
                    }
                }
                error => debug!(remote = %send_back_addr, %error, "incoming connection failed"),
            },
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let validator = peer_id.map(|p| self.name(&p)).unwrap_or_default();
                match (error, peer_id) {
                    (DialError::WrongPeerId { obtained, address }, Some(peer_id)) => {
                        let throttle = self.wrong_key_warnings.entry(peer_id).or_default();
                        if let Some(suppressed) = throttle.allow() {
                            warn!(
                                %validator,
                                %address,
                                %obtained,
                                unlogged_before = suppressed,
                                "a different key answers at this validator's address; not connecting"
                            );
                        }
                    }
                    (error, _) => debug!(%validator, error = %error_chain(&error), "dial failed"),
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                debug!(%address, "listening");
                self.shared
                    .listen_addrs
                    .lock()
                    .expect("lock poisoned")
                    .push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.shared
                    .listen_addrs
                    .lock()
                    .expect("lock poisoned")
                    .retain(|a| a != &address);
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ListenerClosed {
                reason, addresses, ..
            } => {
                warn!(
                    ?reason,
                    ?addresses,
                    "listener closed; no inbound connections"
                );
            }
            _ => {}
        }
    }

    /// A short name for log lines: the ledger key id of a validator, else the peer id.
    fn name(&self, peer_id: &PeerId) -> String {
        match self.validators.get(peer_id) {
            Some(validator) => validator.key_id.to_string(),
            None => peer_id.to_string(),
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let verdict = gossip::accept(
                    &message,
                    &propagation_source,
                    &self.topics,
                    &self.validators,
                    self.max_gossip_bytes,
                );
                let acceptance = match verdict {
                    Ok((topic, _)) if !topic.relayed() => MessageAcceptance::Ignore,
                    Ok(_) => MessageAcceptance::Accept,
                    Err(_) => MessageAcceptance::Reject,
                };
                // Reported before delivery: forwarding does not depend on whether our node
                // keeps up, and a rejected message is never forwarded.
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                match verdict {
                    Ok((topic, from)) => self.deliver_gossip(topic, from, message.data),
                    Err(rejection) => {
                        bump(&self.shared.counters.gossip_rejected);
                        warn!(
                            relayed_by = %self.name(&propagation_source),
                            ?rejection,
                            "rejected gossip message"
                        );
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                let Some(topic) = self.topics.topic(&topic) else {
                    return;
                };
                if !self.validators.contains_key(&peer_id) || !self.swarm.is_connected(&peer_id) {
                    return;
                }
                let state = self.peers.entry(peer_id).or_default();
                state.topics |= topic.bit();
                if state.topics == ALL_TOPIC_BITS && !state.announced {
                    state.announced = true;
                    self.announce(peer_id, true);
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let (Some(topic), Some(state)) =
                    (self.topics.topic(&topic), self.peers.get_mut(&peer_id))
                {
                    state.topics &= !topic.bit();
                    warn!(validator = %self.name(&peer_id), ?topic, "validator unsubscribed");
                }
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                warn!(validator = %self.name(&peer_id), "peer does not speak gossipsub; disconnecting");
                let _ = self.swarm.disconnect_peer_id(peer_id);
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => warn!(
                validator = %self.name(&peer_id),
                ?failed_messages,
                "validator is not reading fast enough; gossip to it was dropped"
            ),
        }
    }

    /// Records a connection change for `peer_id` and queues the event for the node.
    fn announce(&mut self, peer_id: PeerId, connected: bool) {
        let Some(validator) = self.validators.get(&peer_id) else {
            return;
        };
        let key = validator.key;
        {
            let mut set = self.shared.connected.lock().expect("lock poisoned");
            if connected {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
        if connected {
            info!(validator = %validator.key_id, "validator connected");
        } else {
            info!(validator = %validator.key_id, "validator disconnected");
        }
        self.peer_events.push(key, connected);
        self.flush_peer_events();
    }

    fn flush_peer_events(&mut self) {
        while let Some(event) = self.peer_events.pop() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.peer_events.unpop(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.peer_events.clear();
                    return;
                }
            }
        }
    }

    fn deliver_gossip(&mut self, topic: Topic, from: [u8; 32], data: Vec<u8>) {
        let delivered = match self.budget.wrap(data) {
            Ok(data) => self
                .events
                .try_send(P2pEvent::Gossip { topic, from, data })
                .is_ok(),
            Err(_) => false,
        };
        let counters = &self.shared.counters;
        if delivered {
            bump(&counters.gossip_delivered);
            if self.dropping {
                self.dropping = false;
                info!(
                    dropped_total = counters.gossip_dropped.load(Ordering::Relaxed),
                    "node is reading again; gossip delivery resumed"
                );
            }
        } else {
            let dropped = bump(&counters.gossip_dropped);
            if !self.dropping {
                self.dropping = true;
                warn!(
                    dropped_total = dropped,
                    ?topic,
                    "node is not reading p2p events; dropping gossip until it catches up"
                );
            }
        }
    }

    fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.deliver_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(done) = self.pending_requests.remove(&request_id) {
                        let _ = done.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(validator = %self.name(&peer), %error, "sync request failed");
                if let Some(done) = self.pending_requests.remove(&request_id) {
                    let _ = done.send(Err(self.request_error(error)));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(validator = %self.name(&peer), %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn request_error(&self, error: OutboundFailure) -> RequestError {
        match error {
            OutboundFailure::Timeout => RequestError::Timeout {
                timeout_ms: u64::try_from(self.request_timeout.as_millis()).unwrap_or(u64::MAX),
            },
            OutboundFailure::ConnectionClosed | OutboundFailure::DialFailure => {
                RequestError::ConnectionClosed
            }
            OutboundFailure::UnsupportedProtocols => RequestError::Unsupported,
            OutboundFailure::Io(error) => RequestError::Failed {
                reason: error.to_string(),
            },
        }
    }

    fn deliver_request(
        &mut self,
        peer: PeerId,
        data: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
    ) {
        let Some(validator) = self.validators.get(&peer) else {
            // Unreachable while the allow list holds; dropping the channel refuses.
            warn!(%peer, "sync request from a non-validator refused");
            return;
        };
        let from = validator.key;
        let counters = &self.shared.counters;
        if self.pending_replies.len() >= MAX_PENDING_REPLIES {
            bump(&counters.requests_dropped);
            warn!(validator = %validator.key_id, "too many unanswered sync requests; refusing");
            return;
        }
        let (reply, answer) = Reply::new(self.max_sync_bytes);
        let sent = match self.budget.wrap(data) {
            Ok(data) => self
                .events
                .try_send(P2pEvent::Request { from, data, reply })
                .is_ok(),
            Err(_) => false,
        };
        if !sent {
            bump(&counters.requests_dropped);
            warn!(validator = %validator.key_id, "node is not reading p2p events; sync request refused");
            return;
        }
        bump(&counters.requests_delivered);
        let timeout = self.request_timeout;
        self.pending_replies.push(
            async move {
                let response = tokio::time::timeout(timeout, answer)
                    .await
                    .ok()
                    .and_then(Result::ok);
                (channel, response)
            }
            .boxed(),
        );
    }
}

fn publish_error(
    error: gossipsub::PublishError,
    topic: Topic,
    max: usize,
    len: usize,
) -> PublishError {
    match error {
        gossipsub::PublishError::NoPeersSubscribedToTopic => PublishError::NoPeers { topic },
        gossipsub::PublishError::AllQueuesFull(peers) => PublishError::QueuesFull { peers },
        gossipsub::PublishError::MessageTooLarge => PublishError::TooLarge { len, max },
        other => PublishError::Refused {
            reason: other.to_string(),
        },
    }
}
