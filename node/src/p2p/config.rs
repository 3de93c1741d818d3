//! Configuration of the p2p service and its checks.

use std::collections::HashMap;
use std::time::Duration;

use custos_ledger::crypto::{KeyId, PublicKey};
use custos_ledger::limits::{Limit, MAX_BLOCK_BYTES, MAX_VALIDATORS, NetworkIdLen};
use libp2p::identity::{self, Keypair, ed25519};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use super::error::P2pError;

/// Smallest accepted `max_gossip_bytes` and `max_sync_bytes`: a consensus vote or a sync
/// request must fit, and gossipsub refuses transmit sizes below 100 bytes.
pub const MIN_MESSAGE_BYTES: usize = 1024;

/// Largest accepted `max_gossip_bytes` and `max_sync_bytes`. A block (at most
/// [`MAX_BLOCK_BYTES`]) with its commit certificate must fit; anything larger is a
/// misconfiguration that would let one peer make us buffer gigabytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

const _: () = assert!(MAX_MESSAGE_BYTES >= MAX_BLOCK_BYTES + 1024 * 1024);

/// Default for [`P2pConfig::max_gossip_bytes`]: one maximal block plus room for the
/// consensus message that carries it.
pub const DEFAULT_MAX_GOSSIP_BYTES: usize = MAX_BLOCK_BYTES + 1024 * 1024;

/// Default for [`P2pConfig::max_sync_bytes`]: a sync response carries at least one maximal
/// block with its commit certificate.
pub const DEFAULT_MAX_SYNC_BYTES: usize = MAX_BLOCK_BYTES + 1024 * 1024;

/// Default for [`P2pConfig::redial_interval_ms`]: a restarted validator is back in the mesh
/// within about a second, while a validator that is down costs one failed dial per second.
pub const DEFAULT_REDIAL_INTERVAL_MS: u64 = 1_000;

/// Default for [`P2pConfig::request_timeout_ms`]: long enough to move a maximal block over a
/// slow (10 Mbit/s) link, short enough that a syncing node soon tries another validator.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

/// One validator from genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The validator's Ed25519 public key; its libp2p peer id is derived from it.
    pub public_key: [u8; 32],
    /// Where the validator listens, e.g. `/ip4/10.0.0.2/tcp/26656` or
    /// `/dns4/isac.example/tcp/26656`.
    pub address: Multiaddr,
}

/// Settings of the p2p service.
#[derive(Clone, PartialEq, Eq)]
pub struct P2pConfig {
    /// The validator's Ed25519 secret seed; it is also the node's libp2p identity.
    pub identity_seed: [u8; 32],
    /// Address to listen on, e.g. `/ip4/0.0.0.0/tcp/26656`; port 0 picks a free port.
    pub listen: Multiaddr,
    /// The network id from genesis; it namespaces topics and the sync protocol, so nodes
    /// of different networks never exchange messages.
    pub network_id: String,
    /// All validators from genesis. Our own entry may be included and is skipped. Only
    /// these keys may connect.
    pub peers: Vec<Peer>,
    /// Largest gossip message (application bytes), sent or accepted.
    pub max_gossip_bytes: usize,
    /// Largest sync request or response (application bytes), sent or accepted.
    pub max_sync_bytes: usize,
    /// How often configured validators that are not connected are dialled again.
    pub redial_interval_ms: u64,
    /// How long a sync request waits for its response.
    pub request_timeout_ms: u64,
}

impl P2pConfig {
    /// A configuration with the default limits and intervals.
    pub fn new(
        identity_seed: [u8; 32],
        listen: Multiaddr,
        network_id: impl Into<String>,
        peers: Vec<Peer>,
    ) -> Self {
        Self {
            identity_seed,
            listen,
            network_id: network_id.into(),
            peers,
            max_gossip_bytes: DEFAULT_MAX_GOSSIP_BYTES,
            max_sync_bytes: DEFAULT_MAX_SYNC_BYTES,
            redial_interval_ms: DEFAULT_REDIAL_INTERVAL_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
        }
    }
}

impl std::fmt::Debug for P2pConfig {
    // The seed is secret: it must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pConfig")
            .field("identity_seed", &"<secret>")
            .field("listen", &self.listen)
            .field("network_id", &self.network_id)
            .field("peers", &self.peers)
            .field("max_gossip_bytes", &self.max_gossip_bytes)
            .field("max_sync_bytes", &self.max_sync_bytes)
            .field("redial_interval_ms", &self.redial_interval_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .finish()
    }
}

/// A remote validator, as the service knows it.
#[derive(Debug, Clone)]
pub(crate) struct Validator {
    pub(crate) key: [u8; 32],
    /// The ledger's short name for the key, used in log lines.
    pub(crate) key_id: KeyId,
    pub(crate) address: Multiaddr,
}

