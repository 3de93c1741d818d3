//! Gossip topics, the gossipsub configuration for a small full mesh of validators, and the
//! permission check every received message passes before the node sees it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::gossipsub::{
    self, ConfigBuilder, IdentTopic, IdentityTransform, MessageAuthenticity, MessageId, TopicHash,
    ValidationMode, WhitelistSubscriptionFilter,
};
use libp2p::identity::Keypair;

use super::config::Validator;
use super::error::P2pError;

/// Bytes a gossipsub frame adds around the application bytes: protobuf framing, the
/// topic name (at most ~100 bytes), the source peer id (38), the sequence number (8) and
/// any control messages piggybacked on the same frame. The transmit limit is
/// `max_gossip_bytes` plus this, so a message of exactly `max_gossip_bytes` always fits.
pub const GOSSIP_FRAME_OVERHEAD_BYTES: usize = 16 * 1024;

/// Gossipsub heartbeat. The heartbeat repairs the mesh (grafts a reconnected validator)
/// and emits IHAVE gossip; with flood publishing it does not delay delivery, so it only
/// bounds how long a reconnected validator waits to be a relay again.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

/// First heartbeat after start. The default (5 s) would leave a restarted validator out of
/// the mesh for five seconds.
pub const HEARTBEAT_INITIAL_DELAY: Duration = Duration::from_millis(100);

/// How long a message id is remembered to drop duplicates. In a full mesh every copy of a
/// message arrives within one forwarding hop of the first; gossipsub drops queued
/// forwards after 1 s and publishes after 5 s, and IHAVE history covers 5 heartbeats
/// (2.5 s). 30 s is ample margin while keeping the cache small at high mempool rates
/// (the default is 60 s).
pub const DUPLICATE_CACHE_TIME: Duration = Duration::from_secs(30);

/// Context string of the BLAKE3 key derivation that computes gossip message ids.
const MESSAGE_ID_CONTEXT: &str = "custos/v1/gossip-message-id";

/// A gossip channel. Each maps to one gossipsub topic namespaced by the network id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Submitted security messages on their way to the next proposer.
    Mempool,
    /// Proposals and votes.
    Consensus,
    /// Checkpoint cosignatures.
    Cosignatures,
}

impl Topic {
    /// Every topic; a validator subscribes to all of them.
    pub const ALL: [Topic; 3] = [Topic::Mempool, Topic::Consensus, Topic::Cosignatures];

    fn name(self) -> &'static str {
        match self {
            Topic::Mempool => "mempool",
            Topic::Consensus => "consensus",
            Topic::Cosignatures => "cosignatures",
        }
    }

    /// Whether validators forward the topic's messages to each other. Publishers send
    /// to every validator they are connected to (flood publishing), so relaying only adds
    /// copies in a full mesh; it is kept where a lost message costs a round or a
    /// checkpoint: consensus and cosignatures. Mempool batches are not relayed: each
    /// validator receives a batch once instead of three times, and a validator cut off
    /// from the one that admitted a message fetches it when a proposal names it
    /// (`SyncRequest::Entries`).
    pub fn relayed(self) -> bool {
        match self {
            Topic::Mempool => false,
            Topic::Consensus | Topic::Cosignatures => true,
        }
    }

    /// Position in [`Topic::ALL`], used as a bit in subscription sets.
    pub(crate) fn bit(self) -> u8 {
        match self {
            Topic::Mempool => 1,
            Topic::Consensus => 2,
            Topic::Cosignatures => 4,
        }
    }

    /// The gossipsub topic name for a network, e.g. `/custos/custos-testnet/consensus/2`.
    /// Version 2: messages are no longer signed by gossipsub, which version 1 validators
    /// would reject (and penalise their senders for); different names keep the two apart.
    pub fn topic_name(self, network_id: &str) -> String {
        format!("/custos/{network_id}/{}/2", self.name())
    }
}

/// All topic bits set: a peer subscribed to every topic.
pub(crate) const ALL_TOPIC_BITS: u8 = 1 | 2 | 4;

