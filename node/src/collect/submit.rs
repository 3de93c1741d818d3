//! Submits spooled messages to the nodes until each is confirmed committed.
//!
//! The protocol uses only `custos_submit`:
//! - pending messages are sent in order, in batches, to one node at a time; `admitted` and
//!   `duplicate` mean the node holds the message, `committed` that it is committed;
//! - to learn what was committed, the agent periodically resubmits one message it sent
//!   earlier (a probe); `committed` for sequence number *n* confirms every message up to
//!   *n*, because the network admits a collector's messages only in chain order;
//! - a node that does not answer, or answers that it lacks the messages before (it
//!   restarted with an empty mempool, or gossip has not reached it), makes the agent
//!   resubmit from the first unconfirmed message, to the next node when the first failed.
//!   Resubmitting is safe: a message already committed is answered `committed` and a
//!   message already waiting `duplicate`, so each sequence number is committed once.
//!
//! Failures are retried with exponential backoff. A refusal that resubmitting cannot fix
//! (the collector is not enrolled, its chain forked) is counted and reported; the agent
//! keeps the messages and retries at the longest interval, so enrolling the collector
//! later lets them through.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use tokio::sync::Notify;

use custos_rpc::{CustosApiClient as _, SubmitMessage, SubmitResponse, SubmitStatus};

use super::Stats;
use super::spool::{Spool, Spooled};

/// Bytes of spooled messages in one submission, so that its base64 form stays well under
/// the node's request limit.
pub const MAX_SUBMIT_BYTES: usize = (custos_rpc::MAX_REQUEST_BYTES as usize) / 2;

/// Timing of the submitter.
#[derive(Clone, Copy, Debug)]
pub struct SubmitTiming {
    /// Messages per submission.
    pub batch_messages: usize,
    /// Submitted, unconfirmed messages before the submitter waits for commits.
    pub max_in_flight: u64,
    /// How often to probe for commitment.
    pub confirm_interval: Duration,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How long to wait for new messages before looking again.
    pub poll: Duration,
}

/// What one answer means for the submitter.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Carry on.
    Continue,
    /// Wait before trying again (busy, or the node lacks earlier messages).
    Backoff,
    /// The node refused a message for good.
    Refused(String),
}

/// How a rejection reads: `Some(E)` when the node lacks our earlier messages and wants
/// sequence number E next (resubmit from the first unconfirmed one), `None` when it
/// refuses the message itself. Relies on the wording of `mempool::Rejection::Sequence`
/// ("must send sequence E next, got G", with E < G), which the node's tests pin.
pub fn lacks_earlier(error: &str) -> Option<u64> {
    let rest = error.split("must send sequence ").nth(1)?;
    let mut numbers = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>());
    match (numbers.next(), numbers.next()) {
        (Some(Ok(expected)), Some(Ok(got))) if expected < got => Some(expected),
        _ => None,
    }
}

/// Submits the spool's pending messages; see the module docs.
#[derive(Debug)]
pub struct Submitter {
    nodes: Vec<(String, HttpClient)>,
    current: usize,
    spool: Arc<Mutex<Spool>>,
    stats: Arc<Stats>,
    notify: Arc<Notify>,
    timing: SubmitTiming,
    /// Highest sequence number the current node is known to hold.
    acked: u64,
    /// `acked` at the previous probe: the next probe asks about it.
    probe_floor: u64,
    last_probe: Instant,
    backoff: Duration,
}

impl Submitter {
    /// A submitter for `nodes` (JSON-RPC URLs).
    pub fn new(
        urls: &[String],
        request_timeout: Duration,
        spool: Arc<Mutex<Spool>>,
        stats: Arc<Stats>,
        notify: Arc<Notify>,
        timing: SubmitTiming,
    ) -> anyhow::Result<Self> {
        let nodes = urls
            .iter()
            .map(|url| {
                let client = HttpClientBuilder::default()
                    .max_request_size(custos_rpc::MAX_REQUEST_BYTES)
                    .max_response_size(custos_rpc::MAX_REQUEST_BYTES)
                    .request_timeout(request_timeout)
                    .build(url)
                    .map_err(|e| anyhow::anyhow!("node URL {url}: {e}"))?;
                Ok((url.clone(), client))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let confirmed = spool.lock().expect("spool lock").confirmed();
        Ok(Self {
            nodes,
            current: 0,
            spool,
            stats,
            notify,
            timing,
            acked: confirmed,
            probe_floor: confirmed,
            last_probe: Instant::now(),
            backoff: timing.retry_initial,
        })
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        loop {
            let (confirmed, tip) = {
                let spool = self.spool.lock().expect("spool lock");
                (spool.confirmed(), spool.tip().0)
            };
            self.acked = self.acked.max(confirmed);
            let can_send = self.acked < tip && self.acked - confirmed < self.timing.max_in_flight;
            let probe_due = self.acked > confirmed
                && (self.last_probe.elapsed() >= self.timing.confirm_interval || !can_send);
            let next = if can_send {
                self.send_next().await
            } else if probe_due {
                let wait = self
                    .timing
                    .confirm_interval
                    .saturating_sub(self.last_probe.elapsed());
                tokio::time::sleep(wait).await;
                self.probe(confirmed).await
            } else {
                let _ = tokio::time::timeout(self.timing.poll, self.notify.notified()).await;
                Next::Continue
            };
            match next {
                Next::Continue => self.backoff = self.timing.retry_initial,
                Next::Backoff => self.wait_backoff().await,
                Next::Refused(error) => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    *self.stats.last_refusal.lock().expect("stats lock") = Some(error.clone());
                    tracing::error!(node = %self.nodes[self.current].0, %error, "a node refused a message; it stays in the spool and is retried");
                    self.acked = self.spool.lock().expect("spool lock").confirmed();
                    self.backoff = self.timing.retry_max;
                    self.wait_backoff().await;
                }
            }
        }
    }

    async fn wait_backoff(&mut self) {
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(self.timing.retry_max);
    }

    fn failover(&mut self, error: &str) {
        self.stats.submit_errors.fetch_add(1, Ordering::Relaxed);
        let from = self.current;
        self.current = (self.current + 1) % self.nodes.len();
        tracing::warn!(node = %self.nodes[from].0, next = %self.nodes[self.current].0, %error, "node unreachable; failing over");
        // The next node may lack what the last one held: start over from the first
        // unconfirmed message.
        self.acked = self.spool.lock().expect("spool lock").confirmed();
        self.probe_floor = self.acked;
    }

    async fn submit(&self, batch: &[Spooled]) -> Result<SubmitResponse, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let messages = batch
            .iter()
            .map(|s| SubmitMessage {
                envelope: b64.encode(&s.envelope),
                payload: b64.encode(&s.payload),
            })
            .collect();
        let (_, client) = &self.nodes[self.current];
        let response = client.submit(messages).await.map_err(|e| e.to_string())?;
        if response.results.len() != batch.len() {
            return Err(format!(
                "node answered {} results for {} messages",
                response.results.len(),
                batch.len()
            ));
        }
        Ok(response)
    }

