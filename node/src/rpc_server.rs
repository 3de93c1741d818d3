//! The JSON-RPC server: the [`CustosApiServer`] implementation.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use jsonrpsee::Extensions;
use jsonrpsee::MethodResponse;
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification};
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::middleware::rpc::{RpcServiceBuilder, RpcServiceT};
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Request};

use custos_ledger::block::Entry;
use custos_ledger::codec::Bytes;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::Envelope;
use custos_rpc::token::{Caller, RpcToken};
use custos_rpc::{
    AnchorPage, AuditLogPage, BlockInfo, CheckpointInfo, ConsistencyProofInfo, CosignersInfo,
    CustosApiServer, DeadlineEvent, DeadlineList, DeadlineNotice, DeadlineQuery, IncidentPage,
    IncidentQuery, InclusionProofInfo, MAX_REQUEST_BYTES, MAX_SUBMIT_BATCH, MessageInfo,
    MessageRef, NodeStatus, ParamNames, PayloadInfo, QueryFilter, QueryPage, SubmitMessage,
    SubmitResponse, SubmitResult, SubmitStatus, WarningExport, codes,
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

/// Refuses parameters a method does not take (more positional parameters than it
/// declares, unknown names) with invalid params, before jsonrpsee's decoding, which
/// would ignore them: a caller who passes a parameter the node ignores is misreading
/// the API, and should be told.
#[derive(Clone, Debug)]
struct ParamCheck<S> {
    inner: S,
    names: Arc<ParamNames>,
}

impl<S> ParamCheck<S> {
    fn refusal(&self, request: &Request<'_>) -> Option<ErrorObjectOwned> {
        self.names
            .check(
                request.method_name(),
                request.params.as_ref().map(|p| p.get()),
            )
            .err()
            .map(|message| {
                ErrorObjectOwned::owned(
                    jsonrpsee::types::error::INVALID_PARAMS_CODE,
                    message,
                    None::<()>,
                )
            })
    }
}

impl<S> RpcServiceT for ParamCheck<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
        let refusal = self.refusal(&request);
        let inner = self.inner.clone();
        async move {
            match refusal {
                Some(error) => MethodResponse::error(request.id, error),
                None => inner.call(request).await,
            }
        }
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let refused = match entry {
                Ok(BatchEntry::Call(request)) => self
                    .refusal(request)
                    .map(|error| BatchEntryErr::new(request.id.clone(), error)),
                _ => None,
            };
            if let Some(refused) = refused {
                *entry = Err(refused);
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl std::future::Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(notification)
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

    /// Maps an author key to its organisation (or validator) name, for warning exports.
    fn publisher(&self) -> impl Fn(&custos_ledger::crypto::KeyId) -> String + Send + 'static {
        let shared = self.shared.clone();
        move |key| {
            use custos_ledger::membership::Author;
            let chain = shared.chain.read().expect("chain lock");
            match chain.membership().get(key).map(|m| &m.author) {
                Some(Author::Organisation { org, .. } | Author::Validator { org, .. }) => {
                    org.to_string()
                }
                Some(Author::Collector { client, .. }) => client.to_string(),
                None => key.to_string(),
            }
        }
    }

    /// Waits for the next committed height, or ends the subscription: when the client
    /// leaves (`Ok(None)`), the credential expires or the subscriber falls behind (`Err`).
    async fn next_height(
        sink: &jsonrpsee::SubscriptionSink,
        heights: &mut tokio::sync::broadcast::Receiver<u64>,
        expiry: std::pin::Pin<&mut tokio::time::Sleep>,
        caller: &Caller,
    ) -> Result<Option<u64>, String> {
        use tokio::sync::broadcast::error::RecvError;
        tokio::select! {
            () = sink.closed() => Ok(None),
            () = expiry => Err(format!(
                "the credential expired at {} ms; subscribe again with a new token",
                caller.expires_at.0
            )),
            height = heights.recv() => match height {
                Ok(height) => Ok(Some(height)),
                Err(RecvError::Lagged(missed)) => Err(format!(
                    "subscriber fell {missed} blocks behind; resubscribe"
                )),
                Err(RecvError::Closed) => Ok(None),
            },
        }
    }

    /// A timer that fires when `caller`'s credential expires. Skew is tolerated when a
    /// credential is checked, not for how long it serves: a subscription ends when the
    /// node's clock passes the expiry.
    fn expiry(caller: &Caller) -> tokio::time::Sleep {
        let valid_ms = caller
            .expires_at
            .0
            .saturating_sub(crate::runtime::now_ms().0);
        tokio::time::sleep(std::time::Duration::from_millis(valid_ms))
    }

    /// Queues the access audit of `items` (by their leaf indexes), then sends them:
    /// a delivery that cannot be audited is not made. `Ok(false)` when the subscriber
    /// has gone.
    async fn deliver_audited<T: serde::Serialize>(
        &self,
        sink: &jsonrpsee::SubscriptionSink,
        caller: &Caller,
        method: &'static str,
        items: Vec<T>,
        leaf_index: impl Fn(&T) -> u64,
    ) -> Result<bool, String> {
        if items.is_empty() {
            return Ok(true);
        }
        let indexes = items.iter().map(leaf_index).collect();
        self.audit(caller, method, indexes)
            .map_err(|e| e.message().to_owned())?;
        for item in items {
            let raw = serde_json::value::to_raw_value(&item).map_err(|e| e.to_string())?;
            if sink.send(raw).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
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
                Err(Rejection::Committed(_)) => (SubmitStatus::Committed, None),
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

    async fn export_evidence(
        &self,
        ext: &Extensions,
        request: custos_rpc::ExportRequest,
    ) -> RpcResult<custos_ledger::bundle::Bundle> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let genesis = self
            .shared
            .chain
            .read()
            .expect("chain lock")
            .genesis
            .clone();
        let now_ms = crate::runtime::now_ms().0;
        let bundle = self
            .read(move |r| r.export_evidence(&reader, &request, &genesis, now_ms))
            .await?;
        let leaves = bundle.entries.iter().map(|e| e.leaf_index).collect();
        // Queued before the answer leaves: no audit, no bundle.
        self.audit(&caller, "custos_exportEvidence", leaves)?;
        Ok(bundle)
    }

    async fn verify_claim(
        &self,
        ext: &Extensions,
        claim: MessageRef,
    ) -> RpcResult<custos_rpc::ClaimVerification> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let genesis = self
            .shared
            .chain
            .read()
            .expect("chain lock")
            .genesis
            .clone();
        let now_ms = crate::runtime::now_ms().0;
        let (verdict, leaves) = self
            .read(move |r| r.verify_claim(&reader, &claim, &genesis, now_ms))
            .await?;
        self.audit(&caller, "custos_verifyClaim", leaves)?;
        Ok(custos_rpc::ClaimVerification {
            holds: verdict.holds,
            markdown: custos_ledger::claim::markdown(&verdict),
            verdict: serde_json::to_value(&verdict).map_err(|e| internal(e.to_string()))?,
        })
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

    async fn subscribe_messages(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        filter: QueryFilter,
    ) -> SubscriptionResult {
        let caller = match self.authenticate(ext) {
            Ok(caller) => caller,
            Err(refusal) => {
                pending.reject(refusal).await;
                return Ok(());
            }
        };
        let checked = {
            let (caller, filter) = (caller.clone(), filter.clone());
            self.read(move |r| r.check_subscription(&caller, &filter))
                .await
        };
        if let Err(refusal) = checked {
            pending.reject(refusal).await;
            return Ok(());
        }
        let mut heights = self.shared.committed.subscribe();
        let sink = pending.accept().await?;
        let expiry = Self::expiry(&caller);
        tokio::pin!(expiry);
        while let Some(height) =
            Self::next_height(&sink, &mut heights, expiry.as_mut(), &caller).await?
        {
            let found = {
                let (caller, filter) = (caller.clone(), filter.clone());
                self.read(move |r| r.block_matches(&caller, &filter, height))
                    .await
                    .map_err(|e| e.message().to_owned())?
            };
            let method = "custos_subscribeMessages";
            if !self
                .deliver_audited(&sink, &caller, method, found, |m| m.leaf_index)
                .await?
            {
                break;
            }
        }
        Ok(())
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

    async fn list_incidents(
        &self,
        ext: &Extensions,
        query: IncidentQuery,
    ) -> RpcResult<IncidentPage> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let page = self.read(move |r| r.incidents(&reader, &query)).await?;
        let leaves: Vec<u64> = page
            .incidents
            .iter()
            .flat_map(|i| i.records.clone())
            .collect();
        if !leaves.is_empty() {
            self.audit(&caller, "custos_listIncidents", leaves)?;
        }
        Ok(page)
    }

    async fn get_incident(
        &self,
        ext: &Extensions,
        client: String,
        incident_id: String,
        as_of_ms: Option<u64>,
    ) -> RpcResult<custos_ledger::incident::IncidentView> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let view = self
            .read(move |r| r.incident(&reader, &client, &incident_id, as_of_ms))
            .await?;
        self.audit(&caller, "custos_getIncident", view.records.clone())?;
        Ok(view)
    }

    async fn deadlines(&self, ext: &Extensions, query: DeadlineQuery) -> RpcResult<DeadlineList> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let list = self.read(move |r| r.deadlines(&reader, &query)).await?;
        let leaves: Vec<u64> = list.deadlines.iter().map(|d| d.opened_by_leaf).collect();
        if !leaves.is_empty() {
            self.audit(&caller, "custos_deadlines", leaves)?;
        }
        Ok(list)
    }

    async fn subscribe_deadlines(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        query: DeadlineQuery,
    ) -> SubscriptionResult {
        let caller = match self.authenticate(ext) {
            Ok(caller) => caller,
            Err(refusal) => {
                pending.reject(refusal).await;
                return Ok(());
            }
        };
        if query.as_of_ms.is_some() {
            pending
                .reject(invalid(
                    "as_of_ms evaluates custos_deadlines at a past time; a subscription follows \
                     the chain, so leave it out",
                ))
                .await;
            return Ok(());
        }
        let checked = {
            let (caller, query) = (caller.clone(), query.clone());
            self.read(move |r| r.deadlines(&caller, &query)).await
        };
        let first = match checked {
            Ok(first) => first,
            Err(refusal) => {
                pending.reject(refusal).await;
                return Ok(());
            }
        };
        let mut heights = self.shared.committed.subscribe();
        let sink = pending.accept().await?;
        let expiry = Self::expiry(&caller);
        tokio::pin!(expiry);
        // Each duty is announced once per event: (client, incident, opening leaf, duty).
        type DutyKey = (String, String, u64, custos_ledger::incident::Duty);
        let mut announced: std::collections::HashSet<(DutyKey, bool)> = Default::default();
        let mut list = first;
        let mut height = self
            .read(|r| Ok(r.ledger.head()?.map_or(0, |h| h.height)))
            .await
            .map_err(|e| e.message().to_owned())?;
        loop {
            let mut notices = Vec::new();
            for deadline in list.deadlines {
                let passed = deadline.state == custos_ledger::incident::DutyState::Overdue;
                let key = (
                    deadline.client.clone(),
                    deadline.incident_id.clone(),
                    deadline.opened_by_leaf,
                    deadline.duty,
                );
                if announced.insert((key, passed)) {
                    notices.push(DeadlineNotice {
                        event: if passed {
                            DeadlineEvent::Passed
                        } else {
                            DeadlineEvent::Approaching
                        },
                        height,
                        as_of_ms: list.as_of_ms,
                        deadline,
                    });
                }
            }
            let method = "custos_subscribeDeadlines";
            if !self
                .deliver_audited(&sink, &caller, method, notices, |n| {
                    n.deadline.opened_by_leaf
                })
                .await?
            {
                return Ok(());
            }
            height = match Self::next_height(&sink, &mut heights, expiry.as_mut(), &caller).await? {
                Some(height) => height,
                None => return Ok(()),
            };
            let (caller, query) = (caller.clone(), query.clone());
            list = self
                .read(move |r| {
                    let time = r.ledger.header(height)?.map_or(0, |h| h.time.0);
                    let query = DeadlineQuery {
                        as_of_ms: Some(time),
                        ..query
                    };
                    r.deadlines(&caller, &query)
                })
                .await
                .map_err(|e| e.message().to_owned())?;
        }
    }

    async fn risk_score(
        &self,
        ext: &Extensions,
        client: String,
        from_ms: u64,
        to_ms: Option<u64>,
    ) -> RpcResult<custos_ledger::risk::RiskAssessment> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let weights = self.shared.risk_weights;
        let assessment = self
            .read(move |r| r.risk(&reader, &client, from_ms, to_ms, &weights))
            .await?;
        let mut leaves: Vec<u64> = assessment
            .sub_scores
            .iter()
            .flat_map(|s| s.factors.iter().flat_map(|f| f.leaves.iter().copied()))
            .collect();
        leaves.sort_unstable();
        leaves.dedup();
        if !leaves.is_empty() {
            self.audit(&caller, "custos_riskScore", leaves)?;
        }
        Ok(assessment)
    }

    async fn export_warning(
        &self,
        ext: &Extensions,
        message: MessageRef,
    ) -> RpcResult<WarningExport> {
        let caller = self.authenticate(ext)?;
        let reader = caller.clone();
        let publisher = self.publisher();
        let export = self
            .read(move |r| r.warning(&reader, &message, &publisher))
            .await?;
        self.audit(&caller, "custos_exportWarning", vec![export.leaf_index])?;
        Ok(export)
    }

    async fn subscribe_warnings(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
    ) -> SubscriptionResult {
        let caller = match self.authenticate(ext) {
            Ok(caller) => caller,
            Err(refusal) => {
                pending.reject(refusal).await;
                return Ok(());
            }
        };
        let mut heights = self.shared.committed.subscribe();
        let sink = pending.accept().await?;
        let expiry = Self::expiry(&caller);
        tokio::pin!(expiry);
        while let Some(height) =
            Self::next_height(&sink, &mut heights, expiry.as_mut(), &caller).await?
        {
            let found = {
                let (caller, publisher) = (caller.clone(), self.publisher());
                self.read(move |r| r.block_warnings(&caller, height, &publisher))
                    .await
                    .map_err(|e| e.message().to_owned())?
            };
            let method = "custos_subscribeWarnings";
            if !self
                .deliver_audited(&sink, &caller, method, found, |w| w.leaf_index)
                .await?
            {
                break;
            }
        }
        Ok(())
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
    let names = Arc::new(ParamNames::from_openrpc(custos_rpc::OPENRPC_DOCUMENT)?);
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(AuthLayer))
        .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(move |inner| ParamCheck {
            inner,
            names: names.clone(),
        }))
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