/// The three topics of one network.
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    by_topic: HashMap<Topic, IdentTopic>,
    by_hash: HashMap<TopicHash, Topic>,
}

impl Topics {
    pub(crate) fn new(network_id: &str) -> Self {
        let mut by_topic = HashMap::new();
        let mut by_hash = HashMap::new();
        for topic in Topic::ALL {
            let ident = IdentTopic::new(topic.topic_name(network_id));
            by_hash.insert(ident.hash(), topic);
            by_topic.insert(topic, ident);
        }
        Self { by_topic, by_hash }
    }

    pub(crate) fn ident(&self, topic: Topic) -> &IdentTopic {
        &self.by_topic[&topic]
    }

    pub(crate) fn topic(&self, hash: &TopicHash) -> Option<Topic> {
        self.by_hash.get(hash).copied()
    }

    fn hashes(&self) -> HashSet<TopicHash> {
        self.by_hash.keys().cloned().collect()
    }
}

/// The gossipsub behaviour with only our topics allowed.
pub(crate) type Gossipsub = gossipsub::Behaviour<IdentityTransform, WhitelistSubscriptionFilter>;

/// Message id: BLAKE3 over the publisher, its sequence number, the topic and the data.
/// Including the data (the default id is publisher and sequence number only) means a
/// validator that publishes two different messages under one sequence number gets both
/// delivered, so equivocation stays visible to consensus instead of being hidden by
/// deduplication.
fn message_id(message: &gossipsub::Message) -> MessageId {
    let mut hasher = blake3::Hasher::new_derive_key(MESSAGE_ID_CONTEXT);
    let source = message.source.map(|p| p.to_bytes()).unwrap_or_default();
    for field in [
        source.as_slice(),
        &message.sequence_number.unwrap_or(0).to_be_bytes(),
        message.topic.as_str().as_bytes(),
        &message.data,
    ] {
        // Length prefixes keep field boundaries unambiguous.
        hasher.update(&(field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    MessageId::new(hasher.finalize().as_bytes())
}

/// Builds gossipsub for a full mesh of `validators` other validators.
pub(crate) fn behaviour(
    keypair: &Keypair,
    topics: &Topics,
    validators: usize,
    max_gossip_bytes: usize,
) -> Result<Gossipsub, P2pError> {
    let refused = |reason: String| P2pError::Libp2pConfig {
        what: "gossipsub",
        reason,
    };
    // Full mesh: every other validator is a mesh peer, so a message reaches everyone even
    // when some direct links are down. gossipsub needs a mesh size of at least 1.
    let mesh = validators.max(1);
    let config = ConfigBuilder::default()
        .mesh_n(mesh)
        .mesh_n_low(mesh)
        .mesh_n_high(mesh)
        // The outbound quota defends open networks against eclipse attacks; every peer
        // here is an authenticated validator, and with 3 peers the default (2) could not
        // even be met.
        .mesh_outbound_min(0)
        // Our own messages go straight to every subscribed validator, not only to mesh
        // peers: one hop, lowest latency. (The default, set here because it matters.)
        .flood_publish(true)
        .max_transmit_size(max_gossip_bytes + GOSSIP_FRAME_OVERHEAD_BYTES)
        .heartbeat_interval(HEARTBEAT_INTERVAL)
        .heartbeat_initial_delay(HEARTBEAT_INITIAL_DELAY)
        .duplicate_cache_time(DUPLICATE_CACHE_TIME)
        // Messages are forwarded only after `accept` below says the publisher is a
        // validator, so a message from anyone else is never relayed.
        .validate_messages()
        // Messages name their publisher but are not signed by it (see `accept` for what
        // authenticates the publisher instead). Every message a validator acts on is
        // signed by its author already (collector messages, proposals, votes,
        // cosignatures), and gossipsub's own signature is an Ed25519 signature over the
        // whole message: two SHA-512 passes over each mempool batch to sign it and one
        // to verify each copy, about 6% of a validator's CPU at saturation.
        .validation_mode(ValidationMode::Permissive)
        .message_id_fn(message_id)
        .build()
        .map_err(|error| refused(error.to_string()))?;
    let mut gossipsub = Gossipsub::new_with_subscription_filter(
        MessageAuthenticity::Author(keypair.public().to_peer_id()),
        config,
        // Subscriptions to other topics are ignored instead of tracked.
        WhitelistSubscriptionFilter(topics.hashes()),
    )
    .map_err(|reason| refused(reason.to_owned()))?;
    for topic in Topic::ALL {
        gossipsub
            .subscribe(topics.ident(topic))
            .map_err(|error| refused(error.to_string()))?;
    }
    Ok(gossipsub)
}

/// Why a received gossip message was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No publisher.
    NoSource,
    /// The publisher is not another validator.
    UnknownPublisher(PeerId),
    /// A message of a topic that is not relayed came from a peer other than the
    /// publisher it names (this one).
    NotFromPublisher(PeerId),
    /// Not one of our topics.
    UnknownTopic(TopicHash),
    /// Larger than `max_gossip_bytes`.
    TooLarge { len: usize, max: usize },
}

/// The permission check for a received message: its publisher must be one of the other
/// validators, its topic ours and its size within the bound. Content checks are the node's.
///
/// Messages are not signed by their publisher (see `behaviour`); what vouches for the
/// publisher is the connection the message came in on (`relayed_by`), which Noise
/// authenticates as a validator's key:
/// - a topic that is not relayed (mempool batches) is accepted only straight from its
///   publisher, so its publisher is authenticated;
/// - a relayed topic (consensus, cosignatures) may come through another validator, so its
///   publisher is as claimed by a validator. Everything in those messages is signed by its
///   author and checked by the node; the publisher only says whom to ask for missing
///   blocks or messages and under which key to check a cosignature, so a validator naming
///   another costs a failed check or a wasted request, never a forged message.
pub(crate) fn accept(
    message: &gossipsub::Message,
    relayed_by: &PeerId,
    topics: &Topics,
    validators: &HashMap<PeerId, Validator>,
    max_gossip_bytes: usize,
) -> Result<(Topic, [u8; 32]), Rejection> {
    let source = message.source.ok_or(Rejection::NoSource)?;
    let publisher = validators
        .get(&source)
        .ok_or(Rejection::UnknownPublisher(source))?;
    let topic = topics
        .topic(&message.topic)
        .ok_or_else(|| Rejection::UnknownTopic(message.topic.clone()))?;
    if !topic.relayed() && source != *relayed_by {
        return Err(Rejection::NotFromPublisher(source));
    }
    if message.data.len() > max_gossip_bytes {
        return Err(Rejection::TooLarge {
            len: message.data.len(),
            max: max_gossip_bytes,
        });
    }
    Ok((topic, publisher.key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::config::{peer_id_of, public_key_of_seed};

    fn validators() -> HashMap<PeerId, Validator> {
        (2..=4u8)
            .map(|seed| {
                let key = public_key_of_seed(&[seed; 32]);
                let validator = Validator {
                    key,
                    key_id: custos_ledger::crypto::PublicKey(key).key_id(),
                    address: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
                };
                (peer_id_of(&key).unwrap(), validator)
            })
            .collect()
    }

    fn message(seed: u8, topic: &TopicHash, len: usize) -> gossipsub::Message {
        gossipsub::Message {
            source: peer_id_of(&public_key_of_seed(&[seed; 32])),
            data: vec![0; len],
            sequence_number: Some(1),
            topic: topic.clone(),
        }
    }

    #[test]
    fn topics_are_namespaced_by_network() {
        let a = Topics::new("net-a");
        let b = Topics::new("net-b");
        for topic in Topic::ALL {
            assert_ne!(a.ident(topic).hash(), b.ident(topic).hash());
            assert_eq!(a.topic(&a.ident(topic).hash()), Some(topic));
            assert_eq!(b.topic(&a.ident(topic).hash()), None);
        }
        assert_eq!(
            Topic::Consensus.topic_name("custos-testnet"),
            "/custos/custos-testnet/consensus/2"
        );
        let bits = Topic::ALL.iter().fold(0, |acc, t| acc | t.bit());
        assert_eq!(bits, ALL_TOPIC_BITS);
    }

    fn peer(seed: u8) -> PeerId {
        peer_id_of(&public_key_of_seed(&[seed; 32])).unwrap()
    }

    #[test]
    fn validator_messages_are_accepted_with_their_key() {
        let topics = Topics::new("net");
        let hash = topics.ident(Topic::Cosignatures).hash();
        let (topic, from) =
            accept(&message(3, &hash, 10), &peer(3), &topics, &validators(), 10).unwrap();
        assert_eq!(topic, Topic::Cosignatures);
        assert_eq!(from, public_key_of_seed(&[3; 32]));
    }

    #[test]
    fn relayed_topics_come_through_other_validators_and_mempool_batches_do_not() {
        let topics = Topics::new("net");
        let validators = validators();
        for topic in [Topic::Consensus, Topic::Cosignatures] {
            let hash = topics.ident(topic).hash();
            let (accepted, from) =
                accept(&message(3, &hash, 10), &peer(2), &topics, &validators, 10).unwrap();
            assert_eq!(accepted, topic);
            assert_eq!(
                from,
                public_key_of_seed(&[3; 32]),
                "the publisher, not the relay"
            );
        }
        // A mempool batch names its publisher, and only the publisher's own connection
        // vouches for that: a validator passing on (or making up) another's is refused.
        let hash = topics.ident(Topic::Mempool).hash();
        assert_eq!(
            accept(&message(3, &hash, 10), &peer(2), &topics, &validators, 10),
            Err(Rejection::NotFromPublisher(peer(3)))
        );
        let (topic, from) =
            accept(&message(3, &hash, 10), &peer(3), &topics, &validators, 10).unwrap();
        assert_eq!(topic, Topic::Mempool);
        assert_eq!(from, public_key_of_seed(&[3; 32]));
    }

    #[test]
    fn outsiders_other_topics_and_oversized_messages_are_rejected() {
        let topics = Topics::new("net");
        let hash = topics.ident(Topic::Mempool).hash();
        let validators = validators();
        let outsider = message(9, &hash, 1);
        assert!(matches!(
            accept(&outsider, &peer(9), &topics, &validators, 10),
            Err(Rejection::UnknownPublisher(_))
        ));
        let mut anonymous = message(2, &hash, 1);
        anonymous.source = None;
        assert_eq!(
            accept(&anonymous, &peer(2), &topics, &validators, 10),
            Err(Rejection::NoSource)
        );
        let other_network = Topics::new("other").ident(Topic::Mempool).hash();
        assert!(matches!(
            accept(
                &message(2, &other_network, 1),
                &peer(2),
                &topics,
                &validators,
                10
            ),
            Err(Rejection::UnknownTopic(_))
        ));
        assert_eq!(
            accept(&message(2, &hash, 11), &peer(2), &topics, &validators, 10),
            Err(Rejection::TooLarge { len: 11, max: 10 })
        );
    }

    #[test]
    fn message_id_covers_every_field() {
        let topics = Topics::new("net");
        let hash = topics.ident(Topic::Mempool).hash();
        let base = message(2, &hash, 4);
        let id = message_id(&base);
        assert_eq!(id, message_id(&base.clone()));

        let mut other = base.clone();
        other.data[0] = 1;
        assert_ne!(message_id(&other), id, "data");
        let mut other = base.clone();
        other.sequence_number = Some(2);
        assert_ne!(message_id(&other), id, "sequence number");
        let mut other = base.clone();
        other.source = peer_id_of(&public_key_of_seed(&[3; 32]));
        assert_ne!(message_id(&other), id, "source");
        let mut other = base.clone();
        other.topic = topics.ident(Topic::Consensus).hash();
        assert_ne!(message_id(&other), id, "topic");
    }

    #[test]
    fn gossipsub_accepts_mesh_sizes_from_one_to_max() {
        let keypair = Keypair::generate_ed25519();
        let topics = Topics::new("net");
        for validators in [0, 1, 3, 19, custos_ledger::limits::MAX_VALIDATORS - 1] {
            behaviour(&keypair, &topics, validators, 1 << 20).unwrap();
        }
    }
}
