//! The JSON formats: Suricata EVE, Wazuh alerts, ECS, Zeek JSON, Windows event records
//! rendered as JSON, STIX 2.1 and MISP.

use custos_ledger::message::SourceFormat;
use serde_json::{Map, Value};

use super::{Fields, ParseFailure, format_name, severity, time};

/// The event as a JSON object.
fn object(raw: &[u8], format: SourceFormat) -> Result<Map<String, Value>, ParseFailure> {
    // serde_json bounds nesting at 128 levels, so deep garbage cannot exhaust the stack.
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| ParseFailure::Json(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ParseFailure::NotObject {
            found: json_kind(&other),
            format: format_name(format),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `path` (dot-separated) looked up as nested objects, or as one flattened dotted key as
/// some shippers write ECS (`"event.severity": 3`).
fn lookup<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = map.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut current = map.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// A string, or a number written as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer, or a string holding one (Windows renderings write `"Level": "4"`).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A timestamp written as ISO 8601 text or as epoch seconds.
fn timestamp(value: &Value) -> Option<custos_ledger::message::UnixMillis> {
    match value {
        Value::String(s) => time::iso8601(s).or_else(|| time::epoch_seconds(s)),
        Value::Number(n) => n.as_f64().and_then(time::epoch_seconds_f64),
        _ => None,
    }
}

/// Every string in `value` (a string or an array of strings), for id lists.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn required<'a>(
    map: &'a Map<String, Value>,
    field: &'static str,
    format: SourceFormat,
) -> Result<&'a Value, ParseFailure> {
    lookup(map, field).ok_or(ParseFailure::MissingField {
        field,
        format: format_name(format),
    })
}

/// Suricata EVE: one JSON object per line with `event_type`.
pub(crate) fn suricata(raw: &[u8]) -> Result<Fields, ParseFailure> {
    let format = SourceFormat::SuricataEve;
    let map = object(raw, format)?;
    let event_type = required(&map, "event_type", format)?;
    let mut fields = Fields {
        alert: event_type.as_str() == Some("alert"),
        occurred_at: lookup(&map, "timestamp").and_then(timestamp),
        severity: lookup(&map, "alert.severity")
            .and_then(integer)
            .and_then(severity::suricata),
        rule_id: lookup(&map, "alert.signature_id").and_then(text),
        // `host` is the sensor name Suricata adds when configured; `hostname` appears in
        // some shippers' output.
        host: lookup(&map, "host")
            .or_else(|| lookup(&map, "hostname"))
            .and_then(text),
        ..Fields::default()
    };
    for key in [
        "alert.metadata.mitre_technique_id",
        "alert.metadata.mitre_tactic_id",
    ] {
        for id in strings(lookup(&map, key)) {
            fields.add_attack_id(id);
        }
    }
    Ok(fields)
}

/// Wazuh/OSSEC alerts JSON, plain (`alerts.json`) or as an indexer or Logstash document
/// with the alert under `_source`.
pub(crate) fn wazuh(raw: &[u8]) -> Result<Fields, ParseFailure> {
    let format = SourceFormat::Wazuh;
    let outer = object(raw, format)?;
    let map = match outer.get("_source") {
        Some(Value::Object(inner)) if inner.contains_key("rule") => inner,
        _ => &outer,
    };
    required(map, "rule", format)?;
    let mut fields = Fields {
        alert: true,
        occurred_at: lookup(map, "timestamp")
            .or_else(|| lookup(&outer, "@timestamp"))
            .and_then(timestamp),
        severity: lookup(map, "rule.level")
            .and_then(integer)
            .and_then(severity::wazuh),
        rule_id: lookup(map, "rule.id").and_then(text),
        host: lookup(map, "agent.name")
            .or_else(|| lookup(map, "manager.name"))
            .and_then(text),
        ..Fields::default()
    };
    for id in strings(lookup(map, "rule.mitre.id")) {
        fields.add_attack_id(id);
    }
    Ok(fields)
}

/// Elastic Common Schema JSON: `@timestamp`, `event.*`, `rule.*`, `host.*`, `threat.*`.
pub(crate) fn ecs(raw: &[u8]) -> Result<Fields, ParseFailure> {
    let format = SourceFormat::EcsJson;
    let map = object(raw, format)?;
    let at = required(&map, "@timestamp", format)?;
    let kind = lookup(&map, "event.kind").and_then(Value::as_str);
    let severity = lookup(&map, "event.severity")
        .and_then(integer)
        .and_then(severity::ecs)
        .or_else(|| {
            lookup(&map, "log.level")
                .and_then(Value::as_str)
                .and_then(severity::named)
        });
    let mut fields = Fields {
        alert: matches!(kind, Some("alert" | "signal")),
        occurred_at: timestamp(at),
        severity,
        rule_id: lookup(&map, "rule.id").and_then(text),
        host: lookup(&map, "host.name")
            .or_else(|| lookup(&map, "host.hostname"))
            .and_then(text),
        ..Fields::default()
    };
    // `threat.technique` and `threat.tactic` are objects or lists of objects with an `id`
    // (a string or list), sub-techniques nested under `subtechnique`.
    for key in ["threat.technique", "threat.tactic"] {
        if let Some(value) = lookup(&map, key) {
            threat_ids(value, &mut fields, 0);
        }
    }
    for key in [
        "threat.technique.id",
        "threat.technique.subtechnique.id",
        "threat.tactic.id",
    ] {
        if let Some(value) = map.get(key) {
            for id in strings(Some(value)) {
                fields.add_attack_id(id);
            }
        }
    }
    Ok(fields)
}

/// ECS threat objects nest technique → subtechnique, never deeper; the bound stops a
/// hostile document from recursing further than that.
const MAX_THREAT_DEPTH: usize = 4;

fn threat_ids(value: &Value, fields: &mut Fields, depth: usize) {
    if depth > MAX_THREAT_DEPTH {
        return;
    }
    match value {
        Value::Array(items) => {
            for item in items {
                threat_ids(item, fields, depth + 1);
            }
        }
        Value::Object(object) => {
            for id in strings(object.get("id")) {
                fields.add_attack_id(id);
            }
            if let Some(sub) = object.get("subtechnique") {
                threat_ids(sub, fields, depth + 1);
            }
        }
        _ => {}
    }
}

/// Zeek logs written as JSON: `ts` as epoch seconds or ISO 8601. `notice.log` entries
/// (with a `note`) are alerts and the note names the rule.
pub(crate) fn zeek(raw: &[u8]) -> Result<Fields, ParseFailure> {
    let format = SourceFormat::ZeekJson;
    let map = object(raw, format)?;
    let ts = required(&map, "ts", format)?;
    let note = lookup(&map, "note").and_then(text);
    Ok(Fields {
        alert: note.is_some(),
        occurred_at: timestamp(ts),
        rule_id: note,
        ..Fields::default()
    })
}

/// The value of an element in a Windows JSON rendering: plain, or `{"#text": ...}` when
/// the element also has attributes.
fn element_value(value: &Value) -> &Value {
    match value.get("#text") {
        Some(inner) => inner,
        None => value,
    }
}

/// An attribute in a Windows JSON rendering, in either style evtx_dump writes:
/// `{"TimeCreated": {"#attributes": {...}}}` or `{"TimeCreated_attributes": {...}}`.
fn attribute<'a>(system: &'a Map<String, Value>, element: &str, name: &str) -> Option<&'a Value> {
    system
        .get(element)
        .and_then(|e| e.get("#attributes"))
        .and_then(|a| a.get(name))
        .or_else(|| {
            system
                .get(&format!("{element}_attributes"))
                .and_then(|a| a.get(name))
        })
}

