//! What the service hands to the node, and the bounds on what it may hold for a slow node.

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;

use super::Topic;
use super::error::ReplyError;

/// Something that happened on the network.
#[derive(Debug)]
pub enum P2pEvent {
    /// A gossip message from another validator. Our own publications are not echoed.
    Gossip {
        /// The topic it was published on.
        topic: Topic,
        /// The publisher's validator public key (not the neighbour that relayed it). For
        /// mempool batches, which are not relayed, it is the Noise-authenticated sender;
        /// for consensus and cosignature messages, which may be relayed, it is the
        /// publisher a validator named. Use it as a hint (whom to ask, which key to check
        /// a signature against), never as proof of who wrote the content.
        from: [u8; 32],
        /// The message as published.
        data: InboundBytes,
    },
    /// A block-sync request from another validator. Answer with [`Reply::send`]; dropping
    /// the reply makes the request fail promptly on the requester's side.
    Request {
        /// The requester's validator public key (authenticated by the Noise handshake).
        from: [u8; 32],
        /// The request as sent.
        data: InboundBytes,
        /// Where the answer goes.
        reply: Reply,
    },
    /// A validator is connected and subscribed to every topic: gossip to and from it flows.
    PeerConnected([u8; 32]),
    /// The last connection to a validator closed.
    PeerDisconnected([u8; 32]),
}

/// Bytes received from the network and not yet taken by the node.
///
/// While the node has not taken them (with [`InboundBytes::into_vec`] or by dropping the
/// value) they count against the service's byte budget for queued events
/// ([`super::EVENT_QUEUE_BYTES_MAX`]); when the budget is spent, further gossip is dropped.
pub struct InboundBytes {
    data: Vec<u8>,
    /// What was charged to `budget` (fixed at creation; `into_vec` empties `data`).
    charged: usize,
    budget: Arc<AtomicUsize>,
}

impl InboundBytes {
    /// Takes the bytes, releasing their share of the queue budget.
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
        // `Drop` releases the budget for the original length.
    }
}

impl Deref for InboundBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl AsRef<[u8]> for InboundBytes {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl std::fmt::Debug for InboundBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InboundBytes({} bytes)", self.data.len())
    }
}

/// Charged length of a value: at least one byte, so empty messages also count.
fn charge(len: usize) -> usize {
    len.max(1)
}

impl Drop for InboundBytes {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.charged, Ordering::AcqRel);
    }
}

/// Bytes of queued event data, shared by the service and every [`InboundBytes`].
#[derive(Debug, Clone)]
pub(crate) struct ByteBudget {
    used: Arc<AtomicUsize>,
    max: usize,
}

impl ByteBudget {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            used: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// Wraps `data` if the budget has room for it, else gives it back.
    pub(crate) fn wrap(&self, data: Vec<u8>) -> Result<InboundBytes, Vec<u8>> {
        let cost = charge(data.len());
        let reserved = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(cost).filter(|total| *total <= self.max)
            });
        match reserved {
            Ok(_) => Ok(InboundBytes {
                data,
                charged: cost,
                budget: self.used.clone(),
            }),
            Err(_) => Err(data),
        }
    }

    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// The answer slot of a sync request.
#[derive(Debug)]
pub struct Reply {
    sender: oneshot::Sender<Vec<u8>>,
    max_bytes: usize,
}

impl Reply {
    pub(crate) fn new(max_bytes: usize) -> (Self, oneshot::Receiver<Vec<u8>>) {
        let (sender, receiver) = oneshot::channel();
        (Self { sender, max_bytes }, receiver)
    }

    /// Sends the answer. Refuses one larger than `max_sync_bytes` (the requester would
    /// refuse it anyway); the request then fails on the requester's side.
    pub fn send(self, response: Vec<u8>) -> Result<(), ReplyError> {
        if response.len() > self.max_bytes {
            return Err(ReplyError::TooLarge {
                len: response.len(),
                max: self.max_bytes,
            });
        }
        self.sender.send(response).map_err(|_| ReplyError::Expired)
    }
}

/// Peer events waiting for room in the event channel.
///
/// Peer events are never dropped, but they are coalesced so the queue stays bounded (at
/// most two entries per validator): when a validator flaps while the node is not reading,
/// the node sees the first change and, if the final state differs from it, the final one.
/// Its view of who is connected is therefore always right once the queue drains.
#[derive(Debug, Default)]
pub(crate) struct PeerEventQueue {
    queue: VecDeque<([u8; 32], bool)>,
}

