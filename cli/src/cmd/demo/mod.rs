//! `oncelog demo`: the seed's three delivery modes, for real. For each of
//! at-most-once, at-least-once and exactly-once, a producer process writes numbered
//! records to `input` and a consumer process turns each into a record of `output`,
//! on a fresh store; both are killed with SIGKILL at random points of their
//! progress and restarted. When both are done, the log itself says which input
//! records never came out (lost) and which came out more than once (processed
//! twice).

mod child;
mod count;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use oncelog::{Store, StoreOptions, TopicConfig};

pub use child::{child, Child};

use crate::error::CliError;

/// The topic the producer writes.
const INPUT: &str = "input";
/// The topic the consumer writes.
const OUTPUT: &str = "output";
/// How long a run may take before the demo gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A delivery mode of the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[allow(clippy::enum_variant_names)] // the modes' own names
pub enum Mode {
    /// The producer does not retry; the consumer commits before processing.
    AtMostOnce,
    /// The producer retries; the consumer commits after processing.
    AtLeastOnce,
    /// Idempotent, transactional producer; the consumer's output and offsets
    /// commit in one transaction.
    ExactlyOnce,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::AtMostOnce, Mode::AtLeastOnce, Mode::ExactlyOnce];

    /// The `delivery` preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::AtMostOnce => "at-most-once",
            Mode::AtLeastOnce => "at-least-once",
            Mode::ExactlyOnce => "exactly-once",
        }
    }

    /// What the mode promises, as the table says it.
    fn promise(self) -> &'static str {
        match self {
            Mode::AtMostOnce => "nothing twice",
            Mode::AtLeastOnce => "nothing lost",
            Mode::ExactlyOnce => "nothing lost, nothing twice",
        }
    }

    fn held(self, c: &count::Counts) -> bool {
        match self {
            Mode::AtMostOnce => c.duplicated == 0,
            Mode::AtLeastOnce => c.lost == 0,
            Mode::ExactlyOnce => c.lost == 0 && c.duplicated == 0,
        }
    }
}

/// Arguments of `demo`.
#[derive(Args)]
pub struct Demo {
    /// SIGKILLs in all, shared by the three modes.
    #[arg(long, default_value_t = 36)]
    pub kills: u32,
    /// Seed of the kill points (the same seed kills at the same points of progress).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Input records per mode.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Only these modes (default: all three).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub modes: Vec<Mode>,
    /// Languages of the child processes, in turn: each restart of a child uses the
    /// next one (`rust`; `c` needs examples/c/demo_child, built by `make c-test`, or
    /// its path in ONCELOG_DEMO_C; `python` the package in .venv, built by `make
    /// python`, or an interpreter that has it in ONCELOG_DEMO_PYTHON).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "rust")]
    pub lang: Vec<Lang>,
    /// Keep the stores (their paths are printed) instead of deleting them.
    #[arg(long)]
    pub keep: bool,
    /// For the demo's own tests: every consumer processes its first record twice,
    /// so that the count must find duplicates.
    #[arg(long, hide = true)]
    pub sabotage: bool,
}

/// The outcome of one mode.
struct Outcome {
    mode: Mode,
    counts: count::Counts,
    kills: u32,
    secs: f64,
}

