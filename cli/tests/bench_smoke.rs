//! `oncelog bench --quick --json` runs end to end: every workload reports a figure
//! for every engine. Figures are never asserted beyond "greater than zero": the
//! quick sizes measure nothing, and this machine is shared.

use std::process::Command;

use serde_json::Value;

const ENGINES: [&str; 3] = ["oncelog", "sqlite", "lmdb"];
const WORKLOADS: [&str; 7] = [
    "batched_append",
    "single_append",
    "read_all",
    "transactions_no_sync",
    "synced_commit",
    "wakeup_short_gap",
    "wakeup_long_gap",
];

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x > 0.0, "{what} = {x}, expected > 0");
    x
}

#[test]
fn quick_json_has_every_workload_for_every_engine() {
    let out = Command::new(env!("CARGO_BIN_EXE_oncelog"))
        .args(["bench", "--quick", "--json"])
        .env_remove("ONCELOG_BENCH_DUMP")
        .output()
        .expect("run oncelog bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "oncelog bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(report["quick"], Value::Bool(true));
    for engine in ENGINES {
        assert!(
            report["engines"][engine].is_string(),
            "no settings for {engine}"
        );
    }
    for name in WORKLOADS {
        let w = &report["workloads"][name];
        assert!(w.is_object(), "workload {name} missing");
        for engine in ENGINES {
            let f = &w[engine];
            let at = format!("{name}.{engine}");
            match w["kind"].as_str() {
                Some("rate") => {
                    positive(&f["best_per_s"], &format!("{at}.best_per_s"));
                    positive(&f["median_per_s"], &format!("{at}.median_per_s"));
                }
                Some("latency") => {
                    positive(&f["p50_ns"], &format!("{at}.p50_ns"));
                    positive(&f["p99_ns"], &format!("{at}.p99_ns"));
                    positive(&f["samples"], &format!("{at}.samples"));
                    if name == "synced_commit" {
                        positive(
                            &f["commits_per_s_best"],
                            &format!("{at}.commits_per_s_best"),
                        );
                    }
                }
                other => panic!("workload {name} has kind {other:?}"),
            }
        }
        for peer in &ENGINES[1..] {
            assert!(
                w[format!("oncelog_to_{peer}")].is_object(),
                "{name}: no ratio to {peer}"
            );
        }
    }
}

#[test]
fn table_names_every_engine() {
    let out = Command::new(env!("CARGO_BIN_EXE_oncelog"))
        .args(["bench", "--quick"])
        .output()
        .expect("run oncelog bench");
    assert!(
        out.status.success(),
        "oncelog bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for label in ["oncelog/SQLite", "oncelog/LMDB", "synced commit", "wake-up"] {
        assert!(table.contains(label), "no {label:?} in:\n{table}");
    }
}
