/*
 * streamdb_cli.c -- the `streamdb` command-line tool.
 *
 *   streamdb [OPTIONS] DB COMMAND [ARGS]
 *
 * Documents stream through the library in 1 MiB pieces both ways (put uses
 * the streaming writer, get and export a stream), so a 256 MiB document never
 * sits in memory.  Commands that only read open the database read-only and
 * never create it.  Errors go to stderr as "streamdb: WHAT: CODE NAME
 * (context)" with a non-zero exit status: 1 for a failed operation, 2 for a
 * usage error.
 *
 * export writes documents as files under a directory and is the one place
 * where a document path becomes a file-system path, so it refuses any path
 * with a "." or ".." segment, creates every directory itself and opens every
 * component relative to its parent with O_NOFOLLOW: a symlink already inside
 * the target directory cannot redirect a write outside it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "streamdb.h"

#define PIECE (1u << 20)

static const char *usage_text =
    "usage: streamdb [OPTIONS] DB COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  put PATH [FILE|-]          store FILE (default: standard input) at PATH; prints the id\n"
    "  get PATH [-o FILE] [--version N]\n"
    "                             write the document to standard output or FILE;\n"
    "                             N: 0 current (default), -1 previous, >0 that version\n"
    "  ls [PREFIX] [-1|--list]    paths starting with PREFIX (default /), in byte order;\n"
    "                             -1/--list: one level, directories end with /\n"
    "  rm PATH                    delete PATH (the document goes with its last path)\n"
    "  stat [PATH] [--version N]  a document's metadata, or database statistics\n"
    "  versions PATH              the readable versions of a document\n"
    "  check                      full integrity check\n"
    "  compact                    checkpoint and return free space at the end of the file\n"
    "  export PREFIX DIR          write every document under PREFIX as a file under DIR\n"
    "                             (paths with . or .. segments are refused)\n"
    "\n"
    "Options (before DB):\n"
    "  --page-size N   page size for a new database (4096..65536; default 8192)\n"
    "  --quick         skip CRC checks on reads\n"
    "  --mmap          read the file through mmap\n"
    "  -h, --help      this text\n"
    "  --version       the library version\n";

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "streamdb: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(streamdb --help for usage)\n");
    va_end(ap);
    return 2;
}

/* Reports a library error; returns the exit status 1. */
static int fail(const streamdb *db, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "streamdb: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    const char *m = streamdb_errmsg(db);
    fprintf(stderr, ": %s (%d)", streamdb_strerror(rc), rc);
    if (m && *m) fprintf(stderr, ": %s", m);
    fputc('\n', stderr);
    return 1;
}

static int sys_fail(const char *fmt, ...) {
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "streamdb: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(e));
    return 1;
}

static void print_id(FILE *f, const uint8_t *id) {
    for (int i = 0; i < 16; i++) {
        fprintf(f, "%02x", id[i]);
        if (i == 3 || i == 5 || i == 7 || i == 9) fputc('-', f);
    }
}

static void print_time(FILE *f, uint64_t ns) {
    time_t s = (time_t)(ns / 1000000000u);
    struct tm tm;
    char buf[64];
    if (gmtime_r(&s, &tm) && strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm))
        fprintf(f, "%s.%09" PRIu64 "Z", buf, ns % 1000000000u);
    else
        fprintf(f, "%" PRIu64, ns);
}

static int parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

/* Writes all of buf to fd; -1 with errno on failure. */
static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies the stream s to fd. */
static int stream_to_fd(streamdb *db, streamdb_stream *s, int fd, const char *path,
                        const char *dest) {
    char *buf = malloc(PIECE);
    if (!buf) return sys_fail("out of memory");
    int status = 0;
    for (;;) {
        size_t n = 0;
        int rc = streamdb_stream_read(s, buf, PIECE, &n);
        if (rc) {
            status = fail(db, rc, "read %s", path);
            break;
        }
        if (n == 0) break;
        if (write_all(fd, buf, n) != 0) {
            status = sys_fail("write %s", dest);
            break;
        }
    }
    free(buf);
    return status;
}

/* ---- commands ------------------------------------------------------------- */

