//! Seed sweeps of the consensus simulator (run it through `scripts/sim.sh`).
//!
//! ```text
//! sim --seeds N [--first-seed S] [--validators 4|7] [--jobs J] [--planted-bug NAME]
//! sim --seed S [--validators 4|7] [--trace] [--planted-bug NAME]
//! ```
//!
//! A sweep prints every failing seed with the command that reproduces it and ends with
//! exactly one line `seeds=N violations=V stalls=S`; the exit status is non-zero when
//! V or S is. A single seed prints its scenario, outcome, trace hash and (with `--trace`)
//! every event.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line report"
)]

use std::process::ExitCode;
use std::time::Instant;

use custos_tests::sim::{self, Outcome, SimOptions};

struct Args {
    seeds: Option<u64>,
    first_seed: u64,
    seed: Option<u64>,
    options: SimOptions,
    jobs: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: None,
        first_seed: 0,
        seed: None,
        options: SimOptions::new(4),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--seeds" => args.seeds = Some(number(value()?)?),
            "--first-seed" => args.first_seed = number(value()?)?,
            "--seed" => args.seed = Some(number(value()?)?),
            "--validators" => {
                args.options.validators = match value()?.as_str() {
                    "4" => 4,
                    "7" => 7,
                    other => return Err(format!("--validators {other}: use 4 or 7")),
                }
            }
            "--jobs" => {
                args.jobs = usize::try_from(number(value()?)?)
                    .map_err(|e| e.to_string())?
                    .max(1);
            }
            "--planted-bug" => {
                let name = value()?;
                let bug = sim::planted_bug_from_name(&name).ok_or_else(|| {
                    format!(
                        "--planted-bug {name}: use ignore-lock, quorum-off-by-one, \
                         broadcast-before-persist or forget-wal"
                    )
                })?;
                args.options.planted_bug = Some(bug);
            }
            "--trace" => args.options.readable_trace = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; see the header of tests/src/bin/sim.rs"
                ));
            }
        }
    }
    if args.seeds.is_none() == args.seed.is_none() {
        return Err("give either --seeds N (a sweep) or --seed S (one run)".to_string());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("sim: {message}");
            return ExitCode::from(2);
        }
    };
    match (args.seed, args.seeds) {
        (Some(seed), _) => single(seed, &args.options),
        (_, Some(count)) => sweep(args.first_seed, count, &args.options, args.jobs),
        _ => unreachable!("checked in parse"),
    }
}

fn single(seed: u64, options: &SimOptions) -> ExitCode {
    let report = sim::run(seed, options);
    print!("seed={seed}\n{}", report.scenario);
    if let Some(lines) = &report.trace_lines {
        for line in lines {
            println!("{line}");
        }
    }
    println!("stats: {:?}", report.stats);
    println!("virtual time: {}ms", report.virtual_ms);
    println!("trace hash: {}", report.trace_hex());
    println!("outcome: {}", report.outcome);
    if report.outcome == Outcome::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn sweep(first_seed: u64, count: u64, options: &SimOptions, jobs: usize) -> ExitCode {
    let started = Instant::now();
    let summary = sim::sweep(first_seed..first_seed + count, options, jobs, false);
    for report in &summary.failures {
        println!(
            "FAIL seed={} validators={}: {}",
            report.seed, options.validators, report.outcome
        );
        println!("  reproduce: {}", report.reproduce_command());
    }
    println!(
        "validators={} seeds {}..{}: {} heights decided, {} evidence, {} crashes, {:.1}s",
        options.validators,
        first_seed,
        first_seed + count,
        summary.heights,
        summary.evidence,
        summary.crashes,
        started.elapsed().as_secs_f64()
    );
    let (violations, stalls) = (summary.violations(), summary.stalls());
    println!(
        "seeds={} violations={violations} stalls={stalls}",
        summary.seeds
    );
    if violations + stalls == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
