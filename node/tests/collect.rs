//! The collector agent end to end, against four real validators: every sample log is
//! committed exactly once with its raw bytes; the same holds through a SIGKILL of the
//! agent, all validators stopped for 30 seconds and a log rotation; an unenrolled
//! collector is refused until the control center enrolls it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};

use custos_ledger::crypto::KeyId;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{Kind, SourceFormat};
use custos_node::collect::parse::read_evtx_file;
use custos_node::keys::{KeyFile, KeyKind};
use custos_rpc::{CustosApiClient, MessageInfo, MessageRef, QueryFilter, codes};

mod common;

use common::{NETWORK, Network, network};

const DEADLINE: Duration = Duration::from_secs(240);

/// The tests that start a network run one at a time: three networks of four validators
/// at once overload a small machine and race for the free ports they picked.
static ONE_NETWORK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn samples() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/logs"
    ))
}

/// Lines as the agent cuts them: at `\n`, empty lines skipped, the last line counting
/// without a newline.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn sha(bytes: &[u8]) -> Sha256Hash {
    Sha256Hash::digest(bytes)
}

/// A token from `custos token` for organisation `org`.
fn token(net: &Network, org: &str) -> String {
    let output = Command::new(net.dir.path().join("custos"))
        .args([
            "token",
            "--org",
            org,
            "--network",
            NETWORK,
            "--ttl-s",
            "3600",
            "--key",
        ])
        .arg(net.dir.path().join(format!("keys/{org}.json")))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn reader(url: &str, token: &str) -> HttpClient {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Custos {token}")).unwrap(),
    );
    HttpClientBuilder::default()
        .set_headers(headers)
        .max_response_size(custos_rpc::MAX_REQUEST_BYTES)
        .build(url)
        .unwrap()
}

