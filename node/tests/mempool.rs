//! Mempool admission: only messages that could be the next in the log get in, and a full
//! mempool says "busy" instead of dropping anything.

use std::collections::HashMap;

use custos_ledger::block::{Entry, Validator, ValidatorSet};
use custos_ledger::codec::{Bytes, List, Text};
use custos_ledger::crypto::{KeyId, SecretKey, Signed};
use custos_ledger::genesis::{ChainParams, EnrolledCollector, Genesis};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::membership::{Membership, MembershipError};
use custos_ledger::message::{
    EvidenceKind, Kind, Message, PayloadDescriptor, Role, SourceFormat, UnixMillis,
};
use custos_node::mempool::{ChainTip, Committed, Mempool, MempoolLimits, Prepared, Rejection};

#[derive(Default)]
struct FakeChain {
    tips: HashMap<KeyId, ChainTip>,
    committed: Vec<Sha256Hash>,
}

impl Committed for FakeChain {
    fn author_tip(&self, author: &KeyId) -> Option<ChainTip> {
        self.tips.get(author).copied()
    }
    fn is_committed(&self, leaf_hash: &Sha256Hash) -> bool {
        self.committed.contains(leaf_hash)
    }
}

fn membership(collectors: &[&SecretKey]) -> Membership {
    let validator = SecretKey::from_seed(&[1; 32]);
    let validators = ValidatorSet::new(vec![Validator {
        name: Text::new("v0").unwrap(),
        org: Text::new("soc").unwrap(),
        role: Role::ControlCenter,
        key: validator.public(),
        power: 1,
        p2p_address: Text::new("/ip4/127.0.0.1/tcp/1").unwrap(),
    }])
    .unwrap();
    let genesis = Genesis {
        network: Text::new("net").unwrap(),
        log_origin: Text::new("custos.test/log").unwrap(),
        genesis_time: UnixMillis(0),
        validators: validators.clone(),
        cosigners: custos_ledger::genesis::cosigner_keys(&validators).unwrap(),
        organisations: List::empty(),
        collectors: List::new(
            collectors
                .iter()
                .map(|k| EnrolledCollector {
                    key: k.public(),
                    client: Text::new("acme-bank").unwrap(),
                    name: Text::new("web-01").unwrap(),
                })
                .collect(),
        )
        .unwrap(),
        params: ChainParams::default(),
    };
    Membership::from_genesis(&genesis)
}

/// Signed messages 1..=n of one collector, properly chained.
fn chain_of(key: &SecretKey, n: u64) -> Vec<Entry> {
    let mut prev = Sha256Hash::ZERO;
    (1..=n)
        .map(|sequence| {
            let entry = entry(
                key,
                sequence,
                prev,
                b"Nov 21 12:00:00 web-01 sshd[1]: Failed password",
            );
            prev = entry.envelope.leaf_hash();
            entry
        })
        .collect()
}

fn entry(key: &SecretKey, sequence: u64, prev: Sha256Hash, payload: &[u8]) -> Entry {
    let message = Message {
        network: Text::new("net").unwrap(),
        author: key.public().key_id(),
        client: Text::new("acme-bank").unwrap(),
        sequence,
        prev,
        kind: Kind::Evidence {
            evidence: EvidenceKind::LogLine,
        },
        format: SourceFormat::Syslog3164,
        occurred_at: None,
        observed_at: UnixMillis(sequence),
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::empty(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new("text/plain").unwrap(), payload),
    };
    Entry {
        envelope: Signed::sign(message, key),
        payload: Bytes::new(payload.to_vec()).unwrap(),
    }
}

#[test]
fn a_valid_chain_is_admitted_in_order() {
    let key = SecretKey::generate();
    let m = membership(&[&key]);
    let chain = FakeChain::default();
    let mut pool = Mempool::new(MempoolLimits::default());
    let entries = chain_of(&key, 5);
    let results = pool.admit_batch(entries.clone(), &m, &chain);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(pool.len(), 5);
    let candidates = pool.candidates(3, usize::MAX);
    assert_eq!(candidates, entries[..3].to_vec());
    // Resubmitting is a duplicate, not a second copy.
    let again = pool.admit_batch(vec![entries[2].clone()], &m, &chain);
    assert!(matches!(again[0], Err(Rejection::Duplicate(_))));
    assert_eq!(pool.len(), 5);
}

