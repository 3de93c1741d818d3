//! The public reads of the JSON-RPC API (ARCHITECTURE §6): blocks, checkpoints and proofs.
//!
//! They run against the ledger alone, at one tree size chosen at the start of each call,
//! so a block committed meanwhile never mixes two log sizes into one answer.

use base64::Engine as _;
use custos_ledger::c2sp::{Checkpoint, CosignatureSigner, KeyName, Note, TlogProof};
use custos_ledger::crypto::SecretKey;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::Root;
use custos_ledger::message::{Envelope, InsuranceEvent, Kind, Message, OrgId, Role, UnixMillis};
use custos_ledger::storage::{Backend, Ledger, StorageError};
use custos_rpc::token::{Caller, may_read};
use custos_rpc::{
    AuditLogPage, AuditRecord, BlockInfo, CheckpointInfo, CheckpointSource, ConsistencyProofInfo,
    InclusionProofInfo, MAX_AUDIT_PAGE, MAX_QUERY_PAGE, MAX_QUERY_SCAN, MessageInfo, MessageRef,
    PayloadInfo, QueryFilter, QueryPage, codes,
};

/// Why a public read could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The height is 0 or above the chain's head.
    #[error("no block at height {height}: blocks are numbered from 1 and the head is at {head}")]
    NoBlock {
        /// Height asked for.
        height: u64,
        /// Current head height.
        head: u64,
    },
    /// A tree size beyond the current log.
    #[error("tree size {tree_size} is beyond the log, which has {log_size} leaves")]
    BeyondLog {
        /// Size asked for.
        tree_size: u64,
        /// Current log size.
        log_size: u64,
    },
    /// No checkpoint is stored for a past tree size.
    #[error(
        "no checkpoint is stored for tree size {tree_size}; checkpoints exist for the stored \
         sizes and for the current log size {log_size} (omit tree_size to get it)"
    )]
    NoCheckpoint {
        /// Size asked for.
        tree_size: u64,
        /// Current log size.
        log_size: u64,
    },
    /// The leaf hash is not in the log.
    #[error("no message with leaf hash {0} is in the log")]
    UnknownLeaf(Sha256Hash),
    /// The leaf is in the log but after the requested tree size.
    #[error("leaf {leaf_hash} is at index {index}, outside a tree of size {tree_size}")]
    LeafAfterSize {
        /// Leaf hash asked about.
        leaf_hash: Sha256Hash,
        /// Its index.
        index: u64,
        /// Size asked for.
        tree_size: u64,
    },
    /// The old size of a consistency proof is larger than the new one.
    #[error("old_size {old_size} is larger than new_size {new_size}")]
    SizesReversed {
        /// Earlier size asked for.
        old_size: u64,
        /// Later size asked for.
        new_size: u64,
    },
    /// A consistency proof from the empty tree was asked for.
    #[error(
        "old_size 0: every tree is consistent with the empty tree; old_size must be at least 1"
    )]
    EmptyOldTree,
    /// The message reference is not exactly one of the three forms.
    #[error(
        "name the message by exactly one of: leaf_index; leaf_hash; author with sequence ({0})"
    )]
    BadReference(&'static str),
    /// The reference names no committed message.
    #[error("no committed message has {0}")]
    NoSuchMessage(String),
    /// The caller's role does not permit this message.
    #[error(
        "organisation {org} (role {role}) may not read {kind} messages about client {client}; \
         see the permission table"
    )]
    Forbidden {
        /// Caller.
        org: String,
        /// Its role.
        role: String,
        /// The message kind.
        kind: &'static str,
        /// The message's client.
        client: String,
    },
    /// A query filter that cannot be applied.
    #[error("query: {0}")]
    BadFilter(String),
    /// A page size of zero or above the maximum.
    #[error("limit {0} is not within 1..={MAX_AUDIT_PAGE}")]
    BadLimit(u32),
    /// The payload was redacted.
    #[error("the payload of leaf {0} was redacted; its envelope and proofs remain")]
    Redacted(u64),
    /// The selection cannot be proven yet (no quorum checkpoint covers it).
    #[error("{0}")]
    Unprovable(String),
    /// The store failed or holds something unreadable.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A checkpoint or proof could not be put together (a bug or corrupt store).
    #[error("cannot build {what}: {reason}")]
    Build {
        /// What was being built.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl ReadError {
    /// The JSON-RPC error code: not found for things the node does not have, invalid input
    /// for contradictory requests, internal for failures of the node.
    pub fn code(&self) -> i32 {
        match self {
            Self::SizesReversed { .. }
            | Self::EmptyOldTree
            | Self::BadReference(_)
            | Self::BadLimit(_)
            | Self::BadFilter(_) => codes::INVALID_INPUT,
            Self::Forbidden { .. } => codes::FORBIDDEN,
            Self::Storage(_) | Self::Build { .. } => codes::INTERNAL,
            Self::NoBlock { .. }
            | Self::BeyondLog { .. }
            | Self::NoCheckpoint { .. }
            | Self::UnknownLeaf(_)
            | Self::LeafAfterSize { .. }
            | Self::NoSuchMessage(_)
            | Self::Unprovable(_)
            | Self::Redacted(_) => codes::NOT_FOUND,
        }
    }
}

