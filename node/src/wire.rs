//! What validators send each other: signed proposals, signed votes, mempool batches, and
//! block-sync requests. All borsh, all decoded with bounds.
//!
//! A proposal is compact: it carries the block header and the leaf hashes of the block's
//! messages, not the messages. Mempool gossip has normally brought every message to the
//! other validators before a proposer includes it, so each validator rebuilds the body
//! from its own mempool and asks the proposer (then the other validators) only for the
//! messages it lacks ([`SyncRequest::Entries`]). The header's body hash binds the rebuilt
//! body, and the signed proposal binds the header.

use borsh::{BorshDeserialize, BorshSerialize};

use custos_ledger::block::{Block, BlockHeader, BlockId, CommittedBlock, Entry, SignedVote};
use custos_ledger::codec::{DecodeError, DomainTag, List, decode, encode, tags};
use custos_ledger::crypto::{KeyId, Signable, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::limits::{BlockMessageCount, Limit, MAX_BLOCK_BYTES, MAX_BLOCK_MESSAGES};
use custos_ledger::message::NetworkId;

/// The signed part of a proposal. The block's header travels beside it; its id binds it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalBody {
    /// Network id.
    pub network: NetworkId,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// The paper's `validRound` of the proposal, if any.
    pub pol_round: Option<u32>,
    /// The proposed block.
    pub block_id: BlockId,
    /// The proposer.
    pub proposer: KeyId,
}

impl Signable for ProposalBody {
    const TAG: DomainTag = tags::PROPOSAL;
}

/// A consensus message on the gossip network.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum ConsensusWire {
    /// A proposal: the proposed block's header and the leaf hashes of its messages, in
    /// block order.
    Proposal {
        /// The signed proposal.
        signed: Signed<ProposalBody>,
        /// The header of the block it proposes; its id is the proposal's `block_id`.
        header: Box<BlockHeader>,
        /// The leaf hashes of the block's messages, in order.
        leaves: List<Sha256Hash, BlockMessageCount>,
    },
    /// A prevote or precommit.
    Vote(SignedVote),
}

/// Largest consensus gossip message: the leaf hashes of a maximal block plus the header
/// and proposal around them.
pub const MAX_CONSENSUS_WIRE_BYTES: usize = MAX_BLOCK_MESSAGES * 32 + 64 * 1024;

/// Messages in one mempool gossip batch: a submit batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MempoolBatchLen;
impl Limit for MempoolBatchLen {
    const MAX: usize = custos_rpc::MAX_SUBMIT_BATCH;
    const WHAT: &'static str = "mempool batch";
}

/// A batch of admitted messages forwarded to the other validators.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct MempoolBatch {
    /// The messages.
    pub entries: List<Entry, MempoolBatchLen>,
}

/// Blocks in one sync response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncBlocksLen;
impl Limit for SyncBlocksLen {
    const MAX: usize = 64;
    const WHAT: &'static str = "sync block list";
}

/// A block-sync request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncRequest {
    /// Committed blocks from `from_height` on, as many as fit the response bound.
    Blocks {
        /// First height wanted.
        from_height: u64,
    },
    /// A proposed (not necessarily committed) block by id, for a validator that must
    /// commit or re-propose a block it did not receive.
    Proposed {
        /// Its height.
        height: u64,
        /// Its id.
        block_id: BlockId,
    },
    /// Messages by leaf hash, for a validator rebuilding a proposed block whose messages
    /// did not all reach its mempool.
    Entries {
        /// The leaf hashes wanted.
        leaves: List<Sha256Hash, BlockMessageCount>,
    },
}

/// A block-sync response.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum SyncResponse {
    /// Committed blocks in height order, possibly none.
    Blocks(List<CommittedBlock, SyncBlocksLen>),
    /// The proposed block, if the peer has it.
    Proposed(Option<Box<Block>>),
    /// Those of the wanted messages the peer holds, in any order.
    Entries(List<Entry, BlockMessageCount>),
}

/// Largest sync request: the leaf hashes of a maximal block.
pub const MAX_SYNC_REQUEST_BYTES: usize = MAX_BLOCK_MESSAGES * 32 + 1024;
/// Largest sync response; a response carries whole blocks, at least one.
pub const MAX_SYNC_RESPONSE_BYTES: usize = 2 * MAX_BLOCK_BYTES;

/// Largest mempool gossip batch: a submit batch of maximal messages fits.
pub const MAX_MEMPOOL_WIRE_BYTES: usize = MAX_BLOCK_BYTES + 64 * 1024;

