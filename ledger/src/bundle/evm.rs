//! Gathering [`AnchorFacts`] from an EVM JSON-RPC endpoint.

use alloy::consensus::Transaction as _;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::{Provider, ProviderBuilder};

use super::{AnchorFacts, BlockFacts, TransactionFacts};
use crate::anchor::{AnchorError, EVM_REQUEST_TIMEOUT};
use crate::message::AnchorReceipt;

/// Asks the endpoint at `rpc_url` what [`super::check_anchor_facts`] needs about
/// `receipt`: the chain id, the transaction and its status, the block at the receipt's
/// number and the latest block number. Each call waits at most [`EVM_REQUEST_TIMEOUT`].
pub async fn fetch_anchor_facts(
    rpc_url: &str,
    receipt: &AnchorReceipt,
) -> Result<AnchorFacts, AnchorError> {
    let url = rpc_url.parse().map_err(|e| AnchorError::Endpoint {
        url: rpc_url.to_string(),
        reason: format!("not a URL: {e}"),
    })?;
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(url);
    let ask = |what: &'static str| {
        move |e: String| AnchorError::Endpoint {
            url: rpc_url.to_string(),
            reason: format!("{what}: {e}"),
        }
    };
    let chain_id = timed(provider.get_chain_id())
        .await
        .map_err(ask("eth_chainId"))?;
    let tx_hash = B256::from(receipt.tx_hash);
    let transaction = match timed(provider.get_transaction_by_hash(tx_hash))
        .await
        .map_err(ask("eth_getTransactionByHash"))?
    {
        Some(tx) => {
            let succeeded = timed(provider.get_transaction_receipt(tx_hash))
                .await
                .map_err(ask("eth_getTransactionReceipt"))?
                .map(|r| r.status());
            Some(TransactionFacts {
                block_number: tx.block_number,
                block_hash: tx.block_hash.map(|h| h.0),
                input: tx.input().to_vec(),
                succeeded,
            })
        }
        None => None,
    };
    let block = timed(provider.get_block_by_number(BlockNumberOrTag::Number(receipt.block_number)))
        .await
        .map_err(ask("eth_getBlockByNumber"))?
        .map(|b| BlockFacts {
            hash: b.header.hash.0,
            time_s: b.header.timestamp,
        });
    let latest_block = timed(provider.get_block_number())
        .await
        .map_err(ask("eth_blockNumber"))?;
    Ok(AnchorFacts {
        chain_id,
        transaction,
        block,
        latest_block,
    })
}

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
