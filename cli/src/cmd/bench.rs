//! `bench`: oncelog next to SQLite (WAL) and LMDB on the same records, in the same
//! run (crate `oncelog-bench`, module `compare`; `docs/PERFORMANCE.md` explains the
//! workloads and the figures).

use std::process::ExitCode;

use clap::Args;
use oncelog_bench::child::{self, Relaunch};
use oncelog_bench::compare::{self, Sizes};

use crate::error::CliError;

/// Arguments of `bench`.
#[derive(Args)]
pub struct Bench {
    /// Tiny sizes: a smoke test, not a measurement.
    #[arg(long)]
    pub quick: bool,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run as a child process of the benchmark (its writer or waiter side).
    #[arg(
        long,
        hide = true,
        num_args = 1..,
        allow_hyphen_values = true,
        value_name = "ROLE"
    )]
    pub child: Option<Vec<String>>,
}

/// What `oncelog` is re-executed with for a child process: the role and its
/// arguments follow.
const CHILD_PREFIX: [&str; 2] = ["bench", "--child"];

/// Runs the benchmark (or one of its child processes) and prints the report.
pub fn run(args: Bench) -> Result<ExitCode, CliError> {
    if let Some(role) = args.child {
        return match child::child_main(&role) {
            Some(Ok(())) => Ok(ExitCode::SUCCESS),
            Some(Err(e)) => Err(CliError::failed(format!("bench child: {e}"))),
            None => Err(CliError::usage(format!(
                "unknown bench child role {role:?}"
            ))),
        };
    }
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let exe = Relaunch::current(&CHILD_PREFIX).map_err(|e| CliError::failed(e.to_string()))?;
    let started = std::time::Instant::now();
    let mut progress = |what: &str| {
        eprintln!(
            "oncelog bench: [{:>5.1} s] {what}",
            started.elapsed().as_secs_f64()
        );
    };
    let report = compare::run(&sizes, args.quick, &exe, &mut progress)
        .map_err(|e| CliError::failed(format!("bench: {e}")))?;
    if args.json {
        println!("{}", report.json().render());
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}
