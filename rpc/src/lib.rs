#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

use custos_ledger::block::{BlockHeader, BlockId};
use custos_ledger::crypto::KeyId;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::Message;

pub mod token;

/// The OpenRPC document of the API, served by `rpc.discover`
/// (`rpc/openrpc.json` in the repository).
pub const OPENRPC_DOCUMENT: &str = include_str!("../openrpc.json");

/// The method a client calls for the OpenRPC document.
pub const DISCOVER_METHOD: &str = "rpc.discover";

/// Why the OpenRPC document does not describe the served API.
#[derive(Debug, thiserror::Error)]
pub enum OpenRpcError {
    /// The document is not JSON of the expected shape.
    #[error("the OpenRPC document is malformed: {0}")]
    Malformed(String),
    /// Methods served but not documented, or documented but not served.
    #[error(
        "the OpenRPC document does not match the server: undocumented {undocumented:?}, not served {not_served:?}"
    )]
    Mismatch {
        /// Served, not in the document.
        undocumented: Vec<String>,
        /// In the document, not served.
        not_served: Vec<String>,
    },
}

/// The method names the OpenRPC document lists, in document order.
pub fn openrpc_method_names(document: &str) -> Result<Vec<String>, OpenRpcError> {
    let value: serde_json::Value =
        serde_json::from_str(document).map_err(|e| OpenRpcError::Malformed(e.to_string()))?;
    value["methods"]
        .as_array()
        .ok_or_else(|| OpenRpcError::Malformed("no `methods` array".into()))?
        .iter()
        .map(|m| {
            m["name"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| OpenRpcError::Malformed("a method without a `name`".into()))
        })
        .collect()
}

/// Checks that `document` lists exactly the `served` methods (besides
/// [`DISCOVER_METHOD`] itself).
pub fn check_openrpc<'a>(
    document: &str,
    served: impl IntoIterator<Item = &'a str>,
) -> Result<(), OpenRpcError> {
    let documented: std::collections::BTreeSet<String> =
        openrpc_method_names(document)?.into_iter().collect();
    let served: std::collections::BTreeSet<String> = served
        .into_iter()
        .filter(|m| *m != DISCOVER_METHOD)
        .map(str::to_owned)
        .collect();
    if documented == served {
        return Ok(());
    }
    Err(OpenRpcError::Mismatch {
        undocumented: served.difference(&documented).cloned().collect(),
        not_served: documented.difference(&served).cloned().collect(),
    })
}

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
    /// The request was well formed but names something the node does not have (a block
    /// height beyond the chain, an unknown leaf hash, a tree size beyond the log).
    pub const NOT_FOUND: i32 = -32004;
    /// The method needs an organisation's credential and none valid was presented (the
    /// message says what was wrong with it).
    pub const UNAUTHENTICATED: i32 = -32010;
    /// The credential is valid but the organisation's role does not permit the read.
    pub const FORBIDDEN: i32 = -32011;
    /// The organisation exceeded its request rate; the message says when to retry.
    pub const RATE_LIMITED: i32 = -32012;
}

/// Which message to read: exactly one of `leaf_index`, `leaf_hash`, or `author` with
/// `sequence`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRef {
    /// Index in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// RFC 9162 leaf hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<Sha256Hash>,
    /// Author (collector or organisation) key id, with `sequence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<KeyId>,
    /// The author's sequence number, with `author`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

/// The answer to `custos_getMessage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// Index in the log.
    pub leaf_index: u64,
    /// RFC 9162 leaf hash.
    pub leaf_hash: Sha256Hash,
    /// Height of the block that committed it.
    pub height: u64,
    /// The block time: when the network committed it, milliseconds since the epoch.
    pub committed_at_ms: u64,
    /// The signed message, as JSON.
    pub message: Message,
    /// Base64 (standard) of the envelope's canonical encoding: the log leaf.
    pub envelope: String,
}

