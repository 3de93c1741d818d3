//! The network benchmark behind `scripts/bench.sh`: throughput, commit latency, the
//! same-run signature ceiling, CPU and storage per message, proof reads, catch-up and
//! rejoin, measured on real `custos` processes in one run.

pub mod load;
pub mod net;
pub mod profile;
pub mod report;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;

use custos_ledger::crypto::{BatchItem, KeyId, PublicKey, verify_batch};
use custos_ledger::message::Envelope;
use custos_rpc::CustosApiClient;

use load::{Chain, Commits, Sent, Signed1, latencies, quantile_ms, sign_all, submit_paced};
use net::{Validator, cpu_time, wait_connected, wait_in_step};
use report::{Level, Report};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The `custos` binary.
    pub binary: PathBuf,
    /// Where the validators' folders go.
    pub work: PathBuf,
    /// Validators (3f+1).
    pub validators: usize,
    /// Collectors submitting in parallel.
    pub collectors: usize,
    /// Payload bytes per message.
    pub payload_bytes: usize,
    /// Offered loads of the sweep, messages per second.
    pub offered: Vec<u64>,
    /// Seconds per offered load.
    pub level_s: u64,
    /// Seconds of the saturation run.
    pub saturation_s: u64,
    /// Seconds of the ceiling measurement and of the proof-read run.
    pub probe_s: u64,
    /// Seconds a validator stays down (under load) before its catch-up is timed.
    pub down_s: u64,
    /// Where to write a `perf` profile of the validators during the saturation run, if
    /// one is wanted.
    pub profile: Option<PathBuf>,
}

impl Plan {
    /// The full run: a sweep to 15,000 messages/s and 60 s of saturation.
    pub fn full(binary: PathBuf, work: PathBuf) -> Self {
        Self {
            binary,
            work,
            validators: 4,
            collectors: 8,
            payload_bytes: 1024,
            offered: vec![1_000, 2_500, 5_000, 7_500, 10_000, 15_000],
            level_s: 10,
            saturation_s: 60,
            probe_s: 3,
            down_s: 10,
            profile: None,
        }
    }

    /// A short run, under a minute of measuring.
    pub fn quick(binary: PathBuf, work: PathBuf) -> Self {
        Self {
            offered: vec![1_000, 5_000],
            level_s: 3,
            saturation_s: 8,
            probe_s: 1,
            down_s: 3,
            ..Self::full(binary, work)
        }
    }
}

/// Most messages a saturation run is given to send, per second of the run: above any
/// rate this machine reaches, so the network, not the supply, is the limit.
const SATURATION_SUPPLY_PER_S: u64 = 24_000;
/// Messages per `custos_submit` call in the saturation run.
const SATURATION_BATCH: usize = 250;
/// A task submitting one collector's messages: what it sent, and what it did not.
type Feeder = tokio::task::JoinHandle<anyhow::Result<(Sent, Vec<Signed1>)>>;

/// The load fed to the other validators while a SIGKILLed one rejoins, messages/s, and
/// for how long at most (the feed stops as soon as the victim has rejoined).
const REJOIN_FEED_PER_S: u64 = 1_000;
const REJOIN_FEED_S: u64 = 10;
/// Proof reads in flight during the proof-read probe.
const PROOF_CONCURRENCY: usize = 16;
/// How long a phase may take to drain (everything sent is committed) before the run is
/// declared failed.
const DRAIN_DEADLINE: Duration = Duration::from_secs(300);

fn progress(text: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("bench: {text}");
    }
}