static int cmd_put(streamdb *db, int argc, char **argv) {
    if (argc < 1 || argc > 2) return usage_error("put PATH [FILE|-]");
    const char *path = argv[0];
    const char *src = argc == 2 ? argv[1] : "-";
    int fd = 0;
    if (strcmp(src, "-") != 0) {
        fd = open(src, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return sys_fail("%s", src);
    }
    streamdb_writer *w = NULL;
    int rc = streamdb_writer_begin(db, path, strlen(path), &w);
    if (rc) {
        if (fd) close(fd);
        return fail(db, rc, "put %s", path);
    }
    char *buf = malloc(PIECE);
    int status = buf ? 0 : sys_fail("out of memory");
    while (status == 0) {
        ssize_t n = read(fd, buf, PIECE);
        if (n < 0) {
            if (errno == EINTR) continue;
            status = sys_fail("read %s", strcmp(src, "-") ? src : "standard input");
            break;
        }
        if (n == 0) break;
        rc = streamdb_writer_write(w, buf, (size_t)n);
        if (rc) status = fail(db, rc, "put %s", path);
    }
    free(buf);
    if (fd) close(fd);
    if (status) {
        streamdb_writer_abort(w);
        return status;
    }
    uint8_t id[16];
    rc = streamdb_writer_commit(w, id);
    if (rc) return fail(db, rc, "put %s", path);
    print_id(stdout, id);
    putchar('\n');
    return 0;
}

static int cmd_get(streamdb *db, int argc, char **argv) {
    const char *path = NULL, *out = NULL;
    int64_t version = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(argv[i], "--version") == 0 && i + 1 < argc) {
            if (parse_i64(argv[++i], &version)) return usage_error("bad version '%s'", argv[i]);
        } else if (!path) path = argv[i];
        else return usage_error("get PATH [-o FILE] [--version N]");
    }
    if (!path) return usage_error("get PATH [-o FILE] [--version N]");
    streamdb_stream *s = NULL;
    int rc = streamdb_stream_open(db, path, strlen(path), version, &s);
    if (rc) return fail(db, rc, "get %s", path);
    int fd = 1;
    int to_file = out && strcmp(out, "-") != 0;
    if (to_file) {
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            streamdb_stream_close(s);
            return sys_fail("%s", out);
        }
    }
    int status = stream_to_fd(db, s, fd, path, to_file ? out : "standard output");
    streamdb_stream_close(s);
    if (to_file) {
        if (close(fd) != 0 && status == 0) status = sys_fail("close %s", out);
        if (status) unlink(out);
    }
    return status;
}

static int cmd_ls(streamdb *db, int argc, char **argv) {
    const char *prefix = NULL;
    int one_level = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-1") == 0 || strcmp(argv[i], "--list") == 0) one_level = 1;
        else if (!prefix) prefix = argv[i];
        else return usage_error("ls [PREFIX] [-1|--list]");
    }
    if (!prefix) prefix = "/";
    streamdb_cursor *c = NULL;
    int rc = one_level ? streamdb_list_open(db, prefix, strlen(prefix), &c)
                       : streamdb_search_open(db, prefix, strlen(prefix), &c);
    if (rc) return fail(db, rc, "ls %s", prefix);
    const char *p;
    size_t pl;
    while ((rc = streamdb_cursor_next(c, &p, &pl)) == STREAMDB_OK) {
        fwrite(p, 1, pl, stdout);
        putchar('\n');
    }
    streamdb_cursor_close(c);
    if (rc != STREAMDB_DONE) return fail(db, rc, "ls %s", prefix);
    return 0;
}

static int cmd_rm(streamdb *db, int argc, char **argv) {
    if (argc != 1) return usage_error("rm PATH");
    int rc = streamdb_delete(db, argv[0]);
    return rc ? fail(db, rc, "rm %s", argv[0]) : 0;
}

static int stat_db(streamdb *db) {
    streamdb_stats st;
    int rc = streamdb_calculate_statistics(db, &st);
    if (rc) return fail(db, rc, "stat");
    streamdb_cache_stats cs;
    memset(&cs, 0, sizeof cs);
    streamdb_get_cache_stats(db, &cs);
    printf("page_size: %" PRIu64 "\n", st.page_size);
    printf("total_pages: %" PRIu64 "\n", st.total_pages);
    printf("free_pages: %" PRIu64 "\n", st.free_pages);
    printf("documents: %" PRIu64 "\n", st.document_count);
    printf("paths: %" PRIu64 "\n", st.path_count);
    printf("file_bytes: %" PRIu64 "\n", st.file_bytes);
    printf("wal_bytes: %" PRIu64 "\n", st.wal_bytes);
    printf("wal_frames: %" PRIu64 "\n", st.wal_frames);
    printf("last_txn: %" PRIu64 "\n", st.last_txn);
    printf("cache_hits: %" PRIu64 "\n", cs.hits);
    printf("cache_misses: %" PRIu64 "\n", cs.misses);
    printf("library: %s\n", streamdb_version());
    return 0;
}

