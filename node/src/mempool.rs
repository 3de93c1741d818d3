//! The mempool: signed messages admitted and waiting to be proposed.
//!
//! A message is admitted only if it would be valid as the next message in the log:
//! correct encoding and size, an enrolled author whose role permits the kind, a valid
//! signature, the payload its envelope describes, and the author's next sequence number
//! with the previous message's leaf hash (counting messages already waiting here). So the
//! admission order is a valid log order, and the proposer takes the oldest messages first.
//!
//! The mempool is bounded in messages and bytes. When it is full a submitter is told to
//! retry ([`Rejection::Busy`]); nothing admitted is ever dropped, except a message that a
//! committed block made invalid (the author forked its own chain, or was revoked).

use std::collections::{HashMap, HashSet, VecDeque};

use custos_ledger::block::Entry;
use custos_ledger::codec::DecodeError;
use custos_ledger::crypto::{BatchItem, KeyId, verify_batch};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::membership::{Membership, MembershipError};
use custos_ledger::message::PayloadMismatch;

/// Why a message was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not an envelope.
    #[error("envelope does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The author may not write this message.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The signature does not verify under the author's key.
    #[error("signature does not verify under the key of author {0}")]
    BadSignature(KeyId),
    /// The payload is not the one the envelope describes.
    #[error(transparent)]
    Payload(#[from] PayloadMismatch),
    /// The sequence number is not the author's next.
    #[error("author {author} must send sequence {expected} next, got {got}")]
    Sequence {
        /// The author.
        author: KeyId,
        /// The next sequence number.
        expected: u64,
        /// The one given.
        got: u64,
    },
    /// The previous-message hash does not chain to the author's last message.
    #[error(
        "author {author}: prev must be {expected} (leaf hash of sequence {sequence}), got {got}"
    )]
    BrokenChain {
        /// The author.
        author: KeyId,
        /// The previous sequence number.
        sequence: u64,
        /// The required hash.
        expected: Sha256Hash,
        /// The hash given.
        got: Sha256Hash,
    },
    /// The message is already waiting here to be committed.
    #[error("message {0} is already waiting to be committed")]
    Duplicate(Sha256Hash),
    /// The message is already committed: a sender may forget it. Together with the
    /// sequence check this makes delivery exactly once: the same message is answered
    /// `Committed`, a different one under a committed sequence number is refused.
    #[error("message {0} is already committed")]
    Committed(Sha256Hash),
    /// The mempool is full.
    #[error("mempool is full ({messages} messages, {bytes} bytes); retry later")]
    Busy {
        /// Messages waiting.
        messages: usize,
        /// Bytes waiting.
        bytes: usize,
    },
}

/// Where an author's chain currently ends.
pub type ChainTip = (u64, Sha256Hash);

/// Read access to the committed state admission depends on.
pub trait Committed {
    /// Sequence number and leaf hash of the author's last committed message.
    fn author_tip(&self, author: &KeyId) -> Option<ChainTip>;
    /// Whether a message with this leaf hash is committed.
    fn is_committed(&self, leaf_hash: &Sha256Hash) -> bool;
}

/// Checks messages in log order against a membership and the authors' chain tips,
/// applying membership changes and advancing tips as it goes. Used both to admit
/// messages to the mempool and to validate a proposed block.
#[derive(Debug)]
pub struct Sequencer<'a, C> {
    membership: Membership,
    committed: &'a C,
    tips: HashMap<KeyId, ChainTip>,
}

impl<'a, C: Committed> Sequencer<'a, C> {
    /// Starts from `membership` and the committed chain.
    pub fn new(membership: Membership, committed: &'a C) -> Self {
        Self {
            membership,
            committed,
            tips: HashMap::new(),
        }
    }

    fn tip(&self, author: &KeyId) -> Option<ChainTip> {
        self.tips
            .get(author)
            .copied()
            .or_else(|| self.committed.author_tip(author))
    }

    /// Checks everything but the signature (which is checked in batches) and, if the
    /// entry is valid, records it as the author's new tip.
    pub fn check(&mut self, entry: &Entry, leaf_hash: Sha256Hash) -> Result<(), Rejection> {
        entry.envelope.body.payload.check(&entry.payload)?;
        self.check_order(entry, leaf_hash)
    }

