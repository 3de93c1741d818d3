//! Checking an anchor receipt against an EVM JSON-RPC endpoint.

use std::time::Duration;

use alloy::consensus::Transaction as _;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::{Provider, ProviderBuilder};

use super::{AnchorCalldata, AnchorError, OnChainAnchor, verify_anchored_checkpoint};
use crate::c2sp::QuorumPolicy;
use crate::message::AnchorReceipt;

/// Longest wait for one JSON-RPC answer: an endpoint that does not answer is reported,
/// not waited for.
pub const EVM_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks `note` and `receipt` as [`verify_anchored_checkpoint`] does, then asks the EVM
/// JSON-RPC endpoint at `rpc_url` that: it serves the receipt's chain; the receipt's
/// transaction succeeded in the receipt's block (number and hash), which is still on the
/// chain with the receipt's time; its calldata anchors exactly this checkpoint (origin,
/// size, root); and at least `min_confirmations` blocks (the anchor's included) are on
/// the chain.
pub async fn verify_on_chain(
    rpc_url: &str,
    note: &[u8],
    receipt: &AnchorReceipt,
    policy: &QuorumPolicy,
    min_confirmations: u64,
) -> Result<OnChainAnchor, AnchorError> {
    let checkpoint = verify_anchored_checkpoint(note, receipt, policy)?;
    let url = rpc_url.parse().map_err(|e| AnchorError::Endpoint {
        url: rpc_url.to_string(),
        reason: format!("not a URL: {e}"),
    })?;
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(url);
    let ask = |what: &'static str| asking(rpc_url, what);

    let chain_id = timed(provider.get_chain_id())
        .await
        .map_err(ask("eth_chainId"))?;
    if chain_id != receipt.chain_id {
        return Err(AnchorError::ChainId {
            expected: receipt.chain_id,
            actual: chain_id,
        });
    }
    let tx_hash = B256::from(receipt.tx_hash);
    let missing = || AnchorError::TransactionMissing {
        tx_hash: hex::encode(receipt.tx_hash),
    };
    let tx = timed(provider.get_transaction_by_hash(tx_hash))
        .await
        .map_err(ask("eth_getTransactionByHash"))?
        .ok_or_else(missing)?;
    let in_block = (tx.block_number, tx.block_hash);
    if in_block
        != (
            Some(receipt.block_number),
            Some(B256::from(receipt.block_hash)),
        )
    {
        return Err(AnchorError::TransactionBlock {
            receipt_number: receipt.block_number,
            receipt_hash: hex::encode(receipt.block_hash),
            actual_number: tx.block_number.unwrap_or(0),
            actual_hash: tx.block_hash.map(hex::encode).unwrap_or_default(),
        });
    }
    let expected = AnchorCalldata::for_checkpoint(checkpoint.checkpoint());
    let input = tx.input();
    let carried = AnchorCalldata::decode(input)?;
    if carried != expected {
        return Err(AnchorError::CalldataMismatch {
            tree_size: carried.tree_size,
            root: carried.root,
            origin_hash: carried.origin_hash,
        });
    }
    let tx_receipt = timed(provider.get_transaction_receipt(tx_hash))
        .await
        .map_err(ask("eth_getTransactionReceipt"))?
        .ok_or_else(missing)?;
    if !tx_receipt.status() {
        return Err(AnchorError::TransactionFailed);
    }
    check_block(&provider, receipt, rpc_url).await?;
    let latest = timed(provider.get_block_number())
        .await
        .map_err(ask("eth_blockNumber"))?;
    let confirmations = latest.saturating_sub(receipt.block_number) + 1;
    if confirmations < min_confirmations {
        return Err(AnchorError::Confirmations {
            confirmations,
            required: min_confirmations,
        });
    }
    Ok(OnChainAnchor {
        checkpoint,
        confirmations,
        block_time_s: receipt.block_time_s,
    })
}

/// Checks that the receipt's block is on the chain with the receipt's hash and time.
async fn check_block<P: Provider>(
    provider: &P,
    receipt: &AnchorReceipt,
    rpc_url: &str,
) -> Result<(), AnchorError> {
    let block = timed(provider.get_block_by_number(BlockNumberOrTag::Number(receipt.block_number)))
        .await
        .map_err(asking(rpc_url, "eth_getBlockByNumber"))?;
    let receipt_hash = hex::encode(receipt.block_hash);
    let Some(block) = block else {
        return Err(AnchorError::BlockHash {
            number: receipt.block_number,
            receipt: receipt_hash,
            actual: String::new(),
        });
    };
    if block.header.hash.0 != receipt.block_hash {
        return Err(AnchorError::BlockHash {
            number: receipt.block_number,
            receipt: receipt_hash,
            actual: hex::encode(block.header.hash),
        });
    }
    if block.header.timestamp != receipt.block_time_s {
        return Err(AnchorError::BlockTime {
            number: receipt.block_number,
            receipt: receipt.block_time_s,
            actual: block.header.timestamp,
        });
    }
    Ok(())
}

/// Names the endpoint and the call in a failure.
fn asking<'a>(rpc_url: &'a str, what: &'static str) -> impl Fn(String) -> AnchorError + 'a {
    move |e| AnchorError::Endpoint {
        url: rpc_url.to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// Awaits one JSON-RPC call for at most [`EVM_REQUEST_TIMEOUT`].
async fn timed<T, E: std::fmt::Display>(
    call: impl std::future::IntoFuture<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(EVM_REQUEST_TIMEOUT, call.into_future()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {} s",
            EVM_REQUEST_TIMEOUT.as_secs()
        )),
    }
}
