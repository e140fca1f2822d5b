//! Child processes. The cross-process tests run the writer (or waiter) in another
//! process: the running binary re-executed with a hidden role as its first argument
//! after a fixed prefix. `oncelog-bench` has no prefix (`oncelog-bench __wake-writer
//! ...`); the `oncelog` command puts its own in front (`oncelog bench --child
//! __wake-writer ...`). Whichever binary is re-executed hands the arguments after
//! the prefix to [`child_main`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::util::Res;

/// Role of the child of [`crate::limits::futex_wakeup`].
pub const FUTEX_WAITER: &str = "__futex-waiter";
/// Role of the child of [`crate::wakeup::wake_latency`].
pub const WAKE_WRITER: &str = "__wake-writer";
/// Role of the child of the SQLite and LMDB wake-up tests.
#[cfg(feature = "peers")]
pub const PEER_WAKE_WRITER: &str = "__peer-wake-writer";

/// How to start this program again as a child in a given role.
#[derive(Clone, Debug)]
pub struct Relaunch {
    exe: PathBuf,
    prefix: Vec<OsString>,
}

impl Relaunch {
    /// The running executable, with `prefix` before the role.
    pub fn current(prefix: &[&str]) -> Res<Relaunch> {
        Ok(Relaunch {
            exe: std::env::current_exe()?,
            prefix: prefix.iter().map(OsString::from).collect(),
        })
    }

    /// A command that starts the child in `role`; the caller adds the role's
    /// arguments.
    pub fn command(&self, role: &str) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(&self.prefix).arg(role);
        c
    }
}

/// Runs the child role named by `args[0]` with the arguments after it, or returns
/// `None` when `args[0]` names no role.
pub fn child_main(args: &[String]) -> Option<Res<()>> {
    let (role, rest) = args.split_first()?;
    match role.as_str() {
        FUTEX_WAITER => Some(crate::limits::futex_waiter_main(rest)),
        WAKE_WRITER => Some(crate::wakeup::wake_writer_main(rest)),
        #[cfg(feature = "peers")]
        PEER_WAKE_WRITER => Some(crate::peers::wake_writer_main(rest)),
        _ => None,
    }
}
