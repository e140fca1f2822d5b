//! `oncelog demo` as a user runs it: real child processes, real SIGKILLs, the
//! table, and the exit code that says whether every promise held.

use std::process::{Command, Output};

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oncelog"))
        .arg("demo")
        .args(args)
        .output()
        .expect("run oncelog demo")
}

/// The table's rows: (mode, lost, duplicated, kills, held).
fn rows(stdout: &str) -> Vec<(String, u64, u64, u64, String)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("at-") || l.starts_with("exactly-"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (
                w[0].to_string(),
                w[1].parse().unwrap(),
                w[2].parse().unwrap(),
                w[4].parse().unwrap(),
                w[w.len() - 1].to_string(),
            )
        })
        .collect()
}

#[test]
fn every_promise_holds_under_sigkill() {
    let out = demo(&["--kills", "9", "--records", "5000", "--seed", "42"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = rows(&stdout);
    let modes: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(modes, ["at-most-once", "at-least-once", "exactly-once"]);
    for (mode, lost, duplicated, _, held) in &rows {
        assert_eq!(held, "yes", "{mode}: {stdout}");
        match mode.as_str() {
            "at-most-once" => assert_eq!(*duplicated, 0),
            "at-least-once" => assert_eq!(*lost, 0),
            _ => assert_eq!((*lost, *duplicated), (0, 0)),
        }
    }
    assert_eq!(
        rows.iter().map(|r| r.3).sum::<u64>(),
        9,
        "every kill happened: {stdout}"
    );
    // The README shows a run: its table has the columns this one has.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("mode "))
        .expect("a table header");
    assert!(
        readme.contains(header),
        "README.md's demo output lacks the header {header:?}"
    );
}

#[test]
fn a_broken_promise_is_found_and_fails_the_run() {
    // Every consumer processes its first record twice: the count must see it.
    let out = demo(&["--kills", "0", "--records", "500", "--sabotage"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for (mode, _, duplicated, _, held) in rows(&stdout) {
        assert_eq!(duplicated, 1, "{mode}: {stdout}");
        let expected = if mode == "at-least-once" { "yes" } else { "NO" };
        assert_eq!(held, expected, "{mode}");
    }
}

#[test]
fn bad_arguments_exit_2_and_ours_are_one_line() {
    // Refused by the argument parser.
    for args in [&["--lang", "cobol"][..], &["--kills", "x"][..]] {
        let out = demo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(args[1]),
            "{args:?}"
        );
    }
    // Refused by the demo: one line.
    let missing_c_child = Command::new(env!("CARGO_BIN_EXE_oncelog"))
        .args(["demo", "--lang", "c"])
        .env("ONCELOG_DEMO_C", "/nonexistent/demo_child")
        .output()
        .unwrap();
    for out in [demo(&["--records", "0"]), missing_c_child] {
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("oncelog: error: "), "{stderr}");
    }
}
