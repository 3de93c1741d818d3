//! Signs events as the collector's next messages: sequence number plus one, `prev` the
//! leaf hash of the message before.

use custos_ledger::codec::{List, Text, TooLong};
use custos_ledger::crypto::{KeyId, SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::hash_leaf;
use custos_ledger::message::{
    Kind, Message, NetworkId, OrgId, PayloadDescriptor, SourceFormat, UnixMillis,
};

use super::parse::Parsed;
use super::spool::{SourceMark, SpoolRecord};

/// The collector's signing state: its key and where its chain ends.
#[derive(Debug)]
pub struct Signer {
    key: SecretKey,
    author: KeyId,
    network: NetworkId,
    client: OrgId,
    tip: (u64, Sha256Hash),
}

impl Signer {
    /// A signer continuing the chain at `tip` (sequence number and leaf hash of the last
    /// message; `(0, ZERO)` for a new collector).
    pub fn new(
        key: SecretKey,
        network: &str,
        client: &str,
        tip: (u64, Sha256Hash),
    ) -> Result<Self, TooLong> {
        Ok(Self {
            author: key.public().key_id(),
            key,
            network: Text::new(network)?,
            client: Text::new(client)?,
            tip,
        })
    }

    /// The collector's key id.
    pub fn author(&self) -> KeyId {
        self.author
    }

    /// Sequence number and leaf hash of the last message signed.
    pub fn tip(&self) -> (u64, Sha256Hash) {
        self.tip
    }

    /// Signs an event as evidence. `raw` must fit a payload (the sources guarantee it).
    pub fn evidence(
        &mut self,
        parsed: &Parsed,
        raw: Vec<u8>,
        observed_at: UnixMillis,
        mark: Option<SourceMark>,
    ) -> SpoolRecord {
        let (sequence, prev) = (self.tip.0 + 1, self.tip.1);
        let message = Message {
            network: self.network.clone(),
            author: self.author,
            client: self.client.clone(),
            sequence,
            prev,
            kind: Kind::Evidence {
                evidence: parsed.kind,
            },
            format: parsed.format,
            occurred_at: parsed.occurred_at,
            observed_at,
            severity: parsed.severity.clone(),
            rule_id: parsed.rule_id.clone(),
            host: parsed.host.clone(),
            attack_ids: parsed.attack_ids.clone(),
            references: List::empty(),
            parse_error: parsed.parse_error.clone(),
            payload: PayloadDescriptor::of(parsed.media_type.clone(), &raw),
        };
        self.seal(message, raw, mark)
    }

    /// Signs a heartbeat whose payload is `status` (JSON).
    pub fn heartbeat(
        &mut self,
        interval_ms: u64,
        status: Vec<u8>,
        observed_at: UnixMillis,
    ) -> SpoolRecord {
        let (sequence, prev) = (self.tip.0 + 1, self.tip.1);
        let message = Message {
            network: self.network.clone(),
            author: self.author,
            client: self.client.clone(),
            sequence,
            prev,
            kind: Kind::Heartbeat { interval_ms },
            format: SourceFormat::Custos,
            occurred_at: Some(observed_at),
            observed_at,
            severity: None,
            rule_id: None,
            host: None,
            attack_ids: List::empty(),
            references: List::empty(),
            parse_error: None,
            payload: PayloadDescriptor::of(Text::new("application/json").expect("short"), &status),
        };
        self.seal(message, status, None)
    }

    fn seal(
        &mut self,
        message: Message,
        payload: Vec<u8>,
        mark: Option<SourceMark>,
    ) -> SpoolRecord {
        let sequence = message.sequence;
        let envelope = Signed::sign(message, &self.key).leaf_bytes();
        self.tip = (sequence, hash_leaf(&envelope));
        SpoolRecord {
            sequence,
            envelope,
            payload,
            mark,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::parse::parse;
    use custos_ledger::message::Envelope;

    #[test]
    fn messages_chain_and_verify() {
        let key = SecretKey::generate();
        let public = key.public();
        let mut signer = Signer::new(key, "net", "client", (0, Sha256Hash::ZERO)).unwrap();
        let line =
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed"
                .to_vec();
        let parsed = parse(SourceFormat::Syslog5424, &line);
        let first = signer.evidence(&parsed, line.clone(), UnixMillis(5), None);
        let second = signer.heartbeat(1000, b"{}".to_vec(), UnixMillis(6));
        let a = Envelope::decode(&first.envelope).unwrap();
        let b = Envelope::decode(&second.envelope).unwrap();
        a.verify(&public).unwrap();
        b.verify(&public).unwrap();
        assert_eq!((a.body.sequence, a.body.prev), (1, Sha256Hash::ZERO));
        assert_eq!((b.body.sequence, b.body.prev), (2, a.leaf_hash()));
        assert_eq!(signer.tip(), (2, b.leaf_hash()));
        a.body.payload.check(&first.payload).unwrap();
        assert_eq!(first.payload, line);
        assert_eq!(a.body.format, SourceFormat::Syslog5424);
        assert_eq!(
            a.body.host.as_ref().unwrap().as_str(),
            "mymachine.example.com"
        );
    }
}
