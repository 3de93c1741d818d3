//! `custos send`: signs log lines as an enrolled collector and submits them, keeping the
//! collector's sequence number and hash chain in a small state file beside its key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde::{Deserialize, Serialize};

use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::{SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{EvidenceKind, Kind, Message, PayloadDescriptor, SourceFormat};
use custos_rpc::{CustosApiClient, NodeStatus, SubmitMessage, SubmitStatus};

use crate::keys::{KeyFile, KeyKind};
use crate::runtime::now_ms;

/// Arguments of `custos send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:8600")]
    pub rpc: String,
    /// The collector's key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The client organisation the collector is enrolled for.
    #[arg(long)]
    pub client: String,
    /// The network id.
    #[arg(long)]
    pub network: String,
    /// How many lines to send.
    #[arg(long, default_value_t = 10)]
    pub count: u64,
    /// The text of each line; `{n}` is replaced by the line's sequence number.
    #[arg(
        long,
        default_value = "<134>1 {time} web-01 sshd 4242 - - Failed password for root from 203.0.113.7 port 52311 ssh2 (line {n})"
    )]
    pub text: String,
    /// Messages per RPC call.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
}

/// Where a collector's chain ends, kept beside its key.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ChainState {
    pub(crate) sequence: u64,
    pub(crate) prev: Option<Sha256Hash>,
}

pub(crate) fn state_path(key: &Path) -> PathBuf {
    let mut name = key.file_name().unwrap_or_default().to_os_string();
    name.push(".chain");
    key.with_file_name(name)
}

/// A JSON-RPC client with the project's limits.
pub fn client(url: &str) -> anyhow::Result<HttpClient> {
    HttpClientBuilder::default()
        .max_request_size(custos_rpc::MAX_REQUEST_BYTES)
        .max_response_size(custos_rpc::MAX_REQUEST_BYTES)
        .request_timeout(Duration::from_secs(30))
        .build(url)
        .with_context(|| format!("RPC URL {url}"))
}

/// Fetches a node's status.
pub async fn status(url: &str) -> anyhow::Result<NodeStatus> {
    client(url)?
        .status()
        .await
        .with_context(|| format!("asking {url} for its status"))
}

/// Runs `custos send`; returns a summary for the command's output.
pub async fn run(args: SendArgs) -> anyhow::Result<serde_json::Value> {
    let key = KeyFile::load(&args.key, KeyKind::Collector)?;
    let path = state_path(&args.key);
    let mut state: ChainState = match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("state file {}", path.display()))?
        }
        Err(_) => ChainState::default(),
    };
    let rpc = client(&args.rpc)?;
    let mut sent = 0;
    while sent < args.count {
        let n = (args.count - sent).min(args.batch as u64);
        let (messages, last) = sign_lines(&key, &args, &mut state, n)?;
        let response = rpc.submit(messages).await.context("submitting")?;
        for result in &response.results {
            if result.status != SubmitStatus::Admitted {
                bail!(
                    "message {} was {:?}: {}; chain state kept at sequence {}",
                    result.index,
                    result.status,
                    result.error.as_deref().unwrap_or("no reason given"),
                    last.sequence
                );
            }
        }
        state = last;
        std::fs::write(&path, serde_json::to_string(&state)?)?;
        sent += n;
    }
    Ok(serde_json::json!({ "sent": sent, "last_sequence": state.sequence }))
}

/// Signs `n` lines continuing `state`; returns them and the state after them.
fn sign_lines(
    key: &SecretKey,
    args: &SendArgs,
    state: &mut ChainState,
    n: u64,
) -> anyhow::Result<(Vec<SubmitMessage>, ChainState)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut sequence = state.sequence;
    let mut prev = state.prev.unwrap_or(Sha256Hash::ZERO);
    let mut out = Vec::new();
    for _ in 0..n {
        sequence += 1;
        let now = now_ms();
        let line = args
            .text
            .replace("{n}", &sequence.to_string())
            .replace("{time}", &now.0.to_string());
        let message = Message {
            network: Text::new(args.network.as_str())?,
            author: key.public().key_id(),
            client: Text::new(args.client.as_str())?,
            sequence,
            prev,
            kind: Kind::Evidence {
                evidence: EvidenceKind::LogLine,
            },
            format: SourceFormat::Raw,
            occurred_at: None,
            observed_at: now,
            severity: None,
            rule_id: None,
            host: None,
            attack_ids: List::empty(),
            references: List::empty(),
            parse_error: None,
            payload: PayloadDescriptor::of(Text::new("text/plain")?, line.as_bytes()),
        };
        let envelope = Signed::sign(message, key);
        prev = envelope.leaf_hash();
        out.push(SubmitMessage {
            envelope: b64.encode(envelope.leaf_bytes()),
            payload: b64.encode(line.as_bytes()),
        });
    }
    Ok((
        out,
        ChainState {
            sequence,
            prev: Some(prev),
        },
    ))
}