impl PeerEventQueue {
    /// Queues `connected` for `key`; consecutive events for one key alternate.
    pub(crate) fn push(&mut self, key: [u8; 32], connected: bool) {
        let pending: Vec<usize> = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| *k == key)
            .map(|(i, _)| i)
            .collect();
        match pending.as_slice() {
            // [a, !a] + a: the node ends where the first event takes it; drop the flap.
            [_, second] => {
                self.queue.remove(*second);
            }
            _ => self.queue.push_back((key, connected)),
        }
    }

    pub(crate) fn pop(&mut self) -> Option<P2pEvent> {
        self.queue.pop_front().map(|(key, connected)| {
            if connected {
                P2pEvent::PeerConnected(key)
            } else {
                P2pEvent::PeerDisconnected(key)
            }
        })
    }

    /// Puts back an event that could not be sent.
    pub(crate) fn unpop(&mut self, event: P2pEvent) {
        match event {
            P2pEvent::PeerConnected(key) => self.queue.push_front((key, true)),
            P2pEvent::PeerDisconnected(key) => self.queue.push_front((key, false)),
            _ => {}
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_past_its_bound_and_is_released_when_taken() {
        let budget = ByteBudget::new(10);
        let a = budget.wrap(vec![0; 6]).unwrap();
        assert_eq!(budget.used(), 6);
        assert_eq!(budget.wrap(vec![0; 5]).unwrap_err().len(), 5);
        let b = budget.wrap(vec![0; 4]).unwrap();
        assert_eq!(budget.used(), 10);
        assert_eq!(a.into_vec().len(), 6);
        assert_eq!(budget.used(), 4);
        drop(b);
        assert_eq!(budget.used(), 0);
        // Empty messages are charged one byte, so a flood of them is bounded too.
        let empties: Vec<_> = (0..10).map(|_| budget.wrap(Vec::new()).unwrap()).collect();
        assert!(budget.wrap(Vec::new()).is_err());
        drop(empties);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn reply_refuses_oversized_answers_and_reports_expiry() {
        let (reply, receiver) = Reply::new(4);
        assert_eq!(
            reply.send(vec![0; 5]),
            Err(ReplyError::TooLarge { len: 5, max: 4 })
        );
        drop(receiver);
        let (reply, receiver) = Reply::new(4);
        drop(receiver);
        assert_eq!(reply.send(vec![1]), Err(ReplyError::Expired));
        let (reply, mut receiver) = Reply::new(4);
        reply.send(vec![1, 2]).unwrap();
        assert_eq!(receiver.try_recv().unwrap(), vec![1, 2]);
    }

    fn drain(queue: &mut PeerEventQueue) -> Vec<(u8, bool)> {
        std::iter::from_fn(|| queue.pop())
            .map(|event| match event {
                P2pEvent::PeerConnected(k) => (k[0], true),
                P2pEvent::PeerDisconnected(k) => (k[0], false),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn peer_events_are_coalesced_to_two_per_peer_and_keep_the_final_state() {
        let mut queue = PeerEventQueue::default();
        let (a, b) = ([1; 32], [2; 32]);
        queue.push(a, true);
        queue.push(b, true);
        queue.push(a, false);
        queue.push(a, true); // [up, down] + up -> [up]
        queue.push(a, false); // [up] + down -> [up, down]
        queue.push(a, true); // -> [up]
        queue.push(a, false); // -> [up, down]
        assert!(queue.len() <= 2 * 2);
        assert_eq!(drain(&mut queue), vec![(1, true), (2, true), (1, false)]);

        // A flap that ends where it started still shows as a flap.
        queue.push(b, false);
        queue.push(b, true);
        assert_eq!(drain(&mut queue), vec![(2, false), (2, true)]);

        for _ in 0..1000 {
            queue.push(a, false);
            queue.push(a, true);
        }
        assert!(queue.len() <= 2);
        let events = drain(&mut queue);
        assert_eq!(events.last(), Some(&(1, true)));
    }

    #[test]
    fn unpop_restores_the_front() {
        let mut queue = PeerEventQueue::default();
        queue.push([1; 32], true);
        queue.push([2; 32], true);
        let first = queue.pop().unwrap();
        queue.unpop(first);
        assert_eq!(drain(&mut queue), vec![(1, true), (2, true)]);
    }
}
