//! Checking an anchor receipt against an EVM JSON-RPC endpoint.

use std::time::Duration;

use super::{AnchorError, OnChainAnchor, verify_anchored_checkpoint};
use crate::bundle::{check_anchor_facts, fetch_anchor_facts};
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
/// the chain. The chain is asked by [`fetch_anchor_facts`] and the answers judged by
/// [`check_anchor_facts`], exactly as bundle verification does.
pub async fn verify_on_chain(
    rpc_url: &str,
    note: &[u8],
    receipt: &AnchorReceipt,
    policy: &QuorumPolicy,
    min_confirmations: u64,
) -> Result<OnChainAnchor, AnchorError> {
    let checkpoint = verify_anchored_checkpoint(note, receipt, policy)?;
    let facts = fetch_anchor_facts(rpc_url, receipt).await?;
    let confirmations =
        check_anchor_facts(receipt, checkpoint.checkpoint(), &facts, min_confirmations)?;
    Ok(OnChainAnchor {
        checkpoint,
        confirmations,
        block_time_s: receipt.block_time_s,
    })
}