#[test]
fn each_kind_of_bad_message_is_refused_precisely() {
    let key = SecretKey::generate();
    let stranger = SecretKey::generate();
    let m = membership(&[&key]);
    let chain = FakeChain::default();
    let mut pool = Mempool::new(MempoolLimits::default());
    let good = chain_of(&key, 2);

    let mut forged = good[0].clone();
    forged.envelope.body.observed_at = UnixMillis(999);
    let skipped = good[1].clone(); // sequence 2 before 1
    let unenrolled = chain_of(&stranger, 1).remove(0);
    let mut wrong_payload = good[0].clone();
    wrong_payload.payload = Bytes::new(b"something else".to_vec()).unwrap();
    let broken_chain = entry(&key, 1, Sha256Hash::digest(b"not zero"), b"x");

    let results = pool.admit_batch(
        vec![forged, skipped, unenrolled, wrong_payload, broken_chain],
        &m,
        &chain,
    );
    assert!(
        matches!(results[0], Err(Rejection::BadSignature(_))),
        "{:?}",
        results[0]
    );
    assert!(
        matches!(
            results[1],
            Err(Rejection::Sequence {
                expected: 1,
                got: 2,
                ..
            })
        ),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(
            results[2],
            Err(Rejection::Membership(MembershipError::UnknownAuthor(_)))
        ),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(results[3], Err(Rejection::Payload(_))),
        "{:?}",
        results[3]
    );
    assert!(
        matches!(results[4], Err(Rejection::BrokenChain { .. })),
        "{:?}",
        results[4]
    );
    assert!(pool.is_empty(), "nothing bad was admitted");

    // A replay of a committed message is answered as committed.
    let committed = FakeChain {
        tips: HashMap::from([(key.public().key_id(), (1, good[0].envelope.leaf_hash()))]),
        committed: vec![good[0].envelope.leaf_hash()],
    };
    let replay = pool.admit_batch(vec![good[0].clone()], &m, &committed);
    assert_eq!(
        replay[0],
        Err(Rejection::Committed(good[0].envelope.leaf_hash()))
    );
    // And the next message continues from the committed tip.
    assert!(pool.admit_batch(vec![good[1].clone()], &m, &committed)[0].is_ok());
}

#[test]
fn a_message_skipped_as_known_is_still_verified_if_no_longer_known_at_admission() {
    // Signatures of messages already waiting or committed are not checked when a batch is
    // prepared. If such a message is gone by admission (dropped as invalid meanwhile), its
    // signature must be checked then: nothing is admitted unverified.
    let key = SecretKey::generate();
    let m = membership(&[&key]);
    let chain = FakeChain::default();
    let mut pool = Mempool::new(MempoolLimits::default());
    let good = chain_of(&key, 2);
    let mut forged = good[1].clone();
    forged.envelope.body.observed_at = UnixMillis(999);

    let prepared = Prepared::new(vec![good[0].clone(), forged], &m, |_| true);
    let results = pool.admit_prepared(prepared, &m, &chain);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(Rejection::BadSignature(_))),
        "{:?}",
        results[1]
    );
    assert_eq!(pool.len(), 1);

    // Known ones are refused as what they are, before any signature is looked at.
    let again = Prepared::new(vec![good[0].clone()], &m, |_| true);
    assert!(matches!(
        pool.admit_prepared(again, &m, &chain)[0],
        Err(Rejection::Duplicate(_))
    ));

    // The mempool knows what waits in it and what was just committed, including
    // messages of a block it never held (fetched for a proposal): a late gossiped copy
    // of one is skipped, then refused as committed.
    let hashes: Vec<Sha256Hash> = good.iter().map(|e| e.envelope.leaf_hash()).collect();
    assert!(pool.knows(&hashes[0]) && !pool.knows(&hashes[1]));
    let committed = FakeChain {
        tips: HashMap::from([(key.public().key_id(), (2, hashes[1]))]),
        committed: hashes.clone(),
    };
    assert!(pool.on_commit(&hashes, &m, &committed).is_empty());
    assert!(pool.is_empty());
    assert!(hashes.iter().all(|h| pool.knows(h)));
    assert_eq!(
        pool.admit_batch(vec![good[1].clone()], &m, &committed)[0],
        Err(Rejection::Committed(hashes[1]))
    );
}

