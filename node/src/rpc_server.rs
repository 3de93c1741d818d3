//! The JSON-RPC server: the [`CustosApiServer`] implementation.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use jsonrpsee::Extensions;
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;

use custos_ledger::block::Entry;
use custos_ledger::codec::Bytes;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::Envelope;
use custos_rpc::token::{Caller, RpcToken};
use custos_rpc::{
    AnchorPage, AuditLogPage, BlockInfo, CheckpointInfo, ConsistencyProofInfo, CosignersInfo,
    CustosApiServer, InclusionProofInfo, MAX_REQUEST_BYTES, MAX_SUBMIT_BATCH, MessageInfo,
    MessageRef, NodeStatus, PayloadInfo, QueryFilter, QueryPage, SubmitMessage, SubmitResponse,
    SubmitResult, SubmitStatus, codes,
};

use crate::audit::AuditRead;
use crate::mempool::Rejection;
use crate::reads::{ReadError, Reader};
use crate::runtime::Shared;

/// The RPC service.
#[derive(Debug, Clone)]
pub struct RpcService {
    shared: Arc<Shared>,
    rate: Arc<std::sync::Mutex<crate::rate::OrgRateLimiter>>,
}

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(codes::INVALID_INPUT, message.into(), None::<()>)
}

fn internal(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(codes::INTERNAL, message.into(), None::<()>)
}

/// The `Authorization` header of the HTTP request a call came in, for the methods that
/// need a caller.
#[derive(Clone, Debug)]
struct AuthHeader(String);

/// Copies the `Authorization` header into the request's extensions, which jsonrpsee hands
/// to the methods declared `with_extensions`.
#[derive(Clone, Debug)]
struct AuthLayer;

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner }
    }
}

/// The service [`AuthLayer`] wraps around the RPC service.
#[derive(Clone, Debug)]
struct AuthService<S> {
    inner: S,
}

impl<S, B> tower::Service<jsonrpsee::server::HttpRequest<B>> for AuthService<S>
where
    S: tower::Service<jsonrpsee::server::HttpRequest<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: jsonrpsee::server::HttpRequest<B>) -> Self::Future {
        let header = request
            .headers()
            .get("authorization")
            .map(|v| AuthHeader(String::from_utf8_lossy(v.as_bytes()).into_owned()));
        if let Some(header) = header {
            request.extensions_mut().insert(header);
        }
        self.inner.call(request)
    }
}

impl RpcService {
    /// Queues the record of a served read; refuses the read when it cannot be recorded.
    fn audit(
        &self,
        caller: &Caller,
        method: &'static str,
        leaf_indexes: Vec<u64>,
    ) -> RpcResult<()> {
        let read = AuditRead {
            reader: caller.org.clone(),
            reader_key: caller.key_id,
            method,
            leaf_indexes,
            read_at: crate::runtime::now_ms(),
        };
        self.shared
            .audit
            .lock()
            .expect("audit lock")
            .push(read, std::time::Instant::now())
            .map_err(|e| ErrorObjectOwned::owned(codes::BUSY, e.to_string(), None::<()>))
    }

    /// The organisation the call's credential proves.
    fn authenticate(&self, ext: &Extensions) -> RpcResult<Caller> {
        let unauthenticated =
            |m: String| ErrorObjectOwned::owned(codes::UNAUTHENTICATED, m, None::<()>);
        let header = ext.get::<AuthHeader>().ok_or_else(|| {
            unauthenticated(
                "this method needs an organisation credential: send the HTTP header \
                 \"Authorization: Custos <token>\" with a token from `custos token`"
                    .into(),
            )
        })?;
        let caller = {
            let chain = self.shared.chain.read().expect("chain lock");
            RpcToken::verify_header(
                &header.0,
                chain.membership(),
                chain.genesis.network.as_str(),
                crate::runtime::now_ms(),
            )
            .map_err(|e| unauthenticated(format!("credential refused: {e}")))?
        };
        self.rate
            .lock()
            .expect("rate lock")
            .take(caller.org.as_str(), std::time::Instant::now())
            .map_err(|e| ErrorObjectOwned::owned(codes::RATE_LIMITED, e.to_string(), None::<()>))?;
        Ok(caller)
    }

