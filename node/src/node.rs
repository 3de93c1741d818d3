//! Starting a validator: load everything, then run the network, RPC, metrics and the
//! consensus runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{Context as _, bail};
use tokio::sync::Notify;
use tracing::info;

use custos_ledger::genesis::Genesis;
use custos_ledger::storage::{Ledger, RocksBackend};

use crate::chain::Chain;
use crate::config::NodeConfig;
use crate::keys::{KeyFile, KeyKind};
use crate::mempool::{Mempool, MempoolLimits};
use crate::metrics::Metrics;
use crate::p2p::{P2p, P2pConfig, Peer};
use crate::runtime::{Runtime, Shared};

/// Reads and checks a genesis file.
pub fn load_genesis(path: &std::path::Path) -> anyhow::Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading genesis {}", path.display()))?;
    let genesis: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("genesis {} is not a valid genesis document", path.display()))?;
    genesis
        .validate()
        .with_context(|| format!("genesis {} is invalid", path.display()))?;
    Ok(genesis)
}

/// Runs a validator until it is stopped.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let genesis = load_genesis(&config.genesis)?;
    let key = KeyFile::load(&config.validator_key, KeyKind::Validator)?;
    let me = key.public();
    let Some(validator) = genesis.validators.get(&me.key_id()).cloned() else {
        bail!(
            "key {} ({}) is not a validator in genesis {}; only genesis validators run nodes",
            me.key_id(),
            config.validator_key.display(),
            config.genesis.display()
        );
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data folder {}", config.data_dir.display()))?;
    let ledger = Arc::new(
        Ledger::open(
            RocksBackend::open(&config.data_dir.join("ledger")).context("opening the ledger")?,
        )
        .context("loading the ledger")?,
    );
    let chain = Chain::open(ledger, genesis.clone()).context("reading the chain")?;
    let head = chain.head()?;
    info!(
        validator = %validator.name,
        network = %genesis.network,
        height = head.height,
        log_size = head.log.tree_size,
        "starting validator"
    );

    let peers = genesis
        .validators
        .validators()
        .iter()
        .map(|v| {
            Ok(Peer {
                public_key: v.key.0,
                address: v
                    .p2p_address
                    .parse()
                    .with_context(|| format!("p2p address of {} in genesis", v.name))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut p2p_config = P2pConfig::new(
        key.seed(),
        config
            .p2p_listen
            .parse()
            .context("p2p_listen is not a multiaddr")?,
        genesis.network.to_string(),
        peers,
    );
    p2p_config.max_gossip_bytes = crate::wire::MAX_GOSSIP_BYTES;
    p2p_config.max_sync_bytes = crate::wire::MAX_SYNC_RESPONSE_BYTES;
    let (p2p, events) = P2p::spawn(p2p_config)
        .await
        .context("starting the p2p network")?;

    let shared = Arc::new(Shared {
        chain: RwLock::new(chain),
        mempool: Mutex::new(Mempool::new(MempoolLimits {
            max_messages: config.mempool.max_messages,
            max_bytes: config.mempool.max_bytes,
        })),
        mempool_changed: Notify::new(),
        p2p,
        peers: RwLock::new(HashMap::new()),
        metrics: Metrics::default(),
        key,
        genesis_hash: genesis.hash(),
        audit: Mutex::new(crate::audit::AuditQueue::default()),
        committed: tokio::sync::broadcast::channel(custos_rpc::BLOCK_SUBSCRIPTION_BUFFER).0,
        risk_weights: config.risk,
    });

    let (_rpc_address, rpc_handle) =
        crate::rpc_server::start(shared.clone(), config.rpc_listen).await?;
    if let Some(address) = config.metrics_listen {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(shared, address).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
    }
    let (receipts_tx, receipts_rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(anchor) = config.anchor.clone() {
        match crate::anchor::mode(&anchor, validator.role) {
            Some(takeover_after) => {
                let ledger = shared.chain.read().expect("chain lock").ledger.clone();
                let service = crate::anchor::AnchorService::new(
                    anchor,
                    ledger,
                    &genesis,
                    takeover_after,
                    receipts_tx,
                )
                .context("starting the anchor service")?;
                tokio::spawn(service.run());
            }
            None => info!(
                "anchor configured, but this validator is not the control center and has no \
                 takeover_after_ms; it does not anchor"
            ),
        }
    }
    let (runtime, wal) = Runtime::new(
        shared,
        genesis,
        &config.consensus,
        &config.data_dir.join("consensus.wal"),
        receipts_rx,
    )?;
    let result = runtime.run(wal, events).await;
    rpc_handle.stop().ok();
    result
}