#[test]
fn a_full_mempool_answers_busy_and_keeps_what_it_has() {
    let key = SecretKey::generate();
    let m = membership(&[&key]);
    let chain = FakeChain::default();
    let mut pool = Mempool::new(MempoolLimits {
        max_messages: 3,
        max_bytes: usize::MAX,
    });
    let entries = chain_of(&key, 5);
    let results = pool.admit_batch(entries.clone(), &m, &chain);
    assert!(results[..3].iter().all(Result::is_ok));
    assert!(matches!(results[3], Err(Rejection::Busy { .. })));
    assert!(matches!(
        results[4],
        Err(Rejection::Busy { .. }) | Err(Rejection::Sequence { .. })
    ));
    assert_eq!(pool.len(), 3);

    // After the first three commit, the rest fit and continue the chain.
    let included: Vec<Sha256Hash> = entries[..3]
        .iter()
        .map(|e| e.envelope.leaf_hash())
        .collect();
    let committed = FakeChain {
        tips: HashMap::from([(key.public().key_id(), (3, included[2]))]),
        committed: included.clone(),
    };
    assert!(pool.on_commit(&included, &m, &committed).is_empty());
    assert!(pool.is_empty());
    let results = pool.admit_batch(entries[3..].to_vec(), &m, &committed);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[test]
fn a_committed_message_sent_again_is_answered_committed_when_full_or_no_longer_a_member() {
    let key = SecretKey::generate();
    let m = membership(&[&key]);
    let entries = chain_of(&key, 4);
    let first = entries[0].envelope.leaf_hash();
    let committed = FakeChain {
        tips: HashMap::from([(key.public().key_id(), (1, first))]),
        committed: vec![first],
    };
    let mut pool = Mempool::new(MempoolLimits {
        max_messages: 2,
        max_bytes: usize::MAX,
    });
    let results = pool.admit_batch(entries[1..3].to_vec(), &m, &committed);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Full: a new message is told to retry, a committed one that it may forget it.
    assert!(matches!(
        pool.admit_batch(vec![entries[3].clone()], &m, &committed)[0],
        Err(Rejection::Busy { .. })
    ));
    assert_eq!(
        pool.admit_batch(vec![entries[0].clone()], &m, &committed)[0],
        Err(Rejection::Committed(first))
    );
    assert_eq!(pool.len(), 2);

    // So is one whose author is no longer a member, rather than an unknown author.
    let mut pool = Mempool::new(MempoolLimits::default());
    let without_author = membership(&[]);
    assert_eq!(
        pool.admit_batch(vec![entries[0].clone()], &without_author, &committed)[0],
        Err(Rejection::Committed(first))
    );
    assert!(matches!(
        pool.admit_batch(vec![entries[1].clone()], &without_author, &committed)[0],
        Err(Rejection::Membership(MembershipError::UnknownAuthor(_)))
    ));
}

#[test]
fn a_commit_of_a_conflicting_message_drops_the_fork() {
    let key = SecretKey::generate();
    let m = membership(&[&key]);
    let mut pool = Mempool::new(MempoolLimits::default());
    let ours = chain_of(&key, 3);
    assert!(
        pool.admit_batch(ours.clone(), &m, &FakeChain::default())
            .iter()
            .all(Result::is_ok)
    );
    // Another validator committed a different sequence 1 from the same (misbehaving)
    // collector: our three no longer chain and are dropped with the reason.
    let other = entry(&key, 1, Sha256Hash::ZERO, b"the other story");
    let committed = FakeChain {
        tips: HashMap::from([(key.public().key_id(), (1, other.envelope.leaf_hash()))]),
        committed: vec![other.envelope.leaf_hash()],
    };
    let dropped = pool.on_commit(&[other.envelope.leaf_hash()], &m, &committed);
    assert_eq!(dropped.len(), 3);
    assert!(pool.is_empty());
}