/// A configuration that passed every check, with keys turned into libp2p identities.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) keypair: Keypair,
    pub(crate) local_key: [u8; 32],
    pub(crate) listen: Multiaddr,
    pub(crate) network_id: String,
    /// The other validators; our own entry is not here.
    pub(crate) validators: HashMap<PeerId, Validator>,
    /// Whether our own key is in the validator set; if not, validators refuse us.
    pub(crate) local_is_validator: bool,
    pub(crate) max_gossip_bytes: usize,
    pub(crate) max_sync_bytes: usize,
    pub(crate) redial_interval: Duration,
    pub(crate) request_timeout: Duration,
}

/// The libp2p peer id of an Ed25519 public key.
pub fn peer_id_of(public_key: &[u8; 32]) -> Option<PeerId> {
    let key = ed25519::PublicKey::try_from_bytes(public_key).ok()?;
    Some(identity::PublicKey::from(key).to_peer_id())
}

/// The Ed25519 public key of a secret seed, as libp2p derives it.
pub fn public_key_of_seed(seed: &[u8; 32]) -> [u8; 32] {
    // Any 32 bytes are a valid Ed25519 seed, so this cannot fail.
    let mut seed = *seed;
    let secret = ed25519::SecretKey::try_from_bytes(&mut seed)
        .expect("an Ed25519 secret seed is any 32 bytes");
    ed25519::Keypair::from(secret).public().to_bytes()
}

fn check_network_id(id: &str) -> Result<(), P2pError> {
    if id.is_empty() {
        return Err(P2pError::NetworkIdEmpty);
    }
    if id.len() > NetworkIdLen::MAX {
        return Err(P2pError::NetworkIdTooLong {
            len: id.len(),
            max: NetworkIdLen::MAX,
        });
    }
    // The id becomes part of libp2p protocol and topic names, which are separated by '/'.
    if let Some(character) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(P2pError::NetworkIdCharacter {
            id: id.to_owned(),
            character,
        });
    }
    Ok(())
}

fn check_size(what: &'static str, value: usize) -> Result<(), P2pError> {
    if (MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&value) {
        Ok(())
    } else {
        Err(P2pError::LimitOutOfRange {
            what,
            value,
            min: MIN_MESSAGE_BYTES,
            max: MAX_MESSAGE_BYTES,
        })
    }
}

fn check_duration(what: &'static str, value_ms: u64) -> Result<Duration, P2pError> {
    if value_ms == 0 {
        Err(P2pError::ZeroDuration { what })
    } else {
        Ok(Duration::from_millis(value_ms))
    }
}

