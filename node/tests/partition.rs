//! A validator cut off from the others by a real network partition: the test puts it in a
//! network namespace of its own, joined to the host by a veth pair, and cuts and heals the
//! link. The other three keep committing; after the heal it catches up to the same log.
//!
//! Needs root and `ip` (iproute2), as CI has; the test says so and fails if they are
//! missing rather than passing without having tested anything.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::{SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{
    EvidenceKind, Kind, Message, PayloadDescriptor, SourceFormat, UnixMillis,
};
use custos_node::keys::{KeyFile, KeyKind};
use custos_rpc::{CustosApiClient, NodeStatus, SubmitMessage};

const NETWORK: &str = "custos-partition";
const DEADLINE: Duration = Duration::from_secs(120);

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A network namespace with a veth link to the host; removed on drop.
struct Namespace {
    name: String,
    host_if: String,
    host_addr: String,
    ns_addr: String,
}

impl Namespace {
    fn create() -> Result<Self, String> {
        let id = std::process::id() % 10_000;
        let subnet = 100 + std::process::id() % 150;
        let ns = Self {
            name: format!("custos-pt-{id}"),
            host_if: format!("cph{id}"),
            host_addr: format!("10.213.{subnet}.1"),
            ns_addr: format!("10.213.{subnet}.2"),
        };
        let ns_if = format!("cpn{id}");
        ip(&["netns", "add", &ns.name])?;
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", &ns.name])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", ns.host_addr),
            "dev",
            &ns.host_if,
        ])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        let in_ns = |args: &[&str]| {
            let mut full = vec!["netns", "exec", &ns.name, "ip"];
            full.extend_from_slice(args);
            ip(&full)
        };
        in_ns(&["addr", "add", &format!("{}/24", ns.ns_addr), "dev", &ns_if])?;
        in_ns(&["link", "set", &ns_if, "up"])?;
        in_ns(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn cut(&self) {
        ip(&["link", "set", &self.host_if, "down"]).unwrap();
    }

    fn heal(&self) {
        ip(&["link", "set", &self.host_if, "up"]).unwrap();
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

struct Node {
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn messages(key: &SecretKey, from: u64, count: u64, prev: &mut Sha256Hash) -> Vec<SubmitMessage> {
    let b64 = base64::engine::general_purpose::STANDARD;
    (from..from + count)
        .map(|sequence| {
            let payload = format!("partition test line {sequence}").into_bytes();
            let message = Message {
                network: Text::new(NETWORK).unwrap(),
                author: key.public().key_id(),
                client: Text::new("acme-bank").unwrap(),
                sequence,
                prev: *prev,
                kind: Kind::Evidence {
                    evidence: EvidenceKind::LogLine,
                },
                format: SourceFormat::Raw,
                occurred_at: None,
                observed_at: UnixMillis(sequence),
                severity: None,
                rule_id: None,
                host: None,
                attack_ids: List::empty(),
                references: List::empty(),
                parse_error: None,
                payload: PayloadDescriptor::of(Text::new("text/plain").unwrap(), &payload),
            };
            let envelope = Signed::sign(message, key);
            *prev = envelope.leaf_hash();
            SubmitMessage {
                envelope: b64.encode(envelope.leaf_bytes()),
                payload: b64.encode(&payload),
            }
        })
        .collect()
}

async fn status(url: &str) -> Option<NodeStatus> {
    custos_node::send::client(url).ok()?.status().await.ok()
}

async fn wait_for(urls: &[String], size: u64) -> Vec<NodeStatus> {
    let start = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for url in urls {
            if let Some(s) = status(url).await {
                statuses.push(s);
            }
        }
        if statuses.len() == urls.len()
            && statuses
                .iter()
                .all(|s| s.log_size == size && s.log_root == statuses[0].log_root)
        {
            return statuses;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "not all of {urls:?} reached log size {size}: {:?}",
            statuses
                .iter()
                .map(|s| (s.validator.clone(), s.log_size))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn submit(url: &str, batch: Vec<SubmitMessage>) {
    let client = custos_node::send::client(url).unwrap();
    for chunk in batch.chunks(250) {
        let response = client.submit(chunk.to_vec()).await.unwrap();
        assert_eq!(
            response.admitted,
            chunk.len(),
            "{:?}",
            response.results.first()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_validator_catches_up_after_the_heal() {
    let ns = Namespace::create().unwrap_or_else(|e| {
        panic!("this test needs root and iproute2 to build a network namespace: {e}")
    });
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("keys")).unwrap();
    let mut spec = format!("network = \"{NETWORK}\"\nlog_origin = \"custos.test/partition\"\n");
    let mut nodes = Vec::new();
    let mut urls = Vec::new();
    let mut configs: Vec<(PathBuf, bool)> = Vec::new();
    for i in 0..4 {
        let in_ns = i == 3;
        let addr = if in_ns { &ns.ns_addr } else { &ns.host_addr };
        let (file, _) = KeyFile::generate(KeyKind::Validator);
        file.write_new(&root.join(format!("keys/v{i}.json")))
            .unwrap();
        let p2p = common::free_port();
        let rpc = common::free_port();
        let rpc_host = if in_ns {
            ns.ns_addr.as_str()
        } else {
            "127.0.0.1"
        };
        spec.push_str(&format!(
            "[[validators]]\nname = \"v{i}\"\norg = \"org{i}\"\nrole = \"warning\"\nkey = \"keys/v{i}.json\"\np2p_address = \"/ip4/{addr}/tcp/{p2p}\"\n"
        ));
        let vdir = root.join(format!("v{i}"));
        std::fs::create_dir_all(&vdir).unwrap();
        std::fs::write(
            vdir.join("node.toml"),
            format!(
                "data_dir = \".\"\ngenesis = \"../genesis.json\"\nvalidator_key = \"../keys/v{i}.json\"\np2p_listen = \"/ip4/{addr}/tcp/{p2p}\"\nrpc_listen = \"{rpc_host}:{rpc}\"\n"
            ),
        )
        .unwrap();
        urls.push(format!("http://{rpc_host}:{rpc}"));
        configs.push((vdir, in_ns));
    }
    let (collector_file, collector) = KeyFile::generate(KeyKind::Collector);
    collector_file.write_new(&root.join("keys/c.json")).unwrap();
    spec.push_str("[[collectors]]\nname = \"c\"\nclient = \"acme-bank\"\nkey = \"keys/c.json\"\n");
    std::fs::write(root.join("network.toml"), spec).unwrap();
    let genesis =
        custos_node::genesis_spec::build(&root.join("network.toml"), UnixMillis(1)).unwrap();
    std::fs::write(
        root.join("genesis.json"),
        serde_json::to_string(&genesis).unwrap(),
    )
    .unwrap();

    for (vdir, in_ns) in &configs {
        let log = std::fs::File::create(vdir.join("node.log")).unwrap();
        let mut command = if *in_ns {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_custos")]);
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_custos"))
        };
        let child = command
            .args(["node", "run", "--config"])
            .arg(vdir.join("node.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        nodes.push(Node { child });
    }

    let mut prev = Sha256Hash::ZERO;
    wait_for(&urls, 0).await;
    submit(&urls[0], messages(&collector, 1, 500, &mut prev)).await;
    wait_for(&urls, 500).await;

    // Cut validator 3 off; the other three go on committing.
    ns.cut();
    submit(&urls[0], messages(&collector, 501, 1_000, &mut prev)).await;
    let majority = wait_for(&urls[..3], 1_500).await;
    assert!(
        status(&urls[3]).await.is_none(),
        "the partitioned validator is still reachable"
    );

    // Heal: it reconnects and catches up to the same log.
    ns.heal();
    let all = wait_for(&urls, 1_500).await;
    assert_eq!(all[3].log_root, majority[0].log_root);

    // And it takes part again: a quorum now includes it while another is stopped.
    drop(nodes.remove(0));
    submit(&urls[1], messages(&collector, 1_501, 200, &mut prev)).await;
    let rest = wait_for(&urls[1..], 1_700).await;
    assert_eq!(rest.len(), 3);
}
