//! The p2p service over loopback TCP: gossip between validators, block-sync requests and
//! their size bounds, refusal of keys outside the validator set, reconnection after a
//! restart, and what a node that stops reading loses. Every wait is bounded.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use custos_node::p2p::{
    EVENT_CHANNEL_CAPACITY, P2p, P2pConfig, P2pError, P2pEvent, P2pHandle, Peer, PublishError,
    ReplyError, RequestError, Topic, public_key_of_seed,
};
use libp2p::Multiaddr;
use tokio::sync::mpsc;
use tokio::time::timeout;

const NETWORK: &str = "custos-p2p-test";
/// Upper bound for anything that should happen within a few redial intervals.
const SETTLE: Duration = Duration::from_secs(20);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A loopback address with a port that was free a moment ago.
fn free_address() -> Multiaddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

fn seed(index: u8) -> [u8; 32] {
    [index + 1; 32]
}

fn key(index: u8) -> [u8; 32] {
    public_key_of_seed(&seed(index))
}

/// A validator set of `count` members at fresh loopback addresses.
fn validator_set(count: u8) -> Vec<Peer> {
    (0..count)
        .map(|index| Peer {
            public_key: key(index),
            address: free_address(),
        })
        .collect()
}

fn config(identity: [u8; 32], listen: Multiaddr, peers: &[Peer]) -> P2pConfig {
    let mut config = P2pConfig::new(identity, listen, NETWORK, peers.to_vec());
    config.redial_interval_ms = 200;
    config.request_timeout_ms = 10_000;
    config.max_gossip_bytes = 64 * 1024;
    config.max_sync_bytes = 64 * 1024;
    config
}

struct Node {
    handle: P2pHandle,
    events: mpsc::Receiver<P2pEvent>,
}

async fn start(config: P2pConfig) -> Node {
    let (handle, events) = timeout(SETTLE, P2p::spawn(config))
        .await
        .expect("spawn timed out")
        .expect("spawn failed");
    Node { handle, events }
}

async fn start_validator(index: u8, peers: &[Peer]) -> Node {
    let listen = peers[usize::from(index)].address.clone();
    start(config(seed(index), listen, peers)).await
}

/// Waits until `condition` holds, polling; panics with `what` after `limit`.
async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Receives events until one matches, dropping others; `None` after `limit`.
async fn next_matching(
    events: &mut mpsc::Receiver<P2pEvent>,
    limit: Duration,
    mut wanted: impl FnMut(&P2pEvent) -> bool,
) -> Option<P2pEvent> {
    timeout(limit, async {
        loop {
            let event = events.recv().await?;
            if wanted(&event) {
                return Some(event);
            }
        }
    })
    .await
    .ok()
    .flatten()
}

fn connected_set(handle: &P2pHandle) -> BTreeSet<[u8; 32]> {
    handle.connected_peers().into_iter().collect()
}