/// Committed blocks a block subscriber may fall behind before it is closed.
pub const BLOCK_SUBSCRIPTION_BUFFER: usize = 256;

/// Most subscriptions one WebSocket connection may hold.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 16;

/// Most records in one `custos_getAuditLog` page, so one call's work is bounded.
pub const MAX_AUDIT_PAGE: u32 = 1_000;

/// One access-audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Index of the record in the log.
    pub leaf_index: u64,
    /// Key id of the validator that served the read and signed the record.
    pub validator: KeyId,
    /// When the record was committed, milliseconds since the epoch.
    pub committed_at_ms: u64,
    /// The record.
    pub audit: custos_ledger::message::AccessAudit,
}

/// The answer to `custos_getAuditLog`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLogPage {
    /// Records visible to the caller, in log order.
    pub records: Vec<AuditRecord>,
    /// Pass as `after` to continue; absent when the log has no further records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// Most messages in one `custos_query` page: a page of maximal envelopes stays within the
/// response size limit.
pub const MAX_QUERY_PAGE: u32 = 200;

/// Most index entries one `custos_query` call examines, so a selective filter over a
/// large range costs bounded work; the caller continues from `next_after`.
pub const MAX_QUERY_SCAN: usize = 10_000;

/// Filters of `custos_query`. `client` is required (the index is per client); every
/// other filter narrows the result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryFilter {
    /// The client organisation the messages are about.
    pub client: String,
    /// Committed at or after this time (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_from_ms: Option<u64>,
    /// Committed before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_to_ms: Option<u64>,
    /// Occurred (source time) at or after this time; messages without one are excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_from_ms: Option<u64>,
    /// Occurred before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_to_ms: Option<u64>,
    /// Kind name (`evidence`, `heartbeat`, `incident`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Author (collector) key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<KeyId>,
    /// Lowest normalised severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<custos_ledger::message::SeverityLevel>,
    /// Rule or signature id, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Host, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Incident id of incident and insurance-claim records, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// Cursor: continue after this leaf index (a previous page's `next_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Page size, 1..=[`MAX_QUERY_PAGE`] (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The answer to `custos_query`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryPage {
    /// Matching messages the caller may read, in commit order.
    pub messages: Vec<MessageInfo>,
    /// Pass as `after` to continue; absent when the range is exhausted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// The answer to `custos_getPayload`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadInfo {
    /// Index in the log.
    pub leaf_index: u64,
    /// Media type from the envelope.
    pub media_type: String,
    /// SHA-256 the envelope commits to; the payload bytes hash to it.
    pub sha256: Sha256Hash,
    /// Base64 (standard) of the raw payload bytes.
    pub payload: String,
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

/// The answer to `custos_getBlock`: the header and the leaf hashes of the block's
/// messages. Envelopes and payloads are not public; they are read with the authenticated
/// message methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// The block id (BLAKE3 of the tagged header).
    pub id: BlockId,
    /// The header.
    pub header: BlockHeader,
    /// Log index of the block's first message (equal to `header.log_size` when empty).
    pub first_leaf: u64,
    /// RFC 9162 leaf hashes of the block's messages, in log order.
    pub leaf_hashes: Vec<Sha256Hash>,
    /// How many validators' precommits the commit certificate carries.
    pub commit_signatures: usize,
}

/// Who vouches for a checkpoint served by `custos_getCheckpoint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointSource {
    /// A checkpoint note stored by the network (cosigned as the network's cosigning
    /// protocol requires).
    Stored,
    /// No checkpoint is stored for this size: the note is the checkpoint of this node's
    /// current head, cosigned (C2SP `cosignature/v1`) by this one validator only. It is
    /// not a quorum checkpoint; a verifier that requires 2f+1 cosigners refuses it.
    SingleValidator,
}

