//! `custos publish`: an organisation signs and submits an incident lifecycle record, an
//! early warning, a posture declaration or an insurance policy or claim, keeping its sequence number and hash chain in a
//! state file beside its key (as `custos send` does for collectors).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use base64::Engine as _;

use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::Signed;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{
    Control, ControlState, ControlStatus, IncidentAction, IncidentEvent, IncidentLevel,
    InsuranceEvent, Kind, Message, Money, PayloadDescriptor, PostureDeclaration, SourceFormat,
    UnixMillis,
};
use custos_rpc::{CustosApiClient, SubmitMessage, SubmitStatus};

use crate::keys::{KeyFile, KeyKind};
use crate::send::{ChainState, state_path};

/// Arguments of `custos publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:8600")]
    pub rpc: String,
    /// The organisation's key file; its chain state is kept beside it (`<key>.chain`).
    #[arg(long)]
    pub key: PathBuf,
    /// The network id.
    #[arg(long)]
    pub network: String,
    /// The client the record is about (for a broadcast warning, the publisher itself).
    #[arg(long)]
    pub client: String,
    /// What to publish.
    #[command(subcommand)]
    pub what: Publish,
}

/// What `custos publish` signs.
#[derive(Debug, clap::Subcommand)]
pub enum Publish {
    /// An incident lifecycle record.
    Incident {
        /// The incident id, unique per client.
        #[arg(long)]
        id: String,
        /// A short note.
        #[arg(long, default_value = "")]
        note: String,
        /// A file carried as the payload (the investigation report, for example).
        #[arg(long)]
        file: Option<PathBuf>,
        /// The step.
        #[command(subcommand)]
        step: Step,
    },
    /// An early warning: a STIX 2.1 bundle, or any text.
    Warning {
        /// The warning's file.
        #[arg(long)]
        file: PathBuf,
        /// MITRE ATT&CK ids it concerns (repeatable); they match it to clients' evidence.
        #[arg(long = "attack")]
        attack_ids: Vec<String>,
    },
    /// A declaration of the client's security controls.
    Posture {
        /// `control=state`, e.g. `backups=partial` (repeatable). Controls: security-officer,
        /// incident-response-plan, isms-certification, continuity-drill,
        /// endpoint-protection, patch-management, awareness-training, multi-factor-auth,
        /// backups, access-review, log-retention; states: absent, partial, implemented.
        #[arg(long = "control")]
        controls: Vec<String>,
        /// A short note (scope, assessment reference).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// An insurance policy covering the client (signed by the insurer).
    Policy {
        /// Policy id.
        #[arg(long)]
        policy_id: String,
        /// Cover starts, ms since the epoch.
        #[arg(long)]
        starts_at_ms: u64,
        /// Cover ends, ms since the epoch.
        #[arg(long)]
        ends_at_ms: u64,
    },
    /// A claim under a policy for an incident (signed by the client or the insurer).
    Claim {
        /// Claim id.
        #[arg(long)]
        claim_id: String,
        /// Policy claimed under.
        #[arg(long)]
        policy_id: String,
        /// Incident claimed for.
        #[arg(long)]
        incident_id: String,
        /// Loss claimed, in the currency's minor unit.
        #[arg(long)]
        loss_minor_units: u64,
        /// ISO 4217 currency code.
        #[arg(long, default_value = "TWD")]
        currency: String,
    },
}

/// An incident lifecycle step.
#[derive(Debug, clap::Subcommand)]
pub enum Step {
    /// Detected; deadlines run from the awareness time.
    Detected {
        /// Level 1 to 4.
        #[arg(long)]
        level: u8,
        /// When the organisation became aware, ms since the epoch (default: now).
        #[arg(long)]
        aware_at_ms: Option<u64>,
    },
    /// Reported to the competent authority.
    Reported,
    /// The level was reassessed.
    LevelChanged {
        /// New level, 1 to 4.
        #[arg(long)]
        level: u8,
    },
    /// Damage contained.
    Contained,
    /// Operations recovered.
    Recovered,
    /// Investigation report filed (give it with --file).
    InvestigationReport,
    /// Closed.
    Closed,
}

fn level(n: u8) -> anyhow::Result<IncidentLevel> {
    IncidentLevel::new(n).map_err(|e| anyhow::anyhow!("--level: {e}"))
}

fn parse_control(spec: &str) -> anyhow::Result<ControlStatus> {
    let (control, state) = spec
        .split_once('=')
        .with_context(|| format!("--control {spec:?}: expected control=state"))?;
    let control: Control = serde_json::from_value(control.into())
        .with_context(|| format!("--control {spec:?}: unknown control {control:?}"))?;
    let state: ControlState = serde_json::from_value(state.into()).with_context(|| {
        format!("--control {spec:?}: state must be absent, partial or implemented")
    })?;
    Ok(ControlStatus { control, state })
}

/// The kind, format, ATT&CK ids and payload of what is published.
fn content(
    what: Publish,
    client: &str,
    now: UnixMillis,
) -> anyhow::Result<(Kind, SourceFormat, Vec<String>, Vec<u8>)> {
    Ok(match what {
        Publish::Incident {
            id,
            note,
            file,
            step,
        } => {
            let action = match step {
                Step::Detected {
                    level: n,
                    aware_at_ms,
                } => IncidentAction::Detected {
                    level: level(n)?,
                    aware_at: aware_at_ms.map_or(now, UnixMillis),
                },
                Step::Reported => IncidentAction::Reported,
                Step::LevelChanged { level: n } => {
                    IncidentAction::LevelChanged { level: level(n)? }
                }
                Step::Contained => IncidentAction::Contained,
                Step::Recovered => IncidentAction::Recovered,
                Step::InvestigationReport => IncidentAction::InvestigationReport,
                Step::Closed => IncidentAction::Closed,
            };
            let payload = match file {
                Some(path) => {
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
                }
                None => Vec::new(),
            };
            let event = IncidentEvent {
                incident_id: Text::new(id).context("--id")?,
                action,
                note: Text::new(note).context("--note")?,
            };
            (
                Kind::Incident(event),
                SourceFormat::Custos,
                Vec::new(),
                payload,
            )
        }
        Publish::Warning { file, attack_ids } => {
            let payload =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let format = match serde_json::from_slice::<serde_json::Value>(&payload) {
                Ok(value) if crate::stix::is_bundle(&value) => SourceFormat::Stix21,
                _ => SourceFormat::Raw,
            };
            (Kind::EarlyWarning, format, attack_ids, payload)
        }
        Publish::Policy {
            policy_id,
            starts_at_ms,
            ends_at_ms,
        } => {
            if starts_at_ms >= ends_at_ms {
                bail!("--starts-at-ms {starts_at_ms} must be before --ends-at-ms {ends_at_ms}");
            }
            let record = InsuranceEvent::Policy {
                policy_id: Text::new(policy_id).context("--policy-id")?,
                client: Text::new(client).context("--client")?,
                starts_at: UnixMillis(starts_at_ms),
                ends_at: UnixMillis(ends_at_ms),
            };
            (
                Kind::Insurance(record),
                SourceFormat::Custos,
                Vec::new(),
                Vec::new(),
            )
        }
        Publish::Claim {
            claim_id,
            policy_id,
            incident_id,
            loss_minor_units,
            currency,
        } => {
            let record = InsuranceEvent::ClaimFiled {
                claim_id: Text::new(claim_id).context("--claim-id")?,
                policy_id: Text::new(policy_id).context("--policy-id")?,
                incident_id: Text::new(incident_id).context("--incident-id")?,
                claimed_loss: Money {
                    minor_units: loss_minor_units,
                    currency: Text::new(currency).context("--currency")?,
                },
            };
            (
                Kind::Insurance(record),
                SourceFormat::Custos,
                Vec::new(),
                Vec::new(),
            )
        }
        Publish::Posture { controls, note } => {
            let controls = controls
                .iter()
                .map(|c| parse_control(c))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let declaration = PostureDeclaration {
                controls: List::new(controls).context("--control")?,
                note: Text::new(note).context("--note")?,
            };
            (
                Kind::Posture(declaration),
                SourceFormat::Custos,
                Vec::new(),
                Vec::new(),
            )
        }
    })
}

/// Runs `custos publish`; returns the submitted message's leaf hash and sequence.
pub async fn run(args: PublishArgs) -> anyhow::Result<serde_json::Value> {
    let key = KeyFile::load(&args.key, KeyKind::Organisation)?;
    let path = state_path(&args.key);
    let state: ChainState = match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("state file {}", path.display()))?
        }
        Err(_) => ChainState::default(),
    };
    let now = crate::runtime::now_ms();
    let (kind, format, attack_ids, payload) = content(args.what, &args.client, now)?;
    let media_type = match format {
        SourceFormat::Stix21 => "application/stix+json;version=2.1",
        _ if payload.is_empty() || std::str::from_utf8(&payload).is_ok() => "text/plain",
        _ => "application/octet-stream",
    };
    let message = Message {
        network: Text::new(args.network.as_str()).context("--network")?,
        author: key.public().key_id(),
        client: Text::new(args.client.as_str()).context("--client")?,
        sequence: state.sequence + 1,
        prev: state.prev.unwrap_or(Sha256Hash::ZERO),
        kind,
        format,
        occurred_at: None,
        observed_at: now,
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::new(
            attack_ids
                .into_iter()
                .map(Text::new)
                .collect::<Result<Vec<_>, _>>()
                .context("--attack")?,
        )
        .context("--attack")?,
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new(media_type)?, &payload),
    };
    let envelope = Signed::sign(message, &key);
    let leaf_hash = envelope.leaf_hash();
    let b64 = base64::engine::general_purpose::STANDARD;
    let submission = SubmitMessage {
        envelope: b64.encode(envelope.leaf_bytes()),
        payload: b64.encode(&payload),
    };
    let response = crate::send::client(&args.rpc)?
        .submit(vec![submission])
        .await
        .context("submitting")?;
    let result = &response.results[0];
    if result.status != SubmitStatus::Admitted {
        bail!(
            "the message was {:?}: {}; chain state kept at sequence {}",
            result.status,
            result.error.as_deref().unwrap_or("no reason given"),
            state.sequence
        );
    }
    let next = ChainState {
        sequence: state.sequence + 1,
        prev: Some(leaf_hash),
    };
    std::fs::write(&path, serde_json::to_string(&next)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(serde_json::json!({ "leaf_hash": leaf_hash, "sequence": next.sequence }))
}