fn build(what: &'static str) -> impl Fn(String) -> ReadError {
    move |reason| ReadError::Build { what, reason }
}

/// What a node needs besides its ledger to answer public reads.
#[derive(Debug)]
pub struct Reader<'a, B> {
    /// The ledger.
    pub ledger: &'a Ledger<B>,
    /// The log's C2SP origin (genesis `log_origin`).
    pub origin: &'a str,
    /// This validator's name, the key name of its cosignature lines.
    pub validator_name: &'a str,
    /// This validator's key.
    pub key: &'a SecretKey,
    /// Current time in seconds since the epoch, the timestamp of its cosignatures.
    pub now_s: u64,
}

impl<B: Backend> Reader<'_, B> {
    fn log(&self) -> Result<Root, ReadError> {
        Ok(self.ledger.log()?)
    }

    /// The committed block at `height`.
    pub fn block(&self, height: u64) -> Result<BlockInfo, ReadError> {
        let head = self.ledger.head()?.map_or(0, |h| h.height);
        let block = (height != 0)
            .then(|| self.ledger.block_leaves(height))
            .transpose()?
            .flatten()
            .ok_or(ReadError::NoBlock { height, head })?;
        Ok(BlockInfo {
            id: block.header.id(),
            first_leaf: block.first_leaf,
            header: block.header,
            leaf_hashes: block.leaf_hashes,
            commit_signatures: block.certificate.signatures.len(),
        })
    }

    /// The checkpoint for `tree_size` (the latest without it), within a log of `log`.
    fn checkpoint_at(
        &self,
        tree_size: Option<u64>,
        log: Root,
    ) -> Result<CheckpointInfo, ReadError> {
        let stored = match tree_size {
            Some(size) if size > log.tree_size => {
                return Err(ReadError::BeyondLog {
                    tree_size: size,
                    log_size: log.tree_size,
                });
            }
            Some(size) => self.ledger.checkpoint(size)?.map(|note| (size, note)),
            None => self.ledger.latest_checkpoint()?,
        };
        if let Some((size, note)) = stored {
            let note = Note::parse(&note).map_err(|e| build("stored checkpoint")(e.to_string()))?;
            let checkpoint = Checkpoint::from_note(&note)
                .map_err(|e| build("stored checkpoint")(e.to_string()))?;
            debug_assert_eq!(checkpoint.root().tree_size, size);
            return Ok(info(&note, &checkpoint, CheckpointSource::Stored));
        }
        if let Some(size) = tree_size.filter(|&s| s != log.tree_size) {
            return Err(ReadError::NoCheckpoint {
                tree_size: size,
                log_size: log.tree_size,
            });
        }
        // Cosigning asserts "the largest tree I have seen", which holds only for the head.
        let checkpoint =
            Checkpoint::new(self.origin, log).map_err(|e| build("checkpoint")(e.to_string()))?;
        let name = KeyName::new(self.validator_name)
            .map_err(|e| build("cosignature key name")(e.to_string()))?;
        let signer = CosignatureSigner::from_seed(name, &self.key.seed())
            .map_err(|e| build("cosigner")(e.to_string()))?;
        let line = signer
            .cosign(&checkpoint, self.now_s)
            .map_err(|e| build("cosignature")(e.to_string()))?;
        let note = Note::new(checkpoint.to_text(), vec![line])
            .map_err(|e| build("checkpoint note")(e.to_string()))?;
        Ok(info(&note, &checkpoint, CheckpointSource::SingleValidator))
    }

    /// The checkpoint for `tree_size`, or the latest.
    pub fn checkpoint(&self, tree_size: Option<u64>) -> Result<CheckpointInfo, ReadError> {
        self.checkpoint_at(tree_size, self.log()?)
    }

    /// The inclusion proof of `leaf_hash` against the checkpoint for `tree_size`; without
    /// it, against the latest quorum checkpoint, or the head's checkpoint when the leaf is
    /// newer than that.
    pub fn inclusion_proof(
        &self,
        leaf_hash: Sha256Hash,
        tree_size: Option<u64>,
    ) -> Result<InclusionProofInfo, ReadError> {
        let log = self.log()?;
        let index = self
            .ledger
            .leaf_index(&leaf_hash)?
            .filter(|&i| i < log.tree_size)
            .ok_or(ReadError::UnknownLeaf(leaf_hash))?;
        let mut checkpoint = self.checkpoint_at(tree_size, log)?;
        if tree_size.is_none() && index >= checkpoint.tree_size {
            // No quorum checkpoint holds this leaf yet: prove it against the head, whose
            // checkpoint says who vouches for it (stored, or this validator alone).
            checkpoint = self.checkpoint_at(Some(log.tree_size), log)?;
        }
        if index >= checkpoint.tree_size {
            return Err(ReadError::LeafAfterSize {
                leaf_hash,
                index,
                tree_size: checkpoint.tree_size,
            });
        }
        let proof = self.ledger.inclusion_proof(index, checkpoint.tree_size)?;
        let note = Note::parse(checkpoint.note.as_bytes())
            .map_err(|e| build("tlog-proof")(e.to_string()))?;
        let tlog_proof = TlogProof::new(index, proof.path.clone(), note)
            .map_err(|e| build("tlog-proof")(e.to_string()))?
            .encode();
        Ok(InclusionProofInfo {
            leaf_hash,
            leaf_index: index,
            tree_size: checkpoint.tree_size,
            root: checkpoint.root,
            path: proof.path,
            checkpoint,
            tlog_proof,
        })
    }

    /// The consistency proof from `old_size` to `new_size` (the current log without it).
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<ConsistencyProofInfo, ReadError> {
        let log = self.log()?;
        let new_size = new_size.unwrap_or(log.tree_size);
        // Contradictory requests first: they are wrong whatever the log holds.
        if old_size > new_size {
            return Err(ReadError::SizesReversed { old_size, new_size });
        }
        if old_size == 0 {
            return Err(ReadError::EmptyOldTree);
        }
        if new_size > log.tree_size {
            return Err(ReadError::BeyondLog {
                tree_size: new_size,
                log_size: log.tree_size,
            });
        }
        let proof = self.ledger.consistency_proof(old_size, new_size)?;
        Ok(ConsistencyProofInfo {
            old_size,
            old_root: self.ledger.root(old_size)?.hash,
            new_size,
            new_root: self.ledger.root(new_size)?.hash,
            path: proof.path,
        })
    }
}