/// A C2SP tlog-checkpoint note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Tree size of the checkpoint.
    pub tree_size: u64,
    /// Root hash at that size.
    pub root: Sha256Hash,
    /// The signed note, verbatim (checkpoint text, blank line, signature lines).
    pub note: String,
    /// Who vouches for it.
    pub source: CheckpointSource,
    /// Names of the keys whose signature lines the note carries.
    pub signers: Vec<String>,
}

/// The answer to `custos_getInclusionProof`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProofInfo {
    /// The leaf hash asked about.
    pub leaf_hash: Sha256Hash,
    /// Its index in the log.
    pub leaf_index: u64,
    /// Size of the tree the proof leads to.
    pub tree_size: u64,
    /// Root of that tree.
    pub root: Sha256Hash,
    /// RFC 9162 audit path, from the leaf's sibling up.
    pub path: Vec<Sha256Hash>,
    /// The checkpoint the proof is against.
    pub checkpoint: CheckpointInfo,
    /// The same proof as a C2SP `tlog-proof@v1` file (the checkpoint note included).
    pub tlog_proof: String,
}

/// A validator's checkpoint cosigning key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosignerInfo {
    /// The validator's name, the key name of its cosignature lines.
    pub name: String,
    /// Its C2SP verifier key (`name+keyid+base64`, cosignature/v1), as in genesis.
    pub vkey: String,
}

/// The answer to `custos_getCosigners`: what a C2SP verifier of this network's
/// checkpoints is configured with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosignersInfo {
    /// The checkpoints' origin line.
    pub origin: String,
    /// Cosignatures a checkpoint needs (2f+1).
    pub threshold: usize,
    /// The genesis validators' cosigning keys, in genesis order.
    pub cosigners: Vec<CosignerInfo>,
}

/// Most anchors in one `custos_getAnchors` page.
pub const MAX_ANCHOR_PAGE: usize = 256;

/// An anchor receipt committed on the private chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorInfo {
    /// Log index of the receipt message.
    pub leaf_index: u64,
    /// EVM chain id.
    pub chain_id: u64,
    /// Transaction hash, 0x-prefixed hex.
    pub tx_hash: String,
    /// Block number.
    pub block_number: u64,
    /// Block hash, 0x-prefixed hex.
    pub block_hash: String,
    /// Block time, seconds since the epoch.
    pub block_time_s: u64,
    /// Tree size of the anchored checkpoint.
    pub tree_size: u64,
    /// Its root.
    pub root: Sha256Hash,
    /// The anchored checkpoint's cosigned note, when this node stores it.
    pub checkpoint: Option<String>,
}

/// The answer to `custos_getAnchors`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorPage {
    /// Receipts in log order.
    pub anchors: Vec<AnchorInfo>,
    /// Leaf index to ask from for the next page, when there may be more.
    pub next: Option<u64>,
}