/// Ed25519 batch verifications per second on all of this machine's cores, over batches
/// of 1,024 envelopes as the mempool verifies them.
pub fn signature_ceiling(
    messages: &[Signed1],
    keys: &HashMap<KeyId, PublicKey>,
    seconds: u64,
) -> anyhow::Result<f64> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelopes: Vec<Envelope> = messages
        .iter()
        .take(1024)
        .map(|m| Ok(Envelope::decode(&b64.decode(&m.submit.envelope)?)?))
        .collect::<anyhow::Result<_>>()?;
    let signed_bytes: Vec<Vec<u8>> = envelopes.iter().map(|e| e.signed_bytes()).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stop = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let verified: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    let items: Vec<BatchItem<'_>> = envelopes
                        .iter()
                        .zip(&signed_bytes)
                        .map(|(e, bytes)| BatchItem {
                            signed_bytes: bytes,
                            signature: &e.signature,
                            key: &keys[&e.body.author],
                        })
                        .collect();
                    let mut count = 0;
                    while Instant::now() < stop {
                        assert!(verify_batch(&items).is_empty(), "bench signatures verify");
                        count += items.len();
                    }
                    count
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("verifier"))
            .sum()
    });
    Ok(verified as f64 / started.elapsed().as_secs_f64())
}

/// The running network and what the run has sent.
struct Run<'a> {
    plan: &'a Plan,
    validators: Vec<Validator>,
    commits: Commits,
    /// Each collector's messages not yet sent, in chain order.
    supply: Vec<std::collections::VecDeque<Signed1>>,
}