    /// Runs a public read on a blocking thread (RocksDB reads block) against the ledger,
    /// without holding the chain lock while it reads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader<'_, custos_ledger::storage::RocksBackend>) -> Result<T, ReadError>
        + Send
        + 'static,
    ) -> RpcResult<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let (ledger, origin, name) = {
                let chain = shared.chain.read().expect("chain lock");
                let me = shared.key.public().key_id();
                let name = chain
                    .genesis
                    .validators
                    .get(&me)
                    .map(|v| v.name.to_string())
                    .unwrap_or_default();
                (
                    chain.ledger.clone(),
                    chain.genesis.log_origin.to_string(),
                    name,
                )
            };
            let now_s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let reader = Reader {
                ledger: &ledger,
                origin: &origin,
                validator_name: &name,
                key: &shared.key,
                now_s,
            };
            f(&reader)
        })
        .await
        .map_err(|e| internal(format!("read failed: {e}")))?
        .map_err(|e| ErrorObjectOwned::owned(e.code(), e.to_string(), None::<()>))
    }
}

/// Decodes one submitted message; the error says which part is wrong.
fn decode_submission(message: &SubmitMessage) -> Result<Entry, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope_bytes = b64
        .decode(message.envelope.as_bytes())
        .map_err(|e| format!("envelope is not base64: {e}"))?;
    let envelope = Envelope::decode(&envelope_bytes).map_err(|e| format!("envelope: {e}"))?;
    let payload = b64
        .decode(message.payload.as_bytes())
        .map_err(|e| format!("payload is not base64: {e}"))?;
    let payload = Bytes::new(payload).map_err(|e| e.to_string())?;
    Ok(Entry { envelope, payload })
}

