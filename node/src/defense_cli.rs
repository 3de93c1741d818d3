//! `custos incidents`, `custos deadlines`, `custos risk` and `custos warning`: the
//! joint-defense reads from the command line. Each prints the method's JSON answer.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};

use custos_ledger::codec::Text;
use custos_ledger::hash::Sha256Hash;
use custos_rpc::token::{AUTH_SCHEME, RpcToken};
use custos_rpc::{CustosApiClient, DeadlineQuery, IncidentQuery, MessageRef};

use crate::keys::{KeyFile, KeyKind};

/// Lifetime of the token the command issues for itself: one call's worth.
const COMMAND_TOKEN_TTL_MS: u64 = 60_000;

/// How to reach a node as an organisation.
#[derive(Debug, clap::Args)]
pub struct Auth {
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:8600")]
    pub rpc: String,
    /// A token from `custos token`; without it one is issued from --key, --org and
    /// --network.
    #[arg(long, env = "CUSTOS_TOKEN")]
    pub token: Option<String>,
    /// The organisation's key file.
    #[arg(long, required_unless_present = "token")]
    pub key: Option<PathBuf>,
    /// The organisation's id.
    #[arg(long, required_unless_present = "token")]
    pub org: Option<String>,
    /// The network id.
    #[arg(long, required_unless_present = "token")]
    pub network: Option<String>,
}

impl Auth {
    /// A client sending the credential.
    pub fn client(&self) -> anyhow::Result<HttpClient> {
        let token = match (&self.token, &self.key, &self.org, &self.network) {
            (Some(token), ..) => token.clone(),
            (None, Some(key), Some(org), Some(network)) => {
                let secret = KeyFile::load(key, KeyKind::Organisation)?;
                RpcToken::issue(
                    &secret,
                    Text::new(network.as_str()).context("--network")?,
                    Text::new(org.as_str()).context("--org")?,
                    crate::runtime::now_ms(),
                    COMMAND_TOKEN_TTL_MS,
                )
            }
            _ => anyhow::bail!("give --token, or --key with --org and --network"),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("{AUTH_SCHEME} {token}")).context("token")?,
        );
        HttpClientBuilder::default()
            .set_headers(headers)
            .max_response_size(custos_rpc::MAX_REQUEST_BYTES)
            .request_timeout(Duration::from_secs(60))
            .build(&self.rpc)
            .with_context(|| format!("RPC URL {}", self.rpc))
    }
}

/// `custos incidents`: incidents with their duties and verdicts.
#[derive(Debug, clap::Args)]
pub struct IncidentsArgs {
    #[command(flatten)]
    auth: Auth,
    /// Only this client's incidents.
    #[arg(long)]
    client: Option<String>,
    /// One incident (needs --client).
    #[arg(long, requires = "client")]
    id: Option<String>,
    /// Only incidents with this status: undetected, open, contained, investigated, closed.
    #[arg(long)]
    status: Option<String>,
    /// Only incidents with an overdue duty.
    #[arg(long)]
    overdue: bool,
    /// Evaluate at this time (milliseconds since the epoch) instead of the latest block's.
    #[arg(long)]
    as_of_ms: Option<u64>,
}

/// `custos deadlines`: duties overdue or due soon.
#[derive(Debug, clap::Args)]
pub struct DeadlinesArgs {
    #[command(flatten)]
    auth: Auth,
    /// Only this client's deadlines.
    #[arg(long)]
    client: Option<String>,
    /// Pending duties due within this many seconds count as due.
    #[arg(long, default_value_t = 86_400)]
    within_s: u64,
}

/// `custos risk`: a client's risk value with its explanation.
#[derive(Debug, clap::Args)]
pub struct RiskArgs {
    #[command(flatten)]
    auth: Auth,
    /// The client organisation.
    #[arg(long)]
    client: String,
    /// Window start, milliseconds since the epoch (default: --days before the end).
    #[arg(long)]
    from_ms: Option<u64>,
    /// Window end (exclusive; default: just after the latest block).
    #[arg(long)]
    to_ms: Option<u64>,
    /// Window length in days when --from-ms is not given.
    #[arg(long, default_value_t = 30)]
    days: u64,
}

/// `custos warning`: export an early warning as a STIX 2.1 bundle.
#[derive(Debug, clap::Args)]
pub struct WarningArgs {
    #[command(flatten)]
    auth: Auth,
    /// The warning's leaf index.
    #[arg(long, conflicts_with = "leaf_hash")]
    leaf_index: Option<u64>,
    /// The warning's leaf hash (hex).
    #[arg(long)]
    leaf_hash: Option<String>,
    /// Print only the bundle (for STIX tools), not the export envelope.
    #[arg(long)]
    bundle_only: bool,
}

/// Runs `custos incidents`.
pub async fn incidents(args: IncidentsArgs) -> anyhow::Result<serde_json::Value> {
    let client = args.auth.client()?;
    if let Some(id) = args.id {
        let view = client
            .get_incident(args.client.unwrap_or_default(), id, args.as_of_ms)
            .await?;
        return Ok(serde_json::to_value(view)?);
    }
    let status = args
        .status
        .map(|s| serde_json::from_value(serde_json::Value::String(s.clone())))
        .transpose()
        .context("--status: one of undetected, open, contained, investigated, closed")?;
    let mut query = IncidentQuery {
        client: args.client,
        status,
        overdue: args.overdue.then_some(true),
        as_of_ms: args.as_of_ms,
        ..IncidentQuery::default()
    };
    let mut incidents = Vec::new();
    let as_of_ms = loop {
        let page = client.list_incidents(query.clone()).await?;
        incidents.extend(page.incidents);
        match page.next_after {
            Some(next) => {
                query.after = Some(next);
                query.as_of_ms = Some(page.as_of_ms);
            }
            None => break page.as_of_ms,
        }
    };
    Ok(serde_json::json!({ "as_of_ms": as_of_ms, "incidents": incidents }))
}

/// Runs `custos deadlines`.
pub async fn deadlines(args: DeadlinesArgs) -> anyhow::Result<serde_json::Value> {
    let list = args
        .auth
        .client()?
        .deadlines(DeadlineQuery {
            client: args.client,
            within_ms: Some(args.within_s.saturating_mul(1000)),
            as_of_ms: None,
        })
        .await?;
    Ok(serde_json::to_value(list)?)
}

/// Runs `custos risk`.
pub async fn risk(args: RiskArgs) -> anyhow::Result<serde_json::Value> {
    let client = args.auth.client()?;
    let from_ms = match args.from_ms {
        Some(from) => from,
        None => {
            let end = match args.to_ms {
                Some(to) => to,
                None => client.status().await?.last_block_time_ms + 1,
            };
            end.saturating_sub(args.days.saturating_mul(86_400_000))
        }
    };
    let assessment = client.risk_score(args.client, from_ms, args.to_ms).await?;
    Ok(serde_json::to_value(assessment)?)
}

/// Runs `custos warning`.
pub async fn warning(args: WarningArgs) -> anyhow::Result<serde_json::Value> {
    let reference = MessageRef {
        leaf_index: args.leaf_index,
        leaf_hash: args
            .leaf_hash
            .as_deref()
            .map(Sha256Hash::from_hex)
            .transpose()
            .context("--leaf-hash")?,
        ..MessageRef::default()
    };
    let export = args.auth.client()?.export_warning(reference).await?;
    Ok(if args.bundle_only {
        export.bundle
    } else {
        serde_json::to_value(export)?
    })
}
