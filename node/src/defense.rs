//! The joint-defense reads (ARCHITECTURE §7): incidents and their deadlines, the risk
//! value, and early warnings as STIX bundles. The rules are the `ledger` crate's pure
//! functions ([`custos_ledger::incident`], [`custos_ledger::risk`]); this module gathers
//! their inputs from the ledger's indexes, within bounds, and applies read permissions.

use std::collections::BTreeMap;

use custos_ledger::crypto::KeyId;
use custos_ledger::incident::{
    DutyState, IncidentRecord, IncidentView, MAX_INCIDENT_RECORDS, PolicyTable, evaluate,
};
use custos_ledger::message::{Kind, OrgId, Role, UnixMillis};
use custos_ledger::risk::{CommittedMessage, RiskAssessment, RiskInputs, RiskWeights, assess};
use custos_ledger::storage::{Backend, IncidentEntry};
use custos_rpc::token::{Caller, may_read};
use custos_rpc::{
    Deadline, DeadlineList, DeadlineQuery, IncidentKey, IncidentPage, IncidentQuery,
    MAX_INCIDENT_PAGE, MessageRef, WarningExport,
};

use crate::reads::{ReadError, Reader};

/// Incident index entries one call examines. Each incident has a handful of records, so
/// this covers tens of thousands of incidents; beyond it the caller must narrow by client.
pub const MAX_INCIDENT_SCAN: usize = 100_000;

/// Messages of one client one risk computation reads. The value must be computed from
/// the whole window, so a window holding more is refused rather than cut: a cut would
/// make the value depend on where the cut fell.
pub const MAX_RISK_MESSAGES: usize = 500_000;

/// Early warnings or posture declarations one call examines through the kind index.
pub const MAX_KIND_SCAN: usize = 100_000;

/// The default horizon of "due soon": one day.
pub const DEFAULT_DUE_WITHIN_MS: u64 = 24 * 60 * 60 * 1000;

/// Index entries read per storage scan.
const SCAN_CHUNK: usize = 4_096;