static int cmd_stat(streamdb *db, int argc, char **argv) {
    const char *path = NULL;
    int64_t version = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0 && i + 1 < argc) {
            if (parse_i64(argv[++i], &version)) return usage_error("bad version '%s'", argv[i]);
        } else if (!path) path = argv[i];
        else return usage_error("stat [PATH] [--version N]");
    }
    if (!path) return stat_db(db);
    streamdb_doc_info info;
    int rc = streamdb_stat(db, path, strlen(path), version, &info);
    if (rc) return fail(db, rc, "stat %s", path);
    printf("path: %s\nid: ", path);
    print_id(stdout, info.id);
    printf("\nversion: %" PRIu64 "\n", info.version);
    printf("size: %" PRIu64 "\n", info.size);
    printf("stored_size: %" PRIu64 "\n", info.stored_size);
    printf("crc32c: %08" PRIx64 "\n", info.crc32c);
    printf("created: ");
    print_time(stdout, info.created_ns);
    printf("\nmodified: ");
    print_time(stdout, info.modified_ns);
    printf("\ninline: %s\n", (info.flags & STREAMDB_DOC_INLINE) ? "yes" : "no");
    uint64_t *v = NULL;
    size_t nv = 0;
    if (streamdb_versions(db, path, strlen(path), &v, &nv) == 0) {
        printf("versions:");
        for (size_t i = 0; i < nv; i++) printf(" %" PRIu64, v[i]);
        putchar('\n');
        streamdb_free(v);
    }
    char **paths = NULL;
    size_t np = 0;
    if (streamdb_list_paths(db, info.id, &paths, &np) == 0) {
        for (size_t i = 0; i < np; i++) printf("bound: %s\n", paths[i]);
        streamdb_free_paths(paths, np);
    }
    return 0;
}

static int cmd_versions(streamdb *db, int argc, char **argv) {
    if (argc != 1) return usage_error("versions PATH");
    const char *path = argv[0];
    uint64_t *v = NULL;
    size_t nv = 0;
    int rc = streamdb_versions(db, path, strlen(path), &v, &nv);
    if (rc) return fail(db, rc, "versions %s", path);
    int status = 0;
    for (size_t i = 0; i < nv; i++) {
        streamdb_doc_info info;
        rc = streamdb_stat(db, path, strlen(path), (int64_t)v[i], &info);
        if (rc) {
            status = fail(db, rc, "stat %s version %" PRIu64, path, v[i]);
            continue;
        }
        printf("%" PRIu64 "\t%" PRIu64 "\t", v[i], info.size);
        print_time(stdout, info.modified_ns);
        putchar('\n');
    }
    streamdb_free(v);
    return status;
}

static int cmd_check(streamdb *db, int argc, char **argv) {
    (void)argv;
    if (argc != 0) return usage_error("check takes no arguments");
    int rc = streamdb_check(db);
    if (rc) return fail(db, rc, "check");
    puts("ok");
    return 0;
}

static int cmd_compact(streamdb *db, int argc, char **argv) {
    (void)argv;
    if (argc != 0) return usage_error("compact takes no arguments");
    int rc = streamdb_compact(db);
    return rc ? fail(db, rc, "compact") : 0;
}

/* 0 if every segment of path is a plain name (not empty, ".", ".."). */
static int export_path_ok(const char *path) {
    if (path[0] != '/') return -1;
    const char *seg = path + 1;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return -1;
        if (!end) return 0;
        seg = end + 1;
    }
}

/* Opens (creating directories as needed) the file for path under dirfd,
 * never following a symlink.  Returns an fd or -1 with errno. */