/// Runs the demo and prints the table; exit code 0 only if every promise held.
pub fn run(args: Demo) -> Result<ExitCode, CliError> {
    if args.records == 0 {
        return Err(CliError::usage("--records must be at least 1"));
    }
    let exe = std::env::current_exe()?;
    let mut programs = Vec::new();
    for lang in &args.lang {
        programs.push(lang.program(&exe)?);
    }
    let modes = if args.modes.is_empty() {
        Mode::ALL.to_vec()
    } else {
        args.modes.clone()
    };
    let seed = args.seed.unwrap_or_else(random_seed);
    let langs: Vec<&str> = args.lang.iter().map(|l| l.name()).collect();
    println!(
        "oncelog demo: {} records per mode, {} SIGKILLs in all, seed {seed}, children in {}",
        args.records,
        args.kills,
        langs.join(" then ")
    );
    let mut rng = Rng(seed | 1);
    let mut outcomes = Vec::new();
    for (i, mode) in modes.iter().enumerate() {
        // Spread the kills over the modes as evenly as they go.
        let kills = args.kills / modes.len() as u32
            + u32::from((i as u32) < args.kills % modes.len() as u32);
        let dir = scratch_dir(*mode)?;
        let outcome = run_mode(
            &programs,
            &dir,
            *mode,
            args.records,
            kills,
            args.sabotage,
            &mut rng,
        );
        if args.keep {
            println!("  store of {}: {}", mode.name(), dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        outcomes.push(outcome?);
    }
    print_table(&outcomes);
    let held = outcomes.iter().all(|o| o.mode.held(&o.counts));
    Ok(if held {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_mode(
    programs: &[Program],
    dir: &Path,
    mode: Mode,
    records: u64,
    kills: u32,
    sabotage: bool,
    rng: &mut Rng,
) -> Result<Outcome, CliError> {
    // Each start of a role takes the next language in turn.
    let mut starts = [0usize; 2];
    let mut spawn = |role: Role| {
        let start = &mut starts[role as usize];
        let program = &programs[*start % programs.len()];
        *start += 1;
        spawn(program, dir, mode, role, records, sabotage)
    };
    {
        let store = Store::open(dir, StoreOptions::default())?;
        store.create_topic(INPUT, 1, TopicConfig::default())?;
        store.create_topic(OUTPUT, 1, TopicConfig::default())?;
    }
    let store = Store::open(dir, StoreOptions::default())?;
    let (input, output) = (store.partition(INPUT, 0)?, store.partition(OUTPUT, 0)?);
    // Kill points: a place in the producer's or the consumer's progress, sorted.
    let mut points: Vec<(Role, u64)> = (0..kills)
        .map(|_| {
            let role = if rng.below(2) == 0 {
                Role::Producer
            } else {
                Role::Consumer
            };
            (role, 1 + rng.below(records.saturating_sub(1).max(1)))
        })
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.1));

    let bar = ProgressBar::new(records);
    bar.set_style(
        ProgressStyle::with_template("  {prefix:<14} [{bar:30}] {pos}/{len} out, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(mode.name());
    let started = Instant::now();
    let mut producer = spawn(Role::Producer)?;
    let mut consumer = spawn(Role::Consumer)?;
    let mut done = 0;
    let mut producer_done = false;
    loop {
        // Progress: records in the input (the producer's), records out (the consumer's).
        let produced = input.end_offset().max(0) as u64;
        let consumed = output.end_offset().max(0) as u64;
        bar.set_position(consumed.min(records));
        bar.set_message(format!("{done} of {kills} kills"));
        if let Some((role, at)) = points.last().copied() {
            let reached = match role {
                Role::Producer => produced >= at || producer_done,
                Role::Consumer => consumed >= at,
            };
            if reached {
                points.pop();
                // A producer that finished is not killed again: its kill goes to the
                // consumer.
                let role = if producer_done { Role::Consumer } else { role };
                let victim = match role {
                    Role::Producer => &mut producer,
                    Role::Consumer => &mut consumer,
                };
                victim.kill()?;
                victim.wait()?;
                *victim = spawn(role)?;
                done += 1;
                continue;
            }
        }
        if !producer_done {
            if let Some(status) = producer.try_wait()? {
                if !status.success() {
                    bar.abandon();
                    return Err(CliError::failed(format!(
                        "{} producer exited with {status}",
                        mode.name()
                    )));
                }
                producer_done = true;
            }
        }
        if let Some(status) = consumer.try_wait()? {
            // The consumer stops once the producer is done and it caught up.
            if !status.success() || !producer_done {
                bar.abandon();
                return Err(CliError::failed(format!(
                    "{} consumer exited with {status}",
                    mode.name()
                )));
            }
            break;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = producer.kill();
            let _ = consumer.kill();
            bar.abandon();
            return Err(CliError::failed(format!(
                "{} did not finish within {RUN_LIMIT:?}",
                mode.name()
            )));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let counts = count::count(&store, mode, records)?;
    Ok(Outcome {
        mode,
        counts,
        kills: done,
        secs,
    })
}

/// A language the demo's children may be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// This binary's own `__demo-child`.
    Rust,
    /// examples/c/demo_child.c, built against liboncelog.
    C,
    /// examples/python/demo_child.py, with the oncelog Python package.
    Python,
}

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Python => "python",
        }
    }

    /// The program that runs a child in this language.
    fn program(self, exe: &Path) -> Result<Program, CliError> {
        match self {
            Lang::Rust => Ok(Program {
                path: exe.to_path_buf(),
                args: vec!["__demo-child".into()],
            }),
            Lang::C => {
                let path = match std::env::var_os("ONCELOG_DEMO_C") {
                    Some(p) => PathBuf::from(p),
                    // target/<profile>/oncelog -> target/c-build/demo_child
                    None => exe
                        .parent()
                        .and_then(Path::parent)
                        .map(|t| t.join("c-build").join("demo_child"))
                        .unwrap_or_default(),
                };
                if !path.is_file() {
                    return Err(CliError::usage(format!(
                        "--lang c: no C demo child at {} (build it with make c-test, or set ONCELOG_DEMO_C)",
                        path.display()
                    )));
                }
                Ok(Program {
                    path,
                    args: Vec::new(),
                })
            }
            Lang::Python => {
                // target/<profile>/oncelog -> the checkout, with .venv and examples/.
                let root = exe
                    .parent()
                    .and_then(Path::parent)
                    .and_then(Path::parent)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let python = std::env::var_os("ONCELOG_DEMO_PYTHON")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| root.join(".venv/bin/python"));
                let script = root.join("examples/python/demo_child.py");
                let imports = Command::new(&python)
                    .args(["-c", "import oncelog"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !imports || !script.is_file() {
                    return Err(CliError::usage(format!(
                        "--lang python: {} cannot import oncelog, or {} is missing (build the package with make python, or set ONCELOG_DEMO_PYTHON to an interpreter that has it)",
                        python.display(),
                        script.display()
                    )));
                }
                Ok(Program {
                    path: python,
                    args: vec![script.to_string_lossy().into_owned()],
                })
            }
        }
    }
}

/// How to start a child: a program and its first arguments.
struct Program {
    path: PathBuf,
    args: Vec<String>,
}

/// A demo child's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Writes the numbered input records.
    Producer,
    /// Turns input records into output records.
    Consumer,
}

fn spawn(
    program: &Program,
    dir: &Path,
    mode: Mode,
    role: Role,
    records: u64,
    sabotage: bool,
) -> Result<std::process::Child, CliError> {
    let mut cmd = Command::new(&program.path);
    cmd.args(&program.args)
        .arg("--dir")
        .arg(dir)
        .args(["--mode", mode.name()])
        .args([
            "--role",
            match role {
                Role::Producer => "producer",
                Role::Consumer => "consumer",
            },
        ])
        .args(["--records", &records.to_string()]);
    if sabotage {
        cmd.arg("--sabotage");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CliError::failed(format!("start a {role:?} child: {e}")))
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<15} {:>7} {:>11} {:>11} {:>6}   {:<28} held",
        "mode", "lost", "duplicated", "records/s", "kills", "promise"
    );
    for o in outcomes {
        println!(
            "{:<15} {:>7} {:>11} {:>11} {:>6}   {:<28} {}",
            o.mode.name(),
            o.counts.lost,
            o.counts.duplicated,
            group_digits((o.counts.records as f64 / o.secs) as u64),
            o.kills,
            o.mode.promise(),
            if o.mode.held(&o.counts) { "yes" } else { "NO" }
        );
    }
    println!();
    println!("lost: input records that never came out of the consumer; duplicated: extra copies of those that did.");
    println!(
        "records/s: input records through producer and consumer, kills and restarts included."
    );
}

fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn scratch_dir(mode: Mode) -> Result<PathBuf, CliError> {
    let dir = std::env::temp_dir().join(format!(
        "oncelog-demo-{}-{}-{}",
        std::process::id(),
        mode.name(),
        random_seed() % 1_000_000
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
}

/// xorshift64*: reproducible kill points from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