pub(crate) fn forbidden(caller: &Caller, kind: &'static str, client: &str) -> ReadError {
    ReadError::Forbidden {
        org: caller.org.to_string(),
        role: serde_json::to_value(caller.role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        kind,
        client: client.to_owned(),
    }
}

fn org_id(what: &str, value: &str) -> Result<OrgId, ReadError> {
    OrgId::new(value).map_err(|e| ReadError::BadFilter(format!("{what}: {e}")))
}

/// An incident record kind, for permission checks.
fn incident_kind() -> Kind {
    Kind::Incident(custos_ledger::message::IncidentEvent {
        incident_id: custos_ledger::codec::Text::new("").expect("empty id fits"),
        action: custos_ledger::message::IncidentAction::Closed,
        note: custos_ledger::codec::Text::new("").expect("empty note fits"),
    })
}

/// The client a caller's incident read is about: a client organisation may only name
/// itself (and is limited to itself when it names none).
pub(crate) fn incident_scope(
    caller: &Caller,
    client: Option<&str>,
) -> Result<Option<OrgId>, ReadError> {
    let client = client.map(|c| org_id("client", c)).transpose()?;
    match (caller.role, client) {
        (Role::Client, None) => Ok(Some(caller.org.clone())),
        (_, Some(client)) if !may_read(caller, &incident_kind(), &client) => {
            Err(forbidden(caller, "incident", client.as_str()))
        }
        (_, client) => Ok(client),
    }
}

impl<B: Backend> Reader<'_, B> {
    /// The latest committed block's time (0 before the first block).
    pub fn head_time(&self) -> Result<UnixMillis, ReadError> {
        Ok(self.ledger.head()?.map_or(UnixMillis(0), |h| h.time))
    }

    /// Every incident of `client` (of every client without one), evaluated at `as_of`,
    /// ordered by client and incident id, starting after `after`.
    fn incident_views(
        &self,
        client: Option<&OrgId>,
        after: Option<&IncidentKey>,
        as_of: UnixMillis,
        mut keep: impl FnMut(&IncidentView) -> bool,
        limit: usize,
    ) -> Result<(Vec<IncidentView>, bool), ReadError> {
        let mut cursor = match after {
            Some(key) => Some(IncidentEntry {
                client: org_id("after.client", &key.client)?,
                incident_id: key.incident_id.clone(),
                // Past every record of that incident.
                leaf_index: u64::MAX,
                committed_at: UnixMillis(0),
            }),
            None => None,
        };
        let mut groups: BTreeMap<(String, String), Vec<IncidentEntry>> = BTreeMap::new();
        let mut scanned = 0;
        let mut complete = true;
        loop {
            let chunk = self
                .ledger
                .incident_entries(client, cursor.as_ref(), SCAN_CHUNK)?;
            scanned += chunk.len();
            let exhausted = chunk.len() < SCAN_CHUNK;
            cursor = chunk.last().cloned();
            for entry in chunk {
                groups
                    .entry((entry.client.to_string(), entry.incident_id.clone()))
                    .or_default()
                    .push(entry);
            }
            if exhausted {
                break;
            }
            if scanned >= MAX_INCIDENT_SCAN {
                complete = false;
                break;
            }
        }
        if !complete {
            // The last group may be cut; it is left for the next page.
            if let Some(last) = groups.keys().next_back().cloned() {
                groups.remove(&last);
            }
        }
        let table = PolicyTable::standard();
        let mut views = Vec::new();
        let mut more = !complete;
        for ((client, incident_id), entries) in groups {
            let mut records = Vec::with_capacity(entries.len().min(MAX_INCIDENT_RECORDS));
            for entry in entries.iter().take(MAX_INCIDENT_RECORDS + 1) {
                let envelope = self.ledger.envelope(entry.leaf_index)?.ok_or_else(|| {
                    ReadError::NoSuchMessage(format!("leaf index {}", entry.leaf_index))
                })?;
                let Kind::Incident(event) = envelope.body.kind else {
                    return Err(ReadError::Build {
                        what: "incident",
                        reason: format!(
                            "the incident index lists leaf {}, which is not an incident record",
                            entry.leaf_index
                        ),
                    });
                };
                records.push(IncidentRecord {
                    leaf_index: entry.leaf_index,
                    committed_at: entry.committed_at,
                    action: event.action,
                });
            }
            let view = evaluate(&client, &incident_id, &records, &table, as_of);
            if !keep(&view) {
                continue;
            }
            if views.len() == limit {
                more = true;
                break;
            }
            views.push(view);
        }
        Ok((views, more))
    }

    /// A page of incidents matching `query` that `caller` may read.
    pub fn incidents(
        &self,
        caller: &Caller,
        query: &IncidentQuery,
    ) -> Result<IncidentPage, ReadError> {
        let limit = query.limit.unwrap_or(MAX_INCIDENT_PAGE);
        if limit == 0 || limit > MAX_INCIDENT_PAGE {
            return Err(ReadError::BadFilter(format!(
                "limit {limit} is not within 1..={MAX_INCIDENT_PAGE}"
            )));
        }
        let client = incident_scope(caller, query.client.as_deref())?;
        let as_of = match query.as_of_ms {
            Some(ms) => UnixMillis(ms),
            None => self.head_time()?,
        };
        let incident = incident_kind();
        let (incidents, more) = self.incident_views(
            client.as_ref(),
            query.after.as_ref(),
            as_of,
            |view| {
                OrgId::new(view.client.as_str()).is_ok_and(|c| may_read(caller, &incident, &c))
                    && query.status.is_none_or(|s| s == view.status)
                    && query.overdue.is_none_or(|o| o == view.overdue)
            },
            limit as usize,
        )?;
        let next_after = more
            .then(|| incidents.last())
            .flatten()
            .map(|v| IncidentKey {
                client: v.client.clone(),
                incident_id: v.incident_id.clone(),
            });
        Ok(IncidentPage {
            as_of_ms: as_of.0,
            incidents,
            next_after,
        })
    }

    /// One incident.
    pub fn incident(
        &self,
        caller: &Caller,
        client: &str,
        incident_id: &str,
        as_of_ms: Option<u64>,
    ) -> Result<IncidentView, ReadError> {
        let client = incident_scope(caller, Some(client))?.expect("a named client");
        let as_of = match as_of_ms {
            Some(ms) => UnixMillis(ms),
            None => self.head_time()?,
        };
        let entries =
            self.ledger
                .incident_records(&client, incident_id, MAX_INCIDENT_RECORDS + 1)?;
        if entries.is_empty() {
            return Err(ReadError::NoSuchMessage(format!(
                "incident record of client {client} with incident id {incident_id:?}"
            )));
        }
        let mut records = Vec::with_capacity(entries.len());
        for entry in &entries {
            let envelope = self.ledger.envelope(entry.leaf_index)?.ok_or_else(|| {
                ReadError::NoSuchMessage(format!("leaf index {}", entry.leaf_index))
            })?;
            if let Kind::Incident(event) = envelope.body.kind {
                records.push(IncidentRecord {
                    leaf_index: entry.leaf_index,
                    committed_at: entry.committed_at,
                    action: event.action,
                });
            }
        }
        Ok(evaluate(
            client.as_str(),
            incident_id,
            &records,
            &PolicyTable::standard(),
            as_of,
        ))
    }

    /// Duties overdue or due within the horizon, earliest first.
    pub fn deadlines(
        &self,
        caller: &Caller,
        query: &DeadlineQuery,
    ) -> Result<DeadlineList, ReadError> {
        let client = incident_scope(caller, query.client.as_deref())?;
        let within_ms = query.within_ms.unwrap_or(DEFAULT_DUE_WITHIN_MS);
        let as_of = match query.as_of_ms {
            Some(ms) => UnixMillis(ms),
            None => self.head_time()?,
        };
        let incident = incident_kind();
        let (views, more) = self.incident_views(
            client.as_ref(),
            None,
            as_of,
            |view| OrgId::new(view.client.as_str()).is_ok_and(|c| may_read(caller, &incident, &c)),
            usize::MAX,
        )?;
        if more {
            return Err(ReadError::BadFilter(format!(
                "more than {MAX_INCIDENT_SCAN} incident records; name a client"
            )));
        }
        Ok(DeadlineList {
            as_of_ms: as_of.0,
            within_ms,
            deadlines: due(&views, as_of, within_ms),
        })
    }

    /// The risk of `client` over `[from_ms, to_ms)`.
    pub fn risk(
        &self,
        caller: &Caller,
        client: &str,
        from_ms: u64,
        to_ms: Option<u64>,
        weights: &RiskWeights,
    ) -> Result<RiskAssessment, ReadError> {
        let client = incident_scope(caller, Some(client))?.expect("a named client");
        let head_end = self.head_time()?.saturating_add_ms(1);
        let to = match to_ms {
            Some(ms) if ms > head_end.0 => {
                return Err(ReadError::BadFilter(format!(
                    "to_ms {ms} is after the latest committed block (time {}): the value would \
                     change as blocks commit; pass to_ms at most {} or leave it out",
                    head_end.0 - 1,
                    head_end.0
                )));
            }
            Some(ms) => UnixMillis(ms),
            None => head_end,
        };
        let from = UnixMillis(from_ms);
        if from >= to {
            return Err(ReadError::BadFilter(format!(
                "from_ms {from_ms} must be before to_ms {}",
                to.0
            )));
        }
        let mut inputs = RiskInputs {
            client: client.to_string(),
            from,
            to,
            ..RiskInputs::default()
        };
        let mut cursor = None;
        loop {
            let chunk = self
                .ledger
                .client_leaves_timed(&client, from, to, cursor, SCAN_CHUNK)?;
            for &(leaf_index, committed_at) in &chunk {
                let Some(envelope) = self.ledger.envelope(leaf_index)? else {
                    continue;
                };
                if matches!(
                    envelope.body.kind,
                    Kind::Evidence { .. } | Kind::Heartbeat { .. }
                ) {
                    inputs.messages.push(CommittedMessage {
                        leaf_index,
                        committed_at,
                        message: envelope.body,
                    });
                }
            }
            if inputs.messages.len() > MAX_RISK_MESSAGES {
                return Err(ReadError::BadFilter(format!(
                    "the window holds more than {MAX_RISK_MESSAGES} messages of {client}; \
                     ask for a shorter one"
                )));
            }
            if chunk.len() < SCAN_CHUNK {
                break;
            }
            cursor = chunk.last().map(|&(leaf, time)| (time, leaf));
        }
        let (first, end) = (
            self.ledger.first_leaf_at(from)?,
            self.ledger.first_leaf_at(to)?,
        );
        inputs.warnings = self.kind_messages(Kind::EARLY_WARNING_CODE, first, end)?;
        inputs.posture = self.latest_posture(&client, end)?;
        let last_ms = UnixMillis(to.0 - 1);
        let (incidents, more) =
            self.incident_views(Some(&client), None, last_ms, |_| true, usize::MAX)?;
        if more {
            return Err(ReadError::BadFilter(format!(
                "{client} has more than {MAX_INCIDENT_SCAN} incident records"
            )));
        }
        inputs.incidents = incidents;
        assess(&inputs, weights).map_err(|e| ReadError::BadFilter(e.to_string()))
    }

    /// The latest posture declaration about `client` before leaf `end`, looking back over
    /// at most [`MAX_KIND_SCAN`] declarations (of all clients).
    fn latest_posture(
        &self,
        client: &OrgId,
        end: u64,
    ) -> Result<Option<CommittedMessage>, ReadError> {
        let mut before = end;
        for _ in 0..MAX_KIND_SCAN {
            let Some(leaf_index) = self.ledger.kind_leaf_before(Kind::POSTURE_CODE, before)? else {
                return Ok(None);
            };
            let envelope = self
                .ledger
                .envelope(leaf_index)?
                .ok_or_else(|| ReadError::NoSuchMessage(format!("leaf index {leaf_index}")))?;
            if envelope.body.client == *client {
                let committed_at = self.ledger.leaf_time(leaf_index)?.ok_or_else(|| {
                    ReadError::NoSuchMessage(format!("block of leaf index {leaf_index}"))
                })?;
                return Ok(Some(CommittedMessage {
                    leaf_index,
                    committed_at,
                    message: envelope.body,
                }));
            }
            before = leaf_index;
        }
        Err(ReadError::BadFilter(format!(
            "no posture declaration of {client} among the latest {MAX_KIND_SCAN} declarations \
             before the window's end"
        )))
    }

    /// Messages of kind `code` at leaves `first..end`, with their committed times.
    fn kind_messages(
        &self,
        code: u8,
        first: u64,
        end: u64,
    ) -> Result<Vec<CommittedMessage>, ReadError> {
        let mut found = Vec::new();
        let mut from = first;
        while from < end {
            let leaves = self.ledger.kind_leaves(code, from, SCAN_CHUNK)?;
            for &leaf_index in leaves.iter().filter(|&&l| l < end) {
                let envelope = self
                    .ledger
                    .envelope(leaf_index)?
                    .ok_or_else(|| ReadError::NoSuchMessage(format!("leaf index {leaf_index}")))?;
                let committed_at = self.ledger.leaf_time(leaf_index)?.ok_or_else(|| {
                    ReadError::NoSuchMessage(format!("block of leaf index {leaf_index}"))
                })?;
                found.push(CommittedMessage {
                    leaf_index,
                    committed_at,
                    message: envelope.body,
                });
            }
            if found.len() > MAX_KIND_SCAN {
                return Err(ReadError::BadFilter(format!(
                    "more than {MAX_KIND_SCAN} messages of kind {} in range; narrow the window",
                    Kind::NAMES[usize::from(code)]
                )));
            }
            match leaves.last() {
                Some(&last) if leaves.len() == SCAN_CHUNK && last + 1 < end => from = last + 1,
                _ => break,
            }
        }
        Ok(found)
    }

    /// The early warning `reference` names, as a STIX bundle.
    pub fn warning(
        &self,
        caller: &Caller,
        reference: &MessageRef,
        publisher: &dyn Fn(&KeyId) -> String,
    ) -> Result<WarningExport, ReadError> {
        let info = self.message(caller, reference)?;
        if !matches!(info.message.kind, Kind::EarlyWarning) {
            return Err(ReadError::BadReference(
                "it names a message that is not an early warning",
            ));
        }
        self.export(info.leaf_index, info.committed_at_ms, publisher)
    }

    fn export(
        &self,
        leaf_index: u64,
        committed_at_ms: u64,
        publisher: &dyn Fn(&KeyId) -> String,
    ) -> Result<WarningExport, ReadError> {
        let envelope = self
            .ledger
            .envelope(leaf_index)?
            .ok_or_else(|| ReadError::NoSuchMessage(format!("leaf index {leaf_index}")))?;
        let payload = self
            .ledger
            .payload(leaf_index)?
            .ok_or(ReadError::Redacted(leaf_index))?;
        let leaf_hash = envelope.leaf_hash();
        let message = envelope.body;
        let org = publisher(&message.author);
        let (verbatim, bundle) = crate::stix::export(
            &message,
            &payload,
            &leaf_hash,
            UnixMillis(committed_at_ms),
            &org,
        );
        Ok(WarningExport {
            leaf_index,
            leaf_hash,
            committed_at_ms,
            publisher: org,
            client: message.client.to_string(),
            sha256: message.payload.sha256,
            verbatim,
            bundle,
        })
    }

    /// The early warnings of the block at `height` that `caller` may read, exported.
    pub fn block_warnings(
        &self,
        caller: &Caller,
        height: u64,
        publisher: &dyn Fn(&KeyId) -> String,
    ) -> Result<Vec<WarningExport>, ReadError> {
        let Some(header) = self.ledger.header(height)? else {
            return Ok(Vec::new());
        };
        let first = match height {
            0 | 1 => 0,
            _ => self.ledger.header(height - 1)?.map_or(0, |h| h.log_size),
        };
        let mut found = Vec::new();
        for index in self
            .ledger
            .kind_leaves(Kind::EARLY_WARNING_CODE, first, SCAN_CHUNK)?
        {
            if index >= header.log_size {
                break;
            }
            let Some(envelope) = self.ledger.envelope(index)? else {
                continue;
            };
            if may_read(caller, &envelope.body.kind, &envelope.body.client) {
                found.push(self.export(index, header.time.0, publisher)?);
            }
        }
        Ok(found)
    }
}