impl<B: Backend> Reader<'_, B> {
    /// The leaf index `reference` names, within the current log.
    fn resolve(&self, reference: &MessageRef) -> Result<u64, ReadError> {
        let found = match reference {
            MessageRef {
                leaf_index: Some(index),
                leaf_hash: None,
                author: None,
                sequence: None,
            } => (
                Some(*index).filter(|&i| i < self.ledger.log().map_or(0, |l| l.tree_size)),
                format!("leaf index {index}"),
            ),
            MessageRef {
                leaf_index: None,
                leaf_hash: Some(hash),
                author: None,
                sequence: None,
            } => (self.ledger.leaf_index(hash)?, format!("leaf hash {hash}")),
            MessageRef {
                leaf_index: None,
                leaf_hash: None,
                author: Some(author),
                sequence: Some(sequence),
            } => (
                self.ledger.leaf_by_sequence(author, *sequence)?,
                format!("author {author} and sequence {sequence}"),
            ),
            MessageRef {
                author: Some(_),
                sequence: None,
                ..
            }
            | MessageRef {
                author: None,
                sequence: Some(_),
                ..
            } => return Err(ReadError::BadReference("author and sequence go together")),
            MessageRef {
                leaf_index: None,
                leaf_hash: None,
                ..
            } => return Err(ReadError::BadReference("none was given")),
            _ => return Err(ReadError::BadReference("more than one was given")),
        };
        found.0.ok_or(ReadError::NoSuchMessage(found.1))
    }

    /// The envelope `reference` names, if `caller` may read it.
    pub(crate) fn permitted(
        &self,
        caller: &Caller,
        reference: &MessageRef,
    ) -> Result<(u64, Envelope), ReadError> {
        let index = self.resolve(reference)?;
        let envelope = self
            .ledger
            .envelope(index)?
            .ok_or_else(|| ReadError::NoSuchMessage(format!("leaf index {index}")))?;
        let message = &envelope.body;
        if !may_read(caller, &message.kind, &message.client) {
            return Err(ReadError::Forbidden {
                org: caller.org.to_string(),
                role: serde_json::to_value(caller.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                kind: message.kind.name(),
                client: message.client.to_string(),
            });
        }
        Ok((index, envelope))
    }

    /// The message `reference` names, if `caller` may read it.
    pub fn message(
        &self,
        caller: &Caller,
        reference: &MessageRef,
    ) -> Result<MessageInfo, ReadError> {
        let (index, envelope) = self.permitted(caller, reference)?;
        let height = self
            .ledger
            .leaf_height(index)?
            .ok_or_else(|| ReadError::NoSuchMessage(format!("leaf index {index}")))?;
        let committed_at_ms =
            self.ledger
                .header(height)?
                .map(|h| h.time.0)
                .ok_or(ReadError::NoBlock {
                    height,
                    head: height,
                })?;
        Ok(message_info(index, envelope, height, committed_at_ms))
    }

    /// The payload of the message `reference` names, if `caller` may read it.
    pub fn payload(
        &self,
        caller: &Caller,
        reference: &MessageRef,
    ) -> Result<PayloadInfo, ReadError> {
        let (index, envelope) = self.permitted(caller, reference)?;
        let payload = self
            .ledger
            .payload(index)?
            .ok_or(ReadError::Redacted(index))?;
        let descriptor = &envelope.body.payload;
        descriptor
            .check(&payload)
            .map_err(|e| build("payload")(format!("stored payload of leaf {index}: {e}")))?;
        Ok(PayloadInfo {
            leaf_index: index,
            media_type: descriptor.media_type.to_string(),
            sha256: descriptor.sha256,
            payload: base64::engine::general_purpose::STANDARD.encode(payload),
        })
    }
}

