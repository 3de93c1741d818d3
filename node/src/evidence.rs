//! Evidence bundles at the node (ARCHITECTURE §7): `custos_exportEvidence` selects the
//! messages and hands them to [`custos_ledger::bundle::build`]; `custos export` and
//! `custos verify` are the command-line ends.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use custos_ledger::bundle::{self, BuildError, BuildRequest, Bundle, Report, Scope, VerifyOptions};
use custos_ledger::claim::{self, ClaimVerdict};
use custos_ledger::genesis::Genesis;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::incident::{PolicyTable, rfc3339_utc};
use custos_ledger::message::{IncidentAction, InsuranceEvent, Kind, OrgId, UnixMillis};
use custos_ledger::storage::Backend;
use custos_rpc::token::{Caller, may_read};
use custos_rpc::{ExportRequest, MAX_EXPORT_MESSAGES, MessageRef};

use crate::defense::{forbidden, incident_scope};

/// Most insurance records scanned for an incident's claims and policies: insurance
/// records are few (policies, claims, decisions), so a log with more is cut here rather
/// than scanned without bound.
const MAX_INSURANCE_SCAN: usize = 100_000;
use crate::reads::{ReadError, Reader};

impl<B: Backend> Reader<'_, B> {
    /// The bundle `request` selects, limited to what `caller` may read: by incident (its
    /// records and the client's messages from its first record to its closure or the
    /// latest block), by client and committed-time range, or by leaf hashes (each must be
    /// readable).
    pub fn export_evidence(
        &self,
        caller: &Caller,
        request: &ExportRequest,
        genesis: &Genesis,
        now_ms: u64,
    ) -> Result<Bundle, ReadError> {
        let readable = |kind: &Kind, client: &OrgId| may_read(caller, kind, client);
        self.export_selected(caller, request, genesis, now_ms, &readable)
    }

    /// [`Self::export_evidence`] with the messages `readable` admits.
    fn export_selected(
        &self,
        caller: &Caller,
        request: &ExportRequest,
        genesis: &Genesis,
        now_ms: u64,
        readable: &dyn Fn(&Kind, &OrgId) -> bool,
    ) -> Result<Bundle, ReadError> {
        let (scope, leaves) = self.select(caller, request, readable)?;
        if leaves.is_empty() {
            return Err(ReadError::NoSuchMessage(
                "a message the caller may read in the selection".into(),
            ));
        }
        let build_request = BuildRequest {
            scope,
            leaf_indexes: leaves,
            include_payloads: request.payloads.unwrap_or(true),
            created_at_ms: now_ms,
        };
        bundle::build(self.ledger, genesis, &build_request).map_err(|e| match e {
            BuildError::Storage(e) => ReadError::Storage(e),
            e @ (BuildError::NoCheckpoint | BuildError::NotCheckpointed { .. }) => {
                ReadError::Unprovable(e.to_string())
            }
            e => ReadError::Build {
                what: "evidence bundle",
                reason: e.to_string(),
            },
        })
    }

    /// Judges the claim `reference` names (see `custos_verifyClaim`); returns the verdict
    /// and the bundle's leaves, for the audit.
    pub fn verify_claim(
        &self,
        caller: &Caller,
        reference: &MessageRef,
        genesis: &Genesis,
        now_ms: u64,
    ) -> Result<(ClaimVerdict, Vec<u64>), ReadError> {
        let (claim_leaf, envelope) = self.permitted(caller, reference)?;
        let (proven_size, _) = self.proven()?;
        if claim_leaf >= proven_size {
            return Err(ReadError::Unprovable(format!(
                "claim leaf {claim_leaf} is not yet under a quorum checkpoint (the latest covers \
                 {proven_size} leaves); ask again after the next cosigning period"
            )));
        }
        let Kind::Insurance(InsuranceEvent::ClaimFiled { incident_id, .. }) = &envelope.body.kind
        else {
            return Err(ReadError::BadFilter(format!(
                "leaf {claim_leaf} is a {} message, not an insurance claim",
                envelope.body.kind.name()
            )));
        };
        let request = ExportRequest {
            client: Some(envelope.body.client.to_string()),
            incident_id: Some(incident_id.to_string()),
            payloads: Some(false),
            ..ExportRequest::default()
        };
        // The verdict is judged on the client's whole record, collectors included, even
        // for an insurer who may not read evidence itself: the answer carries derived
        // facts (counts, sequence numbers, duties), never envelopes or payloads.
        let bundle = self.export_selected(caller, &request, genesis, now_ms, &|_, _| true)?;
        let options = VerifyOptions {
            trusted_genesis: Some(genesis.hash()),
            ..VerifyOptions::default()
        };
        let verdict = claim::verify_claim(&bundle, claim_leaf, &options, &PolicyTable::standard())
            .map_err(|e| ReadError::BadFilter(e.to_string()))?;
        Ok((
            verdict,
            bundle.entries.iter().map(|e| e.leaf_index).collect(),
        ))
    }

    fn select(
        &self,
        caller: &Caller,
        request: &ExportRequest,
        readable: &dyn Fn(&Kind, &OrgId) -> bool,
    ) -> Result<(Scope, Vec<u64>), ReadError> {
        // Windows end by default where the latest quorum checkpoint does, so that an
        // export of a busy client is not refused for its newest, not yet cosigned, block.
        let (proven_size, proven_ms) = self.proven()?;
        match request {
            ExportRequest {
                client: Some(client),
                incident_id: Some(incident_id),
                from_ms: None,
                to_ms: None,
                leaf_hashes: None,
                ..
            } => {
                let client = incident_scope(caller, Some(client))?.expect("a named client");
                let mut records =
                    self.ledger
                        .incident_records(&client, incident_id, MAX_EXPORT_MESSAGES + 1)?;
                if records.is_empty() {
                    return Err(ReadError::NoSuchMessage(format!(
                        "incident record of client {client} with incident id {incident_id:?}"
                    )));
                }
                records.retain(|r| r.leaf_index < proven_size);
                let first = records.first().ok_or_else(|| {
                    ReadError::Unprovable(format!(
                        "incident {incident_id:?} of {client} has no record under a quorum \
                         checkpoint yet; export again after the next cosigning period"
                    ))
                })?;
                let mut to_ms = proven_ms;
                for record in &records {
                    let closed = self.ledger.envelope(record.leaf_index)?.is_some_and(|e| {
                        matches!(&e.body.kind, Kind::Incident(ev) if ev.action == IncidentAction::Closed)
                    });
                    if closed {
                        to_ms = to_ms.min(record.committed_at.0);
                        break;
                    }
                }
                let from_ms = first.committed_at.0;
                let mut leaves = self.readable_range(readable, &client, from_ms, to_ms)?;
                leaves.extend(records.iter().map(|r| r.leaf_index));
                leaves.extend(
                    self.insurance_of(readable, &client, incident_id)?
                        .into_iter()
                        .filter(|&leaf| leaf < proven_size),
                );
                leaves.sort_unstable();
                leaves.dedup();
                let scope = Scope::Incident {
                    client,
                    incident_id: incident_id.clone(),
                    from_ms,
                    to_ms,
                };
                Ok((scope, leaves))
            }
            ExportRequest {
                client: Some(client),
                incident_id: None,
                from_ms: Some(from_ms),
                to_ms,
                leaf_hashes: None,
                ..
            } => {
                let client = OrgId::new(client.as_str())
                    .map_err(|e| ReadError::BadFilter(format!("client: {e}")))?;
                let head_ms = self.head_time()?.0;
                let to_ms = to_ms.unwrap_or(proven_ms).min(head_ms);
                let leaves = self.readable_range(readable, &client, *from_ms, to_ms)?;
                let scope = Scope::ClientRange {
                    client,
                    from_ms: *from_ms,
                    to_ms,
                };
                Ok((scope, leaves))
            }
            ExportRequest {
                client: None,
                incident_id: None,
                from_ms: None,
                to_ms: None,
                leaf_hashes: Some(hashes),
                ..
            } => {
                if hashes.is_empty() || hashes.len() > MAX_EXPORT_MESSAGES {
                    return Err(ReadError::BadFilter(format!(
                        "leaf_hashes has {} hashes; name 1 to {MAX_EXPORT_MESSAGES}",
                        hashes.len()
                    )));
                }
                let mut leaves = Vec::with_capacity(hashes.len());
                for hash in hashes {
                    let index = self
                        .ledger
                        .leaf_index(hash)?
                        .ok_or(ReadError::UnknownLeaf(*hash))?;
                    let envelope = self
                        .ledger
                        .envelope(index)?
                        .ok_or(ReadError::UnknownLeaf(*hash))?;
                    let message = &envelope.body;
                    if !readable(&message.kind, &message.client) {
                        return Err(forbidden(
                            caller,
                            message.kind.name(),
                            message.client.as_str(),
                        ));
                    }
                    leaves.push(index);
                }
                leaves.sort_unstable();
                leaves.dedup();
                let scope = Scope::Messages {
                    leaf_hashes: hashes.clone(),
                };
                Ok((scope, leaves))
            }
            _ => Err(ReadError::BadFilter(
                "export by exactly one of: client with incident_id; client with from_ms (and \
                 optional to_ms); leaf_hashes"
                    .into(),
            )),
        }
    }

    /// The size of the latest quorum checkpoint and the committed time of its last leaf
    /// (block times strictly increase and checkpoints fall between blocks, so every leaf
    /// committed at or before that time is under the checkpoint).
    fn proven(&self) -> Result<(u64, u64), ReadError> {
        let Some((size, _)) = self.ledger.latest_checkpoint()? else {
            return Ok((0, 0));
        };
        let time_ms = match size.checked_sub(1) {
            Some(last) => self.ledger.leaf_time(last)?.map_or(0, |t| t.0),
            None => 0,
        };
        Ok((size, time_ms))
    }

    /// The claims filed for incident `incident_id` of `client` and the policies they name,
    /// when `readable` admits them, so that an incident's bundle can judge its claims.
    fn insurance_of(
        &self,
        readable: &dyn Fn(&Kind, &OrgId) -> bool,
        client: &OrgId,
        incident_id: &str,
    ) -> Result<Vec<u64>, ReadError> {
        let mut claims = Vec::new();
        let mut policies = Vec::new();
        for index in self
            .ledger
            .kind_leaves(Kind::INSURANCE_CODE, 0, MAX_INSURANCE_SCAN)?
        {
            let Some(envelope) = self.ledger.envelope(index)? else {
                continue;
            };
            let message = &envelope.body;
            if message.client != *client || !readable(&message.kind, client) {
                continue;
            }
            match &message.kind {
                Kind::Insurance(InsuranceEvent::ClaimFiled {
                    incident_id: id,
                    policy_id,
                    ..
                }) if id.as_str() == incident_id => claims.push((index, policy_id.to_string())),
                Kind::Insurance(InsuranceEvent::Policy { policy_id, .. }) => {
                    policies.push((index, policy_id.to_string()));
                }
                _ => {}
            }
        }
        let mut leaves: Vec<u64> = claims.iter().map(|(i, _)| *i).collect();
        leaves.extend(
            policies
                .iter()
                .filter(|(_, id)| claims.iter().any(|(_, named)| named == id))
                .map(|(i, _)| *i),
        );
        Ok(leaves)
    }

    /// `client`'s messages committed in `[from_ms, to_ms]` that `readable` admits; a
    /// collector's stream is all readable or not at all (permissions go by kind and
    /// client), so the export never cuts one.
    fn readable_range(
        &self,
        readable: &dyn Fn(&Kind, &OrgId) -> bool,
        client: &OrgId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<u64>, ReadError> {
        let found = self.ledger.client_leaves(
            client,
            UnixMillis(from_ms),
            UnixMillis(to_ms.saturating_add(1)),
            None,
            MAX_EXPORT_MESSAGES + 1,
        )?;
        if found.len() > MAX_EXPORT_MESSAGES {
            return Err(ReadError::BadFilter(format!(
                "more than {MAX_EXPORT_MESSAGES} messages in the window; narrow the time range"
            )));
        }
        let mut leaves = Vec::with_capacity(found.len());
        for index in found {
            if let Some(envelope) = self.ledger.envelope(index)? {
                if readable(&envelope.body.kind, &envelope.body.client) {
                    leaves.push(index);
                }
            }
        }
        Ok(leaves)
    }
}

