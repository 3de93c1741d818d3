//! The node's configuration file (TOML).
//!
//! ```toml
//! data_dir = "data/control-center"     # ledger and consensus WAL
//! genesis = "genesis.json"
//! validator_key = "keys/control-center.json"
//! p2p_listen = "/ip4/0.0.0.0/tcp/26600"
//! rpc_listen = "127.0.0.1:8600"
//! metrics_listen = "127.0.0.1:9600"   # optional
//!
//! [consensus]                          # optional; these are the defaults
//! propose_timeout_ms = 1000
//! vote_timeout_ms = 500
//! timeout_increase_ms = 500
//!
//! [mempool]                            # optional; these are the defaults
//! max_messages = 100000
//! max_bytes = 268435456
//!
//! [risk]                               # optional; weights of the risk sub-scores
//! management = 30
//! basic_security = 30
//! information_security = 20
//! external_threat = 20
//! [anchor]                             # optional: public anchoring on an EVM chain
//! rpc_url = "http://127.0.0.1:8545"   # any EVM JSON-RPC endpoint (HTTP or HTTPS)
//! chain_id = 31337
//! key_file = "anchor.key"              # secp256k1 private key, hex
//! confirmations = 2                    # default 2
//! interval_ms = 10000                  # least time between anchors; default 10000
//! # takeover_after_ms = 60000          # on a validator other than the control center
//! ```
//!
//! Relative paths are relative to the configuration file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// Consensus timeouts. Round `r` waits `base + r * increase` for each step, so rounds
/// lengthen until the network is fast enough to decide (partial synchrony).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// Wait for a proposal.
    pub propose_timeout_ms: u64,
    /// Wait for more votes after seeing 2f+1 of mixed values.
    pub vote_timeout_ms: u64,
    /// Added per round.
    pub timeout_increase_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            propose_timeout_ms: 1_000,
            vote_timeout_ms: 500,
            timeout_increase_ms: 500,
        }
    }
}

/// Mempool bounds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Most messages waiting.
    pub max_messages: usize,
    /// Most bytes waiting.
    pub max_bytes: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        let limits = crate::mempool::MempoolLimits::default();
        Self {
            max_messages: limits.max_messages,
            max_bytes: limits.max_bytes,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Folder for the ledger and the consensus WAL.
    pub data_dir: PathBuf,
    /// The genesis document.
    pub genesis: PathBuf,
    /// This validator's key file.
    pub validator_key: PathBuf,
    /// libp2p listen address.
    pub p2p_listen: String,
    /// JSON-RPC listen address.
    pub rpc_listen: SocketAddr,
    /// Prometheus metrics listen address.
    pub metrics_listen: Option<SocketAddr>,
    /// Consensus timeouts.
    #[serde(default)]
    pub consensus: ConsensusConfig,
    /// Mempool bounds.
    #[serde(default)]
    pub mempool: MempoolConfig,
    /// Weights of the risk model's sub-scores; every validator of a network should use
    /// the same, since answers name the weights but clients compare values.
    #[serde(default)]
    pub risk: custos_ledger::risk::RiskWeights,
    /// Public anchoring; absent means this validator never anchors.
    pub anchor: Option<crate::anchor::AnchorConfig>,
}

impl NodeConfig {
    /// Reads a configuration file and resolves its relative paths.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration {}", path.display()))?;
        let mut config: NodeConfig = toml::from_str(&text)
            .with_context(|| format!("configuration {} is invalid", path.display()))?;
        config
            .risk
            .check()
            .with_context(|| format!("configuration {}: [risk]", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.data_dir,
            &mut config.genesis,
            &mut config.validator_key,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(anchor) = &mut config.anchor
            && anchor.key_file.is_relative()
        {
            anchor.key_file = base.join(&anchor.key_file);
        }
        Ok(config)
    }
}
