//! What validators send each other: signed proposals with their blocks, signed votes,
//! mempool batches, and block-sync requests. All borsh, all decoded with bounds.

use borsh::{BorshDeserialize, BorshSerialize};

use custos_ledger::block::{Block, BlockId, CommittedBlock, Entry, SignedVote};
use custos_ledger::codec::{DecodeError, DomainTag, List, decode, encode, tags};
use custos_ledger::crypto::{KeyId, Signable, Signed};
use custos_ledger::limits::{Limit, MAX_BLOCK_BYTES, MAX_BLOCK_MESSAGES};
use custos_ledger::message::NetworkId;

/// The signed part of a proposal. The block travels beside it; its id binds it.
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
    /// A proposal and its block.
    Proposal {
        /// The signed proposal.
        signed: Signed<ProposalBody>,
        /// The block it proposes.
        block: Box<Block>,
    },
    /// A prevote or precommit.
    Vote(SignedVote),
}

/// Largest consensus gossip message: a maximal block plus the proposal around it.
pub const MAX_CONSENSUS_WIRE_BYTES: usize = MAX_BLOCK_BYTES + 64 * 1024;

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
}

/// A block-sync response.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum SyncResponse {
    /// Committed blocks in height order, possibly none.
    Blocks(List<CommittedBlock, SyncBlocksLen>),
    /// The proposed block, if the peer has it.
    Proposed(Option<Box<Block>>),
}

/// Largest sync request.
pub const MAX_SYNC_REQUEST_BYTES: usize = 1024;
/// Largest sync response; a response carries whole blocks, at least one.
pub const MAX_SYNC_RESPONSE_BYTES: usize = 2 * MAX_BLOCK_BYTES;

/// Largest mempool gossip batch.
pub const MAX_MEMPOOL_WIRE_BYTES: usize = MAX_CONSENSUS_WIRE_BYTES;

const _: () = assert!(MAX_BLOCK_MESSAGES >= MempoolBatchLen::MAX);

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