/// Checks a configuration and derives the libp2p identities.
pub(crate) fn check(config: P2pConfig) -> Result<Checked, P2pError> {
    check_network_id(&config.network_id)?;
    check_size("max_gossip_bytes", config.max_gossip_bytes)?;
    check_size("max_sync_bytes", config.max_sync_bytes)?;
    let redial_interval = check_duration("redial_interval_ms", config.redial_interval_ms)?;
    let request_timeout = check_duration("request_timeout_ms", config.request_timeout_ms)?;
    if config.peers.len() > MAX_VALIDATORS {
        return Err(P2pError::TooManyPeers {
            count: config.peers.len(),
            max: MAX_VALIDATORS,
        });
    }

    let mut seed = config.identity_seed;
    // `ed25519_from_bytes` zeroes the buffer it is given, so it gets a copy.
    let keypair =
        Keypair::ed25519_from_bytes(&mut seed).map_err(|error| P2pError::IdentitySeed {
            reason: error.to_string(),
        })?;
    let local_key = public_key_of_seed(&config.identity_seed);

    let mut validators = HashMap::with_capacity(config.peers.len());
    let mut local_is_validator = false;
    for (index, peer) in config.peers.into_iter().enumerate() {
        let key_hex = hex::encode(peer.public_key);
        let ledger_key = PublicKey(peer.public_key);
        // The ledger's check also refuses small-order keys, which libp2p would accept.
        let peer_id = ledger_key
            .verifying_key()
            .ok()
            .and_then(|_| peer_id_of(&peer.public_key))
            .ok_or_else(|| P2pError::InvalidPeerKey {
                index,
                key_hex: key_hex.clone(),
            })?;
        if let Some(Protocol::P2p(named)) = peer.address.iter().last()
            && named != peer_id
        {
            return Err(P2pError::AddressPeerMismatch {
                index,
                address: peer.address,
            });
        }
        if peer.public_key == local_key {
            if local_is_validator {
                return Err(P2pError::DuplicatePeer { index, key_hex });
            }
            local_is_validator = true;
            continue;
        }
        let validator = Validator {
            key: peer.public_key,
            key_id: ledger_key.key_id(),
            address: peer.address,
        };
        if validators.insert(peer_id, validator).is_some() {
            return Err(P2pError::DuplicatePeer { index, key_hex });
        }
    }

    Ok(Checked {
        keypair,
        local_key,
        listen: config.listen,
        network_id: config.network_id,
        validators,
        local_is_validator,
        max_gossip_bytes: config.max_gossip_bytes,
        max_sync_bytes: config.max_sync_bytes,
        redial_interval,
        request_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(peers: Vec<Peer>) -> P2pConfig {
        P2pConfig::new(
            [1; 32],
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            "custos-test",
            peers,
        )
    }

    fn peer(seed: u8) -> Peer {
        Peer {
            public_key: public_key_of_seed(&[seed; 32]),
            address: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
        }
    }

    #[test]
    fn own_entry_is_skipped_and_others_kept() {
        let checked = check(config(vec![peer(1), peer(2), peer(3)])).unwrap();
        assert!(checked.local_is_validator);
        assert_eq!(checked.validators.len(), 2);
        let keys: Vec<_> = checked.validators.values().map(|v| v.key).collect();
        assert!(!keys.contains(&public_key_of_seed(&[1; 32])));
    }

    #[test]
    fn seed_key_matches_ledger_keys() {
        // Genesis keys are made with the ledger's ed25519-dalek keys; libp2p must derive
        // the same public key from the same seed, or no validator could ever connect.
        let seed = [7; 32];
        let ledger = custos_ledger::crypto::SecretKey::from_seed(&seed)
            .public()
            .0;
        assert_eq!(public_key_of_seed(&seed), ledger);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let error = check(config(vec![peer(2), peer(2)])).unwrap_err();
        assert!(matches!(error, P2pError::DuplicatePeer { index: 1, .. }));
        let error = check(config(vec![peer(1), peer(1)])).unwrap_err();
        assert!(matches!(error, P2pError::DuplicatePeer { index: 1, .. }));
    }

    #[test]
    fn invalid_key_is_refused() {
        // y = 2 is not the y-coordinate of any point on edwards25519.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(peer_id_of(&not_a_point).is_none());
        // The identity point (y = 1) has order 1: a weak key libp2p alone would accept.
        let mut small_order = [0u8; 32];
        small_order[0] = 1;
        for bad in [not_a_point, small_order] {
            let peers = vec![
                peer(2),
                Peer {
                    public_key: bad,
                    address: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
                },
            ];
            let error = check(config(peers)).unwrap_err();
            assert!(
                matches!(error, P2pError::InvalidPeerKey { index: 1, .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn address_naming_another_peer_is_refused() {
        let other = peer_id_of(&public_key_of_seed(&[3; 32])).unwrap();
        let mut p = peer(2);
        p.address = format!("/ip4/127.0.0.1/tcp/1/p2p/{other}").parse().unwrap();
        let error = check(config(vec![p])).unwrap_err();
        assert!(matches!(
            error,
            P2pError::AddressPeerMismatch { index: 0, .. }
        ));

        let mut p = peer(2);
        let own = peer_id_of(&p.public_key).unwrap();
        p.address = format!("/ip4/127.0.0.1/tcp/1/p2p/{own}").parse().unwrap();
        assert!(check(config(vec![p])).is_ok());
    }

    #[test]
    fn network_id_is_checked() {
        let mut c = config(vec![]);
        c.network_id = String::new();
        assert!(matches!(check(c).unwrap_err(), P2pError::NetworkIdEmpty));
        let mut c = config(vec![]);
        c.network_id = "a/b".into();
        assert!(matches!(
            check(c).unwrap_err(),
            P2pError::NetworkIdCharacter { character: '/', .. }
        ));
        let mut c = config(vec![]);
        c.network_id = "x".repeat(NetworkIdLen::MAX + 1);
        assert!(matches!(
            check(c).unwrap_err(),
            P2pError::NetworkIdTooLong { .. }
        ));
    }

    #[test]
    fn limits_and_durations_are_checked() {
        let mut c = config(vec![]);
        c.max_gossip_bytes = MAX_MESSAGE_BYTES + 1;
        assert!(matches!(
            check(c).unwrap_err(),
            P2pError::LimitOutOfRange {
                what: "max_gossip_bytes",
                ..
            }
        ));
        let mut c = config(vec![]);
        c.max_sync_bytes = MIN_MESSAGE_BYTES - 1;
        assert!(matches!(
            check(c).unwrap_err(),
            P2pError::LimitOutOfRange {
                what: "max_sync_bytes",
                ..
            }
        ));
        let mut c = config(vec![]);
        c.redial_interval_ms = 0;
        assert!(matches!(
            check(c).unwrap_err(),
            P2pError::ZeroDuration {
                what: "redial_interval_ms"
            }
        ));
        let too_many = (0..=MAX_VALIDATORS)
            .map(|i| peer(u8::try_from(i % 250).unwrap()))
            .collect();
        assert!(matches!(
            check(config(too_many)).unwrap_err(),
            P2pError::TooManyPeers { .. }
        ));
    }

    #[test]
    fn debug_hides_the_seed() {
        let text = format!("{:?}", config(vec![]));
        assert!(text.contains("<secret>"));
        assert!(!text.contains("[1, 1"));
    }
}