/// Windows event records rendered as JSON (evtx_dump, chainsaw): `Event.System`.
pub(crate) fn evtx(raw: &[u8]) -> Result<Fields, ParseFailure> {
    let format = SourceFormat::EvtxJson;
    let map = object(raw, format)?;
    let system =
        required(&map, "Event.System", format)?
            .as_object()
            .ok_or(ParseFailure::MissingField {
                field: "Event.System",
                format: format_name(format),
            })?;
    let mut fields = Fields {
        occurred_at: attribute(system, "TimeCreated", "SystemTime").and_then(timestamp),
        severity: system
            .get("Level")
            .map(element_value)
            .and_then(integer)
            .and_then(severity::windows),
        rule_id: system.get("EventID").map(element_value).and_then(text),
        host: system.get("Computer").map(element_value).and_then(text),
        ..Fields::default()
    };
    // Sysmon writes the ATT&CK technique of the matching config rule into RuleName,
    // e.g. "technique_id=T1055,technique_name=Process Injection".
    if let Some(rule_name) = lookup(&map, "Event.EventData.RuleName").and_then(Value::as_str) {
        for part in rule_name.split(',') {
            if let Some(id) = part.trim().strip_prefix("technique_id=") {
                fields.add_attack_id(id);
            }
        }
    }
    Ok(fields)
}

