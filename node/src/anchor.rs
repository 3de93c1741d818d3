//! The anchor service (ARCHITECTURE §5): posts the latest quorum checkpoint to an EVM
//! chain, waits for confirmations, watches that the anchoring block stays on the chain,
//! and hands an [`AnchorReceipt`] to the runtime, which commits it to the private chain.
//!
//! It runs on the control-center validator; another validator configured with
//! `takeover_after_ms` anchors only when a newer quorum checkpoint has waited that long
//! without a committed receipt (the control center is down or cannot reach the chain).
//!
//! Every EVM call is bounded by [`EVM_CALL_TIMEOUT`]; an endpoint that fails or does not
//! answer is retried on the next poll, so an outage of the public chain never touches
//! consensus and anchoring resumes with the latest checkpoint, which covers every
//! checkpoint made meanwhile.
//!
//! The transaction is a zero-value EIP-1559 transaction from the anchoring account to
//! itself whose calldata is [`AnchorCalldata`]. The service chooses the nonce (the
//! account's pending count) and the fees (the endpoint's EIP-1559 estimate); a
//! transaction not mined after [`RESUBMIT_AFTER`] is replaced with the same nonce and
//! fees raised by [`FEE_BUMP_PERCENT`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, TransactionBuilder as _};
use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

use custos_ledger::anchor::AnchorCalldata;
use custos_ledger::c2sp::{Checkpoint, QuorumPolicy};
use custos_ledger::genesis::Genesis;
use custos_ledger::message::{AnchorReceipt, Kind, Role};
use custos_ledger::storage::{Backend, Ledger};

/// Longest wait for one EVM JSON-RPC answer.
pub const EVM_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the service looks at the ledger and the public chain.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1_000);

/// A sent transaction not mined after this long is replaced (same nonce, higher fees).
pub const RESUBMIT_AFTER: Duration = Duration::from_secs(30);

/// Fee increase of a replacement: at least the 10% most nodes require, with margin.
pub const FEE_BUMP_PERCENT: u128 = 25;

/// Leaves scanned to tell whether a checkpoint adds anything but anchor receipts; above
/// this many new leaves the checkpoint is anchored without looking.
const RECEIPT_ONLY_SCAN_MAX: u64 = 256;

/// Receipts read from the ledger per page when catching up with the chain.
const RECEIPT_PAGE: usize = 256;

/// The `[anchor]` section of the node configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    /// EVM JSON-RPC endpoint (HTTP or HTTPS).
    pub rpc_url: String,
    /// The chain id the endpoint must serve; transactions are signed for it.
    pub chain_id: u64,
    /// File holding the anchoring account's secp256k1 private key in hex.
    pub key_file: PathBuf,
    /// Blocks (the anchor's included) before a receipt is committed.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// Least time between two anchors: the anchoring cadence.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Set on a validator other than the control center to let it take over: it anchors
    /// when a newer quorum checkpoint has waited this long without a receipt.
    pub takeover_after_ms: Option<u64>,
}

fn default_confirmations() -> u64 {
    2
}

fn default_interval_ms() -> u64 {
    10_000
}

/// Whether this validator runs the anchor service, and how.
pub fn mode(config: &AnchorConfig, role: Role) -> Option<Duration> {
    if role == Role::ControlCenter {
        Some(Duration::ZERO)
    } else {
        config.takeover_after_ms.map(Duration::from_millis)
    }
}

/// Reads a hex private key file.
pub fn load_signer(path: &std::path::Path) -> anyhow::Result<PrivateKeySigner> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the anchor key file {}", path.display()))?;
    text.trim().parse().map_err(|e| {
        anyhow!(
            "anchor key file {} must hold a secp256k1 private key as 64 hex digits: {e}",
            path.display()
        )
    })
}

/// A checkpoint fit to anchor: stored, passing the genesis quorum policy, and with the
/// root of this validator's own log at its size.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
}