impl Run<'_> {
    /// Takes the next `count` messages of collector `c`.
    fn take(&mut self, c: usize, count: usize) -> Vec<Signed1> {
        let count = count.min(self.supply[c].len());
        self.supply[c].drain(..count).collect()
    }

    /// Returns messages a phase did not get to send to the front of collector `c`'s
    /// supply, so its chain continues without a gap.
    fn give_back(&mut self, c: usize, unsent: Vec<Signed1>) {
        for m in unsent.into_iter().rev() {
            self.supply[c].push_front(m);
        }
    }

    /// Offers `rate` messages/s for `seconds` from every collector, each to the validator
    /// it is assigned to (running ones only), and waits until they are committed.
    async fn offer(
        &mut self,
        rate: u64,
        seconds: u64,
        batch: Option<usize>,
    ) -> anyhow::Result<(Sent, Instant, Instant)> {
        let running: Vec<String> = self
            .validators
            .iter()
            .filter(|v| v.pid().is_some())
            .map(|v| v.rpc.clone())
            .collect();
        let start = Instant::now();
        let until = start + Duration::from_secs(seconds);
        let tasks = self.feed(rate, seconds, batch, &running, until)?;
        let mut sent = Vec::new();
        for (c, task) in tasks.into_iter().enumerate() {
            let (admitted, unsent) = task.await??;
            sent.extend(admitted);
            self.give_back(c, unsent);
        }
        let end = Instant::now().min(until);
        let hashes: Vec<_> = sent.iter().map(|(h, _)| *h).collect();
        let drain_start = Instant::now();
        loop {
            let committed =
                self.commits
                    .count_between(&hashes, start, Instant::now() + Duration::from_secs(1));
            if committed == hashes.len() {
                break;
            }
            if self.commits.closed() {
                bail!("the block subscription used to time commits ended");
            }
            if drain_start.elapsed() > DRAIN_DEADLINE {
                bail!(
                    "of {} messages admitted at {rate}/s offered, {committed} were committed \
                     within {DRAIN_DEADLINE:?} of the phase's end",
                    hashes.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok((sent, start, end))
    }

    /// Starts feeding `rate` messages/s for `seconds` (or until `until`) from every
    /// collector, collector `c` to `validators[c % len]`; one task per collector, in
    /// collector order, returning what it sent and what it did not.
    fn feed(
        &mut self,
        rate: u64,
        seconds: u64,
        batch: Option<usize>,
        validators: &[String],
        until: Instant,
    ) -> anyhow::Result<Vec<Feeder>> {
        let per_collector_per_s = rate.div_ceil(self.plan.collectors as u64).max(1);
        // About 20 calls per second per collector, as a collector agent batches.
        let batch = batch.unwrap_or_else(|| {
            usize::try_from(per_collector_per_s.div_ceil(20))
                .unwrap_or(1)
                .max(1)
        });
        let interval = if rate >= SATURATION_SUPPLY_PER_S {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(batch as f64 / per_collector_per_s as f64)
        };
        let count = usize::try_from(per_collector_per_s * seconds)?;
        let mut tasks = Vec::new();
        for c in 0..self.plan.collectors {
            let messages = self.take(c, count);
            if messages.is_empty() {
                bail!("the run needs more pre-signed messages than were signed");
            }
            tasks.push(tokio::spawn(submit_paced(
                validators[c % validators.len()].clone(),
                messages,
                batch,
                interval,
                until,
                self.commits.clone(),
            )));
        }
        Ok(tasks)
    }

    fn running_cpu(&self) -> anyhow::Result<Vec<Duration>> {
        self.validators
            .iter()
            .filter_map(|v| v.pid())
            .map(cpu_time)
            .collect()
    }
}

/// Runs the plan and returns the report.
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&plan.work)?;
    let (validators, keys) =
        net::setup(&plan.work, &plan.binary, plan.validators, plan.collectors)?;
    let public: HashMap<KeyId, PublicKey> = keys
        .iter()
        .map(|k| (k.public().key_id(), k.public()))
        .collect();

    // Supply: every level, the saturation run, the catch-up load, the rejoin probe.
    let per_collector = |rate: u64, seconds: u64| {
        usize::try_from(rate.div_ceil(plan.collectors as u64).max(1) * seconds)
            .unwrap_or(usize::MAX)
    };
    let needed: usize = plan
        .offered
        .iter()
        .map(|&r| per_collector(r, plan.level_s))
        .sum::<usize>()
        + per_collector(SATURATION_SUPPLY_PER_S, plan.saturation_s)
        + per_collector(5_000, plan.down_s)
        + per_collector(REJOIN_FEED_PER_S, REJOIN_FEED_S);
    // Phases cut short by backpressure hand their unsent messages to the next.
    let needed = needed + needed / 5;
    progress(&format!(
        "signing {} messages of {} bytes from {} collectors",
        needed * plan.collectors,
        plan.payload_bytes,
        plan.collectors
    ));
    let mut chains: Vec<Chain> = keys.into_iter().map(Chain::new).collect();
    let signed = sign_all(&mut chains, needed, plan.payload_bytes);

    // The ceiling, measured before the network starts so nothing else competes for the
    // cores.
    progress("measuring the Ed25519 batch-verification ceiling");
    let verifications_per_s = signature_ceiling(&signed[0], &public, plan.probe_s.max(2))?;
    let ceiling = verifications_per_s / plan.validators as f64;

    let mut run = Run {
        plan,
        validators,
        commits: Commits::default(),
        supply: signed.into_iter().map(Into::into).collect(),
    };
    for v in &mut run.validators {
        v.start()?;
    }
    wait_in_step(&run.validators, 0, Duration::from_secs(30)).await?;
    wait_connected(&run.validators, Duration::from_secs(30)).await?;
    let follower = run.commits.follow(&run.validators[0]).await?;

    // The offered-load sweep.
    let mut levels = Vec::new();
    for &rate in &plan.offered {
        progress(&format!(
            "offering {rate} messages/s for {} s",
            plan.level_s
        ));
        let (sent, start, end) = run.offer(rate, plan.level_s, None).await?;
        let (micros, missing) = latencies(&run.commits, &sent);
        let last_commit = sent
            .iter()
            .filter_map(|(h, _)| run.commits.at(h))
            .max()
            .unwrap_or(end);
        let span = last_commit.max(end).duration_since(start).as_secs_f64();
        levels.push(Level {
            offered_msgs_per_s: rate,
            committed_msgs_per_s: micros.len() as f64 / span,
            p50_ms: quantile_ms(&micros, 500),
            p99_ms: quantile_ms(&micros, 990),
            messages: micros.len(),
            missing,
        });
        progress(&format!("  {}", levels.last().expect("pushed").line()));
    }

    // Saturation: every collector sends as fast as the network admits.
    progress(&format!("saturating for {} s", plan.saturation_s));
    let cpu_before = run.running_cpu()?;
    let recording = match &plan.profile {
        Some(data) => {
            let pids: Vec<u32> = run.validators.iter().filter_map(Validator::pid).collect();
            Some(profile::record(&pids, plan.saturation_s, data)?)
        }
        None => None,
    };
    let (sent, start, end) = run
        .offer(
            SATURATION_SUPPLY_PER_S,
            plan.saturation_s,
            Some(SATURATION_BATCH),
        )
        .await?;
    let cpu_after = run.running_cpu()?;
    let recorded = recording.map(profile::Recording::stop).transpose()?;
    let hashes: Vec<_> = sent.iter().map(|(h, _)| *h).collect();
    // Offered faster than the network commits, the mempools fill and the network commits
    // at its capacity until they drain: the sustained rate is everything the run admitted
    // over the time from the first to the last commit.
    let commit_times: Vec<Instant> = hashes.iter().filter_map(|h| run.commits.at(h)).collect();
    let first = commit_times.iter().min().copied().unwrap_or(start);
    let last = commit_times.iter().max().copied().unwrap_or(end);
    let throughput = commit_times.len() as f64 / last.duration_since(first).as_secs_f64().max(1e-3);
    let (sat_micros, _) = latencies(&run.commits, &sent);
    wait_in_step(&run.validators, 0, Duration::from_secs(60)).await?;
    let committed = commit_times.len() as f64;
    let cpu_ms_per_msg: f64 = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|(b, a)| a.saturating_sub(*b).as_secs_f64() * 1000.0 / committed)
        .sum::<f64>()
        / cpu_before.len() as f64;
    progress(&format!(
        "  {throughput:.0} messages/s committed; p50 {:.0} ms p99 {:.0} ms",
        quantile_ms(&sat_micros, 500),
        quantile_ms(&sat_micros, 990)
    ));

    // Proof reads against one validator.
    progress("reading inclusion proofs");
    let proof_reads_per_s = proof_reads(&run.validators[0], &hashes, plan.probe_s.max(2)).await?;

    // Catch-up: one validator misses `down_s` of load, then is timed back to the head.
    let lagging = plan.validators - 1;
    progress(&format!(
        "catch-up: {} down for {} s of load",
        run.validators[lagging].name, plan.down_s
    ));
    run.validators[lagging].kill();
    let behind_at = run.validators[lagging].status().await;
    debug_assert!(behind_at.is_none());
    run.offer(5_000, plan.down_s, None).await?;
    let head = wait_in_step(&run.validators, 0, Duration::from_secs(60)).await?;
    let before = read_log_size_offline(&run.validators[lagging]);
    run.validators[lagging].start()?;
    let restarted = Instant::now();
    let (caught_up_s, gap) = loop {
        if let Some(status) = run.validators[lagging].status().await
            && status.log_size >= head
        {
            break (
                restarted.elapsed().as_secs_f64(),
                head - before.unwrap_or(0),
            );
        }
        if restarted.elapsed() > Duration::from_secs(120) {
            bail!("the restarted validator did not catch up within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let catchup = gap as f64 / caught_up_s;

    // Rejoin: SIGKILL one validator and time it from restart to voting again (its head
    // past the network's at the restart). The others are fed a steady load meanwhile, as
    // a live network is, so there are blocks to rejoin on: without load the victim would
    // wait for the next empty block, and the figure would be that interval instead.
    progress("rejoin after SIGKILL");
    let victim = 1;
    run.validators[victim].kill();
    run.validators[victim].start()?;
    let restarted = Instant::now();
    let mut target_height = 0;
    for (i, v) in run.validators.iter().enumerate() {
        if i != victim
            && let Some(status) = v.status().await
        {
            target_height = target_height.max(status.height);
        }
    }
    let others: Vec<String> = run
        .validators
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != victim)
        .map(|(_, v)| v.rpc.clone())
        .collect();
    let feeders = run.feed(
        REJOIN_FEED_PER_S,
        REJOIN_FEED_S,
        None,
        &others,
        Instant::now() + Duration::from_secs(REJOIN_FEED_S),
    )?;
    let rejoin_s = loop {
        if let Some(status) = run.validators[victim].status().await
            && status.height > target_height
        {
            break restarted.elapsed().as_secs_f64();
        }
        if restarted.elapsed() > Duration::from_secs(60) {
            bail!("the SIGKILLed validator did not rejoin within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The feed has done its job; what it did not send is not needed. One that already
    // ended may have failed, and says why.
    for feeder in feeders {
        if feeder.is_finished() {
            feeder.await??;
        } else {
            feeder.abort();
        }
    }
    follower.abort();

    // Storage at rest: a stopped validator's ledger, flushed and compacted, per leaf.
    progress("measuring storage at rest");
    let measured = &mut run.validators[0];
    measured.kill();
    let storage_per_msg = storage_at_rest(measured)?;

    // Last, so that perf's own work falls into nothing measured.
    let profile = match recorded {
        Some(recorded) => {
            progress("summarising the saturation profile (perf report)");
            Some(recorded.summarise()?)
        }
        None => None,
    };

    let at_5k = levels
        .iter()
        .find(|l| l.offered_msgs_per_s == 5_000)
        .or(levels.last())
        .context("no offered level was run")?;
    Ok(Report {
        validators: plan.validators,
        collectors: plan.collectors,
        payload_bytes: plan.payload_bytes,
        throughput_msgs_per_s: throughput,
        p50_ms: at_5k.p50_ms,
        p99_ms: at_5k.p99_ms,
        saturation_p50_ms: quantile_ms(&sat_micros, 500),
        saturation_p99_ms: quantile_ms(&sat_micros, 990),
        ceiling_msgs_per_s: ceiling,
        verifications_per_s,
        ratio: throughput / ceiling,
        cpu_ms_per_msg_per_validator: cpu_ms_per_msg,
        storage_bytes_per_msg: storage_per_msg,
        proof_reads_per_s,
        catchup_msgs_per_s: catchup,
        rejoin_s,
        levels,
        saturation_s: plan.saturation_s,
        profile,
    })
}

/// Bytes per leaf of a stopped validator's ledger after a flush and full compaction.
fn storage_at_rest(validator: &Validator) -> anyhow::Result<f64> {
    let backend = custos_ledger::storage::RocksBackend::open(&validator.dir.join("ledger"))?;
    backend.compact()?;
    let ledger = custos_ledger::storage::Ledger::open(backend)?;
    let leaves = ledger.log()?.tree_size;
    drop(ledger);
    Ok(validator.ledger_bytes()? as f64 / leaves.max(1) as f64)
}

/// A validator's log size read while it is stopped: what it holds when it comes back.
fn read_log_size_offline(validator: &Validator) -> Option<u64> {
    let backend = custos_ledger::storage::RocksBackend::open(&validator.dir.join("ledger")).ok()?;
    let ledger = custos_ledger::storage::Ledger::open(backend).ok()?;
    ledger.log().ok().map(|root| root.tree_size)
}

/// Inclusion-proof reads per second by leaf hash from concurrent keep-alive clients.
async fn proof_reads(
    validator: &Validator,
    hashes: &[custos_ledger::hash::Sha256Hash],
    seconds: u64,
) -> anyhow::Result<f64> {
    if hashes.is_empty() {
        bail!("no committed messages to read proofs of");
    }
    let stop = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..PROOF_CONCURRENCY {
        let client = validator.client()?;
        let sample: Vec<_> = hashes
            .iter()
            .skip(worker)
            .step_by(PROOF_CONCURRENCY)
            .copied()
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            for hash in sample.iter().cycle() {
                if Instant::now() >= stop {
                    break;
                }
                client.get_inclusion_proof(*hash, None).await?;
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