/// Retries a read that the per-organisation rate limit refused.
macro_rules! patient {
    ($call:expr) => {{
        let start = Instant::now();
        loop {
            match $call.await {
                Ok(value) => break value,
                Err(jsonrpsee::core::ClientError::Call(e)) if e.code() == codes::RATE_LIMITED => {
                    assert!(start.elapsed() < DEADLINE, "rate limited for too long");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }};
}

/// Every committed message of `collector`, in sequence order, with its payload's
/// SHA-256 computed from the bytes the node returns. Asserts the chain: sequence numbers
/// 1..=n without gap or duplicate, each `prev` the leaf hash of the message before.
async fn committed(
    rpc: &HttpClient,
    collector: KeyId,
    client: &str,
) -> Vec<(MessageInfo, Sha256Hash)> {
    let mut messages: Vec<MessageInfo> = Vec::new();
    let mut after = None;
    loop {
        let page = patient!(rpc.query(QueryFilter {
            client: client.into(),
            collector: Some(collector),
            after,
            ..QueryFilter::default()
        }));
        messages.extend(page.messages);
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    messages.sort_by_key(|m| m.message.sequence);
    let mut prev = Sha256Hash::ZERO;
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(
            m.message.sequence,
            i as u64 + 1,
            "a gap or duplicate in the sequence numbers"
        );
        assert_eq!(
            m.message.prev, prev,
            "sequence {} does not chain",
            m.message.sequence
        );
        prev = m.leaf_hash;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for m in messages {
        let payload = patient!(rpc.get_payload(MessageRef {
            author: Some(collector),
            sequence: Some(m.message.sequence),
            ..MessageRef::default()
        }));
        let bytes = b64.decode(payload.payload).unwrap();
        let digest = sha(&bytes);
        assert_eq!(
            digest, m.message.payload.sha256,
            "payload of sequence {}",
            m.message.sequence
        );
        out.push((m, digest));
    }
    out
}

fn multiset(hashes: impl IntoIterator<Item = Sha256Hash>) -> BTreeMap<Sha256Hash, usize> {
    let mut out = BTreeMap::new();
    for h in hashes {
        *out.entry(h).or_insert(0) += 1;
    }
    out
}

fn collector_config(net: &Network, spool: &Path, sources: &str, extra: &str) -> PathBuf {
    let nodes: Vec<String> = net
        .validators
        .iter()
        .map(|v| format!("{:?}", v.rpc))
        .collect();
    let text = format!(
        "network = \"{NETWORK}\"\nclient = \"client0\"\nkey = {:?}\nspool_dir = {:?}\nnodes = [{}]\n\
         poll_interval_ms = 100\nprogress_interval_ms = 2000\nconfirm_interval_ms = 300\nretry_max_ms = 2000\n{extra}\n{sources}",
        net.dir.path().join("keys/c0.json"),
        spool,
        nodes.join(", ")
    );
    let path = spool.with_extension("toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn collect(net: &Network, config: &Path, batch: bool, log: &Path) -> Child {
    let mut command = Command::new(net.dir.path().join("custos"));
    command.arg("collect").arg("--config").arg(config);
    if batch {
        command.arg("--exit-when-idle");
    }
    command
        .env("CUSTOS_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

/// Waits for a batch-mode agent; returns its summary.
fn finish(mut child: Child, log: &Path) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
            assert!(
                status.success(),
                "collector failed: {stdout}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return serde_json::from_str(&stdout).unwrap();
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            panic!(
                "collector did not finish: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the agent should commit from one file, by framing.
fn expected_events(path: &Path, framing: &str) -> Vec<Vec<u8>> {
    match framing {
        "lines" => lines(&std::fs::read(path).unwrap()),
        "document" => vec![std::fs::read(path).unwrap()],
        "evtx" => read_evtx_file(path)
            .unwrap()
            .records
            .into_iter()
            .map(|(raw, _)| raw)
            .collect(),
        other => panic!("framing {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_log_is_committed_exactly_once_with_its_raw_bytes() {
    let _one = ONE_NETWORK.lock().await;
    let mut net = network(1, &[("forensics", "response")]);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let root = samples();
    let work = net.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // Malformed, truncated and binary-garbage lines in a Suricata log.
    let garbage = work.join("garbage.json");
    let mut bad: Vec<u8> = Vec::new();
    bad.extend_from_slice(
        b"{\"timestamp\":\"2022-02-08T16:32:20.491791+0000\",\"event_type\":\"alert\"\n",
    );
    bad.extend_from_slice(b"this is not json at all\n");
    bad.extend_from_slice(b"\x00\x01\x02\xff\xfe\xfd binary \x80\x81\n");
    bad.extend_from_slice(b"{\"event_type\": [1, 2\n");
    std::fs::write(&garbage, &bad).unwrap();

    // (name, glob under the samples, format, framing)
    let sources: Vec<(&str, PathBuf, &str, &str)> = vec![
        (
            "suricata",
            root.join("suricata-eve/*.json"),
            "suricata-eve",
            "lines",
        ),
        ("syslog-otel", root.join("syslog/otel-*"), "syslog", "lines"),
        (
            "syslog-plaso",
            root.join("syslog/plaso-*"),
            "syslog",
            "lines",
        ),
        ("cef-lines", root.join("cef/*.cef"), "cef", "lines"),
        (
            "cef-graylog",
            root.join("cef/graylog-plugin-cef-fixtures/*.json"),
            "auto",
            "document",
        ),
        (
            "cef-jc",
            root.join("cef/jcustenborder-cef-parser-messages/*.json"),
            "auto",
            "document",
        ),
        ("stix", root.join("stix21/*.json"), "stix-2.1", "document"),
        (
            "wazuh-lines",
            root.join("wazuh-or-ossec/*.ndjson"),
            "wazuh",
            "lines",
        ),
        (
            "wazuh-doc",
            root.join("wazuh-or-ossec/*.json"),
            "wazuh",
            "document",
        ),
        (
            "evtx",
            root.join("windows-evtx-json/*.evtx"),
            "evtx",
            "evtx",
        ),
        (
            "evtx-jsonl",
            root.join("windows-evtx-json/*.jsonl"),
            "evtx-json",
            "lines",
        ),
        (
            "evtx-json",
            root.join("windows-evtx-json/*.json"),
            "evtx-json",
            "document",
        ),
        (
            "evtx-xml",
            root.join("windows-evtx-json/*.xml"),
            "evtx-xml",
            "document",
        ),
        ("garbage", garbage.clone(), "suricata-eve", "lines"),
    ];
    let mut text = String::new();
    let mut expected_per_source = BTreeMap::new();
    let mut expected_hashes = Vec::new();
    let mut files_covered = std::collections::BTreeSet::new();
    for (name, pattern, format, framing) in &sources {
        text.push_str(&format!(
            "[[sources]]\ntype = \"file\"\nname = \"{name}\"\npath = {:?}\nformat = \"{format}\"\nframing = \"{framing}\"\n",
            pattern
        ));
        let files = custos_node::collect::source::expand(&pattern.to_string_lossy());
        assert!(
            !files.is_empty(),
            "{name}: no file matches {}",
            pattern.display()
        );
        let mut count = 0;
        for file in files {
            let events = expected_events(&file, framing);
            assert!(!events.is_empty(), "{}", file.display());
            count += events.len();
            expected_hashes.extend(events.iter().map(|e| sha(e)));
            files_covered.insert(file);
        }
        expected_per_source.insert(name.to_string(), count as u64);
    }
    // Every sample file (not the README and SOURCE notes) is one of a source's files.
    let mut all_samples = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if !path.file_name().unwrap().to_string_lossy().ends_with(".md") {
                all_samples.push(path);
            }
        }
    }
    for sample in &all_samples {
        assert!(
            files_covered.contains(sample),
            "sample {} is not collected",
            sample.display()
        );
    }

    let spool = work.join("spool");
    let config = collector_config(&net, &spool, &text, "");
    let log = work.join("collect.log");
    let summary = finish(collect(&net, &config, true, &log), &log);
    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(summary["pending"], 0);
    for source in summary["sources"].as_array().unwrap() {
        let name = source["name"].as_str().unwrap();
        assert_eq!(
            source["read"].as_u64().unwrap(),
            expected_per_source[name],
            "count of source {name}"
        );
        assert_eq!(source["errors"], 0, "{name}");
    }
    let garbage_counts = summary["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "garbage")
        .unwrap();
    assert_eq!(
        garbage_counts["parse_errors"], 4,
        "every bad line is counted"
    );

    let collector = net.collectors[0].public().key_id();
    let rpc = reader(&net.validators[1].rpc, &token(&net, "forensics"));
    let committed = committed(&rpc, collector, "client0").await;
    assert_eq!(committed.len(), expected_hashes.len());
    assert_eq!(
        multiset(committed.iter().map(|(_, h)| *h)),
        multiset(expected_hashes),
        "the committed payloads are exactly the events read"
    );
    let garbage_hashes: Vec<Sha256Hash> = lines(&bad).iter().map(|l| sha(l)).collect();
    for (info, digest) in &committed {
        if garbage_hashes.contains(digest) {
            assert_eq!(info.message.format, SourceFormat::Raw);
            assert!(info.message.parse_error.is_some(), "{:?}", info.message);
        }
    }
    // A second batch run finds nothing new: positions survived in the spool.
    let summary = finish(collect(&net, &config, true, &log), &log);
    assert_eq!(summary["read"], 0, "{summary}");
    assert_eq!(summary["complete"], true);
}

/// Appends numbered lines of about 200 bytes to `path`; returns them.
fn write_lines(path: &Path, from: usize, count: usize) -> Vec<Vec<u8>> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut out = Vec::new();
    let mut buffer = Vec::new();
    for n in from..from + count {
        let line = format!(
            "<134>1 2024-05-01T10:00:00.000Z web-01 sshd 42 - - Failed password for root from 203.0.113.7 line {n:08} {}",
            "x".repeat(100)
        )
        .into_bytes();
        buffer.extend_from_slice(&line);
        buffer.push(b'\n');
        out.push(line);
    }
    file.write_all(&buffer).unwrap();
    out
}

async fn scrape_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_through_a_sigkill_a_network_outage_and_a_rotation() {
    let _one = ONE_NETWORK.lock().await;
    let mut net = network(1, &[("forensics", "response")]);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let work = net.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let app = work.join("app.log");
    let sources = format!(
        "[[sources]]\ntype = \"file\"\nname = \"app\"\npath = {app:?}\nformat = \"syslog\"\n"
    );
    let spool = work.join("spool");
    let metrics_port = common::free_port();
    let config = collector_config(
        &net,
        &spool,
        &sources,
        &format!("heartbeat_interval_ms = 2000\nmetrics_listen = \"127.0.0.1:{metrics_port}\""),
    );
    let log = work.join("collect.log");
    let mut written = Vec::new();

    let mut agent = collect(&net, &config, false, &log);
    for round in 0..10 {
        written.extend(write_lines(&app, round * 500, 500));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The agent's metrics count what it read.
    let scrape = scrape_metrics(metrics_port).await;
    assert!(
        scrape.contains("custos_collector_events_read_total{source=\"app\"}"),
        "{scrape}"
    );
    assert!(
        scrape.contains("custos_collector_pending_messages"),
        "{scrape}"
    );
    // SIGKILL in the middle of collecting, with lines still arriving.
    agent.kill().unwrap();
    agent.wait().unwrap();
    written.extend(write_lines(&app, 5_000, 2_000));
    let mut agent = collect(&net, &config, false, &log);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Rotation by rename; the writer continues in a new file.
    written.extend(write_lines(&app, 7_000, 1_000));
    std::fs::rename(&app, work.join("app.log.1")).unwrap();
    written.extend(write_lines(&app, 8_000, 1_000));
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // Every validator down for 30 seconds while lines keep coming.
    for v in &mut net.validators {
        v.kill();
    }
    for round in 0..6 {
        written.extend(write_lines(&app, 9_000 + round * 500, 500));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    for v in &mut net.validators {
        v.start();
    }
    written.extend(write_lines(&app, 12_000, 1_000));
    tokio::time::sleep(Duration::from_secs(2)).await;
    agent.kill().unwrap();
    agent.wait().unwrap();
    // Batch mode on the same spool: finishes the files and waits for every commit.
    let summary = finish(collect(&net, &config, true, &log), &log);
    assert_eq!(summary["complete"], true, "{summary}");

    let collector = net.collectors[0].public().key_id();
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let rpc = reader(&net.validators[2].rpc, &token(&net, "forensics"));
    let committed = committed(&rpc, collector, "client0").await;
    let evidence: Vec<Sha256Hash> = committed
        .iter()
        .filter(|(m, _)| matches!(m.message.kind, Kind::Evidence { .. }))
        .map(|(_, h)| *h)
        .collect();
    let heartbeats = committed.len() - evidence.len();
    assert!(heartbeats > 0, "heartbeats were sent");
    assert_eq!(evidence.len(), written.len(), "every line once");
    assert_eq!(
        multiset(evidence),
        multiset(written.iter().map(|l| sha(l))),
        "the committed payloads are exactly the lines written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unenrolled_collector_is_refused_until_the_control_center_enrolls_it() {
    let _one = ONE_NETWORK.lock().await;
    let mut net = network(0, &[("soc", "control-center"), ("forensics", "response")]);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let root = net.dir.path();
    let (file, key) = KeyFile::generate(KeyKind::Collector);
    file.write_new(&root.join("keys/c0.json")).unwrap();
    net.collectors.push(key);
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let input = work.join("in.log");
    let lines_written = write_lines(&input, 0, 50);
    let sources = format!("[[sources]]\ntype = \"file\"\npath = {input:?}\nformat = \"syslog\"\n");
    let spool = work.join("spool");
    let config = collector_config(&net, &spool, &sources, "");
    let log = work.join("collect.log");

    // Not enrolled: the node refuses, batch mode fails and keeps everything spooled.
    let child = collect(&net, &config, true, &log);
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["pending"], 50, "{summary}");
    assert!(summary["refused"].as_u64().unwrap() >= 1);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("is not enrolled"),
        "the refusal names the cause"
    );

    let enroll = Command::new(root.join("custos"))
        .args([
            "enroll",
            "--rpc",
            &net.validators[0].rpc,
            "--network",
            NETWORK,
        ])
        .args(["--client", "client0", "--name", "web-01", "--key"])
        .arg(root.join("keys/soc.json"))
        .arg("--collector-key")
        .arg(root.join("keys/c0.json"))
        .output()
        .unwrap();
    assert!(
        enroll.status.success(),
        "{}",
        String::from_utf8_lossy(&enroll.stderr)
    );

    // Enrolled: the spooled messages go through, none read twice.
    let summary = finish(collect(&net, &config, true, &log), &log);
    assert_eq!(summary["complete"], true, "{summary}");
    let rpc = reader(&net.validators[3].rpc, &token(&net, "forensics"));
    let committed = committed(&rpc, net.collectors[0].public().key_id(), "client0").await;
    assert_eq!(
        multiset(committed.iter().map(|(_, h)| *h)),
        multiset(lines_written.iter().map(|l| sha(l)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_syslog_listener_takes_udp_datagrams_and_both_tcp_framings() {
    use custos_node::collect::config::FormatChoice;
    use custos_node::collect::source::{Input, run_syslog};
    use tokio::io::AsyncWriteExt as _;

    let (udp, tcp) = (common::free_port(), common::free_port());
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(run_syslog(
        7,
        Some(format!("127.0.0.1:{udp}")),
        Some(format!("127.0.0.1:{tcp}")),
        FormatChoice::Syslog,
        tx,
    ));
    let rfc5424 = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - An application event".to_vec();
    let rfc3164 =
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8".to_vec();
    let garbage = b"\xff\xfe\x00 not syslog".to_vec();
    // Wait for the listeners.
    let start = Instant::now();
    let mut stream = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", tcp)).await {
            Ok(stream) => break stream,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("listener never came up: {e}"),
        }
    };
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&rfc5424, ("127.0.0.1", udp)).await.unwrap();
    // Octet counting, then newline framing, then a garbage line; the stream then closes.
    let mut frames = format!("{} ", rfc3164.len()).into_bytes();
    frames.extend_from_slice(&rfc3164);
    frames.extend_from_slice(&rfc5424);
    frames.push(b'\n');
    frames.extend_from_slice(&garbage);
    stream.write_all(&frames).await.unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);

    let mut events = Vec::new();
    while events.len() < 4 {
        let input = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event within 10 s")
            .expect("listener running");
        if let Input::Event(event) = input {
            assert_eq!(event.source, 7);
            events.push((event.raw, event.parsed));
        }
    }
    events.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        rfc5424.clone(),
        rfc3164.clone(),
        rfc5424.clone(),
        garbage.clone(),
    ];
    expected.sort();
    assert_eq!(
        events
            .iter()
            .map(|(raw, _)| raw.clone())
            .collect::<Vec<_>>(),
        expected,
        "raw bytes unchanged"
    );
    for (raw, parsed) in &events {
        let expected_format = if *raw == rfc5424 {
            SourceFormat::Syslog5424
        } else if *raw == rfc3164 {
            SourceFormat::Syslog3164
        } else {
            SourceFormat::Raw
        };
        assert_eq!(
            parsed.format,
            expected_format,
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(
            parsed.parse_error.is_some(),
            expected_format == SourceFormat::Raw
        );
        if expected_format != SourceFormat::Raw {
            assert!(parsed.host.as_ref().is_some_and(
                |h| h.as_str() == "mymachine" || h.as_str() == "mymachine.example.com"
            ));
        }
    }
}
