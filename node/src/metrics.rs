//! Prometheus metrics, served as text on a local port.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tracing::{debug, info};

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Height being decided.
    pub height: Gauge,
    /// Consensus round at that height.
    pub round: Gauge,
    /// Evidence log size.
    pub log_size: Gauge,
    /// Messages waiting in the mempool.
    pub mempool_messages: Gauge,
    /// Connected validators.
    pub peers: Gauge,
    /// Messages committed since start.
    pub committed_messages: Counter,
    /// Seconds from starting a height to committing its block.
    pub commit_latency: Histogram,
    /// Tree size of the latest quorum checkpoint stored.
    pub checkpoint_size: Gauge,
    /// Tree size of the latest anchor this node's anchor service confirmed.
    pub anchored_size: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("custos");
        let height = Gauge::default();
        let round = Gauge::default();
        let log_size = Gauge::default();
        let mempool_messages = Gauge::default();
        let peers = Gauge::default();
        let committed_messages = Counter::default();
        let checkpoint_size = Gauge::default();
        let anchored_size = Gauge::default();
        // 1 ms to ~16 s.
        let commit_latency = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register("height", "Height being decided", height.clone());
        registry.register(
            "round",
            "Consensus round at the current height",
            round.clone(),
        );
        registry.register("log_size", "Evidence log size (leaves)", log_size.clone());
        registry.register(
            "mempool_messages",
            "Messages waiting in the mempool",
            mempool_messages.clone(),
        );
        registry.register("peers", "Connected validators", peers.clone());
        registry.register(
            "committed_messages",
            "Messages committed since start",
            committed_messages.clone(),
        );
        registry.register(
            "commit_latency_seconds",
            "Time from starting a height to committing its block",
            commit_latency.clone(),
        );
        registry.register(
            "checkpoint_size",
            "Tree size of the latest checkpoint cosigned by 2f+1 validators",
            checkpoint_size.clone(),
        );
        registry.register(
            "anchored_size",
            "Tree size of the latest anchor confirmed by this node's anchor service",
            anchored_size.clone(),
        );
        Self {
            registry,
            checkpoint_size,
            anchored_size,
            height,
            round,
            log_size,
            mempool_messages,
            peers,
            committed_messages,
            commit_latency,
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Largest request read from a metrics client; a scrape is one short GET.
const MAX_SCRAPE_REQUEST_BYTES: usize = 8 * 1024;

/// Serves `GET /metrics` (any path) on `address` until the process ends.
pub async fn serve(
    metrics: Arc<crate::runtime::Shared>,
    address: SocketAddr,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address).await?;
    info!(%address, "serving metrics");
    loop {
        let (mut socket, peer) = listener.accept().await?;
        let shared = metrics.clone();
        tokio::spawn(async move {
            let mut request = vec![0u8; MAX_SCRAPE_REQUEST_BYTES];
            // One read is enough for a scrape request; the body is never used.
            if socket.read(&mut request).await.is_err() {
                return;
            }
            let body = shared.metrics.render();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(e) = socket.write_all(response.as_bytes()).await {
                debug!(%peer, error = %e, "metrics client went away");
            }
        });
    }
}
