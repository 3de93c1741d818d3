#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

use custos_ledger::hash::Sha256Hash;

/// Most messages in one `custos_submit` call.
pub const MAX_SUBMIT_BATCH: usize = 1_000;

/// Largest request body the server reads: a full submit batch of typical messages, and at
/// least one maximal message.
pub const MAX_REQUEST_BYTES: u32 = 32 * 1024 * 1024;

/// JSON-RPC error codes of Custos (the JSON-RPC 2.0 range reserved for servers).
pub mod codes {
    /// The node is at capacity; retry later.
    pub const BUSY: i32 = -32001;
    /// The request was understood but refused (too many messages, bad input).
    pub const INVALID_INPUT: i32 = -32602;
    /// The node failed internally; nothing was changed.
    pub const INTERNAL: i32 = -32603;
}

/// One message to submit: the signed envelope and its payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitMessage {
    /// Base64 (standard) of the envelope's canonical encoding.
    pub envelope: String,
    /// Base64 (standard) of the raw payload bytes.
    pub payload: String,
}

/// What happened to one submitted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubmitStatus {
    /// Accepted into the mempool; it will be committed unless the network stops.
    Admitted,
    /// Already admitted or committed; nothing was done.
    Duplicate,
    /// Refused; `error` says why. Resubmitting the same bytes will fail again.
    Rejected,
    /// The mempool is full; retry later with the same bytes.
    Busy,
}

/// The result for one submitted message, in submission order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResult {
    /// Position in the request.
    pub index: usize,
    /// Outcome.
    pub status: SubmitStatus,
    /// The envelope's leaf hash, when it decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<Sha256Hash>,
    /// Why it was not admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to `custos_submit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    /// How many messages were admitted.
    pub admitted: usize,
    /// One result per message.
    pub results: Vec<SubmitResult>,
}

/// The answer to `custos_status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Network id.
    pub network: String,
    /// SHA-256 genesis hash.
    pub genesis_hash: Sha256Hash,
    /// This validator's name.
    pub validator: String,
    /// Its organisation.
    pub organisation: String,
    /// Its role.
    pub role: custos_ledger::message::Role,
    /// Height of the latest committed block (0 before the first).
    pub height: u64,
    /// Log size after it.
    pub log_size: u64,
    /// Log root after it.
    pub log_root: Sha256Hash,
    /// Time of the latest block, milliseconds since the epoch.
    pub last_block_time_ms: u64,
    /// Names of the validators this node is connected to.
    pub peers: Vec<String>,
    /// Messages waiting in the mempool.
    pub mempool_messages: usize,
}

/// The Custos JSON-RPC API.
#[rpc(server, client, namespace = "custos")]
pub trait CustosApi {
    /// Submits signed messages. Each is checked (encoding, signature, enrolled author,
    /// sequence and hash chain, size limits) and admitted to the mempool or refused with a
    /// reason; the response lists every message's outcome. At most [`MAX_SUBMIT_BATCH`].
    #[method(name = "submit")]
    async fn submit(&self, messages: Vec<SubmitMessage>) -> RpcResult<SubmitResponse>;

    /// This node's view of the chain.
    #[method(name = "status")]
    async fn status(&self) -> RpcResult<NodeStatus>;
}