/// Largest gossip message on any topic.
pub const MAX_GOSSIP_BYTES: usize = if MAX_MEMPOOL_WIRE_BYTES > MAX_CONSENSUS_WIRE_BYTES {
    MAX_MEMPOOL_WIRE_BYTES
} else {
    MAX_CONSENSUS_WIRE_BYTES
};

const _: () = assert!(MAX_BLOCK_MESSAGES >= MempoolBatchLen::MAX);
const _: () = assert!(MAX_SYNC_RESPONSE_BYTES >= MAX_SYNC_REQUEST_BYTES);

/// Encodes any wire message.
pub fn to_bytes<T: BorshSerialize>(value: &T) -> Vec<u8> {
    encode(value)
}

/// Decodes a consensus message.
pub fn consensus_from_bytes(bytes: &[u8]) -> Result<ConsensusWire, DecodeError> {
    decode(bytes, MAX_CONSENSUS_WIRE_BYTES)
}

/// Decodes a mempool batch.
pub fn mempool_from_bytes(bytes: &[u8]) -> Result<MempoolBatch, DecodeError> {
    decode(bytes, MAX_MEMPOOL_WIRE_BYTES)
}

/// Decodes a sync request.
pub fn sync_request_from_bytes(bytes: &[u8]) -> Result<SyncRequest, DecodeError> {
    decode(bytes, MAX_SYNC_REQUEST_BYTES)
}

/// Decodes a sync response.
pub fn sync_response_from_bytes(bytes: &[u8]) -> Result<SyncResponse, DecodeError> {
    decode(bytes, MAX_SYNC_RESPONSE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_ledger::codec::Text;
    use custos_ledger::crypto::SecretKey;
    use custos_ledger::hash::Blake3Hash;
    use custos_ledger::limits::NetworkIdLen;
    use custos_ledger::message::UnixMillis;

    fn leaves(count: usize) -> List<Sha256Hash, BlockMessageCount> {
        List::new(
            (0..count)
                .map(|i| Sha256Hash(blake3::hash(&i.to_le_bytes()).into()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_maximal_compact_proposal_and_its_entries_request_fit_their_bounds() {
        let key = SecretKey::from_seed(&[7; 32]);
        let network: NetworkId = Text::new("n".repeat(NetworkIdLen::MAX)).unwrap();
        let header = BlockHeader {
            network: network.clone(),
            height: u64::MAX,
            round: u32::MAX,
            proposer: key.public().key_id(),
            time: UnixMillis(u64::MAX),
            parent: Blake3Hash([1; 32]),
            body_hash: Blake3Hash([2; 32]),
            log_size: u64::MAX,
            log_root: Sha256Hash([3; 32]),
        };
        let body = ProposalBody {
            network,
            height: u64::MAX,
            round: u32::MAX,
            pol_round: Some(u32::MAX),
            block_id: header.id(),
            proposer: key.public().key_id(),
        };
        let proposal = ConsensusWire::Proposal {
            signed: Signed::sign(body, &key),
            header: Box::new(header),
            leaves: leaves(MAX_BLOCK_MESSAGES),
        };
        let bytes = to_bytes(&proposal);
        assert!(bytes.len() <= MAX_CONSENSUS_WIRE_BYTES, "{}", bytes.len());
        let ConsensusWire::Proposal { leaves: back, .. } = consensus_from_bytes(&bytes).unwrap()
        else {
            panic!("decoded as a vote");
        };
        assert_eq!(back.len(), MAX_BLOCK_MESSAGES);

        let request = to_bytes(&SyncRequest::Entries {
            leaves: leaves(MAX_BLOCK_MESSAGES),
        });
        assert!(request.len() <= MAX_SYNC_REQUEST_BYTES, "{}", request.len());
        assert!(sync_request_from_bytes(&request).is_ok());
        assert!(MAX_GOSSIP_BYTES >= MAX_MEMPOOL_WIRE_BYTES.max(MAX_CONSENSUS_WIRE_BYTES));
    }

    #[test]
    fn a_proposal_naming_more_leaves_than_a_block_holds_is_refused() {
        // A list one longer than the bound, encoded by hand: the length prefix, then the
        // hashes.
        let mut bytes = to_bytes(&SyncRequest::Entries { leaves: leaves(1) });
        let count = u32::try_from(MAX_BLOCK_MESSAGES + 1).unwrap();
        bytes[1..5].copy_from_slice(&count.to_le_bytes());
        bytes.truncate(5);
        bytes.extend(std::iter::repeat_n(0u8, 32 * (MAX_BLOCK_MESSAGES + 1)));
        let error = sync_request_from_bytes(&bytes).unwrap_err().to_string();
        assert!(error.contains(BlockMessageCount::WHAT), "{error}");
    }
}