static int export_open(int dirfd, const char *path) {
    char *copy = strdup(path + 1);
    if (!copy) return -1;
    int cur = dirfd, fd = -1;
    char *seg = copy;
    for (;;) {
        char *slash = strchr(seg, '/');
        if (!slash) {
            fd = openat(cur, seg, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
            break;
        }
        *slash = 0;
        int next = openat(cur, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(cur, seg, 0755) != 0 && errno != EEXIST) break;
            next = openat(cur, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) break;
        if (cur != dirfd) close(cur);
        cur = next;
        seg = slash + 1;
    }
    int e = errno;
    if (cur != dirfd) close(cur);
    free(copy);
    errno = e;
    return fd;
}

static int cmd_export(streamdb *db, int argc, char **argv) {
    if (argc != 2) return usage_error("export PREFIX DIR");
    const char *prefix = argv[0], *dir = argv[1];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return sys_fail("mkdir %s", dir);
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return sys_fail("%s", dir);
    /* One consistent view for the whole export. */
    streamdb *snap = NULL;
    int rc = streamdb_snapshot(db, &snap);
    if (rc) {
        close(dirfd);
        return fail(db, rc, "export: snapshot");
    }
    streamdb_cursor *c = NULL;
    rc = streamdb_search_open(snap, prefix, strlen(prefix), &c);
    if (rc) {
        streamdb_close(snap);
        close(dirfd);
        return fail(snap, rc, "export %s", prefix);
    }
    size_t exported = 0, failed = 0;
    const char *p;
    size_t pl;
    while ((rc = streamdb_cursor_next(c, &p, &pl)) == STREAMDB_OK) {
        char *path = strndup(p, pl);
        if (!path) {
            failed++;
            break;
        }
        if (strlen(path) != pl || export_path_ok(path) != 0) {
            fprintf(stderr, "streamdb: export: refused %s: a '.' or '..' segment could escape %s\n",
                    path, dir);
            failed++;
            free(path);
            continue;
        }
        streamdb_stream *s = NULL;
        rc = streamdb_stream_open(snap, path, pl, 0, &s);
        if (rc) {
            fail(snap, rc, "export %s", path);
            failed++;
            free(path);
            continue;
        }
        int fd = export_open(dirfd, path);
        if (fd < 0) {
            sys_fail("export %s: cannot create %s%s (a symlink or a file in the way?)", path, dir,
                     path);
            failed++;
        } else {
            int st = stream_to_fd(snap, s, fd, path, path);
            if (close(fd) != 0 && st == 0) st = sys_fail("close %s%s", dir, path);
            if (st) failed++;
            else exported++;
        }
        streamdb_stream_close(s);
        free(path);
    }
    int cursor_rc = rc;
    streamdb_cursor_close(c);
    streamdb_close(snap);
    close(dirfd);
    if (cursor_rc != STREAMDB_DONE && cursor_rc != STREAMDB_OK) {
        fail(db, cursor_rc, "export %s", prefix);
        failed++;
    }
    printf("%zu documents exported to %s", exported, dir);
    if (failed) printf(", %zu failed or refused", failed);
    putchar('\n');
    return failed ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------ */

struct command {
    const char *name;
    int writes;
    int (*fn)(streamdb *, int, char **);
};
static const struct command commands[] = {
    {"put", 1, cmd_put},         {"get", 0, cmd_get},       {"ls", 0, cmd_ls},
    {"rm", 1, cmd_rm},           {"stat", 0, cmd_stat},     {"versions", 0, cmd_versions},
    {"check", 0, cmd_check},     {"compact", 1, cmd_compact}, {"export", 0, cmd_export},
};

int main(int argc, char **argv) {
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("streamdb %s\n", streamdb_version());
            return 0;
        } else if (strcmp(a, "--page-size") == 0 && i + 1 < argc) {
            int64_t ps;
            if (parse_i64(argv[++i], &ps) || ps <= 0 || ps > 65536)
                return usage_error("bad page size '%s'", argv[i]);
            cfg.page_size = (uint32_t)ps;
        } else if (strcmp(a, "--quick") == 0) {
            cfg.quick_mode = 1;
        } else if (strcmp(a, "--mmap") == 0) {
            cfg.use_mmap = 1;
        } else if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    if (argc - i < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *dbpath = argv[i], *name = argv[i + 1];
    const struct command *cmd = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(commands[k].name, name) == 0) cmd = &commands[k];
    if (!cmd) return usage_error("unknown command '%s'", name);
    if (!cmd->writes) {
        cfg.read_only = 1;
        cfg.create = 0;
    }
    streamdb *db = NULL;
    int rc = streamdb_open(dbpath, &cfg, &db);
    if (rc) return fail(NULL, rc, "open %s", dbpath);
    int status = cmd->fn(db, argc - i - 2, argv + i + 2);
    if (fflush(stdout) != 0 && status == 0) status = sys_fail("standard output");
    rc = streamdb_close(db); /* db is gone even when this fails: no errmsg */
    if (rc && status == 0) {
        fprintf(stderr, "streamdb: close %s: %s (%d)\n", dbpath, streamdb_strerror(rc), rc);
        status = 1;
    }
    return status;
}
