//! Early warnings as STIX 2.1 bundles (OASIS STIX 2.1, §8 bundle, §4 SDOs).
//!
//! A warning whose payload is already a STIX bundle is exported verbatim, so the export
//! hashes to the digest the ledger notarized. Any other payload (a MISP event, plain text)
//! is wrapped: a `report` published at the commit time, created by an `identity` of the
//! publishing organisation, referring to an `attack-pattern` per ATT&CK id of the message,
//! with the leaf hash and payload digest as an external reference. Wrapped objects get
//! ids derived from the leaf hash, so every validator exports the same bundle.

use serde_json::{Value, json};

use custos_ledger::hash::Sha256Hash;
use custos_ledger::incident::rfc3339_utc;
use custos_ledger::message::{Message, UnixMillis};

/// Longest payload text carried in a wrapped report's description; the full payload stays
/// readable with `custos_getPayload` and is named by its digest.
pub const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;

/// Whether `value` has the shape of a STIX 2.1 bundle: `type` bundle, a `bundle--` id and
/// an `objects` list whose members each have a `type` and an `id`.
pub fn is_bundle(value: &Value) -> bool {
    value["type"] == "bundle"
        && value["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("bundle--"))
        && value["objects"].as_array().is_some_and(|objects| {
            objects
                .iter()
                .all(|o| o["type"].is_string() && o["id"].is_string())
        })
}

/// A STIX identifier `type--uuid` derived from `seed`: a version 4 (random-form) UUID
/// whose bits come from SHA-256, so the same seed always gives the same id.
fn stix_id(kind: &str, seed: &[u8]) -> String {
    let mut input = b"custos/v1/stix-id/".to_vec();
    input.extend_from_slice(kind.as_bytes());
    input.push(0);
    input.extend_from_slice(seed);
    let digest = Sha256Hash::digest(&input);
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_bytes()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{kind}--{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The bundle for a warning: `(verbatim, bundle)`.
pub fn export(
    message: &Message,
    payload: &[u8],
    leaf_hash: &Sha256Hash,
    committed_at: UnixMillis,
    publisher: &str,
) -> (bool, Value) {
    if let Ok(value) = serde_json::from_slice::<Value>(payload)
        && is_bundle(&value)
    {
        return (true, value);
    }
    let time = rfc3339_utc(committed_at);
    let identity_id = stix_id("identity", publisher.as_bytes());
    let identity = json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id,
        "created": time,
        "modified": time,
        "name": publisher,
        "identity_class": "organization",
    });
    let mut objects = vec![identity];
    let mut refs = vec![Value::String(identity_id.clone())];
    for attack in message.attack_ids.iter() {
        let id = stix_id("attack-pattern", format!("{leaf_hash}/{attack}").as_bytes());
        refs.push(Value::String(id.clone()));
        objects.push(json!({
            "type": "attack-pattern",
            "spec_version": "2.1",
            "id": id,
            "created_by_ref": identity_id,
            "created": time,
            "modified": time,
            "name": attack.as_str(),
            "external_references": [
                { "source_name": "mitre-attack", "external_id": attack.as_str() }
            ],
        }));
    }
    let mut end = payload.len().min(MAX_DESCRIPTION_BYTES);
    let text = loop {
        // Cut at a character boundary when the payload is text.
        match std::str::from_utf8(&payload[..end]) {
            Ok(text) => break text.to_owned(),
            Err(e) if e.error_len().is_none() && end > 0 => end = e.valid_up_to(),
            Err(_) => break String::from_utf8_lossy(&payload[..end]).into_owned(),
        }
    };
    let description = if text.is_empty() {
        format!(
            "Custos early warning from {publisher} ({} bytes of {}).",
            payload.len(),
            message.payload.media_type
        )
    } else {
        text
    };
    let report = json!({
        "type": "report",
        "spec_version": "2.1",
        "id": stix_id("report", leaf_hash.as_bytes()),
        "created_by_ref": identity_id,
        "created": time,
        "modified": time,
        "name": format!("Custos early warning {}", &leaf_hash.to_string()[..16]),
        "description": description,
        "report_types": ["threat-report"],
        "published": time,
        "object_refs": refs,
        "external_references": [{
            "source_name": "custos",
            "external_id": leaf_hash.to_string(),
            "description": format!(
                "RFC 9162 leaf hash of the notarized warning; the hash is of its {} payload",
                message.payload.media_type
            ),
            "hashes": { "SHA-256": message.payload.sha256.to_string() },
        }],
    });
    objects.push(report);
    let bundle = json!({
        "type": "bundle",
        "id": stix_id("bundle", leaf_hash.as_bytes()),
        "objects": objects,
    });
    (false, bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_version_4_uuids() {
        let id = stix_id("report", b"x");
        assert_eq!(id, stix_id("report", b"x"));
        assert_ne!(id, stix_id("report", b"y"));
        assert_ne!(id[8..], stix_id("identity", b"x")[10..]);
        let uuid = id.strip_prefix("report--").unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn only_bundle_shaped_json_is_taken_verbatim() {
        assert!(is_bundle(
            &json!({"type": "bundle", "id": "bundle--1", "objects": []})
        ));
        assert!(!is_bundle(
            &json!({"type": "bundle", "id": "report--1", "objects": []})
        ));
        assert!(!is_bundle(&json!({"type": "bundle", "id": "bundle--1"})));
        assert!(!is_bundle(
            &json!({"type": "bundle", "id": "bundle--1", "objects": [{"type": "x"}]})
        ));
    }
}
