/*
 * vfs_file.c -- the POSIX file backend: pread/pwrite, fdatasync, flock, mmap.
 *
 * Functions return 0 or a positive errno.  Short transfers are reported, not
 * hidden: the core loops (so a fault-injecting wrapper can exercise that
 * loop).  Large requests are split below 1 GiB per call (some kernels and
 * file systems misbehave on single transfers over 2 GiB).
 */
#include "sdb.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_XFER (1u << 30)

struct streamdb_file {
    int fd;
};

static int f_open(const streamdb_vfs *vfs, const char *name, int flags, unsigned mode,
                  streamdb_file **out)
{
    int oflags = O_CLOEXEC | ((flags & STREAMDB_VFS_READONLY) ? O_RDONLY : O_RDWR);
    if (flags & STREAMDB_VFS_CREATE)
        oflags |= O_CREAT;
    int fd;
    do {
        fd = open(name, oflags, mode ? mode : 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno;
    streamdb_file *f = sdb_malloc(sizeof *f);
    if (!f) {
        close(fd);
        return ENOMEM;
    }
    f->fd = fd;
    *out = f;
    return 0;
}

static int f_close(streamdb_file *f)
{
    int rc = close(f->fd) ? errno : 0;
    sdb_free(f);
    return rc == EINTR ? 0 : rc;
}

static int f_read(streamdb_file *f, void *buf, size_t n, uint64_t off, size_t *done)
{
    ssize_t r = pread(f->fd, buf, n > MAX_XFER ? MAX_XFER : n, (off_t)off);
    if (r < 0) {
        *done = 0;
        return errno;
    }
    *done = (size_t)r;
    return 0;
}

static int f_write(streamdb_file *f, const void *buf, size_t n, uint64_t off, size_t *done)
{
    ssize_t r = pwrite(f->fd, buf, n > MAX_XFER ? MAX_XFER : n, (off_t)off);
    if (r < 0) {
        *done = 0;
        return errno;
    }
    *done = (size_t)r;
    return 0;
}

static int f_sync(streamdb_file *f)
{
    return fdatasync(f->fd) ? errno : 0;
}

/* Starts the writeback of a range (Linux's sync_file_range with WRITE only):
 * the pages go to the device while the core goes on writing, instead of all
 * at the commit's fdatasync.  Only a hint: a failure here is not checked,
 * because WRITE alone does not consume the file's writeback error, which the
 * next fdatasync reports. */
static int f_writeback(streamdb_file *f, uint64_t off, uint64_t len)
{
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
    (void)sync_file_range(f->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
#else
    (void)f;
    (void)off;
    (void)len;
#endif
    return 0;
}

static int f_truncate(streamdb_file *f, uint64_t size)
{
    int r;
    do {
        r = ftruncate(f->fd, (off_t)size);
    } while (r && errno == EINTR);
    return r ? errno : 0;
}

static int f_size(streamdb_file *f, uint64_t *size)
{
    struct stat st;
    if (fstat(f->fd, &st))
        return errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int f_lock(streamdb_file *f, int exclusive)
{
    int r;
    do {
        r = flock(f->fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
    } while (r && errno == EINTR);
    return r ? errno : 0;
}

static int f_map(streamdb_file *f, uint64_t len, const void **addr)
{
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED | MAP_NORESERVE, f->fd, 0);
    if (p == MAP_FAILED)
        return errno;
    *addr = p;
    return 0;
}

static int f_unmap(streamdb_file *f, const void *addr, uint64_t len)
{
    return munmap((void *)addr, (size_t)len) ? errno : 0;
}

static int f_exists(const streamdb_vfs *vfs, const char *name, int *exists)
{
    struct stat st;
    if (stat(name, &st) == 0) {
        *exists = 1;
        return 0;
    }
    if (errno == ENOENT) {
        *exists = 0;
        return 0;
    }
    return errno;
}

static int f_remove(const streamdb_vfs *vfs, const char *name)
{
    return unlink(name) && errno != ENOENT ? errno : 0;
}

static int f_sync_dir(const streamdb_vfs *vfs, const char *name)
{
    char *copy = sdb_strdup(name);
    if (!copy)
        return ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    sdb_free(copy);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) ? errno : 0;
    close(fd);
    /* Some file systems refuse fsync on directories; that is not data loss. */
    return (rc == EINVAL || rc == EBADF) ? 0 : rc;
}

static const streamdb_vfs file_vfs = {
    2, NULL, f_open, f_close, f_read, f_write, f_sync, f_truncate, f_size,
    f_lock, f_map, f_unmap, f_exists, f_remove, f_sync_dir, f_writeback,
};

STREAMDB_API const streamdb_vfs *streamdb_vfs_file(void)
{
    return &file_vfs;
}
