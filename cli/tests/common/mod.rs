//! Running the built `oncelog` binary as a real process, and checking its output
//! against golden files.

#![allow(dead_code)] // each test file uses a part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run of the command gave.
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Stdout, as text.
    pub stdout: String,
    /// Stderr, as text.
    pub stderr: String,
}

impl Run {
    /// Panics with the whole run unless it exited with `code`.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless it succeeded.
    pub fn ok(self) -> Run {
        self.expect(0)
    }
}

/// The `oncelog` command, without the environment's ONCELOG_STORE.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oncelog"));
    c.env_remove("ONCELOG_STORE");
    c
}

/// Runs `oncelog args...` with `stdin` as its input.
pub fn run_with_input(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oncelog");
    // A command that fails before reading its input (a bad argument) closes the
    // pipe early: that is its answer, not the test's failure.
    if let Err(e) = child.stdin.take().expect("stdin").write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    let out = child.wait_with_output().expect("wait for oncelog");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `oncelog args...` with an empty stdin.
pub fn run(args: &[&str]) -> Run {
    run_with_input(args, b"")
}

/// Runs `oncelog --store <store> args...`.
pub fn on(store: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--store", store.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run(&all)
}

/// Runs `oncelog --store <store> args...` with `stdin` as input.
pub fn on_with_input(store: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["--store", store.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run_with_input(&all, stdin)
}

/// Compares `actual` with `tests/golden/<name>`. With `ONCELOG_BLESS=1` in the
/// environment the file is rewritten instead (review the diff before committing).
pub fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(name);
    if std::env::var_os("ONCELOG_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e} (ONCELOG_BLESS=1 writes it)", path.display()));
    if expected != actual {
        panic!(
            "output differs from {}\n--- expected\n{expected}--- actual\n{actual}",
            path.display()
        );
    }
}
