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

/// The parameter names of each documented method, from the OpenRPC document: the server
/// refuses parameters a method does not take, which jsonrpsee alone would ignore.
#[derive(Clone, Debug, Default)]
pub struct ParamNames {
    by_method: std::collections::HashMap<String, Vec<String>>,
}

impl ParamNames {
    /// Reads the parameter names of every method in `document`.
    pub fn from_openrpc(document: &str) -> Result<Self, OpenRpcError> {
        let value: serde_json::Value =
            serde_json::from_str(document).map_err(|e| OpenRpcError::Malformed(e.to_string()))?;
        let mut by_method = std::collections::HashMap::new();
        for method in value["methods"]
            .as_array()
            .ok_or_else(|| OpenRpcError::Malformed("no `methods` array".into()))?
        {
            let name = method["name"]
                .as_str()
                .ok_or_else(|| OpenRpcError::Malformed("a method without a `name`".into()))?;
            let params = match method.get("params") {
                None => Vec::new(),
                Some(params) => params
                    .as_array()
                    .ok_or_else(|| {
                        OpenRpcError::Malformed(format!("{name}: `params` is not a list"))
                    })?
                    .iter()
                    .map(|p| {
                        p["name"].as_str().map(str::to_owned).ok_or_else(|| {
                            OpenRpcError::Malformed(format!("{name}: a parameter without a `name`"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            by_method.insert(name.to_owned(), params);
        }
        Ok(Self { by_method })
    }

    /// Checks that `params` passes no parameter `method` does not take: no more positional
    /// parameters than it declares, no unknown names. Methods the document does not list
    /// pass (the server answers them as unknown); so do params that are neither a list nor
    /// an object (the method's own decoding refuses them).
    pub fn check(&self, method: &str, params: Option<&str>) -> Result<(), String> {
        let (Some(names), Some(params)) = (self.by_method.get(method), params) else {
            return Ok(());
        };
        let params = params.trim_start();
        let takes = || match names.len() {
            0 => "no parameters".to_owned(),
            1 => format!("1 parameter ({})", names[0]),
            n => format!("{n} parameters ({})", names.join(", ")),
        };
        if params.starts_with('[') {
            let Ok(list) = serde_json::from_str::<Vec<serde::de::IgnoredAny>>(params) else {
                return Ok(());
            };
            if list.len() > names.len() {
                return Err(format!(
                    "{method} takes {}; {} were given",
                    takes(),
                    list.len()
                ));
            }
        } else if params.starts_with('{') {
            let Ok(object) = serde_json::from_str::<
                std::collections::BTreeMap<String, serde::de::IgnoredAny>,
            >(params) else {
                return Ok(());
            };
            if let Some(unknown) = object.keys().find(|k| !names.contains(k)) {
                return Err(format!(
                    "{method} has no parameter named {unknown:?}; it takes {}",
                    takes()
                ));
            }
        }
        Ok(())
    }
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
    /// Already admitted and waiting to be committed; nothing was done.
    Duplicate,
    /// Already committed; nothing was done, and the sender may forget the message (a
    /// collector removes it from its spool). A different message under a committed
    /// sequence number is `Rejected`, so each sequence number is committed once.
    Committed,
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

/// Most incidents in one `custos_listIncidents` page.
pub const MAX_INCIDENT_PAGE: u32 = 500;

/// An incident's key: client and incident id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentKey {
    /// The client organisation.
    pub client: String,
    /// The incident id.
    pub incident_id: String,
}

/// Filters of `custos_listIncidents`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// Only this client's incidents (a client organisation must name itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Only incidents with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<custos_ledger::incident::IncidentStatus>,
    /// Only incidents with (`true`) or without (`false`) an overdue duty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue: Option<bool>,
    /// Evaluate at this time, milliseconds since the epoch (default: the latest block's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<u64>,
    /// Cursor: continue after this incident (a previous page's `next_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<IncidentKey>,
    /// Page size, 1..=[`MAX_INCIDENT_PAGE`] (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The answer to `custos_listIncidents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentPage {
    /// The evaluation time.
    pub as_of_ms: u64,
    /// Matching incidents, by client and incident id.
    pub incidents: Vec<custos_ledger::incident::IncidentView>,
    /// Pass as `after` to continue; absent when there are no more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<IncidentKey>,
}

/// Filters of `custos_deadlines` and `custos_subscribeDeadlines`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineQuery {
    /// Only this client's deadlines (a client organisation must name itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Pending duties due within this long count as due (default one day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<u64>,
    /// Evaluate at this time (default: the latest block's); not for subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<u64>,
}

/// A duty that is due soon or overdue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// The client organisation.
    pub client: String,
    /// The incident id.
    pub incident_id: String,
    /// The duty.
    pub duty: custos_ledger::incident::Duty,
    /// The level it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Leaf index of the record that opened it.
    pub opened_by_leaf: u64,
    /// The deadline.
    pub due_at_ms: u64,
    /// `pending` (due within the horizon) or `overdue`.
    pub state: custos_ledger::incident::DutyState,
    /// Due time minus evaluation time: negative when overdue.
    pub remaining_ms: i64,
}

/// The answer to `custos_deadlines`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineList {
    /// The evaluation time.
    pub as_of_ms: u64,
    /// The horizon used.
    pub within_ms: u64,
    /// Overdue and soon-due duties, earliest deadline first.
    pub deadlines: Vec<Deadline>,
}

/// What a deadline notification announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadlineEvent {
    /// The duty is now due within the subscription's horizon.
    Approaching,
    /// The deadline passed with the duty unmet.
    Passed,
}

/// A `custos_subscribeDeadlines` notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineNotice {
    /// What happened.
    pub event: DeadlineEvent,
    /// The block whose time made it happen.
    pub height: u64,
    /// That block's time.
    pub as_of_ms: u64,
    /// The duty.
    pub deadline: Deadline,
}

/// An early warning exported as a STIX 2.1 bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningExport {
    /// Index in the log.
    pub leaf_index: u64,
    /// RFC 9162 leaf hash.
    pub leaf_hash: Sha256Hash,
    /// When it was committed.
    pub committed_at_ms: u64,
    /// The publishing organisation.
    pub publisher: String,
    /// The client field: a client the warning is about, or the publisher for a broadcast.
    pub client: String,
    /// SHA-256 of the notarized payload.
    pub sha256: Sha256Hash,
    /// `true` when `bundle` is the notarized payload itself (its bytes hash to `sha256`);
    /// `false` when the payload was not a STIX bundle and was wrapped in one.
    pub verbatim: bool,
    /// The STIX 2.1 bundle.
    pub bundle: serde_json::Value,
}