/// Waits until every node in `nodes` sees exactly the others (of `keys`) as connected.
async fn wait_full_mesh(nodes: &[&Node], keys: &[[u8; 32]]) {
    for (index, node) in nodes.iter().enumerate() {
        let expected: BTreeSet<_> = keys
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, key)| *key)
            .collect();
        wait_until(SETTLE, &format!("node {index} sees all others"), || {
            connected_set(&node.handle) == expected
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_validators_exchange_gossip_on_every_topic_with_authenticated_senders() {
    init_tracing();
    let peers = validator_set(3);
    let mut nodes = Vec::new();
    for index in 0..3 {
        nodes.push(start_validator(index, &peers).await);
    }
    let keys = [key(0), key(1), key(2)];
    wait_full_mesh(&nodes.iter().collect::<Vec<_>>(), &keys).await;
    for (index, node) in nodes.iter().enumerate() {
        assert_eq!(node.handle.local_key(), keys[index]);
        assert!(!node.handle.listen_addrs().is_empty());
    }

    for (sender, node) in nodes.iter().enumerate() {
        for topic in Topic::ALL {
            let data = format!("{topic:?} from {sender}").into_bytes();
            node.handle.publish(topic, data).await.unwrap();
        }
    }

    // Each node receives the 3 topics from each of the 2 others, from the right sender,
    // and never its own messages.
    for (receiver, node) in nodes.iter_mut().enumerate() {
        let mut expected: BTreeSet<(Topic, [u8; 32], Vec<u8>)> = BTreeSet::new();
        for sender in (0..3).filter(|s| *s != receiver) {
            for topic in Topic::ALL {
                let data = format!("{topic:?} from {sender}").into_bytes();
                expected.insert((topic, keys[sender], data));
            }
        }
        while !expected.is_empty() {
            let event = next_matching(&mut node.events, SETTLE, |e| {
                matches!(e, P2pEvent::Gossip { .. })
            })
            .await
            .unwrap_or_else(|| panic!("node {receiver} still misses {expected:?}"));
            let P2pEvent::Gossip { topic, from, data } = event else {
                unreachable!()
            };
            let item = (topic, from, data.into_vec());
            assert!(
                expected.remove(&item),
                "node {receiver} got unexpected or duplicate {item:?}"
            );
        }
        // No duplicate or echo arrives late.
        let extra = next_matching(&mut node.events, Duration::from_millis(500), |e| {
            matches!(e, P2pEvent::Gossip { .. })
        })
        .await;
        assert!(extra.is_none(), "node {receiver} got extra {extra:?}");
        assert_eq!(node.handle.stats().gossip_delivered, 6);
        assert_eq!(node.handle.stats().gossip_rejected, 0);
    }

    // An oversized publish is refused locally.
    let too_big = vec![0; 64 * 1024 + 1];
    assert_eq!(
        nodes[0].handle.publish(Topic::Mempool, too_big).await,
        Err(PublishError::TooLarge {
            len: 64 * 1024 + 1,
            max: 64 * 1024
        })
    );
    for node in &nodes {
        node.handle.shutdown().await;
    }
    assert_eq!(
        nodes[0].handle.publish(Topic::Mempool, vec![1]).await,
        Err(PublishError::Shutdown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requests_round_trip_and_oversized_frames_fail_cleanly() {
    init_tracing();
    let peers = validator_set(2);
    // A accepts sync frames up to 4 KiB, B up to 8 KiB.
    let mut config_a = config(seed(0), peers[0].address.clone(), &peers);
    config_a.max_sync_bytes = 4096;
    let mut config_b = config(seed(1), peers[1].address.clone(), &peers);
    config_b.max_sync_bytes = 8192;
    let mut a = start(config_a).await;
    let b = start(config_b).await;
    wait_full_mesh(&[&a, &b], &[key(0), key(1)]).await;

    // B answers: "silent" gets no answer, "big" gets 6000 bytes (fine for B, too much for
    // A), "huge" is refused by B's own bound; anything else is echoed with the sender.
    let (reply_results_tx, mut reply_results) = mpsc::channel(16);
    let mut b_events = b.events;
    let responder = tokio::spawn(async move {
        while let Some(event) = b_events.recv().await {
            if let P2pEvent::Request { from, data, reply } = event {
                let result = match &*data {
                    b"silent" => {
                        drop(reply);
                        continue;
                    }
                    b"big" => reply.send(vec![7; 6000]),
                    b"huge" => reply.send(vec![7; 8193]),
                    _ => {
                        let mut answer = from.to_vec();
                        answer.extend_from_slice(&data);
                        reply.send(answer)
                    }
                };
                reply_results_tx.send(result).await.unwrap();
            }
        }
    });

    let answer = a
        .handle
        .request(key(1), b"height 1".to_vec())
        .await
        .unwrap();
    assert_eq!(&answer[..32], &key(0), "B saw A's key as the requester");
    assert_eq!(&answer[32..], b"height 1");
    assert_eq!(reply_results.recv().await, Some(Ok(())));

    // A request over A's own bound never leaves A.
    assert_eq!(
        a.handle.request(key(1), vec![0; 4097]).await,
        Err(RequestError::TooLarge {
            len: 4097,
            max: 4096
        })
    );

    // A response over A's bound is refused by A's decoder, not buffered.
    let started = Instant::now();
    let result = a.handle.request(key(1), b"big".to_vec()).await;
    assert!(
        matches!(&result, Err(RequestError::Failed { reason }) if reason.contains("6000")),
        "{result:?}"
    );
    assert_eq!(reply_results.recv().await, Some(Ok(())));

    // B refuses to send a response over its own bound; A learns at once.
    let result = a.handle.request(key(1), b"huge".to_vec()).await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(
        reply_results.recv().await,
        Some(Err(ReplyError::TooLarge {
            len: 8193,
            max: 8192
        }))
    );

    // A dropped reply fails the request promptly, not after the 10 s timeout.
    let result = a.handle.request(key(1), b"silent".to_vec()).await;
    assert!(result.is_err(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failures took {:?}",
        started.elapsed()
    );

    // B sends A a request over A's bound: A's decoder refuses it, the node never sees it.
    let result = b.handle.request(key(0), vec![1; 5000]).await;
    assert!(result.is_err(), "{result:?}");
    let seen = next_matching(&mut a.events, Duration::from_millis(500), |e| {
        matches!(e, P2pEvent::Request { .. })
    })
    .await;
    assert!(seen.is_none(), "A's node saw {seen:?}");

    // The link still works after all the failures.
    let answer = a.handle.request(key(1), b"again".to_vec()).await.unwrap();
    assert_eq!(&answer[32..], b"again");

    assert!(matches!(
        a.handle.request(key(7), b"x".to_vec()).await,
        Err(RequestError::UnknownPeer { .. })
    ));
    assert!(matches!(
        a.handle.request(key(0), b"x".to_vec()).await,
        Err(RequestError::UnknownPeer { .. })
    ));

    a.handle.shutdown().await;
    b.handle.shutdown().await;
    timeout(SETTLE, responder).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_outside_the_validator_set_cannot_connect_or_deliver() {
    init_tracing();
    // Four validators in genesis; the fourth is not running and a stranger listens at its
    // address, so the validators dial the stranger too (and must notice the wrong key).
    let peers = validator_set(4);
    let mut nodes = Vec::new();
    for index in 0..3 {
        nodes.push(start_validator(index, &peers).await);
    }
    let keys = [key(0), key(1), key(2)];
    wait_full_mesh(&nodes.iter().collect::<Vec<_>>(), &keys).await;
    // Forget the validators' announcements of each other.
    for node in &mut nodes {
        while node.events.try_recv().is_ok() {}
    }

    let stranger_seed = [0xee; 32];
    let stranger_key = public_key_of_seed(&stranger_seed);
    let mut stranger = start(config(stranger_seed, peers[3].address.clone(), &peers)).await;

    // For three seconds the stranger keeps dialling and publishing on every topic.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut publishes = 0;
    while Instant::now() < deadline {
        for topic in Topic::ALL {
            let result = stranger.handle.publish(topic, b"forged".to_vec()).await;
            assert_eq!(result, Err(PublishError::NoPeers { topic }));
            publishes += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(publishes > 0);
    assert!(matches!(
        stranger.handle.request(key(0), b"blocks".to_vec()).await,
        Err(RequestError::NotConnected { .. })
    ));

    // The stranger never counted a validator as connected.
    assert!(stranger.handle.connected_peers().is_empty());
    let seen = next_matching(&mut stranger.events, Duration::from_millis(100), |_| true).await;
    assert!(seen.is_none(), "stranger got {seen:?}");

    // Nothing reached the validators, and they really were asked: each refused the
    // stranger's connections.
    for (index, node) in nodes.iter_mut().enumerate() {
        let seen = next_matching(&mut node.events, Duration::from_millis(100), |event| {
            matches!(
                event,
                P2pEvent::Gossip { .. } | P2pEvent::Request { .. } | P2pEvent::PeerConnected(_)
            )
        })
        .await;
        assert!(seen.is_none(), "validator {index} got {seen:?}");
        assert!(!node.handle.connected_peers().contains(&stranger_key));
        let stats = node.handle.stats();
        assert!(
            stats.connections_refused > 0,
            "validator {index} never refused the stranger: {stats:?}"
        );
        assert_eq!(stats.gossip_delivered, 0);
        assert_eq!(stats.gossip_rejected, 0, "forged gossip never even arrived");
    }

    // The validators are unaffected.
    nodes[0]
        .handle
        .publish(Topic::Consensus, b"vote".to_vec())
        .await
        .unwrap();
    let got = next_matching(&mut nodes[1].events, SETTLE, |e| {
        matches!(e, P2pEvent::Gossip { .. })
    })
    .await;
    assert!(
        matches!(got, Some(P2pEvent::Gossip { from, .. }) if from == key(0)),
        "{got:?}"
    );

    stranger.handle.shutdown().await;
    for node in &nodes {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_validator_is_reconnected_and_receives_gossip_again() {
    init_tracing();
    let peers = validator_set(3);
    let mut a = start_validator(0, &peers).await;
    let mut b = start_validator(1, &peers).await;
    let c = start_validator(2, &peers).await;
    let keys = [key(0), key(1), key(2)];
    wait_full_mesh(&[&a, &b, &c], &keys).await;

    c.handle.shutdown().await;
    assert!(!c.handle.is_running());
    for (name, node) in [("a", &mut a), ("b", &mut b)] {
        let event = next_matching(
            &mut node.events,
            SETTLE,
            |e| matches!(e, P2pEvent::PeerDisconnected(k) if *k == key(2)),
        )
        .await;
        assert!(event.is_some(), "{name} never saw C disconnect");
        assert!(!node.handle.connected_peers().contains(&key(2)));
    }

    // Same key, same address: the others' redialling finds it.
    let mut c = start_validator(2, &peers).await;
    for (name, node) in [("a", &mut a), ("b", &mut b)] {
        let event = next_matching(
            &mut node.events,
            SETTLE,
            |e| matches!(e, P2pEvent::PeerConnected(k) if *k == key(2)),
        )
        .await;
        assert!(event.is_some(), "{name} never saw C come back");
    }
    wait_full_mesh(&[&a, &b, &c], &keys).await;

    a.handle
        .publish(Topic::Consensus, b"proposal h=2".to_vec())
        .await
        .unwrap();
    let got = next_matching(&mut c.events, SETTLE, |e| {
        matches!(e, P2pEvent::Gossip { .. })
    })
    .await;
    match got {
        Some(P2pEvent::Gossip { topic, from, data }) => {
            assert_eq!(topic, Topic::Consensus);
            assert_eq!(from, key(0));
            assert_eq!(&*data, b"proposal h=2");
        }
        other => panic!("restarted C got {other:?}"),
    }
    c.handle
        .publish(Topic::Cosignatures, b"cosig".to_vec())
        .await
        .unwrap();
    for (name, node) in [("a", &mut a), ("b", &mut b)] {
        let got = next_matching(
            &mut node.events,
            SETTLE,
            |e| matches!(e, P2pEvent::Gossip { from, .. } if *from == key(2)),
        )
        .await;
        assert!(got.is_some(), "{name} got nothing from the restarted C");
    }

    for node in [&a, &b, &c] {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_reading_loses_gossip_but_not_peer_events() {
    init_tracing();
    let peers = validator_set(2);
    let mut a = start_validator(0, &peers).await;
    let mut b = start_validator(1, &peers).await;
    wait_full_mesh(&[&a, &b], &[key(0), key(1)]).await;
    while a.events.try_recv().is_ok() {}

    // B's node does not read while A publishes more than B's event channel holds.
    let sent = EVENT_CHANNEL_CAPACITY + 500;
    for n in 0..sent {
        a.handle
            .publish(Topic::Mempool, n.to_be_bytes().to_vec())
            .await
            .unwrap();
    }
    let expected = u64::try_from(sent).unwrap();
    wait_until(SETTLE, "B handled every message", || {
        let stats = b.handle.stats();
        stats.gossip_delivered + stats.gossip_dropped == expected
    })
    .await;
    let stats = b.handle.stats();
    assert!(
        stats.gossip_dropped >= 500,
        "B should have dropped the overflow: {stats:?}"
    );
    assert!(stats.gossip_delivered <= u64::try_from(EVENT_CHANNEL_CAPACITY).unwrap());

    // A leaves while B's channel is still full: the peer event waits for room.
    a.handle.shutdown().await;
    wait_until(SETTLE, "B notices A left", || {
        b.handle.connected_peers().is_empty()
    })
    .await;
    let mut gossip = 0u64;
    let left = timeout(SETTLE, async {
        loop {
            match b.events.recv().await {
                Some(P2pEvent::Gossip { .. }) => gossip += 1,
                Some(P2pEvent::PeerDisconnected(k)) if k == key(0) => return true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await;
    assert_eq!(left, Ok(true), "the disconnect was lost");
    assert_eq!(
        gossip, stats.gossip_delivered,
        "every counted delivery arrived"
    );
    b.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_a_taken_port_fails_to_start() {
    init_tracing();
    let peers = validator_set(2);
    let a = start_validator(0, &peers).await;
    let second = P2p::spawn(config(seed(0), peers[0].address.clone(), &peers)).await;
    assert!(
        matches!(&second, Err(P2pError::Listen { reason, .. }) if reason.contains("not free")),
        "{:?}",
        second.map(|_| ())
    );
    a.handle.shutdown().await;
    // Once stopped, the port is free again.
    let again = start_validator(0, &peers).await;
    again.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_with_different_ids_do_not_exchange_gossip() {
    init_tracing();
    let peers = validator_set(2);
    let a = start_validator(0, &peers).await;
    let mut other = config(seed(1), peers[1].address.clone(), &peers);
    other.network_id = "another-network".into();
    let mut b = start(other).await;
    // They may connect (same keys) but never subscribe to each other's topics.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.handle.connected_peers().is_empty());
    assert!(b.handle.connected_peers().is_empty());
    assert_eq!(
        a.handle.publish(Topic::Consensus, b"vote".to_vec()).await,
        Err(PublishError::NoPeers {
            topic: Topic::Consensus
        })
    );
    let seen = next_matching(&mut b.events, Duration::from_millis(300), |_| true).await;
    assert!(seen.is_none(), "{seen:?}");
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}
