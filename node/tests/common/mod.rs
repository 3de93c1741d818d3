//! The multi-process harness shared by the node's integration tests: four `custos`
//! validators on loopback with generated keys and genesis, chained collector messages, and
//! waits bounded by a deadline.
#![allow(dead_code)]

pub mod anvil;

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonrpsee::http_client::HttpClient;

use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::{PublicKey, SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{
    EvidenceKind, Kind, Message, PayloadDescriptor, SourceFormat, UnixMillis,
};
use custos_node::keys::{KeyFile, KeyKind};
use custos_rpc::{CustosApiClient, SubmitMessage};

/// The test network's id.
pub const NETWORK: &str = "custos-it";
/// The log origin in its genesis.
pub const ORIGIN: &str = "custos.test/it";
/// Validators in the test network.
pub const VALIDATORS: usize = 4;

/// A loopback port that nothing listens on and that no other caller in this process was
/// given.
///
/// Ports come from below Linux's ephemeral range (32768–60999): a port the kernel hands
/// out for `bind(0)` can be taken as the source port of any outgoing connection before the
/// node binds it, which made a validator fail to listen now and then while other tests'
/// networks were connecting. The start depends on the process id, so that test binaries
/// run side by side rarely probe the same ports; each port is checked free before use.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(97) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < SPAN,
            "no free loopback port left below the ephemeral range"
        );
        let port = u16::try_from(LOW + (start + n) % SPAN).expect("below 32,000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

/// One validator process.
pub struct Validator {
    /// Its name in genesis.
    pub name: String,
    /// Its data folder.
    pub dir: PathBuf,
    /// Its JSON-RPC URL.
    pub rpc: String,
    /// The running process, if started.
    pub child: Option<Child>,
}

impl Validator {
    /// Starts it (again), appending to its log.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .unwrap();
        let child = Command::new(self.dir.join("../custos"))
            .args(["node", "run", "--config"])
            .arg(self.dir.join("node.toml"))
            .env("CUSTOS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Stops it with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    /// The last `lines` lines of its log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// A JSON-RPC client for it.
    pub fn client(&self) -> HttpClient {
        custos_node::send::client(&self.rpc).unwrap()
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Four validators with their keys, and enrolled collectors.
pub struct Network {
    /// Holds keys, genesis, the private `custos` copy and each validator's folder.
    pub dir: tempfile::TempDir,
    /// The validators, not yet started.
    pub validators: Vec<Validator>,
    /// Their public keys, in genesis order.
    pub validator_keys: Vec<PublicKey>,
    /// The collectors' keys; collector `i` collects for `client{i % 2}`.
    pub collectors: Vec<SecretKey>,
}

/// Keys, genesis and configurations for four validators, `collectors` collectors and the
/// given organisations `(id, role)`. Checkpoint cosigning is off (see [`Options`]).
pub fn network(collectors: usize, organisations: &[(&str, &str)]) -> Network {
    network_with(collectors, organisations, &Options::default())
}

/// What [`network_with`] changes from the defaults of [`network`].
#[derive(Debug, Default)]
pub struct Options {
    /// Role of validator v0 (the others are `warning`); `warning` when `None`.
    pub first_role: Option<&'static str>,
    /// Genesis `checkpoint_interval_ms`; 0 (the default) turns cosigning off.
    pub checkpoint_interval_ms: u64,
    /// TOML appended to validator `i`'s node.toml (e.g. an `[anchor]` section).
    pub node_extra: Vec<String>,
}

/// [`network`] with [`Options`].
pub fn network_with(
    collectors: usize,
    organisations: &[(&str, &str)],
    options: &Options,
) -> Network {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("keys")).unwrap();
    // A private copy: the shared target directory's binary may be replaced by another
    // build while the test runs.
    std::fs::copy(env!("CARGO_BIN_EXE_custos"), root.join("custos")).unwrap();
    let mut spec = format!("network = \"{NETWORK}\"\nlog_origin = \"{ORIGIN}\"\n");
    let mut validators = Vec::new();
    let mut validator_keys = Vec::new();
    for i in 0..VALIDATORS {
        let name = format!("v{i}");
        let (file, key) = KeyFile::generate(KeyKind::Validator);
        validator_keys.push(key.public());
        file.write_new(&root.join(format!("keys/{name}.json")))
            .unwrap();
        let p2p = free_port();
        let rpc = free_port();
        let role = match (i, options.first_role) {
            (0, Some(role)) => role,
            _ => "warning",
        };
        spec.push_str(&format!(
            "[[validators]]\nname = \"{name}\"\norg = \"org{i}\"\nrole = \"{role}\"\nkey = \"keys/{name}.json\"\np2p_address = \"/ip4/127.0.0.1/tcp/{p2p}\"\n"
        ));
        let vdir = root.join(&name);
        std::fs::create_dir_all(&vdir).unwrap();
        std::fs::write(
            vdir.join("node.toml"),
            format!(
                "data_dir = \".\"\ngenesis = \"../genesis.json\"\nvalidator_key = \"../keys/{name}.json\"\np2p_listen = \"/ip4/127.0.0.1/tcp/{p2p}\"\nrpc_listen = \"127.0.0.1:{rpc}\"\n\n[consensus]\npropose_timeout_ms = 1000\nvote_timeout_ms = 500\ntimeout_increase_ms = 500\n{}",
                options.node_extra.get(i).map_or("", String::as_str)
            ),
        )
        .unwrap();
        validators.push(Validator {
            name,
            dir: vdir,
            rpc: format!("http://127.0.0.1:{rpc}"),
            child: None,
        });
    }
    let collector_count = collectors;
    let mut collectors = Vec::new();
    for i in 0..collector_count {
        let (file, key) = KeyFile::generate(KeyKind::Collector);
        file.write_new(&root.join(format!("keys/c{i}.json")))
            .unwrap();
        spec.push_str(&format!(
            "[[collectors]]\nname = \"c{i}\"\nclient = \"client{}\"\nkey = \"keys/c{i}.json\"\n",
            i % 2
        ));
        collectors.push(key);
    }
    for (id, role) in organisations {
        let path = root.join(format!("keys/{id}.json"));
        let (file, _) = KeyFile::generate(KeyKind::Organisation);
        file.write_new(&path).unwrap();
        spec.push_str(&format!(
            "[[organisations]]\nid = \"{id}\"\nrole = \"{role}\"\nkey = \"keys/{id}.json\"\n"
        ));
    }
    spec.push_str(&format!(
        "[params]\nempty_block_interval_ms = 2000\ncheckpoint_interval_ms = {}\n",
        options.checkpoint_interval_ms
    ));
    std::fs::write(root.join("network.toml"), spec).unwrap();
    let genesis =
        custos_node::genesis_spec::build(&root.join("network.toml"), UnixMillis(1)).unwrap();
    std::fs::write(
        root.join("genesis.json"),
        serde_json::to_string(&genesis).unwrap(),
    )
    .unwrap();
    Network {
        dir,
        validators,
        validator_keys,
        collectors,
    }
}

/// A collector's messages, chained, as RPC submissions with their leaf hashes.
pub fn chain(
    key: &SecretKey,
    client: &str,
    count: usize,
    payload_bytes: usize,
) -> Vec<(SubmitMessage, Sha256Hash)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut prev = Sha256Hash::ZERO;
    (1..=count as u64)
        .map(|sequence| {
            let mut payload = format!("{client} seq {sequence} ").into_bytes();
            payload.resize(payload_bytes, b'x');
            let message = Message {
                network: Text::new(NETWORK).unwrap(),
                author: key.public().key_id(),
                client: Text::new(client).unwrap(),
                sequence,
                prev,
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
            prev = envelope.leaf_hash();
            (
                SubmitMessage {
                    envelope: b64.encode(envelope.leaf_bytes()),
                    payload: b64.encode(&payload),
                },
                prev,
            )
        })
        .collect()
}

/// Waits until every started validator answers `custos_status`; names the one that does
/// not, with the end of its log.
pub async fn wait_until_serving(validators: &[Validator], deadline: Duration) {
    let start = Instant::now();
    for v in validators.iter().filter(|v| v.child.is_some()) {
        while v.client().status().await.is_err() {
            if start.elapsed() >= deadline {
                panic!(
                    "{} never served RPC at {}; the end of its log:\n{}",
                    v.name,
                    v.rpc,
                    v.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits until every validator holds at least `size` leaves with one root; returns it.
pub async fn wait_for_log_size(
    validators: &[Validator],
    size: u64,
    deadline: Duration,
) -> Sha256Hash {
    let start = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for v in validators {
            if let Ok(status) = v.client().status().await {
                statuses.push(status);
            }
        }
        if statuses.len() == validators.len() && statuses.iter().all(|s| s.log_size >= size) {
            let roots: Vec<_> = statuses.iter().map(|s| (s.log_size, s.log_root)).collect();
            if roots.windows(2).all(|w| w[0] == w[1]) {
                return roots[0].1;
            }
        }
        if start.elapsed() >= deadline {
            let behind: Vec<String> = validators
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| s.log_size < size)
                .map(|(v, s)| format!("{}, the end of its log:\n{}", s.validator, v.log_tail(30)))
                .collect();
            panic!(
                "validators did not all reach log size {size}: {:?}\n{}",
                statuses
                    .iter()
                    .map(|s| (s.validator.clone(), s.height, s.log_size))
                    .collect::<Vec<_>>(),
                behind.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
