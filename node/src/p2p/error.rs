//! Errors of the p2p service, one enum per operation.

use libp2p::Multiaddr;

use super::Topic;

/// Why the p2p service could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// The network id is empty.
    #[error("network id is empty; give the network's name from genesis, e.g. \"custos-testnet\"")]
    NetworkIdEmpty,
    /// The network id is longer than the ledger allows.
    #[error("network id is {len} bytes long; at most {max} bytes are allowed")]
    NetworkIdTooLong {
        /// Length of the given id in bytes.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// The network id contains a character that cannot appear in a protocol or topic name.
    #[error(
        "network id {id:?} contains {character:?}; only ASCII letters, digits, '-', '_' and '.' are allowed"
    )]
    NetworkIdCharacter {
        /// The id as given.
        id: String,
        /// The first character not allowed.
        character: char,
    },
    /// More peers were configured than a validator set can hold.
    #[error("{count} peers configured; a validator set has at most {max} members")]
    TooManyPeers {
        /// Number of configured peers.
        count: usize,
        /// The largest number accepted.
        max: usize,
    },
    /// A configured public key is not a valid Ed25519 point.
    #[error(
        "peer {index} has public key {key_hex}, which is not a valid Ed25519 public key \
         (not a curve point, or of small order)"
    )]
    InvalidPeerKey {
        /// Position of the peer in the configured list.
        index: usize,
        /// The key as hex.
        key_hex: String,
    },
    /// The same public key is configured twice.
    #[error("peer {index} repeats public key {key_hex}; each validator must appear once")]
    DuplicatePeer {
        /// Position of the second occurrence in the configured list.
        index: usize,
        /// The key as hex.
        key_hex: String,
    },
    /// A peer's address names a libp2p peer id that is not the one of its public key.
    #[error(
        "peer {index} has address {address} whose /p2p/ component names another key; \
         drop the /p2p/ component or use the peer id of the configured key"
    )]
    AddressPeerMismatch {
        /// Position of the peer in the configured list.
        index: usize,
        /// The configured address.
        address: Multiaddr,
    },
    /// A size limit in the configuration is outside the supported range.
    #[error("{what} is {value} bytes; it must be between {min} and {max} bytes")]
    LimitOutOfRange {
        /// Which setting.
        what: &'static str,
        /// The configured value.
        value: usize,
        /// The smallest accepted value.
        min: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// A duration in the configuration is zero.
    #[error("{what} is 0 ms; it must be at least 1 ms")]
    ZeroDuration {
        /// Which setting.
        what: &'static str,
    },
    /// The identity seed could not be turned into a libp2p key pair.
    #[error("identity seed rejected by libp2p: {reason}")]
    IdentitySeed {
        /// What libp2p reported.
        reason: String,
    },
    /// The gossipsub or transport configuration was refused by libp2p.
    #[error("libp2p refused the {what} configuration: {reason}")]
    Libp2pConfig {
        /// Which part ("gossipsub", "transport", ...).
        what: &'static str,
        /// What libp2p reported.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The configured listen address.
        address: Multiaddr,
        /// What the transport reported.
        reason: String,
    },
}

/// Why a message could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The message is larger than the configured gossip bound.
    #[error("gossip message of {len} bytes exceeds max_gossip_bytes = {max}")]
    TooLarge {
        /// Size of the message.
        len: usize,
        /// The configured bound.
        max: usize,
    },
    /// No connected validator is subscribed to the topic, so the message was not sent.
    /// Normal while the node is alone; gossipsub keeps no copy to send later.
    #[error("no connected validator is subscribed to {topic:?}; the message was not sent")]
    NoPeers {
        /// The topic published to.
        topic: Topic,
    },
    /// The send queue of every subscribed peer is full: the peers are not reading.
    #[error("the send queues of all {peers} subscribed peers are full; the message was dropped")]
    QueuesFull {
        /// Peers that were tried.
        peers: usize,
    },
    /// gossipsub refused the message for another reason (a duplicate id).
    #[error("gossipsub refused the message: {reason}")]
    Refused {
        /// What gossipsub reported.
        reason: String,
    },
    /// The p2p service has stopped.
    #[error("the p2p service has stopped")]
    Shutdown,
}

/// Why a block-sync request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request is larger than the configured sync bound.
    #[error("sync request of {len} bytes exceeds max_sync_bytes = {max}")]
    TooLarge {
        /// Size of the request.
        len: usize,
        /// The configured bound.
        max: usize,
    },
    /// The key is not one of the configured validators (or is our own).
    #[error("{key_hex} is not another validator of this network")]
    UnknownPeer {
        /// The key as hex.
        key_hex: String,
    },
    /// The validator is not connected at the moment; pick one from `connected_peers()`.
    #[error("validator {key_hex} is not connected")]
    NotConnected {
        /// The key as hex.
        key_hex: String,
    },
    /// Too many requests are waiting for responses.
    #[error("{max} requests are already waiting for responses; retry when one completes")]
    TooManyPending {
        /// The bound on outstanding requests.
        max: usize,
    },
    /// No response arrived within the configured timeout.
    #[error("no response within {timeout_ms} ms")]
    Timeout {
        /// The configured request timeout.
        timeout_ms: u64,
    },
    /// The connection closed before the response arrived.
    #[error("the connection closed before the response arrived")]
    ConnectionClosed,
    /// The peer does not speak this network's sync protocol.
    #[error("the peer does not support this network's sync protocol")]
    Unsupported,
    /// The exchange failed: the peer gave no answer, or its response was malformed or
    /// larger than `max_sync_bytes`.
    #[error("sync exchange failed: {reason}")]
    Failed {
        /// What went wrong on the stream.
        reason: String,
    },
    /// The p2p service has stopped.
    #[error("the p2p service has stopped")]
    Shutdown,
}

/// Why an answer to a sync request could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The response is larger than the configured sync bound; the requester would refuse it.
    #[error("sync response of {len} bytes exceeds max_sync_bytes = {max}; send less per response")]
    TooLarge {
        /// Size of the response.
        len: usize,
        /// The configured bound.
        max: usize,
    },
    /// The request expired (timeout, connection closed or service stopped) before the answer.
    #[error("the request expired before the answer; the requester has already given up")]
    Expired,
}