/// The answer to `custos_getConsistencyProof`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProofInfo {
    /// Size of the earlier tree.
    pub old_size: u64,
    /// Its root.
    pub old_root: Sha256Hash,
    /// Size of the later tree.
    pub new_size: u64,
    /// Its root.
    pub new_root: Sha256Hash,
    /// RFC 9162 consistency proof hashes.
    pub path: Vec<Sha256Hash>,
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

    /// The committed block at `height` (1 for the first): header, leaf hashes and how
    /// many precommits finalized it. Public.
    #[method(name = "getBlock")]
    async fn get_block(&self, height: u64) -> RpcResult<BlockInfo>;

    /// A checkpoint: the one stored for `tree_size`, or without `tree_size` the latest
    /// stored one; when none is stored, this node's current head cosigned by this
    /// validator alone (see [`CheckpointSource`]). Public.
    #[method(name = "getCheckpoint")]
    async fn get_checkpoint(&self, tree_size: Option<u64>) -> RpcResult<CheckpointInfo>;

    /// The inclusion proof of the leaf with `leaf_hash` against the checkpoint
    /// `custos_getCheckpoint(tree_size)` returns, as JSON and as a C2SP tlog-proof.
    /// Public.
    #[method(name = "getInclusionProof")]
    async fn get_inclusion_proof(
        &self,
        leaf_hash: Sha256Hash,
        tree_size: Option<u64>,
    ) -> RpcResult<InclusionProofInfo>;

    /// The consistency proof from the log of `old_size` leaves to that of `new_size`
    /// (without it, the current log). Public.
    #[method(name = "getConsistencyProof")]
    async fn get_consistency_proof(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> RpcResult<ConsistencyProofInfo>;

    /// A committed message's envelope. Needs an organisation credential whose role
    /// permits the message's kind ([`token::may_read`]).
    #[method(name = "getMessage", with_extensions)]
    async fn get_message(&self, message: MessageRef) -> RpcResult<MessageInfo>;

    /// A committed message's payload, checked against the envelope's digest. Needs an
    /// organisation credential whose role permits the message's kind.
    #[method(name = "getPayload", with_extensions)]
    async fn get_payload(&self, message: MessageRef) -> RpcResult<PayloadInfo>;

    /// Notifies every block committed from now on, as `custos_getBlock` returns it
    /// (WebSocket only). Public. A subscriber that falls more than
    /// [`BLOCK_SUBSCRIPTION_BUFFER`] blocks behind is closed with an error saying so.
    #[subscription(name = "subscribeBlocks" => "block", unsubscribe = "unsubscribeBlocks", item = BlockInfo)]
    async fn subscribe_blocks(&self) -> SubscriptionResult;

    /// Messages about one client matching `filter`, in commit order, a page at a time.
    /// Needs an organisation credential; messages the role may not read are left out (a
    /// client organisation may query only itself). Audited.
    #[method(name = "query", with_extensions)]
    async fn query(&self, filter: QueryFilter) -> RpcResult<QueryPage>;

    /// Access-audit records after leaf index `after` (from the start without it), at most
    /// `limit` ([`MAX_AUDIT_PAGE`], the default). Control-center and response
    /// organisations see every record, others only records of their own reads. Needs an
    /// organisation credential; reading the audit log is not itself audited.
    #[method(name = "getAuditLog", with_extensions)]
    async fn get_audit_log(
        &self,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<AuditLogPage>;

    /// The validators' checkpoint cosigning keys as C2SP verifier keys, the origin and
    /// the threshold: enough to configure any C2SP verifier. Public.
    #[method(name = "getCosigners")]
    async fn get_cosigners(&self) -> RpcResult<CosignersInfo>;

    /// Anchor receipts committed on the chain, in log order from leaf index `from` (the
    /// start without it), at most [`MAX_ANCHOR_PAGE`]. Public.
    #[method(name = "getAnchors")]
    async fn get_anchors(&self, from: Option<u64>) -> RpcResult<AnchorPage>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_and_names_each_method_once() {
        let names = openrpc_method_names(OPENRPC_DOCUMENT).unwrap();
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| n.starts_with("custos_")));
    }

    #[test]
    fn a_mismatch_names_both_directions() {
        let mut served: Vec<&str> = Vec::new();
        let names = openrpc_method_names(OPENRPC_DOCUMENT).unwrap();
        served.extend(names.iter().skip(1).map(String::as_str));
        served.push("custos_secret");
        served.push(DISCOVER_METHOD);
        match check_openrpc(OPENRPC_DOCUMENT, served) {
            Err(OpenRpcError::Mismatch {
                undocumented,
                not_served,
            }) => {
                assert_eq!(undocumented, vec!["custos_secret".to_owned()]);
                assert_eq!(not_served, vec![names[0].clone()]);
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
        check_openrpc(OPENRPC_DOCUMENT, names.iter().map(String::as_str)).unwrap();
        assert!(matches!(
            check_openrpc("{}", ["custos_status"]),
            Err(OpenRpcError::Malformed(_))
        ));
    }
}
