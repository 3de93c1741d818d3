//! `custos`: the Custos validator node and its command-line tools.
// A command's result is its standard output; logs go to standard error.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use custos_node::config::NodeConfig;
use custos_node::keys::{KeyFile, KeyKind};

#[derive(Debug, Parser)]
#[command(
    name = "custos",
    version,
    about = "Custos: a permissioned blockchain that notarizes cybersecurity evidence"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate an Ed25519 key file (validator, organisation or collector).
    Keygen {
        /// What the key is for.
        #[arg(long, value_enum)]
        kind: KeyKind,
        /// Where to write it; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a genesis document from a TOML description of the network.
    Genesis {
        /// The description (see the testnet folder for an example).
        #[arg(long)]
        spec: PathBuf,
        /// Where to write the genesis JSON.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a validator node.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Show a node's status.
    Status {
        /// The node's JSON-RPC URL.
        #[arg(long, default_value = "http://127.0.0.1:8600")]
        rpc: String,
    },
    /// Issue a read credential for the JSON-RPC API: an organisation signs, with its
    /// membership key, a token naming itself, the network and an expiry. Prints the
    /// token; send it as the HTTP header `Authorization: Custos <token>`.
    Token {
        /// The organisation's key file (kind organisation).
        #[arg(long)]
        key: PathBuf,
        /// The organisation's id, as in genesis.
        #[arg(long)]
        org: String,
        /// The network id.
        #[arg(long)]
        network: String,
        /// Lifetime in seconds (at most one day).
        #[arg(long = "ttl-s", alias = "ttl", default_value_t = 600)]
        ttl_s: u64,
    },
    /// Public anchors of checkpoints on an EVM chain.
    Anchor {
        #[command(subcommand)]
        command: AnchorCommand,
    },
    /// Sign and submit log lines as a collector (a demo and smoke-test tool; the
    /// collector agent is `custos collect`).
    Send(custos_node::send::SendArgs),
    /// Run the collector agent: read security logs from files, standard input and a
    /// syslog listener, sign every event, spool it on disk and submit it until a node
    /// confirms it is committed.
    Collect {
        /// The collector's configuration (TOML; see `node/src/collect/config.rs`).
        #[arg(long)]
        config: PathBuf,
        /// Batch mode: read every source to its end, wait until everything is committed,
        /// print the counts per source and exit; the exit status is 0 only if nothing is
        /// pending or lost.
        #[arg(long)]
        exit_when_idle: bool,
    },
    /// Enroll a collector key for a client organisation (signed by the control center's
    /// organisation key) and wait until the enrollment is committed.
    Enroll(custos_node::collect::enroll::EnrollArgs),
    /// List incidents with their duties, deadlines and verdicts (or one with --id).
    Incidents(custos_node::defense_cli::IncidentsArgs),
    /// List incident duties overdue or due soon.
    Deadlines(custos_node::defense_cli::DeadlinesArgs),
    /// A client's risk value over a window, with the four sub-scores and what moved them.
    Risk(custos_node::defense_cli::RiskArgs),
    /// Export an early warning as a STIX 2.1 bundle.
    Warning(custos_node::defense_cli::WarningArgs),
    /// Sign and submit, as an organisation, an incident record, an early warning or a
    /// posture declaration.
    Publish(custos_node::publish::PublishArgs),
    /// Export an evidence bundle (by incident, by client and time range, or by message)
    /// to a file: envelopes, payloads, tlog-proofs, checkpoints, consistency proofs and
    /// anchor receipts (docs/evidence-bundle.md). The export is an audited read.
    Export(custos_node::evidence::ExportArgs),
    /// Verify an evidence bundle offline, and its anchors on an EVM chain with --evm-rpc.
    /// Prints a report (or --json); exits 0 only when every check passed.
    Verify(custos_node::evidence::VerifyBundleArgs),
    /// Insurance claims.
    Claim {
        #[command(subcommand)]
        command: ClaimCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ClaimCommand {
    /// Judge a claim against its incident's evidence bundle, offline (and the anchors on
    /// an EVM chain with --evm-rpc): untampered, within the cover, evidence after the
    /// policy start and before the claim, deadlines met, collectors complete. Prints the
    /// verdict as JSON (--markdown writes the report); exits 0 only when the claim holds.
    Verify(custos_node::evidence::ClaimVerifyArgs),
}

#[derive(Debug, Subcommand)]
enum AnchorCommand {
    /// Check an anchor receipt and its checkpoint against an EVM JSON-RPC endpoint: the
    /// checkpoint has 2f+1 genesis cosignatures, the transaction is in the receipt's block
    /// with calldata naming exactly the checkpoint, and the block is still on the chain.
    /// Prints the verified facts as JSON; exits non-zero saying what failed.
    Verify(custos_node::anchor::VerifyArgs),
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Run the validator described by a configuration file.
    Run {
        /// The node's configuration (TOML).
        #[arg(long)]
        config: PathBuf,
    },
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CUSTOS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CUSTOS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn print_json(value: serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen { kind, out } => {
            let (file, _) = KeyFile::generate(kind);
            file.write_new(&out)?;
            println!(
                "{}",
                serde_json::json!({ "key_id": file.key_id, "public_key": file.public_key, "file": out })
            );
        }
        Command::Genesis { spec, out } => {
            let genesis = custos_node::genesis_spec::build(&spec, custos_node::runtime::now_ms())?;
            let json = serde_json::to_string_pretty(&genesis)?;
            std::fs::write(&out, json + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{}",
                serde_json::json!({ "genesis_hash": genesis.hash(), "file": out })
            );
        }
        Command::Node {
            command: NodeCommand::Run { config },
        } => {
            let config = NodeConfig::load(&config)?;
            custos_node::node::run(config).await?;
        }
        Command::Status { rpc } => {
            let status = custos_node::send::status(&rpc).await?;
            println!("{}", serde_json::to_string_pretty(&status)?);
        }
        Command::Token {
            key,
            org,
            network,
            ttl_s,
        } => {
            let secret = KeyFile::load(&key, KeyKind::Organisation)?;
            let ttl_ms = ttl_s.saturating_mul(1000);
            anyhow::ensure!(
                (1..=custos_rpc::token::MAX_TOKEN_TTL_MS).contains(&ttl_ms),
                "--ttl-s {ttl_s}: a token lives from 1 s to {} s",
                custos_rpc::token::MAX_TOKEN_TTL_MS / 1000
            );
            let token = custos_rpc::token::RpcToken::issue(
                &secret,
                custos_ledger::codec::Text::new(network).context("--network")?,
                custos_ledger::codec::Text::new(org).context("--org")?,
                custos_node::runtime::now_ms(),
                ttl_ms,
            );
            println!("{token}");
        }
        Command::Anchor {
            command: AnchorCommand::Verify(args),
        } => println!("{}", custos_node::anchor::verify(args).await?),
        Command::Send(args) => println!("{}", custos_node::send::run(args).await?),
        Command::Collect {
            config,
            exit_when_idle,
        } => {
            let config = custos_node::collect::config::CollectConfig::load(&config)?;
            let outcome = custos_node::collect::run(
                config,
                custos_node::collect::RunOptions { exit_when_idle },
            )
            .await?;
            if exit_when_idle {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
                anyhow::ensure!(
                    outcome.complete,
                    "not everything read was committed: {} pending, {} refused, {} lost to source errors",
                    outcome.summary.pending,
                    outcome.summary.refused,
                    outcome.summary.errors_lost() - outcome.summary.refused
                );
            }
        }
        Command::Enroll(args) => println!("{}", custos_node::collect::enroll::run(args).await?),
        Command::Incidents(args) => print_json(custos_node::defense_cli::incidents(args).await?)?,
        Command::Deadlines(args) => print_json(custos_node::defense_cli::deadlines(args).await?)?,
        Command::Risk(args) => print_json(custos_node::defense_cli::risk(args).await?)?,
        Command::Warning(args) => print_json(custos_node::defense_cli::warning(args).await?)?,
        Command::Publish(args) => print_json(custos_node::publish::run(args).await?)?,
        Command::Export(args) => print_json(custos_node::evidence::export(args).await?)?,
        Command::Claim {
            command: ClaimCommand::Verify(args),
        } => {
            let (verdict, holds) = custos_node::evidence::claim_verify(args).await?;
            println!("{verdict}");
            if !holds {
                // The verdict names every check that failed.
                std::process::exit(1);
            }
        }
        Command::Verify(args) => {
            let (report, passed) = custos_node::evidence::verify(args).await?;
            print!("{report}");
            if !passed {
                // The report already names every failure; only the status is left to say.
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