    /// Like [`Sequencer::check`] without hashing the payload again: for messages whose
    /// payload was checked when they were admitted.
    pub fn check_order(&mut self, entry: &Entry, leaf_hash: Sha256Hash) -> Result<(), Rejection> {
        let message = &entry.envelope.body;
        let (last_sequence, last_hash) = self.tip(&message.author).unwrap_or((0, Sha256Hash::ZERO));
        // A committed message is answered as such even if its author has been revoked
        // since: the sender may forget it. Only a message at or below the author's tip
        // can be committed, so the ledger is asked about no other.
        if message.sequence <= last_sequence && self.committed.is_committed(&leaf_hash) {
            return Err(Rejection::Committed(leaf_hash));
        }
        self.membership.authorize(message)?;
        let expected = last_sequence + 1;
        if message.sequence != expected {
            return Err(Rejection::Sequence {
                author: message.author,
                expected,
                got: message.sequence,
            });
        }
        if message.prev != last_hash {
            return Err(Rejection::BrokenChain {
                author: message.author,
                sequence: last_sequence,
                expected: last_hash,
                got: message.prev,
            });
        }
        self.membership.apply(message)?;
        self.tips
            .insert(message.author, (message.sequence, leaf_hash));
        Ok(())
    }

    /// The membership after the messages checked so far.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
}

/// Verifies the signatures of `entries` in one batch against the authors' keys in
/// `membership`; returns the positions whose signature fails or whose author is unknown.
pub fn bad_signatures(entries: &[&Entry], membership: &Membership) -> Vec<usize> {
    let signed: Vec<Vec<u8>> = entries.iter().map(|e| e.envelope.signed_bytes()).collect();
    let mut unknown = Vec::new();
    let mut items = Vec::with_capacity(entries.len());
    let mut positions = Vec::with_capacity(entries.len());
    for (position, entry) in entries.iter().enumerate() {
        match membership.get(&entry.envelope.body.author) {
            Some(member) => {
                items.push(BatchItem {
                    signed_bytes: &signed[position],
                    signature: &entry.envelope.signature,
                    key: &member.key,
                });
                positions.push(position);
            }
            None => unknown.push(position),
        }
    }
    let mut bad: Vec<usize> = verify_batch(&items)
        .into_iter()
        .map(|i| positions[i])
        .collect();
    bad.extend(unknown);
    bad.sort_unstable();
    bad
}

/// A batch with its leaf hashes computed and its signatures checked, ready for
/// [`Mempool::admit_prepared`].
#[derive(Debug)]
pub struct Prepared {
    entries: Vec<Entry>,
    hashes: Vec<Sha256Hash>,
    bad_signature: HashSet<usize>,
    /// Entries left unverified because they were known when the batch was prepared.
    unverified: HashSet<usize>,
}

impl Prepared {
    /// Hashes the entries and batch-verifies their signatures against `membership`,
    /// except the entries whose leaf hash `known` says is already waiting or committed
    /// ([`Mempool::knows`]): admission refuses those as duplicates before it looks at a
    /// signature, and verifies one that is neither by then. So a late copy of a message
    /// (gossip arriving after the message was fetched for a proposal and committed, a
    /// collector's retry) costs a lookup, not a signature verification.
    pub fn new(
        entries: Vec<Entry>,
        membership: &Membership,
        known: impl Fn(&Sha256Hash) -> bool,
    ) -> Self {
        let hashes: Vec<Sha256Hash> = entries.iter().map(|e| e.envelope.leaf_hash()).collect();
        let unverified: HashSet<usize> =
            (0..entries.len()).filter(|&i| known(&hashes[i])).collect();
        let (positions, refs): (Vec<usize>, Vec<&Entry>) = entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !unverified.contains(i))
            .unzip();
        let bad_signature = bad_signatures(&refs, membership)
            .into_iter()
            .map(|i| positions[i])
            .collect();
        Self {
            entries,
            hashes,
            bad_signature,
            unverified,
        }
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// Limits of the mempool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolLimits {
    /// Most messages waiting.
    pub max_messages: usize,
    /// Most payload and envelope bytes waiting.
    pub max_bytes: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        // Several seconds of the design throughput (10,000 messages/s of ~1 KiB), so a
        // burst is absorbed while memory stays bounded.
        Self {
            max_messages: 100_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct Waiting {
    entry: Entry,
    size_bytes: usize,
}

/// Admitted messages in admission order.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    order: VecDeque<Sha256Hash>,
    waiting: HashMap<Sha256Hash, Waiting>,
    tips: HashMap<KeyId, ChainTip>,
    bytes: usize,
    /// Leaf hashes of the last [`RECENTLY_COMMITTED`] messages committed, oldest first,
    /// and the same as a set: late copies of them are refused without a signature check.
    recent: VecDeque<Sha256Hash>,
    recent_set: HashSet<Sha256Hash>,
}

/// How many of the last committed messages the mempool remembers (a few seconds at the
/// design throughput, about 8 MB). A gossiped copy of a message that arrives after the message
/// was fetched for a proposal and committed is the case this is for.
const RECENTLY_COMMITTED: usize = 100_000;

fn entry_size(entry: &Entry) -> usize {
    entry.payload.len() + 512
}

impl Mempool {
    /// An empty mempool.
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            order: VecDeque::new(),
            waiting: HashMap::new(),
            tips: HashMap::new(),
            bytes: 0,
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
        }
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether this exact message (by leaf hash) is waiting. A block message found here
    /// had its signature verified on admission.
    pub fn contains(&self, leaf_hash: &Sha256Hash) -> bool {
        self.waiting.contains_key(leaf_hash)
    }