    async fn send_next(&mut self) -> Next {
        let batch = {
            let mut spool = self.spool.lock().expect("spool lock");
            spool.read_pending(self.acked + 1, self.timing.batch_messages, MAX_SUBMIT_BYTES)
        };
        let batch = match batch {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => return Next::Continue,
            Err(e) => return Next::Refused(format!("reading the spool: {e}")),
        };
        match self.submit(&batch).await {
            Ok(response) => self.apply(&batch, &response),
            Err(error) => {
                self.failover(&error);
                Next::Backoff
            }
        }
    }

    /// Applies a node's answers, in order: a committed message confirms all before it.
    fn apply(&mut self, batch: &[Spooled], response: &SubmitResponse) -> Next {
        let mut confirm = None;
        let mut next = Next::Continue;
        for (spooled, result) in batch.iter().zip(&response.results) {
            match result.status {
                SubmitStatus::Committed => {
                    confirm = Some(spooled.sequence);
                    self.acked = self.acked.max(spooled.sequence);
                }
                SubmitStatus::Admitted | SubmitStatus::Duplicate => {
                    self.acked = self.acked.max(spooled.sequence);
                }
                SubmitStatus::Busy => {
                    next = Next::Backoff;
                    break;
                }
                SubmitStatus::Rejected => {
                    let error = result.error.clone().unwrap_or_default();
                    next = if lacks_earlier(&error).is_some() {
                        Next::Backoff
                    } else {
                        Next::Refused(format!("sequence {}: {error}", spooled.sequence))
                    };
                    break;
                }
            }
        }
        if let Some(sequence) = confirm {
            self.confirm(sequence);
        }
        if next != Next::Continue {
            // Resend from the first unconfirmed message once the node can take it.
            self.acked = self.spool.lock().expect("spool lock").confirmed();
        }
        next
    }

    fn confirm(&mut self, sequence: u64) {
        let mut spool = self.spool.lock().expect("spool lock");
        let before = spool.confirmed();
        if sequence <= before {
            return;
        }
        if let Err(e) = spool.confirm(sequence) {
            // Confirmation is bookkeeping: failing to delete a segment loses nothing, the
            // messages are resubmitted and answered "committed" after a restart.
            tracing::warn!(error = %e, "could not record a confirmation in the spool");
        }
        self.stats
            .committed
            .fetch_add(spool.confirmed() - before, Ordering::Relaxed);
    }

    /// Asks whether the message acknowledged at the previous probe is committed.
    async fn probe(&mut self, confirmed: u64) -> Next {
        self.last_probe = Instant::now();
        let target = if self.probe_floor > confirmed {
            self.probe_floor
        } else {
            self.acked
        };
        self.probe_floor = self.acked;
        let batch = {
            let mut spool = self.spool.lock().expect("spool lock");
            spool.read_pending(target, 1, usize::MAX)
        };
        let batch = match batch {
            Ok(batch) if batch.first().is_some_and(|s| s.sequence == target) => batch,
            Ok(_) => return Next::Continue,
            Err(e) => return Next::Refused(format!("reading the spool: {e}")),
        };
        match self.submit(&batch).await {
            Ok(response) => self.apply(&batch, &response),
            Err(error) => {
                self.failover(&error);
                Next::Backoff
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gap_before_our_message_is_worth_resending() {
        assert_eq!(
            lacks_earlier("author 0011223344556677 must send sequence 5 next, got 9"),
            Some(5)
        );
        // Our sequence number is below the node's: the chain forked; resending cannot help.
        assert_eq!(
            lacks_earlier("author 0011223344556677 must send sequence 9 next, got 5"),
            None
        );
        assert_eq!(lacks_earlier("author 0011 is not enrolled"), None);
    }
}