impl<B: Backend> Reader<'_, B> {
    /// Checks a message subscription's filter before the subscription is accepted.
    pub fn check_subscription(
        &self,
        caller: &Caller,
        filter: &QueryFilter,
    ) -> Result<(), ReadError> {
        if filter.after.is_some() || filter.limit.is_some() {
            return Err(ReadError::BadFilter(
                "after and limit page custos_query results; a subscription delivers every new \
                 match, so leave them out"
                    .into(),
            ));
        }
        check_filter(caller, filter).map(|_| ())
    }

    /// The messages of the block at `height` that match `filter` and that `caller` may
    /// read, in log order: what a message subscription delivers for that block.
    pub fn block_matches(
        &self,
        caller: &Caller,
        filter: &QueryFilter,
        height: u64,
    ) -> Result<Vec<MessageInfo>, ReadError> {
        let (client, from, to) = check_filter(caller, filter)?;
        let Some(header) = self.ledger.header(height)? else {
            return Ok(Vec::new());
        };
        if header.time < from || header.time >= to {
            return Ok(Vec::new());
        }
        let first = match height {
            0 | 1 => 0,
            _ => self.ledger.header(height - 1)?.map_or(0, |h| h.log_size),
        };
        let mut found = Vec::new();
        for index in first..header.log_size {
            let Some(envelope) = self.ledger.envelope(index)? else {
                continue;
            };
            let message = &envelope.body;
            if message.client == client
                && matches(filter, message)
                && may_read(caller, &message.kind, &message.client)
            {
                found.push(message_info(index, envelope, height, header.time.0));
            }
        }
        Ok(found)
    }

    /// A page of `filter`'s matches that `caller` may read.
    pub fn query(&self, caller: &Caller, filter: &QueryFilter) -> Result<QueryPage, ReadError> {
        let limit = filter.limit.unwrap_or(MAX_QUERY_PAGE);
        if limit == 0 || limit > MAX_QUERY_PAGE {
            return Err(ReadError::BadFilter(format!(
                "limit {limit} is not within 1..={MAX_QUERY_PAGE}"
            )));
        }
        let (client, from, to) = check_filter(caller, filter)?;
        let mut messages = Vec::new();
        let mut cursor = filter.after;
        let mut scanned = 0;
        let mut more = true;
        'scan: while scanned < MAX_QUERY_SCAN {
            let chunk = (MAX_QUERY_SCAN - scanned).min(1_000);
            let indexes = self
                .ledger
                .client_leaves(&client, from, to, cursor, chunk)?;
            scanned += indexes.len();
            let exhausted = indexes.len() < chunk;
            for index in indexes {
                cursor = Some(index);
                let Some(envelope) = self.ledger.envelope(index)? else {
                    continue;
                };
                if !matches(filter, &envelope.body)
                    || !may_read(caller, &envelope.body.kind, &envelope.body.client)
                {
                    continue;
                }
                let reference = MessageRef {
                    leaf_index: Some(index),
                    ..MessageRef::default()
                };
                messages.push(self.message(caller, &reference)?);
                if messages.len() == limit as usize {
                    break 'scan;
                }
            }
            if exhausted {
                more = false;
                break;
            }
        }
        Ok(QueryPage {
            messages,
            next_after: if more { cursor } else { None },
        })
    }

    /// A page of the access-audit records `caller` may see.
    pub fn audit_log(
        &self,
        caller: &Caller,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<AuditLogPage, ReadError> {
        let limit = limit.unwrap_or(MAX_AUDIT_PAGE);
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(ReadError::BadLimit(limit));
        }
        let sees_all = matches!(caller.role, Role::ControlCenter | Role::Response);
        let from = after.map_or(0, |a| a.saturating_add(1));
        let audit_code = 6;
        let indexes = self.ledger.kind_leaves(audit_code, from, limit as usize)?;
        let mut records = Vec::new();
        for &index in &indexes {
            let envelope = self
                .ledger
                .envelope(index)?
                .ok_or_else(|| ReadError::NoSuchMessage(format!("leaf index {index}")))?;
            let Kind::AccessAudit(audit) = envelope.body.kind else {
                return Err(build("audit log")(format!(
                    "kind index lists leaf {index}, which is not an access-audit record"
                )));
            };
            if !sees_all && audit.reader != caller.org {
                continue;
            }
            let committed_at_ms = match self.ledger.leaf_height(index)? {
                Some(height) => self.ledger.header(height)?.map_or(0, |h| h.time.0),
                None => 0,
            };
            records.push(AuditRecord {
                leaf_index: index,
                validator: envelope.body.author,
                committed_at_ms,
                audit,
            });
        }
        let next_after = (indexes.len() == limit as usize)
            .then(|| indexes.last().copied())
            .flatten();
        Ok(AuditLogPage {
            records,
            next_after,
        })
    }
}

