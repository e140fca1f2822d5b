//! `oncelog`: operate a store the way kcat and Kafka's console tools operate a
//! cluster, show the three delivery guarantees under real crashes (`demo`), and
//! compare oncelog with what one would use instead (`bench`).
//!
//! Every error is one line on stderr and a non-zero exit code (2 for a usage
//! error, 1 otherwise); `--help` on every subcommand shows an example.

mod cmd;
mod error;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

#[derive(Parser)]
#[command(
    name = "oncelog",
    version,
    about = "Operate an oncelog store, watch its delivery guarantees survive crashes, benchmark it",
    after_help = "Examples:\n  oncelog demo\n  oncelog --store /tmp/s create-topic events --partitions 3\n  echo hello | oncelog --store /tmp/s produce events\n  oncelog --store /tmp/s consume events --from-beginning"
)]
struct Cli {
    /// The store directory (created by `create-topic` if missing).
    #[arg(long, global = true, env = "ONCELOG_STORE", value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a topic.
    #[command(
        after_help = "Example:\n  oncelog --store /tmp/s create-topic events --partitions 3 --config retention.ms=86400000"
    )]
    CreateTopic(cmd::topics::CreateTopic),
    /// Show topics, partitions, offsets, sizes, producers and open transactions.
    #[command(after_help = "Example:\n  oncelog --store /tmp/s describe")]
    Describe(cmd::describe::Describe),
    /// Produce one record per line of stdin.
    #[command(
        after_help = "Example:\n  printf 'k1:hello\\nk2:world\\n' | oncelog --store /tmp/s produce events --key-separator :"
    )]
    Produce(cmd::produce::Produce),
    /// Print the records of a topic.
    #[command(
        after_help = "Example:\n  oncelog --store /tmp/s consume events --from-beginning --format json --max 10"
    )]
    Consume(cmd::consume::Consume),
    /// List consumer groups, describe one with its lag, or reset its offsets.
    #[command(
        after_help = "Examples:\n  oncelog --store /tmp/s groups list\n  oncelog --store /tmp/s groups describe billing\n  oncelog --store /tmp/s groups reset-offsets billing --topic events --to-earliest"
    )]
    Groups(cmd::groups::Groups),
    /// Print every batch of a segment file, like kafka-dump-log.
    #[command(
        after_help = "Example:\n  oncelog dump /tmp/s/events-0/00000000000000000000.log --records"
    )]
    Dump(cmd::dump::Dump),
    /// Check every batch and index of the store; non-zero exit code on damage.
    #[command(after_help = "Example:\n  oncelog --store /tmp/s verify")]
    Verify(cmd::verify::Verify),
    /// Run producers and consumers in the three delivery modes, kill them with
    /// SIGKILL at random instants, and count what was lost and what was
    /// processed twice.
    #[command(after_help = "Example:\n  oncelog demo --kills 30 --seed 7")]
    Demo(cmd::demo::Demo),
    /// Benchmark oncelog against SQLite (WAL) and LMDB on the same data.
    #[command(after_help = "Example:\n  oncelog bench --quick")]
    Bench(cmd::bench::Bench),
    /// A child process of `demo` (not for direct use).
    #[command(hide = true, name = "__demo-child")]
    DemoChild(cmd::demo::Child),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oncelog: error: {}", e.one_line());
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let store = || {
        cli.store
            .clone()
            .ok_or_else(|| CliError::usage("this subcommand needs --store DIR (or ONCELOG_STORE)"))
    };
    match cli.command {
        Command::CreateTopic(args) => cmd::topics::create(&store()?, args),
        Command::Describe(args) => cmd::describe::run(&store()?, args),
        Command::Produce(args) => cmd::produce::run(&store()?, args),
        Command::Consume(args) => cmd::consume::run(&store()?, args),
        Command::Groups(args) => cmd::groups::run(&store()?, args),
        Command::Dump(args) => cmd::dump::run(args),
        Command::Verify(args) => cmd::verify::run(&store()?, args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::DemoChild(args) => cmd::demo::child(args),
    }
}