/// What `custos_exportEvidence` exports: exactly one of `incident` (with `client`),
/// `client` with a time range, or `leaf_hashes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The client organisation (incident and range exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// An incident id of `client`: its records and the client's messages committed from
    /// its first record to its closure (or the last block under the latest quorum
    /// checkpoint), with the claims filed for it and the policies they name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// Range start, committed time (ms since the epoch), with `client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// Range end, committed time, inclusive (default, and at most: the latest block's
    /// time, so an export never claims a window that can still grow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<u64>,
    /// Chosen messages by leaf hash, at most [`MAX_EXPORT_MESSAGES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_hashes: Option<Vec<Sha256Hash>>,
    /// Whether to include payload bytes (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payloads: Option<bool>,
}

/// The answer to `custos_verifyClaim`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimVerification {
    /// Whether every check holds.
    pub holds: bool,
    /// The verdict (`custos_ledger::claim::ClaimVerdict`): checks, incident duties,
    /// collectors, timeline.
    pub verdict: serde_json::Value,
    /// The verdict as a Markdown report to attach to the claim file.
    pub markdown: String,
}

/// Most messages one export names or finds: the bundle's entry limit.
pub const MAX_EXPORT_MESSAGES: usize = custos_ledger::bundle::BUNDLE_ENTRIES_MAX;

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

    /// Notifies every message committed from now on that matches `filter` (the
    /// [`QueryFilter`] without `after` and `limit`), as `custos_getMessage` returns it
    /// (WebSocket only). Needs an organisation credential, sent with the upgrade request;
    /// messages the role may not read are left out and every delivery is audited. The
    /// subscription ends with an error when the credential expires.
    #[subscription(name = "subscribeMessages" => "message", unsubscribe = "unsubscribeMessages", item = MessageInfo, with_extensions)]
    async fn subscribe_messages(&self, filter: QueryFilter) -> SubscriptionResult;

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

    /// Incidents with their duties and verdicts (ARCHITECTURE §7), evaluated from committed
    /// times under the policy version each incident follows. Needs an organisation
    /// credential whose role may read incidents of the client; audited.
    #[method(name = "listIncidents", with_extensions)]
    async fn list_incidents(&self, query: IncidentQuery) -> RpcResult<IncidentPage>;

    /// One incident, evaluated at `as_of_ms` (default: the latest block's time).
    #[method(name = "getIncident", with_extensions)]
    async fn get_incident(
        &self,
        client: String,
        incident_id: String,
        as_of_ms: Option<u64>,
    ) -> RpcResult<custos_ledger::incident::IncidentView>;

    /// Duties overdue or due within `within_ms`, earliest first. Audited.
    #[method(name = "deadlines", with_extensions)]
    async fn deadlines(&self, query: DeadlineQuery) -> RpcResult<DeadlineList>;

    /// Notifies, as blocks commit, each duty that comes within the horizon and each
    /// deadline that passes unmet; on subscribing, those already due or overdue
    /// (WebSocket only). Audited; ends when the credential expires.
    #[subscription(name = "subscribeDeadlines" => "deadline", unsubscribe = "unsubscribeDeadlines", item = DeadlineNotice, with_extensions)]
    async fn subscribe_deadlines(&self, query: DeadlineQuery) -> SubscriptionResult;

    /// The risk value of `client` over messages committed in `[from_ms, to_ms)` (`to_ms`
    /// defaults to just after the latest block and may not be later), with the four
    /// sub-scores and what moved them. Deterministic: every validator holding the window
    /// answers the same. Audited (the leaves cited).
    #[method(name = "riskScore", with_extensions)]
    async fn risk_score(
        &self,
        client: String,
        from_ms: u64,
        to_ms: Option<u64>,
    ) -> RpcResult<custos_ledger::risk::RiskAssessment>;

    /// An early warning as a STIX 2.1 bundle. Audited.
    #[method(name = "exportWarning", with_extensions)]
    async fn export_warning(&self, message: MessageRef) -> RpcResult<WarningExport>;

    /// Notifies every early warning committed from now on that the caller may read, as
    /// `custos_exportWarning` returns it (WebSocket only). Audited; ends when the
    /// credential expires.
    #[subscription(name = "subscribeWarnings" => "warning", unsubscribe = "unsubscribeWarnings", item = WarningExport, with_extensions)]
    async fn subscribe_warnings(&self) -> SubscriptionResult;
    /// The validators' checkpoint cosigning keys as C2SP verifier keys, the origin and
    /// the threshold: enough to configure any C2SP verifier. Public.
    #[method(name = "getCosigners")]
    async fn get_cosigners(&self) -> RpcResult<CosignersInfo>;

    /// Anchor receipts committed on the chain, in log order from leaf index `from` (the
    /// start without it), at most [`MAX_ANCHOR_PAGE`]. Public.
    #[method(name = "getAnchors")]
    async fn get_anchors(&self, from: Option<u64>) -> RpcResult<AnchorPage>;

    /// An evidence bundle (`docs/evidence-bundle.md`) of the messages `request` selects
    /// that the caller may read, with the membership changes before them, tlog-proofs
    /// against the latest quorum checkpoint and the earliest anchor covering them.
    /// Needs an organisation credential; audited (every exported leaf).
    #[method(name = "exportEvidence", with_extensions)]
    async fn export_evidence(
        &self,
        request: ExportRequest,
    ) -> RpcResult<custos_ledger::bundle::Bundle>;

    /// Judges an insurance claim: exports its incident's bundle (with the claim and its
    /// policy), verifies it against this network's genesis and answers whether the
    /// evidence existed after the policy start and before the claim, is untampered, the
    /// incident's deadlines were met and the client's collectors are complete, with the
    /// timeline and a Markdown report. Needs an organisation credential that may read
    /// the claim and the incident; audited (every leaf of the bundle).
    #[method(name = "verifyClaim", with_extensions)]
    async fn verify_claim(&self, claim: MessageRef) -> RpcResult<ClaimVerification>;
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
    fn extra_and_unknown_params_are_named() {
        let names = ParamNames::from_openrpc(OPENRPC_DOCUMENT).unwrap();
        assert_eq!(names.check("custos_getBlock", Some("[1]")), Ok(()));
        assert_eq!(
            names.check("custos_getBlock", Some(r#"{"height":1}"#)),
            Ok(())
        );
        assert_eq!(
            names.check("custos_getBlock", Some("[1, 2]")),
            Err("custos_getBlock takes 1 parameter (height); 2 were given".into())
        );
        assert_eq!(
            names.check("custos_status", Some("[null]")),
            Err("custos_status takes no parameters; 1 were given".into())
        );
        assert_eq!(
            names.check(
                "custos_getInclusionProof",
                Some(r#"{"leaf_hash":"00","size":3}"#)
            ),
            Err(
                "custos_getInclusionProof has no parameter named \"size\"; it takes 2 \
                 parameters (leaf_hash, tree_size)"
                    .into()
            )
        );
        // Shapes the method's own decoding refuses, and unknown methods, pass through.
        assert_eq!(names.check("custos_getBlock", Some("\"x\"")), Ok(()));
        assert_eq!(names.check("custos_nope", Some("[1, 2, 3]")), Ok(()));
        assert_eq!(names.check("custos_getBlock", None), Ok(()));
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