/// The kinds a filter may name.
const KINDS: [&str; 10] = Kind::NAMES;

/// Checks what a query or subscription filter names, and returns its client and committed
/// time range.
fn check_filter(
    caller: &Caller,
    filter: &QueryFilter,
) -> Result<(OrgId, UnixMillis, UnixMillis), ReadError> {
    if let Some(kind) = &filter.kind
        && !KINDS.contains(&kind.as_str())
    {
        return Err(ReadError::BadFilter(format!(
            "unknown kind {kind:?}; one of {}",
            KINDS.join(", ")
        )));
    }
    let client = OrgId::new(filter.client.as_str())
        .map_err(|e| ReadError::BadFilter(format!("client: {e}")))?;
    if caller.role == Role::Client && client != caller.org {
        return Err(ReadError::Forbidden {
            org: caller.org.to_string(),
            role: "client".into(),
            kind: "any",
            client: client.to_string(),
        });
    }
    let from = UnixMillis(filter.committed_from_ms.unwrap_or(0));
    let to = UnixMillis(filter.committed_to_ms.unwrap_or(u64::MAX));
    if from > to {
        return Err(ReadError::BadFilter(format!(
            "committed_from_ms {} is after committed_to_ms {}",
            from.0, to.0
        )));
    }
    Ok((client, from, to))
}

