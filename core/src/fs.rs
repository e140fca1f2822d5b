//! File-system helpers: block reservation, atomic small-file writes, directory sync
//! and advisory locks. Every call names its path in the error.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{Error, Result};

/// Reserves `[offset, offset + len)` of `file` on disk (`fallocate` mode 0), growing
/// its size, so later writes through a mapping cannot hit a full disk (SIGBUS).
/// A full disk or a file-size limit (`RLIMIT_FSIZE`) is [`ErrorKind::NoSpace`].
///
/// [`ErrorKind::NoSpace`]: crate::ErrorKind::NoSpace
pub fn reserve(file: &File, path: &Path, offset: u64, len: u64) -> Result<()> {
    loop {
        // SAFETY: plain syscall on an owned, open descriptor.
        let rc = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                0,
                offset as libc::off_t,
                len as libc::off_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            // File systems without fallocate: allocate by writing zeros instead.
            Some(libc::EOPNOTSUPP) => return reserve_by_writing(file, path, offset, len),
            _ => return Err(Error::io("reserve blocks in", path, err)),
        }
    }
}

/// Writes zeros over the part of `[offset, offset + len)` past the end of the file
/// (bytes inside it are data and stay as they are).
pub fn reserve_by_writing(file: &File, path: &Path, offset: u64, len: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let size = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let end = offset + len;
    let mut at = offset.max(size);
    let zeros = [0u8; 64 * 1024];
    while at < end {
        let n = (end - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(|e| Error::io("reserve blocks in", path, e))?;
        at += n as u64;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file, `fsync`, `rename`, then an
/// `fsync` of the directory. Readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `fsync`s a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))
}

/// Writes all of `bytes` at `offset` of `file` (`pwrite`, repeated until done).
pub fn write_at(file: &File, path: &Path, bytes: &[u8], offset: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(bytes, offset)
        .map_err(|e| Error::io("write", path, e))
}

/// `fdatasync` of one file.
pub fn sync_data(file: &File, path: &Path) -> Result<()> {
    file.sync_data().map_err(|e| Error::io("sync", path, e))
}

/// Opens `path` for syncing; `Ok(None)` if it no longer exists.
pub fn open_for_sync(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open", path, e)),
    }
}

/// Opens `path` for reading and writing, creating it if `create`.
pub fn open_rw(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

/// The kind of `flock` to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlockMode {
    /// Many holders at once.
    Shared,
    /// One holder only.
    Exclusive,
}

/// Takes a `flock` on `file`; with `wait == false` returns `Ok(false)` instead of
/// blocking when another holder conflicts.
pub fn flock(file: &File, path: &Path, mode: FlockMode, wait: bool) -> Result<bool> {
    let mut op = match mode {
        FlockMode::Shared => libc::LOCK_SH,
        FlockMode::Exclusive => libc::LOCK_EX,
    };
    if !wait {
        op |= libc::LOCK_NB;
    }
    loop {
        // SAFETY: plain syscall on an owned, open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) if !wait => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(Error::io("lock", path, err)),
        }
    }
}

/// Releases a `flock` held through `file`'s open file description.
pub fn funlock(file: &File, path: &Path) -> Result<()> {
    // SAFETY: plain syscall on an owned, open descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) } == 0 {
        Ok(())
    } else {
        Err(Error::io("unlock", path, std::io::Error::last_os_error()))
    }
}

/// Takes (blocking) or releases an OFD write lock on byte 0 of `file`. Released by
/// the kernel when the file description is closed, so a dead holder never blocks.
pub fn ofd_lock_byte0(file: &File, path: &Path, lock: bool) -> Result<()> {
    // SAFETY: a zeroed flock struct is a valid argument once filled in below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if lock { libc::F_WRLCK } else { libc::F_UNLCK } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 1;
    loop {
        // SAFETY: `fl` is a valid flock struct; OFD locks require l_pid == 0 (zeroed).
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &fl) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(Error::io("lock", path, err));
        }
    }
}

/// A random non-negative i64 from `/dev/urandom` (session tokens).
pub fn random_token() -> Result<i64> {
    let mut bytes = [0u8; 8];
    File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| Error::io("read", Path::new("/dev/urandom"), e))?;
    Ok(i64::from_be_bytes(bytes) & i64::MAX)
}

/// Creates `path` already `flock`ed (exclusive) by the returned file, with
/// `content`: the file is made and locked under a temporary name, then renamed, so
/// nobody ever sees it unlocked (and takes it for a dead holder's).
pub fn create_locked(path: &Path, content: &[u8]) -> Result<File> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let file = open_rw(&tmp, true)?;
    let result = (|| {
        if !flock(&file, &tmp, FlockMode::Exclusive, false)? {
            return Err(Error::new(
                crate::ErrorKind::Io,
                format!("{} is locked", tmp.display()),
            ));
        }
        file.set_len(0)
            .map_err(|e| Error::io("truncate", &tmp, e))?;
        std::os::unix::fs::FileExt::write_all_at(&file, content, 0)
            .map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| file)
}
