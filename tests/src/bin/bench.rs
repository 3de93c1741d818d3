//! `scripts/bench.sh`: the network benchmark. Runs four real validators on loopback,
//! measures throughput, latency, the signature ceiling, CPU, storage, proof reads,
//! catch-up and rejoin in one run, writes a Markdown table, a JSON file and a PNG plot to
//! the results folder, and prints the table and, as its last line, the JSON.

// A benchmark's output is its result.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

use custos_tests::bench::{self, Plan};

/// Where the plot's font is looked for (Debian's `fonts-dejavu-core`, which
/// `scripts/setup.sh` installs).
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

#[derive(Debug, Parser)]
#[command(about = "Custos network benchmark")]
struct Args {
    /// The `custos` binary to run.
    #[arg(long)]
    custos: PathBuf,
    /// Folder for the results (table, JSON, plot).
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// A short run, under a minute of measuring.
    #[arg(long)]
    quick: bool,
    /// Keep the validators' folders (in the results folder) for inspection.
    #[arg(long)]
    keep: bool,
    /// Profile the validators with `perf` during the saturation run; the summary joins
    /// the results and the raw data is kept as `perf-<time>.data`.
    #[arg(long)]
    profile: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix("bench-network-")
        .tempdir_in(&args.out)?;
    let mut plan = if args.quick {
        Plan::quick(args.custos.clone(), scratch.path().to_path_buf())
    } else {
        Plan::full(args.custos.clone(), scratch.path().to_path_buf())
    };
    let stamp = custos_node::runtime::now_ms().0 / 1000;
    if args.profile {
        plan.profile = Some(args.out.join(format!("perf-{stamp}.data")));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(bench::run(&plan))?;
    drop(runtime);
    if args.keep {
        let kept = scratch.keep();
        eprintln!("bench: validator folders kept in {}", kept.display());
    }
    let markdown = report.markdown();
    let json = report.json_line()?;
    std::fs::write(args.out.join(format!("bench-{stamp}.md")), &markdown)?;
    std::fs::write(
        args.out.join(format!("bench-{stamp}.json")),
        format!("{json}\n"),
    )?;
    let plot = args.out.join(format!("bench-{stamp}.png"));
    let font_path = FONT_PATHS
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .context("no DejaVuSans.ttf for the plot: run scripts/setup.sh")?;
    let font: &'static [u8] = Box::leak(std::fs::read(font_path)?.into_boxed_slice());
    report.plot(&plot, font)?;
    eprintln!("bench: results in {}", args.out.display());
    println!("{markdown}");
    println!("{json}");
    Ok(())
}