/// Whether `message` passes the filters other than client and committed time (which the
/// index scan applies).
fn matches(filter: &QueryFilter, message: &Message) -> bool {
    let occurred = message.occurred_at.map(|t| t.0);
    if filter.occurred_from_ms.is_some() || filter.occurred_to_ms.is_some() {
        let Some(t) = occurred else { return false };
        if filter.occurred_from_ms.is_some_and(|from| t < from)
            || filter.occurred_to_ms.is_some_and(|to| t >= to)
        {
            return false;
        }
    }
    let incident = match &message.kind {
        Kind::Incident(event) => Some(event.incident_id.as_str()),
        Kind::Insurance(InsuranceEvent::ClaimFiled { incident_id, .. }) => {
            Some(incident_id.as_str())
        }
        _ => None,
    };
    filter
        .kind
        .as_ref()
        .is_none_or(|k| k == message.kind.name())
        && filter.collector.is_none_or(|c| c == message.author)
        && filter
            .min_severity
            .is_none_or(|min| message.severity.as_ref().is_some_and(|s| s.level >= min))
        && filter
            .rule_id
            .as_ref()
            .is_none_or(|r| message.rule_id.as_ref().is_some_and(|m| m.as_str() == r))
        && filter
            .host
            .as_ref()
            .is_none_or(|h| message.host.as_ref().is_some_and(|m| m.as_str() == h))
        && filter
            .incident_id
            .as_ref()
            .is_none_or(|i| incident == Some(i.as_str()))
}

/// What the API says about the committed envelope at `index`.
fn message_info(index: u64, envelope: Envelope, height: u64, committed_at_ms: u64) -> MessageInfo {
    MessageInfo {
        leaf_index: index,
        leaf_hash: envelope.leaf_hash(),
        height,
        committed_at_ms,
        envelope: base64::engine::general_purpose::STANDARD.encode(envelope.leaf_bytes()),
        message: envelope.body,
    }
}

fn info(note: &Note, checkpoint: &Checkpoint, source: CheckpointSource) -> CheckpointInfo {
    let root = checkpoint.root();
    CheckpointInfo {
        tree_size: root.tree_size,
        root: root.hash,
        note: note.encode(),
        source,
        signers: note
            .signatures()
            .iter()
            .map(|s| s.name().as_str().to_owned())
            .collect(),
    }
}
