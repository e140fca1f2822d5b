//! The machine a run measured: what the report says about it, and how much other
//! work ran beside the bench.

/// Other work (in cores, see [`crate::util::CpuMeter`]) above which a run is
/// flagged as disturbed.
pub const FOREIGN_OK: f64 = 0.05;

/// What the report says about the machine.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The load average when the run started.
    pub load_before: String,
    /// The load average when it ended (filled in by the caller).
    pub load_after: String,
    /// The CPU model, as `/proc/cpuinfo` names it.
    pub cpu: String,
    /// Cores available to the process.
    pub cores: usize,
    /// The kernel release.
    pub kernel: String,
    /// The file system of the temporary directory.
    pub fs: String,
    /// The temporary directory every store is created under.
    pub tmp: String,
}

/// Reads the machine's description (and the load average now).
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, v)| v.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".to_string(), |s| s.trim().to_string());
    let tmp = std::env::temp_dir();
    let fs = std::process::Command::new("findmnt")
        .args(["-no", "FSTYPE", "-T"])
        .arg(&tmp)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    Machine {
        load_before: loadavg(),
        load_after: String::new(),
        cpu,
        cores,
        kernel,
        fs,
        tmp: tmp.display().to_string(),
    }
}

/// The first three fields of /proc/loadavg: other work on the machine skews every
/// figure, so the report shows it.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}