/// The latest stored checkpoint, checked again before it may be anchored: a note with
/// fewer than 2f+1 valid genesis cosignatures, of another origin, or whose root is not
/// the log's, is refused with the reason.
pub fn candidate<B: Backend>(
    ledger: &Ledger<B>,
    policy: &QuorumPolicy,
) -> anyhow::Result<Option<Candidate>> {
    let Some((size, note)) = ledger.latest_checkpoint()? else {
        return Ok(None);
    };
    let verified = policy
        .verify_bytes(&note)
        .with_context(|| format!("stored checkpoint {size} is not a quorum checkpoint"))?;
    let root = verified.checkpoint().root();
    let log_root = ledger.root(root.tree_size)?;
    if root.tree_size != size || log_root.hash != root.hash {
        bail!(
            "stored checkpoint {size} has root {} but the log's root at size {} is {}",
            root.hash,
            root.tree_size,
            log_root.hash
        );
    }
    Ok(Some(Candidate {
        checkpoint: verified.checkpoint().clone(),
    }))
}

/// Whether the leaves `from..to` are all anchor receipts: then anchoring `to` would only
/// anchor the previous anchor's receipt, and the service waits for real evidence.
fn only_receipts<B: Backend>(ledger: &Ledger<B>, from: u64, to: u64) -> anyhow::Result<bool> {
    if to <= from || to - from > RECEIPT_ONLY_SCAN_MAX {
        return Ok(to <= from);
    }
    for index in from..to {
        let envelope = ledger
            .envelope(index)?
            .ok_or_else(|| anyhow!("leaf {index} missing from the ledger"))?;
        if !matches!(envelope.body.kind, Kind::AnchorReceipt(_)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A transaction sent and not yet confirmed.
#[derive(Clone, Debug)]
struct InFlight {
    checkpoint: Checkpoint,
    tx_hash: B256,
    nonce: u64,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
    sent_at: Instant,
}

/// The service.
#[derive(Debug)]
pub struct AnchorService<B> {
    config: AnchorConfig,
    ledger: Arc<Ledger<B>>,
    policy: QuorumPolicy,
    signer: PrivateKeySigner,
    receipts: mpsc::UnboundedSender<AnchorReceipt>,
    takeover_after: Duration,
    /// The newest anchor known (committed on the private chain or confirmed here).
    latest: Option<AnchorReceipt>,
    /// Next leaf index of the receipt index to read.
    receipt_cursor: u64,
    in_flight: Option<InFlight>,
    last_post: Option<Instant>,
    /// Since when a newer checkpoint has waited (for a taking-over validator).
    waiting_since: Option<Instant>,
    /// The latest anchor was found removed from the public chain.
    lost: bool,
}

impl<B: Backend + 'static> AnchorService<B> {
    /// Prepares the service; `takeover_after` is zero on the control center.
    pub fn new(
        config: AnchorConfig,
        ledger: Arc<Ledger<B>>,
        genesis: &Genesis,
        takeover_after: Duration,
        receipts: mpsc::UnboundedSender<AnchorReceipt>,
    ) -> anyhow::Result<Self> {
        let signer = load_signer(&config.key_file)?;
        Ok(Self {
            policy: genesis.checkpoint_policy()?,
            config,
            ledger,
            signer,
            receipts,
            takeover_after,
            latest: None,
            receipt_cursor: 0,
            in_flight: None,
            last_post: None,
            waiting_since: None,
            lost: false,
        })
    }

    /// Runs until the runtime stops taking receipts.
    pub async fn run(mut self) {
        let url = match self.config.rpc_url.parse() {
            Ok(url) => url,
            Err(e) => {
                warn!(url = %self.config.rpc_url, error = %e, "anchor rpc_url is not a URL; anchoring is off");
                return;
            }
        };
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .wallet(EthereumWallet::from(self.signer.clone()))
            .connect_http(url);
        info!(
            account = %self.signer.address(),
            url = %self.config.rpc_url,
            chain_id = self.config.chain_id,
            "anchor service started"
        );
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        loop {
            tick.tick().await;
            if self.receipts.is_closed() {
                return;
            }
            if let Err(e) = self.step(&provider).await {
                warn!(error = %e, "anchoring step failed; retrying");
            }
        }
    }

    async fn step<P: Provider>(&mut self, provider: &P) -> anyhow::Result<()> {
        self.read_committed_receipts()?;
        if self.in_flight.is_some() {
            return self.follow(provider).await;
        }
        self.watch_latest(provider).await?;
        let Some(candidate) = candidate(&self.ledger, &self.policy)? else {
            return Ok(());
        };
        let size = candidate.checkpoint.root().tree_size;
        let anchored = self.latest.as_ref().map_or(0, |r| r.tree_size);
        let newer = size > anchored && !only_receipts(&self.ledger, anchored, size)?;
        if !newer && !self.lost {
            self.waiting_since = None;
            return Ok(());
        }
        let waiting = *self.waiting_since.get_or_insert_with(Instant::now);
        if !self.lost && waiting.elapsed() < self.takeover_after {
            return Ok(());
        }
        let cadence = Duration::from_millis(self.config.interval_ms);
        if !self.lost && self.last_post.is_some_and(|t| t.elapsed() < cadence) {
            return Ok(());
        }
        self.post(provider, candidate.checkpoint, None).await
    }

    /// Takes receipts committed on the private chain (by this or another validator).
    fn read_committed_receipts(&mut self) -> anyhow::Result<()> {
        loop {
            let leaves = self.ledger.kind_leaves(
                Kind::ANCHOR_RECEIPT_CODE,
                self.receipt_cursor,
                RECEIPT_PAGE,
            )?;
            let Some(&last) = leaves.last() else {
                return Ok(());
            };
            self.receipt_cursor = last + 1;
            let envelope = self
                .ledger
                .envelope(last)?
                .ok_or_else(|| anyhow!("receipt leaf {last} missing"))?;
            // Receipts are committed in the order anchors were confirmed: the last one
            // in the log is the newest anchor, also when a re-anchor after a
            // reorganisation landed in a lower block.
            if let Kind::AnchorReceipt(receipt) = envelope.body.kind {
                self.latest = Some(receipt);
            }
            if leaves.len() < RECEIPT_PAGE {
                return Ok(());
            }
        }
    }

    /// Checks that the latest anchor's transaction is still in its block.
    async fn watch_latest<P: Provider>(&mut self, provider: &P) -> anyhow::Result<()> {
        let Some(latest) = self.latest.clone() else {
            return Ok(());
        };
        if latest.chain_id != self.config.chain_id || self.lost {
            return Ok(());
        }
        let receipt = call(provider.get_transaction_receipt(B256::from(latest.tx_hash))).await?;
        let still = receipt.is_some_and(|r| {
            r.block_hash == Some(B256::from(latest.block_hash))
                && r.block_number == Some(latest.block_number)
        });
        if !still {
            warn!(
                tx = %hex::encode(latest.tx_hash),
                block = latest.block_number,
                tree_size = latest.tree_size,
                "anchor lost: its transaction is no longer in its block (reorganisation); anchoring again"
            );
            self.lost = true;
        }
        Ok(())
    }

    /// Sends the anchoring transaction, or its replacement when `replacing` is given.
    async fn post<P: Provider>(
        &mut self,
        provider: &P,
        checkpoint: Checkpoint,
        replacing: Option<InFlight>,
    ) -> anyhow::Result<()> {
        let chain_id = call(provider.get_chain_id()).await?;
        if chain_id != self.config.chain_id {
            bail!(
                "endpoint {} serves chain id {chain_id}; the configuration says {}",
                self.config.rpc_url,
                self.config.chain_id
            );
        }
        let account = self.signer.address();
        let (nonce, max_fee, priority_fee) = match &replacing {
            Some(previous) => (
                previous.nonce,
                bump(previous.max_fee_per_gas),
                bump(previous.max_priority_fee_per_gas),
            ),
            None => {
                let nonce = call(provider.get_transaction_count(account).pending()).await?;
                let fees = call(provider.estimate_eip1559_fees()).await?;
                (nonce, fees.max_fee_per_gas, fees.max_priority_fee_per_gas)
            }
        };
        let calldata = AnchorCalldata::for_checkpoint(&checkpoint).encode();
        let request = TransactionRequest::default()
            .with_from(account)
            .with_to(account)
            .with_input(Bytes::from(calldata.to_vec()))
            .with_nonce(nonce)
            .with_chain_id(chain_id)
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(priority_fee);
        let gas = call(provider.estimate_gas(request.clone())).await?;
        // Estimates are exact for a plain transfer with calldata; the margin covers a
        // fork that reprices calldata between estimate and inclusion.
        let request = request.with_gas_limit(gas + gas / 5);
        let pending = call(provider.send_transaction(request)).await?;
        let tx_hash = *pending.tx_hash();
        let root = checkpoint.root();
        info!(
            tx = %tx_hash,
            nonce,
            tree_size = root.tree_size,
            root = %root.hash,
            replacement = replacing.is_some(),
            "anchor transaction sent"
        );
        self.last_post = Some(Instant::now());
        self.in_flight = Some(InFlight {
            checkpoint,
            tx_hash,
            nonce,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority_fee,
            sent_at: Instant::now(),
        });
        Ok(())
    }

    /// Follows the transaction in flight: replace it when stuck, and once it has its
    /// confirmations and its block is still the chain's, hand its receipt to the runtime.
    async fn follow<P: Provider>(&mut self, provider: &P) -> anyhow::Result<()> {
        let flight = self
            .in_flight
            .clone()
            .expect("called with a transaction in flight");
        let receipt = call(provider.get_transaction_receipt(flight.tx_hash)).await?;
        let Some((number, hash)) = receipt.and_then(|r| Some((r.block_number?, r.block_hash?)))
        else {
            if flight.sent_at.elapsed() >= RESUBMIT_AFTER {
                let mined = call(provider.get_transaction_count(self.signer.address())).await?;
                if mined > flight.nonce {
                    // The nonce went to another transaction (a replacement mined, or the
                    // account was used elsewhere): start over with a fresh nonce.
                    warn!(tx = %flight.tx_hash, "anchor nonce used by another transaction; anchoring again");
                    self.in_flight = None;
                    return Ok(());
                }
                let checkpoint = flight.checkpoint.clone();
                return self.post(provider, checkpoint, Some(flight)).await;
            }
            return Ok(());
        };
        let head = call(provider.get_block_number()).await?;
        if head.saturating_add(1).saturating_sub(number) < self.config.confirmations.max(1) {
            return Ok(());
        }
        let block = call(provider.get_block_by_number(BlockNumberOrTag::Number(number)))
            .await?
            .ok_or_else(|| anyhow!("block {number} of the anchor is gone"))?;
        if block.header.hash != hash {
            warn!(tx = %flight.tx_hash, block = number, "anchor block reorganised before confirmation");
            return Ok(()); // the receipt moves with the transaction; look again
        }
        let root = flight.checkpoint.root();
        let receipt = AnchorReceipt {
            chain_id: self.config.chain_id,
            tx_hash: flight.tx_hash.0,
            block_number: number,
            block_hash: hash.0,
            block_time_s: block.header.timestamp,
            tree_size: root.tree_size,
            root: root.hash,
        };
        info!(
            tx = %flight.tx_hash,
            block = number,
            tree_size = root.tree_size,
            "anchor confirmed"
        );
        self.in_flight = None;
        self.lost = false;
        self.waiting_since = None;
        self.latest = Some(receipt.clone());
        self.receipts
            .send(receipt)
            .map_err(|_| anyhow!("the runtime stopped"))?;
        Ok(())
    }
}

/// Raises a fee for a replacement transaction.
fn bump(fee: u128) -> u128 {
    fee.saturating_mul(100 + FEE_BUMP_PERCENT) / 100 + 1
}

/// Awaits one EVM call for at most [`EVM_CALL_TIMEOUT`].
async fn call<T, E: std::fmt::Display>(
    request: impl std::future::IntoFuture<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(EVM_CALL_TIMEOUT, request.into_future()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(anyhow!("EVM endpoint: {e}")),
        Err(_) => Err(anyhow!(
            "EVM endpoint did not answer within {} s",
            EVM_CALL_TIMEOUT.as_secs()
        )),
    }
}

/// The address of a key file's account, for operators funding it.
pub fn account_of(path: &std::path::Path) -> anyhow::Result<Address> {
    Ok(load_signer(path)?.address())
}

/// A page of committed anchor receipts from leaf index `from`, with the stored checkpoint
/// note of each anchored size (the `custos_getAnchors` answer).
pub fn anchors_page<B: Backend>(
    ledger: &Ledger<B>,
    from: u64,
) -> Result<custos_rpc::AnchorPage, custos_ledger::storage::StorageError> {
    let page = custos_rpc::MAX_ANCHOR_PAGE;
    let leaves = ledger.kind_leaves(Kind::ANCHOR_RECEIPT_CODE, from, page)?;
    let next = (leaves.len() == page).then(|| leaves.last().map_or(from, |l| l + 1));
    let mut anchors = Vec::with_capacity(leaves.len());
    for leaf_index in leaves {
        let Some(envelope) = ledger.envelope(leaf_index)? else {
            continue;
        };
        let Kind::AnchorReceipt(r) = envelope.body.kind else {
            continue;
        };
        let checkpoint = ledger
            .checkpoint(r.tree_size)?
            .and_then(|note| String::from_utf8(note).ok());
        anchors.push(custos_rpc::AnchorInfo {
            leaf_index,
            chain_id: r.chain_id,
            tx_hash: format!("0x{}", hex::encode(r.tx_hash)),
            block_number: r.block_number,
            block_hash: format!("0x{}", hex::encode(r.block_hash)),
            block_time_s: r.block_time_s,
            tree_size: r.tree_size,
            root: r.root,
            checkpoint,
        });
    }
    Ok(custos_rpc::AnchorPage { anchors, next })
}

/// `custos anchor verify`: checks an anchored checkpoint against the public chain.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The network's genesis: the trust root (cosigner keys, origin, threshold).
    #[arg(long)]
    pub genesis: PathBuf,
    /// The EVM JSON-RPC endpoint to check the anchor on.
    #[arg(long = "evm-rpc")]
    pub evm_rpc: String,
    /// A Custos node to read the receipt and checkpoint from (not trusted: both are
    /// verified). Ignored with `--receipt`.
    #[arg(long, default_value = "http://127.0.0.1:8600")]
    pub rpc: String,
    /// Leaf index of the receipt on the private chain; the latest without it.
    #[arg(long)]
    pub leaf: Option<u64>,
    /// A receipt as JSON (an element of `custos_getAnchors`' `anchors`), instead of
    /// asking a node.
    #[arg(long)]
    pub receipt: Option<PathBuf>,
    /// The checkpoint note file, when the receipt file carries none.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Blocks (the anchor's included) the anchor must have on the public chain.
    #[arg(long, default_value_t = 1)]
    pub confirmations: u64,
}

/// The receipt of an anchor as the RPC shows it.
pub fn receipt_from_info(info: &custos_rpc::AnchorInfo) -> anyhow::Result<AnchorReceipt> {
    let bytes32 = |field: &str, text: &str| -> anyhow::Result<[u8; 32]> {
        let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text))
            .with_context(|| format!("{field} is not hex"))?;
        bytes
            .try_into()
            .map_err(|_| anyhow!("{field} must be 32 bytes"))
    };
    Ok(AnchorReceipt {
        chain_id: info.chain_id,
        tx_hash: bytes32("tx_hash", &info.tx_hash)?,
        block_number: info.block_number,
        block_hash: bytes32("block_hash", &info.block_hash)?,
        block_time_s: info.block_time_s,
        tree_size: info.tree_size,
        root: info.root,
    })
}

