/*
 * sync_journal: an LD_PRELOAD shim that records what a power loss cannot take
 * away. Before each fsync/fdatasync of a regular file it copies the file's
 * content into the journal directory named by $ONCELOG_SYNC_JOURNAL (everything
 * written before the call is durable once it returns); before each fsync of a
 * directory it records the directory's entries. The copy is keyed by the
 * file's identity (device, inode, birth time), so a reused inode number is
 * never taken for the file it replaced, and only the latest copy is kept.
 * Journal writes are serialised across processes by a flock on
 * "<journal>/lock", so the copies of one file never go back in time.
 *
 * Journal files:
 *   f-<dev>-<ino>-<btime s>-<btime ns>   content of a file at its last sync
 *   d-<dev>-<ino>-<btime s>-<btime ns>   "<kind> <dev>-<ino>-<s>-<ns> <name>" per entry
 *                                        (kind f or d) at the directory's last sync
 *   unmodelled                           one line per sync call the model does not
 *                                        cover (msync, sync_file_range, sync, syncfs)
 *   trace                                "<pid> <journal file> <path>" per sync, in order
 *
 * Built by the power-loss test with gcc; not part of any shipped library.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *journal(void) {
    const char *dir = getenv("ONCELOG_SYNC_JOURNAL");
    return dir && *dir ? dir : NULL;
}

/* "<dev>-<ino>-<btime s>-<btime ns>" of an open descriptor or a path under dirfd. */
static int identity(int dirfd, const char *path, int flags, char *out, size_t n, int *is_dir) {
    struct statx st;
    if (statx(dirfd, path, flags, STATX_INO | STATX_TYPE | STATX_BTIME, &st) != 0) {
        return -1;
    }
    if (is_dir) {
        *is_dir = S_ISDIR(st.stx_mode);
    }
    long long s = (st.stx_mask & STATX_BTIME) ? (long long)st.stx_btime.tv_sec : 0;
    unsigned ns = (st.stx_mask & STATX_BTIME) ? st.stx_btime.tv_nsec : 0;
    snprintf(out, n, "%u.%u-%llu-%lld-%u", st.stx_dev_major, st.stx_dev_minor,
             (unsigned long long)st.stx_ino, s, ns);
    return S_ISREG(st.stx_mode) || S_ISDIR(st.stx_mode) ? 0 : -1;
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Copies the file open as fd into tmp. */
static int copy_file(int fd, int out) {
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int in = open(self, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return -1;
    }
    static __thread char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0) {
            break;
        }
        if (write_all(out, buf, (size_t)r) != 0) {
            rc = -1;
            break;
        }
    }
    close(in);
    return rc;
}

/* Writes the entries of the directory open as fd into out. */
static int list_dir(int fd, int out) {
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int dfd = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return -1;
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char id[128];
        int is_dir = 0;
        if (identity(dirfd(d), e->d_name, AT_SYMLINK_NOFOLLOW, id, sizeof id, &is_dir) != 0) {
            continue; /* gone meanwhile, or neither file nor directory */
        }
        char line[512];
        int n = snprintf(line, sizeof line, "%c %s %s\n", is_dir ? 'd' : 'f', id, e->d_name);
        if (n > 0 && (size_t)n < sizeof line && write_all(out, line, (size_t)n) != 0) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

/* Appends "<pid> <journal file> <path of fd>" to <journal>/trace: which process
 * synced what, in order, for reading a failing run. Under the journal lock. */
static void trace(const char *dir, int fd, const char *final) {
    char path[4096], self[64], target[4096];
    snprintf(path, sizeof path, "%s/trace", dir);
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(self, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = '\0';
    int out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) {
        return;
    }
    const char *name = strrchr(final, '/');
    char line[8400];
    int len = snprintf(line, sizeof line, "%d %s %s\n", (int)getpid(), name ? name + 1 : final, target);
    if (len > 0 && (size_t)len < sizeof line) {
        (void)write_all(out, line, (size_t)len);
    }
    close(out);
}

/* Records what a sync of fd makes durable. Failures are reported on stderr and
 * leave the journal as it was: the test then finds less durable than promised,
 * never more. */
static void record(int fd) {
    const char *dir = journal();
    if (!dir) {
        return;
    }
    int saved = errno;
    char id[128];
    int is_dir = 0;
    if (identity(fd, "", AT_EMPTY_PATH, id, sizeof id, &is_dir) != 0) {
        errno = saved;
        return;
    }
    char lock[4096], tmp[4200], final[4096];
    snprintf(lock, sizeof lock, "%s/lock", dir);
    snprintf(final, sizeof final, "%s/%c-%s", dir, is_dir ? 'd' : 'f', id);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", final, (int)getpid());
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
        fprintf(stderr, "sync_journal: cannot lock %s: %s\n", lock, strerror(errno));
        if (lfd >= 0) {
            close(lfd);
        }
        errno = saved;
        return;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = out < 0 ? -1 : (is_dir ? list_dir(fd, out) : copy_file(fd, out));
    if (out >= 0) {
        close(out);
    }
    if (rc == 0 && rename(tmp, final) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "sync_journal: cannot record %s: %s\n", final, strerror(errno));
        unlink(tmp);
    } else {
        trace(dir, fd, final);
    }
    close(lfd); /* releases the flock */
    errno = saved;
}

static void unmodelled(const char *call) {
    const char *dir = journal();
    if (!dir) {
        return;
    }
    int saved = errno;
    char path[4096];
    snprintf(path, sizeof path, "%s/unmodelled", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        char line[128];
        int n = snprintf(line, sizeof line, "%s by pid %d\n", call, (int)getpid());
        if (n > 0) {
            (void)write_all(fd, line, (size_t)n);
        }
        close(fd);
    }
    errno = saved;
}

#define REAL(name, ret, ...)                                                   \
    static ret (*real)(__VA_ARGS__);                                           \
    if (!real) {                                                               \
        real = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, name);                    \
    }

int fsync(int fd) {
    REAL("fsync", int, int);
    record(fd);
    return real(fd);
}

int fdatasync(int fd) {
    REAL("fdatasync", int, int);
    record(fd);
    return real(fd);
}

int msync(void *addr, size_t len, int flags) {
    REAL("msync", int, void *, size_t, int);
    if (flags & MS_SYNC) {
        unmodelled("msync");
    }
    return real(addr, len, flags);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    REAL("sync_file_range", int, int, off_t, off_t, unsigned int);
    unmodelled("sync_file_range");
    return real(fd, offset, nbytes, flags);
}

void sync(void) {
    REAL("sync", void, void);
    unmodelled("sync");
    real();
}

int syncfs(int fd) {
    REAL("syncfs", int, int);
    unmodelled("syncfs");
    return real(fd);
}