fn parse_hash(text: &str) -> Result<Sha256Hash, String> {
    Sha256Hash::from_hex(text).map_err(|e| format!("{e}; expected 64 hex digits"))
}

/// `custos export`: writes an evidence bundle.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    auth: crate::defense_cli::Auth,
    /// The client organisation (with --incident, or with --from-ms).
    #[arg(long)]
    client: Option<String>,
    /// Export an incident of --client.
    #[arg(long, requires = "client", conflicts_with_all = ["from_ms", "leaf_hash"])]
    incident: Option<String>,
    /// Range start, committed time in ms since the epoch (with --client).
    #[arg(long, requires = "client")]
    from_ms: Option<u64>,
    /// Range end, inclusive (default and at most: the latest block's time).
    #[arg(long, requires = "from_ms")]
    to_ms: Option<u64>,
    /// Export this message (repeatable).
    #[arg(long = "leaf-hash", conflicts_with = "client", value_parser = parse_hash)]
    leaf_hash: Vec<Sha256Hash>,
    /// Leave payload bytes out (envelopes commit to them by digest).
    #[arg(long)]
    no_payloads: bool,
    /// Where to write the bundle.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `custos export`; returns a summary for the command's output.
pub async fn export(args: ExportArgs) -> anyhow::Result<serde_json::Value> {
    use custos_rpc::CustosApiClient as _;
    let client = args.auth.client()?;
    let request = ExportRequest {
        client: args.client,
        incident_id: args.incident,
        from_ms: args.from_ms,
        to_ms: args.to_ms,
        leaf_hashes: (!args.leaf_hash.is_empty()).then_some(args.leaf_hash),
        payloads: Some(!args.no_payloads),
    };
    let bundle = client
        .export_evidence(request)
        .await
        .with_context(|| format!("asking {} for an evidence bundle", args.auth.rpc))?;
    std::fs::write(&args.out, bundle.to_json() + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(serde_json::json!({
        "file": args.out,
        "entries": bundle.entries.len(),
        "checkpoints": bundle.checkpoints.len(),
        "anchors": bundle.anchors.len(),
        "genesis_hash": bundle.genesis_hash,
    }))
}

/// `custos verify`: checks an evidence bundle.
#[derive(Debug, clap::Args)]
pub struct VerifyBundleArgs {
    #[command(flatten)]
    trust: BundleTrust,
    /// Every entry must be anchored in a public block at or before this time (ms since
    /// the epoch), e.g. a claim's time.
    #[arg(long)]
    anchored_by_ms: Option<u64>,
    /// Every entry must be anchored.
    #[arg(long)]
    require_anchor: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The bundle file and what verifying it trusts: `custos verify` and `custos claim
/// verify` take the same.
#[derive(Debug, clap::Args)]
struct BundleTrust {
    /// The evidence bundle file.
    bundle: PathBuf,
    /// Also check every anchor on this EVM JSON-RPC endpoint.
    #[arg(long = "evm-rpc")]
    evm_rpc: Option<String>,
    /// The network's genesis file: its hash is the trust root.
    #[arg(long, conflicts_with = "genesis_hash")]
    genesis: Option<PathBuf>,
    /// The trusted genesis hash (hex), instead of --genesis.
    #[arg(long, value_parser = parse_hash)]
    genesis_hash: Option<Sha256Hash>,
    /// Blocks (the anchor's included) each anchor must have (with --evm-rpc).
    #[arg(long, default_value_t = 1)]
    confirmations: u64,
}

/// Reads the bundle and the options verifying it needs: the trusted genesis hash and,
/// with an EVM endpoint, what the chain says about each anchor.
async fn read_for_verification(trust: &BundleTrust) -> anyhow::Result<(Bundle, VerifyOptions)> {
    let path = &trust.bundle;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bundle = Bundle::from_json(&bytes)
        .with_context(|| format!("{} is not an evidence bundle", path.display()))?;
    let trusted_genesis = match (&trust.genesis, trust.genesis_hash) {
        (Some(genesis), _) => Some(crate::node::load_genesis(genesis)?.hash()),
        (None, hash) => hash,
    };
    let chain = match &trust.evm_rpc {
        Some(url) => {
            let mut facts = Vec::with_capacity(bundle.anchors.len());
            for anchor in &bundle.anchors {
                facts.push(bundle::fetch_anchor_facts(url, &anchor.receipt()).await);
            }
            Some(facts)
        }
        None => None,
    };
    let options = VerifyOptions {
        trusted_genesis,
        chain,
        min_confirmations: trust.confirmations,
        ..VerifyOptions::default()
    };
    Ok((bundle, options))
}

/// Runs `custos verify`: the report to print, and whether every check passed.
pub async fn verify(args: VerifyBundleArgs) -> anyhow::Result<(String, bool)> {
    let (bundle, options) = read_for_verification(&args.trust).await?;
    let options = VerifyOptions {
        anchored_by_s: args.anchored_by_ms.map(|ms| ms / 1000),
        require_anchor: args.require_anchor,
        ..options
    };
    let report = bundle::verify(&bundle, &options);
    let text = if args.json {
        serde_json::to_string_pretty(&report)?
    } else {
        readable(&args.trust.bundle, &report)
    };
    Ok((text, report.passed()))
}

/// The report as text for a person.
pub fn readable(path: &std::path::Path, report: &Report) -> String {
    let mut out = String::new();
    let verdict = if report.passed() { "PASSED" } else { "FAILED" };
    let _ = writeln!(out, "evidence bundle {}: {verdict}", path.display());
    let _ = writeln!(
        out,
        "genesis {} ({})",
        report.genesis_hash,
        if report.genesis_trusted {
            "matches the trusted genesis"
        } else {
            "NOT compared with a trusted genesis: give --genesis or --genesis-hash"
        }
    );
    let _ = writeln!(
        out,
        "anchors: {} verified{}",
        report.anchors_verified.len(),
        if report.checked_on_chain {
            " on the public chain"
        } else {
            " offline only (give --evm-rpc to check the public chain)"
        }
    );
    let _ = writeln!(
        out,
        "{} checks passed, {} failed; {} entries verified",
        report.checks_passed,
        report.failures.len(),
        report.entries.len()
    );
    for failure in &report.failures {
        let _ = writeln!(out, "FAIL {failure}");
    }
    for entry in &report.entries {
        let anchored = entry
            .anchored_before_s
            .map_or("not anchored".to_string(), |s| {
                format!(
                    "existed before {} (anchor block)",
                    rfc3339_utc(UnixMillis(s.saturating_mul(1000)))
                )
            });
        let _ = writeln!(
            out,
            "ok   leaf {} {} by {} seq {} client {}: committed {} (block {}); {anchored}",
            entry.leaf_index,
            entry.kind,
            entry.author,
            entry.sequence,
            entry.client,
            rfc3339_utc(UnixMillis(entry.committed_at_ms)),
            entry.block_height
        );
    }
    out
}

/// `custos claim verify`: judges an insurance claim against an evidence bundle offline.
#[derive(Debug, clap::Args)]
pub struct ClaimVerifyArgs {
    // The bundle is the incident's (`custos export --incident`), holding the claim and
    // the policy.
    #[command(flatten)]
    trust: BundleTrust,
    /// Leaf index of the claim-filed message.
    #[arg(long)]
    claim_leaf: u64,
    /// Also write the Markdown report here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// Runs `custos claim verify`: the verdict as JSON, and whether the claim holds.
pub async fn claim_verify(args: ClaimVerifyArgs) -> anyhow::Result<(String, bool)> {
    let (bundle, options) = read_for_verification(&args.trust).await?;
    let verdict =
        claim::verify_claim(&bundle, args.claim_leaf, &options, &PolicyTable::standard())?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, claim::markdown(&verdict))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok((serde_json::to_string_pretty(&verdict)?, verdict.holds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_ledger::block::Entry;
    use custos_ledger::codec::{Bytes, List, Text};
    use custos_ledger::crypto::{SecretKey, Signed};
    use custos_ledger::message::{
        EvidenceKind, IncidentEvent, IncidentLevel, Message, PayloadDescriptor, Role, SourceFormat,
    };
    use custos_ledger::storage::{Ledger, MemoryBackend};

    use crate::defense::tests::apply;

    const T0: u64 = 1_709_251_200_000;

    fn entry(key: &SecretKey, sequence: u64, client: &str, kind: Kind) -> Entry {
        let message = Message {
            network: Text::new("n").unwrap(),
            author: key.public().key_id(),
            client: Text::new(client).unwrap(),
            sequence,
            prev: Sha256Hash::ZERO,
            kind,
            format: SourceFormat::Raw,
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

    fn evidence(key: &SecretKey, sequence: u64, client: &str) -> Entry {
        let kind = Kind::Evidence {
            evidence: EvidenceKind::Alert,
        };
        entry(key, sequence, client, kind)
    }

    fn incident(key: &SecretKey, sequence: u64, action: IncidentAction) -> Entry {
        let kind = Kind::Incident(IncidentEvent {
            incident_id: Text::new("INC-1").unwrap(),
            action,
            note: Text::new("").unwrap(),
        });
        entry(key, sequence, "bank", kind)
    }

    /// Leaves: 0 bank evidence, 1 INC-1 detected, 2 mint evidence (T0); 3 bank evidence,
    /// 4 INC-1 closed (T0 + 1 s); 5 bank evidence (T0 + 2 s). The latest quorum
    /// checkpoint covers `checkpointed` leaves.
    fn ledger(checkpointed: u64) -> Ledger<MemoryBackend> {
        let ledger = Ledger::open(MemoryBackend::new()).unwrap();
        let (collector, other, org) = (
            SecretKey::from_seed(&[5; 32]),
            SecretKey::from_seed(&[6; 32]),
            SecretKey::from_seed(&[7; 32]),
        );
        let detected = IncidentAction::Detected {
            level: IncidentLevel::new(2).unwrap(),
            aware_at: UnixMillis(T0),
        };
        let first = vec![
            evidence(&collector, 1, "bank"),
            incident(&org, 1, detected),
            evidence(&other, 1, "mint"),
        ];
        apply(&ledger, first, T0);
        let second = vec![
            evidence(&collector, 2, "bank"),
            incident(&org, 2, IncidentAction::Closed),
        ];
        apply(&ledger, second, T0 + 1_000);
        apply(&ledger, vec![evidence(&collector, 3, "bank")], T0 + 2_000);
        // Selection reads only the checkpoint's size.
        ledger.put_checkpoint(checkpointed, b"note").unwrap();
        ledger
    }

    fn caller(role: Role) -> Caller {
        Caller {
            org: Text::new("someone").unwrap(),
            role,
            key_id: SecretKey::from_seed(&[2; 32]).public().key_id(),
            expires_at: UnixMillis(u64::MAX),
        }
    }

    fn select(
        ledger: &Ledger<MemoryBackend>,
        role: Role,
        request: &ExportRequest,
    ) -> Result<(Scope, Vec<u64>), ReadError> {
        let key = SecretKey::from_seed(&[9; 32]);
        let reader = Reader {
            ledger,
            origin: "o",
            validator_name: "v",
            key: &key,
            now_s: 0,
        };
        let caller = caller(role);
        reader.select(&caller, request, &|kind, client| {
            may_read(&caller, kind, client)
        })
    }

    fn incident_request() -> ExportRequest {
        ExportRequest {
            client: Some("bank".into()),
            incident_id: Some("INC-1".into()),
            ..ExportRequest::default()
        }
    }

    #[test]
    fn an_incident_covers_the_clients_messages_until_closure_as_far_as_the_role_may_read() {
        let ledger = ledger(6);
        let (scope, leaves) = select(&ledger, Role::Response, &incident_request()).unwrap();
        assert_eq!(leaves, [0, 1, 3, 4]);
        assert_eq!(
            scope,
            Scope::Incident {
                client: Text::new("bank").unwrap(),
                incident_id: "INC-1".into(),
                from_ms: T0,
                to_ms: T0 + 1_000,
            }
        );
        // Insurers read incident records, not evidence.
        let (_, leaves) = select(&ledger, Role::Insurer, &incident_request()).unwrap();
        assert_eq!(leaves, [1, 4]);
    }

    #[test]
    fn ranges_end_at_the_latest_quorum_checkpoint_and_named_leaves_must_be_readable() {
        // The checkpoint covers the first two blocks: the third is left for later.
        let ledger = ledger(5);
        let range = ExportRequest {
            client: Some("bank".into()),
            from_ms: Some(T0),
            ..ExportRequest::default()
        };
        let (scope, leaves) = select(&ledger, Role::ControlCenter, &range).unwrap();
        assert_eq!(leaves, [0, 1, 3, 4]);
        assert!(matches!(scope, Scope::ClientRange { to_ms, .. } if to_ms == T0 + 1_000));

        let mint = ledger.envelope(2).unwrap().unwrap().leaf_hash();
        let named = ExportRequest {
            leaf_hashes: Some(vec![mint]),
            ..ExportRequest::default()
        };
        assert_eq!(select(&ledger, Role::Warning, &named).unwrap().1, [2]);
        assert!(matches!(
            select(&ledger, Role::Insurer, &named),
            Err(ReadError::Forbidden {
                kind: "evidence",
                ..
            })
        ));

        let both = ExportRequest {
            leaf_hashes: Some(vec![mint]),
            ..incident_request()
        };
        assert!(matches!(
            select(&ledger, Role::ControlCenter, &both),
            Err(ReadError::BadFilter(_))
        ));
        let unproven = self::ledger(1);
        assert!(matches!(
            select(&unproven, Role::Response, &incident_request()),
            Err(ReadError::Unprovable(_))
        ));
    }
}