    /// Whether this exact message is waiting or was among the last committed: a message
    /// admission would refuse as a duplicate or as committed, whatever its signature.
    pub fn knows(&self, leaf_hash: &Sha256Hash) -> bool {
        self.waiting.contains_key(leaf_hash) || self.recent_set.contains(leaf_hash)
    }

    /// A waiting message by leaf hash.
    pub fn get(&self, leaf_hash: &Sha256Hash) -> Option<&Entry> {
        self.waiting.get(leaf_hash).map(|waiting| &waiting.entry)
    }

    /// Admits a batch, checking signatures in one batch verification. Results are in
    /// input order; each is the leaf hash or why the message was refused.
    pub fn admit_batch<C: Committed>(
        &mut self,
        entries: Vec<Entry>,
        membership: &Membership,
        committed: &C,
    ) -> Vec<Result<Sha256Hash, Rejection>> {
        let prepared = Prepared::new(entries, membership, |hash| self.knows(hash));
        self.admit_prepared(prepared, membership, committed)
    }

    /// Admits a batch whose signatures were checked by [`Prepared::new`], which callers
    /// run before taking the mempool's lock so the expensive part does not block it.
    pub fn admit_prepared<C: Committed>(
        &mut self,
        prepared: Prepared,
        membership: &Membership,
        committed: &C,
    ) -> Vec<Result<Sha256Hash, Rejection>> {
        let Prepared {
            entries,
            hashes,
            bad_signature,
            unverified,
        } = prepared;
        let mut results: Vec<Option<Result<Sha256Hash, Rejection>>> = vec![None; entries.len()];
        let overlay = Overlay {
            committed,
            tips: &self.tips,
        };
        let mut sequencer = Sequencer::new(membership.clone(), &overlay);
        let mut accepted = Vec::new();
        let mut in_batch = HashSet::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            // Whether a message is committed is not looked up for every message: a
            // committed one's sequence number is at most its author's tip, and only then
            // does the sequencer ask the ledger, so new messages, almost all of them, cost
            // no ledger read. It is asked first where a message would otherwise be
            // refused for another reason or left unverified: a sender may forget a
            // committed message, and one left unverified as known must not reach the
            // sequencer. (A leaf hash covers the signature: a copy of a committed message
            // has a good one; "bad" here is an author no longer in the membership.)
            let duplicate = self.waiting.contains_key(&hashes[i]) || !in_batch.insert(hashes[i]);
            let unchecked = unverified.contains(&i);
            let full = self.waiting.len() + accepted.len() >= self.limits.max_messages
                || self.bytes + entry_size(entry) > self.limits.max_bytes;
            let result = if duplicate {
                Err(Rejection::Duplicate(hashes[i]))
            } else if (unchecked || full || bad_signature.contains(&i))
                && committed.is_committed(&hashes[i])
            {
                Err(Rejection::Committed(hashes[i]))
            } else if bad_signature.contains(&i)
                // Known when prepared, but neither waiting nor committed now (dropped as
                // invalid meanwhile): verified here, as nothing is admitted unverified.
                || (unchecked && !bad_signatures(&[entry], membership).is_empty())
            {
                // Report an unknown or revoked author as such rather than as a bad
                // signature.
                sequencer
                    .membership()
                    .authorize(&entry.envelope.body)
                    .map_err(Rejection::from)
                    .and(Err(Rejection::BadSignature(entry.envelope.body.author)))
            } else if full {
                Err(Rejection::Busy {
                    messages: self.waiting.len(),
                    bytes: self.bytes,
                })
            } else {
                sequencer.check(entry, hashes[i]).map(|()| hashes[i])
            };
            if result.is_ok() {
                accepted.push(i);
            }
            results[i] = Some(result);
        }
        let new_tips = sequencer.tips;
        self.tips.extend(new_tips);
        let mut entries: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
        for i in accepted {
            let entry = entries[i].take().expect("each entry is taken once");
            let size_bytes = entry_size(&entry);
            self.bytes += size_bytes;
            self.order.push_back(hashes[i]);
            self.waiting
                .insert(hashes[i], Waiting { entry, size_bytes });
        }
        results
            .into_iter()
            .map(|r| r.expect("every message has a result"))
            .collect()
    }

    /// The oldest waiting messages, at most `max_messages` and about `max_bytes`.
    pub fn candidates(&self, max_messages: usize, max_bytes: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for hash in self.order.iter() {
            let waiting = &self.waiting[hash];
            if out.len() == max_messages || bytes + waiting.size_bytes > max_bytes {
                break;
            }
            bytes += waiting.size_bytes;
            out.push(waiting.entry.clone());
        }
        out
    }

    /// Removes what a committed block included, and anything the block made invalid,
    /// re-checking the remaining messages against the new committed state. Returns the
    /// messages dropped as invalid, with the reason.
    pub fn on_commit<C: Committed>(
        &mut self,
        included: &[Sha256Hash],
        membership: &Membership,
        committed: &C,
    ) -> Vec<(Sha256Hash, Rejection)> {
        for hash in included {
            if let Some(w) = self.waiting.remove(hash) {
                self.bytes -= w.size_bytes;
            }
            if self.recent_set.insert(*hash) {
                self.recent.push_back(*hash);
            }
        }
        while self.recent.len() > RECENTLY_COMMITTED {
            let oldest = self.recent.pop_front().expect("longer than the bound");
            self.recent_set.remove(&oldest);
        }
        // Re-check the rest in order: a block from another proposer may have committed a
        // different message with the same author and sequence number.
        let mut sequencer = Sequencer::new(membership.clone(), committed);
        let mut dropped = Vec::new();
        let mut order = VecDeque::with_capacity(self.waiting.len());
        for hash in std::mem::take(&mut self.order) {
            let Some(waiting) = self.waiting.get(&hash) else {
                continue;
            };
            match sequencer.check_order(&waiting.entry, hash) {
                Ok(()) => order.push_back(hash),
                Err(reason) => {
                    let w = self.waiting.remove(&hash).expect("present");
                    self.bytes -= w.size_bytes;
                    dropped.push((hash, reason));
                }
            }
        }
        self.order = order;
        self.tips = sequencer.tips;
        dropped
    }
}

/// The committed state with the mempool's waiting messages on top.
struct Overlay<'a, C> {
    committed: &'a C,
    tips: &'a HashMap<KeyId, ChainTip>,
}

impl<C: Committed> Committed for Overlay<'_, C> {
    fn author_tip(&self, author: &KeyId) -> Option<ChainTip> {
        self.tips
            .get(author)
            .copied()
            .or_else(|| self.committed.author_tip(author))
    }

    fn is_committed(&self, leaf_hash: &Sha256Hash) -> bool {
        self.committed.is_committed(leaf_hash)
    }
}

impl Mempool {
    /// Where `author`'s chain ends counting waiting messages, falling back to the
    /// committed chain.
    pub fn author_tip<C: Committed>(&self, author: &KeyId, committed: &C) -> Option<ChainTip> {
        self.tips
            .get(author)
            .copied()
            .or_else(|| committed.author_tip(author))
    }
}
