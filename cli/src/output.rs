//! What the operating subcommands share: opening an existing store, JSON written
//! by hand, bytes shown as text or hex, sizes, progress bars on stderr, and
//! writing to a stdout that may be a closed pipe.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use oncelog::{Store, StoreOptions};

use crate::error::CliError;

/// Opens the store at `dir`, which must exist already: a command other than
/// `create-topic` never creates one (nor turns a stray directory into one).
pub fn open_store(dir: &Path) -> Result<Store, CliError> {
    check_store_dir(dir)?;
    let options = StoreOptions {
        create: false,
        ..StoreOptions::default()
    };
    Ok(Store::open(dir, options)?)
}

/// Fails unless `dir` holds an oncelog store (its `oncelog.meta`).
pub fn check_store_dir(dir: &Path) -> Result<(), CliError> {
    if !dir.is_dir() {
        return Err(CliError::failed(format!("no store at {}", dir.display())));
    }
    if !dir.join("oncelog.meta").is_file() {
        return Err(CliError::failed(format!(
            "{} is not an oncelog store (it has no oncelog.meta)",
            dir.display()
        )));
    }
    Ok(())
}

/// Whether a process holds a `flock` on `path` (how oncelog tells a live holder:
/// the kernel drops the lock when its process dies). Probed with a non-blocking
/// exclusive lock, released at once; false when the file is missing.
pub fn flock_held(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    loop {
        // SAFETY: plain syscalls on an open descriptor, closed when `file` drops.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return false;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return true;
        }
    }
}

/// `s` as a JSON string literal, quotes included (RFC 8259 escaping).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Bytes in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Bytes shown on one line: UTF-8 text with control characters escaped as Rust
/// escapes them (`\n`, `\t`, `\u{1b}`), or `0x` and hex if they are not UTF-8.
pub fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                if c.is_control() || c == '\\' {
                    out.extend(c.escape_debug());
                } else {
                    out.push(c);
                }
            }
            out
        }
        Err(_) => format!("0x{}", hex(bytes)),
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Where progress is drawn: stderr, which indicatif leaves alone when it is not a
/// terminal; nowhere when `beside_stdout` and stdout is the same kind of terminal
/// output the bar would garble.
fn progress_target(beside_stdout: bool) -> ProgressDrawTarget {
    if beside_stdout && io::stdout().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// A progress bar over `total` bytes on stderr, hidden when stderr is not a
/// terminal (or, with `beside_stdout`, when stdout is one: records printed there
/// would break the bar's line).
pub fn bytes_bar(total: u64, prefix: &str, beside_stdout: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), progress_target(beside_stdout));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// A spinner with a count on stderr, hidden as [`bytes_bar`] is.
pub fn counter(prefix: &str, unit: &str, beside_stdout: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, progress_target(beside_stdout));
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{prefix}} {{pos}} {unit} ({{per_sec}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(prefix.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Buffered stdout that tells a closed pipe (`oncelog consume ... | head`) apart
/// from a real write error: after the reader went away, writes are dropped and
/// [`closed`](Self::closed) says so, so the command can stop quietly.
pub struct Out {
    inner: io::BufWriter<io::Stdout>,
    closed: bool,
}

impl Out {
    /// Stdout, buffered.
    pub fn new() -> Out {
        Out {
            inner: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            closed: false,
        }
    }

    /// Writes `bytes`; a closed pipe is remembered, not an error.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.write_all(bytes);
        self.check(r)
    }

    /// Writes `line` and a newline.
    pub fn line(&mut self, line: &str) -> Result<(), CliError> {
        self.write(line.as_bytes())?;
        self.write(b"\n")
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> Result<(), CliError> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.check(r)
    }

    /// Whether the reader of stdout went away.
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn check(&mut self, r: io::Result<()>) -> Result<(), CliError> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(CliError::failed(format!("write to stdout: {e}"))),
        }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Splits `KEY=VALUE` at the first `=`; `what` names the option in the error.
pub fn key_value<'a>(arg: &'a str, what: &str) -> Result<(&'a str, &'a str), CliError> {
    match arg.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(CliError::usage(format!("{what} {arg:?} is not KEY=VALUE"))),
    }
}

/// Appends `rows` as a left-aligned table indented by two spaces.
pub fn table<const N: usize>(s: &mut String, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 1));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
}

/// A duration in milliseconds for people.
pub fn age(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{:.1} min", ms as f64 / 60_000.0)
    } else {
        format!("{:.1} h", ms as f64 / 3_600_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_str("l1\nl2\t\u{1}"), r#""l1\nl2\t\u0001""#);
        assert_eq!(json_str("é ✓"), "\"é ✓\"");
    }

    #[test]
    fn printable_escapes_controls_and_shows_binary_as_hex() {
        assert_eq!(printable(b"hello"), "hello");
        assert_eq!(printable(b"a\nb\\"), "a\\nb\\\\");
        assert_eq!(printable(&[0xff, 0x00]), "0xff00");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(key_value("a=b=c", "--x").unwrap(), ("a", "b=c"));
        assert!(key_value("novalue", "--x").is_err());
        assert!(key_value("=v", "--x").is_err());
    }
}