/// The duties of `views` overdue at `as_of` or pending and due within `within_ms`,
/// earliest deadline first.
pub fn due(views: &[IncidentView], as_of: UnixMillis, within_ms: u64) -> Vec<Deadline> {
    let horizon = as_of.0.saturating_add(within_ms);
    let mut deadlines: Vec<Deadline> = views
        .iter()
        .flat_map(|view| {
            view.obligations
                .iter()
                .filter(move |o| {
                    o.state == DutyState::Overdue
                        || (o.state == DutyState::Pending && o.due_at_ms <= horizon)
                })
                .map(move |o| Deadline {
                    client: view.client.clone(),
                    incident_id: view.incident_id.clone(),
                    duty: o.duty,
                    level: o.level,
                    opened_by_leaf: o.opened_by_leaf,
                    due_at_ms: o.due_at_ms,
                    state: o.state,
                    remaining_ms: i64::try_from(o.due_at_ms)
                        .unwrap_or(i64::MAX)
                        .saturating_sub(i64::try_from(as_of.0).unwrap_or(i64::MAX)),
                })
        })
        .collect();
    deadlines.sort_by(|a, b| {
        (
            a.due_at_ms,
            &a.client,
            &a.incident_id,
            a.opened_by_leaf,
            a.duty,
        )
            .cmp(&(
                b.due_at_ms,
                &b.client,
                &b.incident_id,
                b.opened_by_leaf,
                b.duty,
            ))
    });
    deadlines
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use custos_ledger::block::{
        Block, BlockBody, BlockHeader, CommitCertificate, CommittedBlock, Entry,
    };
    use custos_ledger::codec::{Bytes, List, Text};
    use custos_ledger::crypto::{SecretKey, Signed};
    use custos_ledger::hash::{Blake3Hash, Sha256Hash};
    use custos_ledger::incident::{Duty, IncidentStatus};
    use custos_ledger::message::{
        IncidentAction, IncidentEvent, IncidentLevel, Message, PayloadDescriptor, SourceFormat,
    };
    use custos_ledger::storage::{Ledger, MemoryBackend};

    const T0: u64 = 1_709_251_200_000;
    const HOUR_MS: u64 = 3_600_000;

    fn record(
        key: &SecretKey,
        sequence: u64,
        client: &str,
        id: &str,
        action: IncidentAction,
    ) -> Entry {
        let message = Message {
            network: Text::new("n").unwrap(),
            author: key.public().key_id(),
            client: Text::new(client).unwrap(),
            sequence,
            prev: Sha256Hash::ZERO,
            kind: Kind::Incident(IncidentEvent {
                incident_id: Text::new(id).unwrap(),
                action,
                note: Text::new("").unwrap(),
            }),
            format: SourceFormat::Custos,
            occurred_at: None,
            observed_at: UnixMillis(T0),
            severity: None,
            rule_id: None,
            host: None,
            attack_ids: List::empty(),
            references: List::empty(),
            parse_error: None,
            payload: PayloadDescriptor::of(Text::new("text/plain").unwrap(), b""),
        };
        Entry {
            envelope: Signed::sign(message, key),
            payload: Bytes::new(Vec::new()).unwrap(),
        }
    }

    /// Applies a block of `entries` at `time_ms` (storage checks no signatures).
    pub(crate) fn apply(ledger: &Ledger<MemoryBackend>, entries: Vec<Entry>, time_ms: u64) {
        let head = ledger.head().unwrap();
        let old_size = head.as_ref().map_or(0, |h| h.log.tree_size);
        let hashes: Vec<Sha256Hash> = entries.iter().map(|e| e.envelope.leaf_hash()).collect();
        let log = custos_ledger::merkle::append(&ledger.nodes().unwrap(), old_size, &hashes)
            .unwrap()
            .root;
        let body = BlockBody {
            entries: List::new(entries).unwrap(),
        };
        let header = BlockHeader {
            network: Text::new("n").unwrap(),
            height: head.as_ref().map_or(1, |h| h.height + 1),
            round: 0,
            proposer: SecretKey::from_seed(&[1; 32]).public().key_id(),
            time: UnixMillis(time_ms),
            parent: head.as_ref().map_or(Blake3Hash::ZERO, |h| h.block_id),
            body_hash: body.hash(),
            log_size: log.tree_size,
            log_root: log.hash,
        };
        let certificate = CommitCertificate {
            height: header.height,
            round: 0,
            block: header.id(),
            signatures: List::empty(),
        };
        ledger
            .apply_block(&CommittedBlock {
                block: Block { header, body },
                certificate,
            })
            .unwrap();
    }

    fn caller(org: &str, role: Role) -> Caller {
        Caller {
            org: Text::new(org).unwrap(),
            role,
            key_id: SecretKey::from_seed(&[2; 32]).public().key_id(),
            expires_at: UnixMillis(u64::MAX),
        }
    }

    /// Three clients' incidents: `bank` INC-1 open and overdue on its report, INC-2
    /// contained; `mint` INC-1 open with its report in time; `zeta` INC-9 closed.
    fn ledger() -> Ledger<MemoryBackend> {
        let ledger = Ledger::open(MemoryBackend::new()).unwrap();
        let key = SecretKey::from_seed(&[3; 32]);
        let detected = |level| IncidentAction::Detected {
            level: IncidentLevel::new(level).unwrap(),
            aware_at: UnixMillis(T0),
        };
        apply(
            &ledger,
            vec![
                record(&key, 1, "bank", "INC-1", detected(2)),
                record(&key, 2, "bank", "INC-2", detected(1)),
                record(&key, 3, "mint", "INC-1", detected(4)),
                record(&key, 4, "zeta", "INC-9", detected(1)),
            ],
            T0,
        );
        apply(
            &ledger,
            vec![
                record(&key, 5, "bank", "INC-2", IncidentAction::Reported),
                record(&key, 6, "bank", "INC-2", IncidentAction::Contained),
                record(&key, 7, "mint", "INC-1", IncidentAction::Reported),
                record(&key, 8, "zeta", "INC-9", IncidentAction::Reported),
                record(&key, 9, "zeta", "INC-9", IncidentAction::Closed),
            ],
            T0 + HOUR_MS / 2,
        );
        // A later empty block sets the chain's "now".
        apply(&ledger, Vec::new(), T0 + 2 * HOUR_MS);
        ledger
    }

    fn reader<'a>(
        ledger: &'a Ledger<MemoryBackend>,
        key: &'a SecretKey,
    ) -> Reader<'a, MemoryBackend> {
        Reader {
            ledger,
            origin: "o",
            validator_name: "v",
            key,
            now_s: 0,
        }
    }

    fn ids(page: &IncidentPage) -> Vec<(String, String)> {
        page.incidents
            .iter()
            .map(|v| (v.client.clone(), v.incident_id.clone()))
            .collect()
    }

    #[test]
    fn incidents_are_filtered_scoped_and_paged() {
        let key = SecretKey::from_seed(&[4; 32]);
        let ledger = ledger();
        let r = reader(&ledger, &key);
        let cert = caller("f-cert", Role::Response);
        let all = r.incidents(&cert, &IncidentQuery::default()).unwrap();
        assert_eq!(
            all.as_of_ms,
            T0 + 2 * HOUR_MS,
            "evaluated at the head's time"
        );
        let pair = |c: &str, i: &str| (c.to_owned(), i.to_owned());
        assert_eq!(
            ids(&all),
            [
                pair("bank", "INC-1"),
                pair("bank", "INC-2"),
                pair("mint", "INC-1"),
                pair("zeta", "INC-9")
            ]
        );
        assert!(all.next_after.is_none());
        assert!(all.incidents[0].overdue);

        let overdue = IncidentQuery {
            overdue: Some(true),
            ..IncidentQuery::default()
        };
        assert_eq!(
            ids(&r.incidents(&cert, &overdue).unwrap()),
            [pair("bank", "INC-1")]
        );
        let closed = IncidentQuery {
            status: Some(IncidentStatus::Closed),
            ..IncidentQuery::default()
        };
        assert_eq!(
            ids(&r.incidents(&cert, &closed).unwrap()),
            [pair("zeta", "INC-9")]
        );
        // Earlier, nothing was overdue yet.
        let earlier = IncidentQuery {
            overdue: Some(true),
            as_of_ms: Some(T0 + HOUR_MS),
            ..IncidentQuery::default()
        };
        assert!(r.incidents(&cert, &earlier).unwrap().incidents.is_empty());

        // Pages of one walk the same incidents.
        let mut query = IncidentQuery {
            limit: Some(1),
            ..IncidentQuery::default()
        };
        let mut walked = Vec::new();
        loop {
            let page = r.incidents(&cert, &query).unwrap();
            walked.extend(ids(&page));
            match page.next_after {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        assert_eq!(walked, ids(&all));
        assert!(matches!(
            r.incidents(
                &cert,
                &IncidentQuery {
                    limit: Some(0),
                    ..IncidentQuery::default()
                }
            ),
            Err(ReadError::BadFilter(_))
        ));

        // A client sees only itself, and may not name another.
        let bank = caller("bank", Role::Client);
        assert_eq!(
            ids(&r.incidents(&bank, &IncidentQuery::default()).unwrap()),
            [pair("bank", "INC-1"), pair("bank", "INC-2")]
        );
        let other = IncidentQuery {
            client: Some("mint".into()),
            ..IncidentQuery::default()
        };
        assert!(matches!(
            r.incidents(&bank, &other),
            Err(ReadError::Forbidden { .. })
        ));
        assert!(matches!(
            r.incident(&bank, "mint", "INC-1", None),
            Err(ReadError::Forbidden { .. })
        ));
        assert!(matches!(
            r.incident(&cert, "bank", "INC-404", None),
            Err(ReadError::NoSuchMessage(_))
        ));
        let one = r.incident(&cert, "mint", "INC-1", None).unwrap();
        assert_eq!(one.level, Some(4));
    }

    #[test]
    fn deadlines_list_overdue_and_soon_due_duties_earliest_first() {
        let key = SecretKey::from_seed(&[4; 32]);
        let ledger = ledger();
        let r = reader(&ledger, &key);
        let cert = caller("f-cert", Role::Response);
        let list = r
            .deadlines(
                &cert,
                &DeadlineQuery {
                    client: None,
                    within_ms: Some(40 * HOUR_MS),
                    as_of_ms: None,
                },
            )
            .unwrap();
        let got: Vec<(&str, &str, Duty, DutyState, i64)> = list
            .deadlines
            .iter()
            .map(|d| {
                (
                    d.client.as_str(),
                    d.incident_id.as_str(),
                    d.duty,
                    d.state,
                    d.remaining_ms,
                )
            })
            .collect();
        let h = |n: i64| n * HOUR_MS as i64;
        assert_eq!(
            got,
            [
                ("bank", "INC-1", Duty::Report, DutyState::Overdue, h(-1)),
                (
                    "mint",
                    "INC-1",
                    Duty::Containment,
                    DutyState::Pending,
                    h(34)
                ),
            ]
        );
        // With a shorter horizon the containment is not yet due; closed incidents keep
        // their undone duties (zeta's containment) only once they are within the horizon.
        let short = r
            .deadlines(
                &cert,
                &DeadlineQuery {
                    client: None,
                    within_ms: Some(HOUR_MS),
                    as_of_ms: None,
                },
            )
            .unwrap();
        assert_eq!(short.deadlines.len(), 1);
        let zeta = r
            .deadlines(
                &cert,
                &DeadlineQuery {
                    client: Some("zeta".into()),
                    within_ms: Some(72 * HOUR_MS),
                    as_of_ms: None,
                },
            )
            .unwrap();
        assert_eq!(zeta.deadlines[0].duty, Duty::Containment);
    }
}