/// STIX 2.1: a bundle (one event for the whole bundle) or a single STIX object. The time
/// is the latest `modified` (or `created`) of its objects: when the intelligence last
/// changed. Bundles with indicators, sightings or incidents are alerts.
pub(crate) fn stix(raw: &[u8]) -> Result<Fields, ParseFailure> {
    let format = SourceFormat::Stix21;
    let map = object(raw, format)?;
    let kind = required(&map, "type", format)?.as_str().unwrap_or_default();
    let objects: Vec<&Map<String, Value>> = if kind == "bundle" {
        match map.get("objects") {
            Some(Value::Array(objects)) => objects.iter().filter_map(Value::as_object).collect(),
            _ => Vec::new(),
        }
    } else {
        required(&map, "id", format)?;
        vec![&map]
    };
    let mut fields = Fields::default();
    for object in objects {
        let at = object
            .get("modified")
            .or_else(|| object.get("created"))
            .and_then(timestamp);
        if at > fields.occurred_at {
            fields.occurred_at = at;
        }
        if matches!(
            object.get("type").and_then(Value::as_str),
            Some("indicator" | "sighting" | "incident")
        ) {
            fields.alert = true;
        }
        if let Some(Value::Array(references)) = object.get("external_references") {
            for reference in references {
                let source = reference.get("source_name").and_then(Value::as_str);
                if source == Some("mitre-attack") {
                    if let Some(id) = reference.get("external_id").and_then(Value::as_str) {
                        fields.add_attack_id(id);
                    }
                }
            }
        }
    }
    Ok(fields)
}

/// A MISP event export: `{"Event": {...}}` with epoch-seconds `timestamp`,
/// `threat_level_id` 1 high to 4 undefined, the creator organisation, and ATT&CK galaxy
/// tags such as `misp-galaxy:mitre-attack-pattern="Brute Force - T1110"`.
pub(crate) fn misp(raw: &[u8]) -> Result<Fields, ParseFailure> {
    let format = SourceFormat::Misp;
    let map = object(raw, format)?;
    let event = required(&map, "Event", format)?;
    let severity = event
        .get("threat_level_id")
        .and_then(integer)
        .and_then(|level| {
            let word = match level {
                1 => "high",
                2 => "medium",
                3 => "low",
                4 => "undefined",
                _ => return None,
            };
            severity::named(word).map(|(l, _, scale)| (l, level.to_string(), scale))
        });
    let mut fields = Fields {
        alert: true,
        occurred_at: event.get("timestamp").and_then(timestamp),
        severity,
        rule_id: event.get("uuid").and_then(text),
        ..Fields::default()
    };
    if let Some(Value::Array(tags)) = event.get("Tag") {
        for tag in tags {
            let name = tag.get("name").and_then(Value::as_str).unwrap_or_default();
            if name.contains("mitre-attack") {
                for token in name.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
                    fields.add_attack_id(token);
                }
            }
        }
    }
    Ok(fields)
}

/// Which JSON format an object looks like, from the keys each format always has.
pub(crate) fn detect(raw: &[u8]) -> SourceFormat {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(raw) else {
        return SourceFormat::Raw;
    };
    let has = |path: &str| lookup(&map, path).is_some();
    let source_has_rule = map.get("_source").is_some_and(|s| s.get("rule").is_some());
    if map.get("type").and_then(Value::as_str) == Some("bundle")
        || (has("spec_version") && has("id") && has("type"))
    {
        SourceFormat::Stix21
    } else if has("event_type") && has("timestamp") {
        SourceFormat::SuricataEve
    } else if source_has_rule || (has("rule.level") && (has("agent") || has("manager"))) {
        SourceFormat::Wazuh
    } else if has("Event.System") {
        SourceFormat::EvtxJson
    } else if has("Event.threat_level_id") || has("Event.Orgc") {
        SourceFormat::Misp
    } else if has("@timestamp") && (has("ecs") || has("event")) {
        SourceFormat::EcsJson
    } else if has("ts") && (has("uid") || has("_path") || has("id.orig_h")) {
        SourceFormat::ZeekJson
    } else {
        SourceFormat::Raw
    }
}