/// Runs `custos anchor verify`; returns the verified facts for the command's output.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<serde_json::Value> {
    use custos_rpc::CustosApiClient as _;
    let genesis = crate::node::load_genesis(&args.genesis)?;
    let policy = genesis.checkpoint_policy()?;
    let info: custos_rpc::AnchorInfo = match &args.receipt {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not an anchor receipt", path.display()))?
        }
        None => {
            let client = crate::send::client(&args.rpc)?;
            let mut from = args.leaf.unwrap_or(0);
            let mut latest = None;
            loop {
                let page = client
                    .get_anchors(Some(from))
                    .await
                    .with_context(|| format!("asking {} for anchors", args.rpc))?;
                if let Some(leaf) = args.leaf {
                    latest = page.anchors.into_iter().find(|a| a.leaf_index == leaf);
                    break;
                }
                latest = page.anchors.last().cloned().or(latest);
                match page.next {
                    Some(next) => from = next,
                    None => break,
                }
            }
            latest.ok_or_else(|| match args.leaf {
                Some(leaf) => anyhow!("{} has no anchor receipt at leaf {leaf}", args.rpc),
                None => anyhow!("{} holds no anchor receipt yet", args.rpc),
            })?
        }
    };
    let note = match (&args.checkpoint, &info.checkpoint) {
        (Some(path), _) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Some(note)) => note.clone(),
        (None, None) => bail!(
            "the receipt carries no checkpoint note; give it with --checkpoint (custos_getCheckpoint of tree size {})",
            info.tree_size
        ),
    };
    let receipt = receipt_from_info(&info)?;
    let anchored = custos_ledger::anchor::verify_on_chain(
        &args.evm_rpc,
        note.as_bytes(),
        &receipt,
        &policy,
        args.confirmations,
    )
    .await?;
    let cosigners: Vec<String> = anchored
        .checkpoint
        .cosignatures()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    Ok(serde_json::json!({
        "verified": true,
        "origin": genesis.log_origin.as_str(),
        "tree_size": info.tree_size,
        "root": info.root,
        "cosigners": cosigners,
        "chain_id": info.chain_id,
        "tx_hash": info.tx_hash,
        "block_number": info.block_number,
        "block_hash": info.block_hash,
        "block_time_s": anchored.block_time_s,
        "confirmations": anchored.confirmations,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_ledger::c2sp::{CosignatureSigner, KeyName, Note};
    use custos_ledger::hash::Sha256Hash;
    use custos_ledger::merkle::{Root, empty_root};
    use custos_ledger::storage::MemoryBackend;

    const ORIGIN: &str = "custos.test/anchor";

    fn signers() -> Vec<CosignatureSigner> {
        (0..4u8)
            .map(|i| {
                CosignatureSigner::from_seed(KeyName::new(format!("v{i}")).unwrap(), &[i + 1; 32])
                    .unwrap()
            })
            .collect()
    }

    fn note(signers: &[CosignatureSigner], root: Root) -> Vec<u8> {
        let checkpoint = Checkpoint::new(ORIGIN, root).unwrap();
        let lines = signers
            .iter()
            .map(|s| s.cosign(&checkpoint, 1_700_000_000).unwrap())
            .collect();
        Note::new(checkpoint.to_text(), lines)
            .unwrap()
            .encode()
            .into_bytes()
    }

    /// Only a stored checkpoint with 2f+1 valid cosignatures on the log's own root is
    /// ever handed to the anchoring transaction.
    #[test]
    fn short_quorums_and_foreign_roots_are_never_anchor_candidates() {
        let signers = signers();
        let policy = QuorumPolicy::new(
            ORIGIN,
            signers.iter().map(CosignatureSigner::verifier).collect(),
            3,
        )
        .unwrap();
        let ledger = Ledger::open(MemoryBackend::new()).unwrap();
        assert!(candidate(&ledger, &policy).unwrap().is_none());
        let log = Root {
            tree_size: 0,
            hash: empty_root(),
        };

        ledger.put_checkpoint(0, &note(&signers[..2], log)).unwrap();
        let error = candidate(&ledger, &policy).unwrap_err();
        assert!(
            format!("{error:#}").contains("valid cosignatures from 2"),
            "{error:#}"
        );

        let foreign = Root {
            tree_size: 0,
            hash: Sha256Hash([7; 32]),
        };
        ledger
            .put_checkpoint(0, &note(&signers[..3], foreign))
            .unwrap();
        let error = candidate(&ledger, &policy).unwrap_err();
        assert!(
            format!("{error:#}").contains("but the log's root"),
            "{error:#}"
        );

        // A forged line from a fourth key that is not a cosigner does not count either.
        let outsider =
            CosignatureSigner::from_seed(KeyName::new("v3").unwrap(), &[99; 32]).unwrap();
        let mixed = [signers[0].clone(), signers[1].clone(), outsider];
        ledger.put_checkpoint(0, &note(&mixed, log)).unwrap();
        assert!(candidate(&ledger, &policy).is_err());

        ledger.put_checkpoint(0, &note(&signers[1..], log)).unwrap();
        let chosen = candidate(&ledger, &policy).unwrap().unwrap();
        assert_eq!(chosen.checkpoint.root(), log);
    }

    #[test]
    fn replacement_fees_rise_enough_to_replace() {
        assert_eq!(bump(100), 126);
        assert!(bump(1_000_000_000) * 100 >= 1_000_000_000 * 110);
        assert_eq!(bump(u128::MAX), u128::MAX / 100 + 1);
    }

    #[test]
    fn only_the_control_center_anchors_unless_configured_to_take_over() {
        let mut config = AnchorConfig {
            rpc_url: "http://127.0.0.1:8545".into(),
            chain_id: 31337,
            key_file: PathBuf::from("k"),
            confirmations: 2,
            interval_ms: 10_000,
            takeover_after_ms: None,
        };
        assert_eq!(mode(&config, Role::ControlCenter), Some(Duration::ZERO));
        assert_eq!(mode(&config, Role::Warning), None);
        config.takeover_after_ms = Some(60_000);
        assert_eq!(mode(&config, Role::Insurer), Some(Duration::from_secs(60)));
    }
}