#[async_trait]
impl CustosApiServer for RpcService {
    async fn submit(&self, messages: Vec<SubmitMessage>) -> RpcResult<SubmitResponse> {
        if messages.len() > MAX_SUBMIT_BATCH {
            return Err(invalid(format!(
                "{} messages in one call; at most {MAX_SUBMIT_BATCH}",
                messages.len()
            )));
        }
        let mut results: Vec<Option<SubmitResult>> = vec![None; messages.len()];
        let mut decoded = Vec::new();
        let mut positions = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            match decode_submission(message) {
                Ok(entry) => {
                    decoded.push(entry);
                    positions.push(index);
                }
                Err(error) => {
                    results[index] = Some(SubmitResult {
                        index,
                        status: SubmitStatus::Rejected,
                        leaf_hash: None,
                        error: Some(error),
                    })
                }
            }
        }
        let hashes: Vec<_> = decoded.iter().map(|e| e.envelope.leaf_hash()).collect();
        let shared = self.shared.clone();
        // Signature checks are CPU work: keep them off the async workers.
        let (outcomes, admitted) = tokio::task::spawn_blocking(move || shared.admit(decoded))
            .await
            .map_err(|e| internal(format!("admission failed: {e}")))?;
        self.shared.forward(admitted).await;
        for ((index, hash), outcome) in positions.into_iter().zip(hashes).zip(outcomes) {
            let (status, error) = match outcome {
                Ok(_) => (SubmitStatus::Admitted, None),
                Err(Rejection::Duplicate(_)) => (SubmitStatus::Duplicate, None),
                Err(e @ Rejection::Busy { .. }) => (SubmitStatus::Busy, Some(e.to_string())),
                Err(e) => (SubmitStatus::Rejected, Some(e.to_string())),
            };
            results[index] = Some(SubmitResult {
                index,
                status,
                leaf_hash: Some(hash),
                error,
            });
        }
        let results: Vec<SubmitResult> = results
            .into_iter()
            .map(|r| r.expect("every message answered"))
            .collect();
        let admitted = results
            .iter()
            .filter(|r| r.status == SubmitStatus::Admitted)
            .count();
        Ok(SubmitResponse { admitted, results })
    }

    async fn status(&self) -> RpcResult<NodeStatus> {
        let chain = self.shared.chain.read().expect("chain lock");
        let head = chain.head().map_err(|e| internal(e.to_string()))?;
        let me = self.shared.key.public().key_id();
        let validator = chain
            .genesis
            .validators
            .get(&me)
            .ok_or_else(|| internal("this node's key is not a validator"))?;
        let mut peers: Vec<String> = self
            .shared
            .peers
            .read()
            .expect("peers lock")
            .values()
            .cloned()
            .collect();
        peers.sort();
        Ok(NodeStatus {
            network: chain.genesis.network.to_string(),
            genesis_hash: self.shared.genesis_hash,
            validator: validator.name.to_string(),
            organisation: validator.org.to_string(),
            role: validator.role,
            height: head.height,
            log_size: head.log.tree_size,
            log_root: head.log.hash,
            last_block_time_ms: head.time.0,
            peers,
            mempool_messages: self.shared.mempool.lock().expect("mempool lock").len(),
        })
    }

    async fn get_block(&self, height: u64) -> RpcResult<BlockInfo> {
        self.read(move |r| r.block(height)).await
    }

    async fn get_cosigners(&self) -> RpcResult<CosignersInfo> {
        let chain = self.shared.chain.read().expect("chain lock");
        crate::cosign::cosigners_info(&chain.genesis).map_err(|e| internal(e.to_string()))
    }

    async fn get_anchors(&self, from: Option<u64>) -> RpcResult<AnchorPage> {
        let ledger = self.shared.chain.read().expect("chain lock").ledger.clone();
        tokio::task::spawn_blocking(move || crate::anchor::anchors_page(&ledger, from.unwrap_or(0)))
            .await
            .map_err(|e| internal(format!("read failed: {e}")))?
            .map_err(|e| internal(e.to_string()))
    }

    async fn get_checkpoint(&self, tree_size: Option<u64>) -> RpcResult<CheckpointInfo> {
        self.read(move |r| r.checkpoint(tree_size)).await
    }

    async fn get_inclusion_proof(
        &self,
        leaf_hash: Sha256Hash,
        tree_size: Option<u64>,
    ) -> RpcResult<InclusionProofInfo> {
        self.read(move |r| r.inclusion_proof(leaf_hash, tree_size))
            .await
    }

    async fn get_message(&self, ext: &Extensions, message: MessageRef) -> RpcResult<MessageInfo> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let info = self.read(move |r| r.message(&reader, &message)).await?;
        self.audit(&caller, "custos_getMessage", vec![info.leaf_index])?;
        Ok(info)
    }

    async fn get_payload(&self, ext: &Extensions, message: MessageRef) -> RpcResult<PayloadInfo> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let info = self.read(move |r| r.payload(&reader, &message)).await?;
        self.audit(&caller, "custos_getPayload", vec![info.leaf_index])?;
        Ok(info)
    }

    async fn subscribe_blocks(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        use tokio::sync::broadcast::error::RecvError;
        let mut heights = self.shared.committed.subscribe();
        let sink = pending.accept().await?;
        loop {
            let height = tokio::select! {
                () = sink.closed() => return Ok(()),
                height = heights.recv() => match height {
                    Ok(height) => height,
                    Err(RecvError::Lagged(missed)) => {
                        return Err(format!(
                            "subscriber fell {missed} blocks behind; resubscribe and read the \
                             gap with custos_getBlock"
                        )
                        .into());
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
            };
            let info = self
                .read(move |r| r.block(height))
                .await
                .map_err(|e| e.message().to_owned())?;
            let raw = serde_json::value::to_raw_value(&info)?;
            if sink.send(raw).await.is_err() {
                return Ok(());
            }
        }
    }

    async fn query(&self, ext: &Extensions, filter: QueryFilter) -> RpcResult<QueryPage> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let page = self.read(move |r| r.query(&reader, &filter)).await?;
        if !page.messages.is_empty() {
            let indexes = page.messages.iter().map(|m| m.leaf_index).collect();
            self.audit(&caller, "custos_query", indexes)?;
        }
        Ok(page)
    }

    async fn get_audit_log(
        &self,
        ext: &Extensions,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<AuditLogPage> {
        let caller = self.authenticate(ext)?;
        self.read(move |r| r.audit_log(&caller, after, limit)).await
    }

    async fn get_consistency_proof(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> RpcResult<ConsistencyProofInfo> {
        self.read(move |r| r.consistency_proof(old_size, new_size))
            .await
    }
}

/// Starts the JSON-RPC server (HTTP and WebSocket) on `address`.
pub async fn start(
    shared: Arc<Shared>,
    address: SocketAddr,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(MAX_REQUEST_BYTES)
        .max_subscriptions_per_connection(custos_rpc::MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(AuthLayer))
        .build(address)
        .await?;
    let local = server.local_addr()?;
    let mut module = RpcService {
        shared,
        rate: Arc::default(),
    }
    .into_rpc();
    // A document that does not describe what is served is a build defect: refuse to start.
    custos_rpc::check_openrpc(custos_rpc::OPENRPC_DOCUMENT, module.method_names())?;
    let document: serde_json::Value = serde_json::from_str(custos_rpc::OPENRPC_DOCUMENT)?;
    module.register_method(custos_rpc::DISCOVER_METHOD, move |_, _, _| {
        Ok::<_, ErrorObjectOwned>(document.clone())
    })?;
    let handle = server.start(module);
    tracing::info!(address = %local, "serving JSON-RPC");
    Ok((local, handle))
}
