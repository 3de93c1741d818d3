//! `custos enroll`: the control center enrolls a collector key for a client organisation
//! with a membership message signed by its organisation key. Until that message is
//! committed, every node refuses the collector's messages ("not enrolled"); the
//! collector keeps them in its spool and they go through once it is enrolled.
//!
//! The organisation's own chain (sequence number and previous leaf hash) is kept in a
//! state file beside its key, `<key>.chain`, as `custos send` does for collectors.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::{PublicKey, SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{Kind, MembershipChange, Message, PayloadDescriptor, SourceFormat};
use custos_rpc::{CustosApiClient as _, SubmitMessage, SubmitStatus};

use crate::keys::{KeyFile, KeyKind};
use crate::runtime::now_ms;

/// How long `custos enroll` waits for the enrollment to be committed.
pub const ENROLL_WAIT: Duration = Duration::from_secs(60);

/// Arguments of `custos enroll`.
#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:8600")]
    pub rpc: String,
    /// The control center's organisation key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The network id.
    #[arg(long)]
    pub network: String,
    /// The collector's key file (only its public key is read).
    #[arg(long, conflicts_with = "collector_public_key")]
    pub collector_key: Option<PathBuf>,
    /// The collector's public key, 64 hex digits.
    #[arg(long)]
    pub collector_public_key: Option<String>,
    /// The client organisation the collector collects for.
    #[arg(long)]
    pub client: String,
    /// A name for operators, e.g. the server's host name.
    #[arg(long)]
    pub name: String,
}

/// Where an organisation's chain ends, kept beside its key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ChainState {
    sequence: u64,
    prev: Option<Sha256Hash>,
}

fn state_path(key: &Path) -> PathBuf {
    let mut name = key.file_name().unwrap_or_default().to_os_string();
    name.push(".chain");
    key.with_file_name(name)
}

/// The signed enrollment message and its payload (a JSON description for readers).
pub fn enrollment(
    org_key: &SecretKey,
    network: &str,
    collector: PublicKey,
    client: &str,
    name: &str,
    sequence: u64,
    prev: Sha256Hash,
) -> anyhow::Result<(Signed<Message>, Vec<u8>)> {
    let payload = serde_json::to_vec(&serde_json::json!({
        "change": "collector-enrolled",
        "collector_key_id": collector.key_id(),
        "client": client,
        "name": name,
    }))?;
    let now = now_ms();
    let message = Message {
        network: Text::new(network).context("--network")?,
        author: org_key.public().key_id(),
        client: Text::new(client).context("--client")?,
        sequence,
        prev,
        kind: Kind::Membership(MembershipChange::CollectorEnrolled {
            key: collector,
            client: Text::new(client).context("--client")?,
            name: Text::new(name).context("--name")?,
        }),
        format: SourceFormat::Custos,
        occurred_at: Some(now),
        observed_at: now,
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::empty(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new("application/json")?, &payload),
    };
    Ok((Signed::sign(message, org_key), payload))
}

/// Runs `custos enroll`: submits the enrollment and waits until it is committed.
pub async fn run(args: EnrollArgs) -> anyhow::Result<serde_json::Value> {
    let org_key = KeyFile::load(&args.key, KeyKind::Organisation)?;
    let collector = match (&args.collector_key, &args.collector_public_key) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading collector key file {}", path.display()))?;
            let file: KeyFile = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a key file", path.display()))?;
            if file.kind != KeyKind::Collector {
                bail!(
                    "{} holds a {:?} key, not a collector key",
                    path.display(),
                    file.kind
                );
            }
            file.public_key
        }
        (None, Some(hex)) => PublicKey::from_hex(hex).context("--collector-public-key")?,
        _ => bail!("give the collector as --collector-key FILE or --collector-public-key HEX"),
    };
    let path = state_path(&args.key);
    let state: ChainState = match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("state file {}", path.display()))?
        }
        Err(_) => ChainState::default(),
    };
    let sequence = state.sequence + 1;
    let (envelope, payload) = enrollment(
        &org_key,
        &args.network,
        collector,
        &args.client,
        &args.name,
        sequence,
        state.prev.unwrap_or(Sha256Hash::ZERO),
    )?;
    let leaf_hash = envelope.leaf_hash();
    let b64 = base64::engine::general_purpose::STANDARD;
    let submission = SubmitMessage {
        envelope: b64.encode(envelope.leaf_bytes()),
        payload: b64.encode(&payload),
    };
    let rpc = crate::send::client(&args.rpc)?;
    let start = Instant::now();
    let new_state = serde_json::to_string(&ChainState {
        sequence,
        prev: Some(leaf_hash),
    })?;
    loop {
        let response = rpc
            .submit(vec![submission.clone()])
            .await
            .context("submitting the enrollment")?;
        let result = &response.results[0];
        if matches!(
            result.status,
            SubmitStatus::Committed | SubmitStatus::Admitted | SubmitStatus::Duplicate
        ) {
            // The network holds the message: the organisation's chain continues from it.
            std::fs::write(&path, &new_state)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        match result.status {
            SubmitStatus::Committed => break,
            SubmitStatus::Admitted | SubmitStatus::Duplicate | SubmitStatus::Busy => {}
            SubmitStatus::Rejected => bail!(
                "the enrollment was refused: {}; organisation chain state kept at sequence {} in {}",
                result.error.as_deref().unwrap_or("no reason given"),
                state.sequence,
                path.display()
            ),
        }
        if start.elapsed() > ENROLL_WAIT {
            bail!(
                "the enrollment (leaf {leaf_hash}) was not committed within {} s",
                ENROLL_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(serde_json::json!({
        "enrolled": collector.key_id(),
        "client": args.client,
        "name": args.name,
        "leaf_hash": leaf_hash,
        "sequence": sequence,
    }))
}
