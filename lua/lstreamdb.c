/*
 * lstreamdb.c -- the Lua 5.4 binding of libstreamdb.
 *
 *   local streamdb = require "streamdb"
 *   local db = assert(streamdb.open("game.sdb", { page_size = 8192 }))
 *   local id = db:write_document("/levels/1/terrain.bin", data)
 *   local s <close> = db:open("/levels/1/terrain.bin")
 *   for line in s:lines() do ... end
 *
 * Conventions (the same as Lua's io library):
 *  - a failure the caller should expect (no such path, I/O error, closed
 *    handle, ...) returns nil, message, code, where code is a STREAMDB_ERR_*
 *    value (also available by name in streamdb.errors);
 *  - misuse (wrong argument types, an invalid format, a malformed id) raises
 *    an error;
 *  - generic-for iterators (stream:lines, db:chunks, db:paths) raise their
 *    errors, since a nil return would only end the loop silently.
 *
 * Lifetimes.  Every object made from a database (stream, cursor, streaming
 * writer, future, snapshot) is a "child": it keeps its parent alive through
 * its user value, and the parent keeps a C list of its open children.
 * db:close() closes the children first (streamdb_close refuses while any are
 * open), and a closed child answers every call with an error, never a crash.
 * __gc and __close run the same idempotent close, so the order in which
 * lua_close finalises objects does not matter.
 *
 * Futures (db:get_async).  The C API has no asynchronous call yet, so a
 * future runs streamdb_get_n on its own POSIX thread (a handle may be used
 * from many threads at once).  The worker never touches the Lua state: it
 * fills a C-side result slot guarded by a mutex.  Closing the database or
 * collecting the future joins the thread, so the handle is never closed under
 * a running read.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua.h"
#include "lauxlib.h"

#include "streamdb.h"

#if LUA_VERSION_NUM < 504
#error "lstreamdb.c needs Lua 5.4"
#endif

#if defined(__GNUC__)
#define LSDB_EXPORT __attribute__((visibility("default")))
#else
#define LSDB_EXPORT
#endif

#define DB_MT     "streamdb.db"
#define STREAM_MT "streamdb.stream"
#define CURSOR_MT "streamdb.cursor"
#define WRITER_MT "streamdb.writer"
#define FUTURE_MT "streamdb.future"

#define STREAM_BUFSZ 16384
#define WRITE_CHUNK  65536
#define DEFAULT_CHUNK 65536

/* ------------------------------------------------------------------------ */
/* Children of a database                                                    */
/* ------------------------------------------------------------------------ */

struct ldb;
typedef struct node node;
struct node {
    node *prev, *next;
    struct ldb *owner;          /* NULL when not linked */
    void (*close)(node *n);     /* releases the C object; idempotent */
};

typedef struct ldb {
    node link;                  /* a snapshot is a child of its parent */
    streamdb *db;               /* NULL once closed */
    streamdb_vfs *memvfs;       /* owned in-memory backend, or NULL */
    node children;              /* sentinel of the list of open children */
    int is_snapshot;
    int writing;                /* a streaming write is in progress */
} ldb;

static void node_link(ldb *d, node *n) {
    n->owner = d;
    n->next = d->children.next;
    n->prev = &d->children;
    d->children.next->prev = n;
    d->children.next = n;
}

static void node_unlink(node *n) {
    if (n->owner == NULL) return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->owner = NULL;
}

static void close_children(ldb *d) {
    while (d->children.next != &d->children) {
        node *n = d->children.next;
        node_unlink(n);
        n->close(n);
    }
}

/* ------------------------------------------------------------------------ */
/* Results and errors                                                         */
/* ------------------------------------------------------------------------ */

static int push_fail_msg(lua_State *L, const char *msg, int code) {
    luaL_pushfail(L);
    lua_pushstring(L, msg);
    lua_pushinteger(L, code);
    return 3;
}

/* nil, message, code for a failed call on handle h (may be NULL). */
static int push_fail(lua_State *L, streamdb *h, int code) {
    const char *m = streamdb_errmsg(h);
    if (m == NULL || *m == '\0') m = streamdb_strerror(code);
    if (m == NULL) m = "unknown error";
    return push_fail_msg(L, m, code);
}

static int push_closed(lua_State *L, const char *what) {
    return push_fail_msg(L, what, STREAMDB_ERR_CLOSED);
}

static void push_id(lua_State *L, const uint8_t id[16]) {
    static const char hex[] = "0123456789abcdef";
    char buf[36];
    int j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) buf[j++] = '-';
        buf[j++] = hex[id[i] >> 4];
        buf[j++] = hex[id[i] & 15];
    }
    lua_pushlstring(L, buf, 36);
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Accepts the canonical text form (36 characters), 32 hex digits, or the 16
 * raw bytes.  Anything else raises an error. */
static void check_id(lua_State *L, int idx, uint8_t out[16]) {
    size_t len;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING) luaL_typeerror(L, idx, "string (document id)");
    s = lua_tolstring(L, idx, &len);
    if (len == 16) {
        memcpy(out, s, 16);
        return;
    }
    if (len == 36 || len == 32) {
        int k = 0;
        for (size_t i = 0; i < len;) {
            int hi, lo;
            if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
                if (s[i] != '-') goto bad;
                i++;
                continue;
            }
            hi = hexval((unsigned char)s[i]);
            lo = hexval((unsigned char)s[i + 1]);
            if (hi < 0 || lo < 0 || k >= 16) goto bad;
            out[k++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        }
        if (k == 16) return;
    }
bad:
    luaL_argerror(L, idx, "malformed document id");
}

/* A path or prefix must be a real string (numbers are not converted). */
static const char *check_path(lua_State *L, int idx, size_t *len) {
    if (lua_type(L, idx) != LUA_TSTRING) luaL_typeerror(L, idx, "string");
    return lua_tolstring(L, idx, len);
}

static int64_t opt_version(lua_State *L, int idx) {
    if (lua_isnoneornil(L, idx)) return 0;
    return (int64_t)luaL_checkinteger(L, idx);
}

static void push_path_array(lua_State *L, char **paths, size_t n) {
    lua_createtable(L, n > INT32_MAX ? INT32_MAX : (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, paths[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* ------------------------------------------------------------------------ */
/* The database object                                                        */
/* ------------------------------------------------------------------------ */

static ldb *check_db(lua_State *L, int idx) {
    return (ldb *)luaL_checkudata(L, idx, DB_MT);
}

/* Closes d: its children first, then the handle.  Returns the status of
 * streamdb_close (0 when already closed). */
static int db_close_internal(ldb *d) {
    int rc = 0;
    close_children(d);
    if (d->db != NULL) {
        streamdb *h = d->db;
        rc = d->is_snapshot ? streamdb_snapshot_close(h) : streamdb_close(h);
        if (rc == STREAMDB_ERR_BUSY) return rc;   /* still open, unchanged */
        d->db = NULL;
    }
    if (d->memvfs != NULL) {
        streamdb_vfs_memory_free(d->memvfs);
        d->memvfs = NULL;
    }
    node_unlink(&d->link);
    return rc;
}

static void db_node_close(node *n) {
    ldb *d = (ldb *)((char *)n - offsetof(ldb, link));
    (void)db_close_internal(d);
}

static ldb *new_db(lua_State *L) {
    ldb *d = (ldb *)lua_newuserdatauv(L, sizeof(ldb), 1);
    memset(d, 0, sizeof *d);
    d->children.next = d->children.prev = &d->children;
    d->link.close = db_node_close;
    luaL_setmetatable(L, DB_MT);
    return d;
}

/* The open handle of the db at idx, or NULL (then the caller returns the
 * closed failure). */
#define GET_HANDLE(L, d, h)                                  \
    ldb *d = check_db(L, 1);                                  \
    streamdb *h = d->db;                                      \
    if (h == NULL) return push_closed(L, "database is closed")

#define NOT_WRITING(L, d)                                                      \
    if ((d)->writing)                                                          \
        return luaL_error(L, "a streaming write is in progress on this database")

static int is_true_option(lua_State *L, int idx, const char *name) {
    if (lua_isboolean(L, idx)) return lua_toboolean(L, idx);
    if (lua_isinteger(L, idx)) return lua_tointeger(L, idx) != 0;
    return luaL_error(L, "option '%s' must be a boolean", name);
}

static uint64_t uint_option(lua_State *L, int idx, const char *name) {
    int isnum;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    if (!isnum || v < 0) return (uint64_t)luaL_error(L, "option '%s' must be a non-negative integer", name);
    return (uint64_t)v;
}

static uint32_t uint32_option(lua_State *L, int idx, const char *name) {
    uint64_t v = uint_option(L, idx, name);
    if (v > UINT32_MAX) luaL_error(L, "option '%s' is out of range", name);
    return (uint32_t)v;
}

/* Fills cfg from the options table at idx.  Returns 1 when the in-memory
 * backend was asked for. */
static int read_options(lua_State *L, int idx, streamdb_config *cfg) {
    int memory = 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *k;
        int v = lua_gettop(L);
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "option names must be strings");
        k = lua_tostring(L, -2);
        if (strcmp(k, "page_size") == 0) cfg->page_size = uint32_option(L, v, k);
        else if (strcmp(k, "page_cache_size") == 0) cfg->page_cache_size = uint32_option(L, v, k);
        else if (strcmp(k, "path_cache_size") == 0) cfg->path_cache_size = uint32_option(L, v, k);
        else if (strcmp(k, "max_db_size") == 0) cfg->max_db_size = uint_option(L, v, k);
        else if (strcmp(k, "max_document_size") == 0) cfg->max_document_size = uint_option(L, v, k);
        else if (strcmp(k, "versions_to_keep") == 0) cfg->versions_to_keep = uint32_option(L, v, k);
        else if (strcmp(k, "use_mmap") == 0) cfg->use_mmap = is_true_option(L, v, k);
        else if (strcmp(k, "quick_mode") == 0) cfg->quick_mode = is_true_option(L, v, k);
        else if (strcmp(k, "read_only") == 0) cfg->read_only = is_true_option(L, v, k);
        else if (strcmp(k, "create") == 0) cfg->create = is_true_option(L, v, k);
        else if (strcmp(k, "use_compression") == 0) cfg->use_compression = is_true_option(L, v, k);
        else if (strcmp(k, "sync_commits") == 0) cfg->sync_commits = is_true_option(L, v, k);
        else if (strcmp(k, "file_mode") == 0) cfg->file_mode = uint32_option(L, v, k);
        else if (strcmp(k, "wal_autocheckpoint") == 0) cfg->wal_autocheckpoint = uint_option(L, v, k);
        else if (strcmp(k, "encryption_key") == 0) {
            size_t klen;
            const char *key;
            int rc;
            if (lua_type(L, v) != LUA_TSTRING) luaL_error(L, "option 'encryption_key' must be a string");
            key = lua_tolstring(L, v, &klen);
            rc = streamdb_config_set_key(cfg, key, klen);
            if (rc < 0) luaL_error(L, "option 'encryption_key': %s", streamdb_strerror(rc));
        } else if (strcmp(k, "vfs") == 0) {
            const char *name;
            if (lua_type(L, v) != LUA_TSTRING) luaL_error(L, "option 'vfs' must be \"file\" or \"memory\"");
            name = lua_tostring(L, v);
            if (strcmp(name, "memory") == 0) memory = 1;
            else if (strcmp(name, "file") == 0) memory = 0;
            else luaL_error(L, "option 'vfs' must be \"file\" or \"memory\"");
        } else {
            luaL_error(L, "unknown option '%s'", k);
        }
        lua_pop(L, 1);
    }
    return memory;
}

/* streamdb.open(path [, options]) -> db | nil, message, code */
static int l_open(lua_State *L) {
    const char *path = check_path(L, 1, NULL);
    streamdb_config cfg;
    int memory = 0, rc;
    streamdb *h = NULL;
    ldb *d;
    streamdb_config_init(&cfg);
    if (!lua_isnoneornil(L, 2)) memory = read_options(L, 2, &cfg);
    lua_settop(L, 2);
    d = new_db(L);
    if (memory) {
        d->memvfs = streamdb_vfs_memory_new();
        if (d->memvfs == NULL) return push_fail_msg(L, "cannot create the memory backend", STREAMDB_ERR_NOMEM);
        cfg.vfs = d->memvfs;
    }
    rc = streamdb_open(path, &cfg, &h);
    if (rc < 0 || h == NULL) {
        int n = push_fail(L, NULL, rc < 0 ? rc : STREAMDB_ERR_INTERNAL);
        if (d->memvfs) {
            streamdb_vfs_memory_free(d->memvfs);
            d->memvfs = NULL;
        }
        return n;
    }
    d->db = h;
    return 1;
}

/* db:close() -> true | nil, message, code.  Idempotent. */
static int ldb_close(lua_State *L) {
    ldb *d = check_db(L, 1);
    int rc = db_close_internal(d);
    if (rc < 0) return push_fail_msg(L, streamdb_strerror(rc), rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int ldb_gc(lua_State *L) {
    ldb *d = check_db(L, 1);
    (void)db_close_internal(d);
    return 0;
}

static int ldb_tostring(lua_State *L) {
    ldb *d = check_db(L, 1);
    const char *kind = d->is_snapshot ? "streamdb.snapshot" : "streamdb.db";
    if (d->db == NULL) lua_pushfstring(L, "%s (closed)", kind);
    else lua_pushfstring(L, "%s (%p)", kind, (void *)d->db);
    return 1;
}

static int ldb_is_open(lua_State *L) {
    ldb *d = check_db(L, 1);
    lua_pushboolean(L, d->db != NULL);
    return 1;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct lwriter {
    node link;
    streamdb_writer *w;
} lwriter;

static void writer_node_close(node *n) {
    lwriter *w = (lwriter *)n;
    if (w->w != NULL) {
        streamdb_writer_abort(w->w);
        w->w = NULL;
    }
}

static int lwriter_gc(lua_State *L) {
    lwriter *w = (lwriter *)luaL_checkudata(L, 1, WRITER_MT);
    node_unlink(&w->link);
    writer_node_close(&w->link);
    return 0;
}

static int writer_put(lua_State *L, lwriter *w, const void *p, size_t n) {
    int rc;
    if (w->w == NULL) return STREAMDB_ERR_CLOSED;
    if (n == 0) return 0;
    rc = streamdb_writer_write(w->w, p, n);
    (void)L;
    return rc;
}

/* Runs protected: (writer box, data).  Returns nothing on success, or
 * nil, message, code on a failure of the core or the data source. */
static int write_pump(lua_State *L) {
    lwriter *w = (lwriter *)lua_touserdata(L, 1);
    int rc = 0;
    luaL_Stream *fh = (luaL_Stream *)luaL_testudata(L, 2, LUA_FILEHANDLE);
    if (fh != NULL) {
        char *buf;
        if (fh->closef == NULL) return luaL_argerror(L, 2, "attempt to use a closed file");
        buf = (char *)lua_newuserdatauv(L, WRITE_CHUNK, 0);
        for (;;) {
            size_t n = fread(buf, 1, WRITE_CHUNK, fh->f);
            if (n > 0 && (rc = writer_put(L, w, buf, n)) < 0) goto core_fail;
            if (n < WRITE_CHUNK) {
                if (ferror(fh->f)) {
                    int e = errno;
                    lua_pushnil(L);
                    lua_pushfstring(L, "reading the source file: %s", strerror(e));
                    lua_pushinteger(L, STREAMDB_ERR_IO);
                    return 3;
                }
                break;
            }
        }
        return 0;
    }
    if (lua_type(L, 2) == LUA_TFUNCTION) {
        for (;;) {
            size_t n;
            const char *p;
            lua_pushvalue(L, 2);
            lua_call(L, 0, 2);
            if (lua_isnil(L, -2)) {
                if (!lua_isnil(L, -1)) {  /* nil, message: the source failed */
                    const char *m = luaL_tolstring(L, -1, NULL);
                    lua_pushnil(L);
                    lua_pushfstring(L, "data source failed: %s", m);
                    lua_pushinteger(L, STREAMDB_ERR_IO);
                    return 3;
                }
                break;
            }
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "data function must return strings, then nil (got %s)",
                                  luaL_typename(L, -2));
            p = lua_tolstring(L, -2, &n);
            if ((rc = writer_put(L, w, p, n)) < 0) goto core_fail;
            lua_pop(L, 2);
        }
        return 0;
    }
    {
        /* any object with a read method, e.g. another streamdb stream */
        for (;;) {
            size_t n;
            const char *p;
            if (lua_getfield(L, 2, "read") == LUA_TNIL)
                return luaL_argerror(L, 2, "object has no read method");
            lua_pushvalue(L, 2);
            lua_pushinteger(L, WRITE_CHUNK);
            lua_call(L, 2, 2);
            if (lua_isnil(L, -2)) {
                if (!lua_isnil(L, -1)) {  /* nil, message: the source failed */
                    const char *m = luaL_tolstring(L, -1, NULL);
                    lua_pushnil(L);
                    lua_pushfstring(L, "data source failed: %s", m);
                    lua_pushinteger(L, STREAMDB_ERR_IO);
                    return 3;
                }
                break;
            }
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "read method must return strings, then nil");
            p = lua_tolstring(L, -2, &n);
            if ((rc = writer_put(L, w, p, n)) < 0) goto core_fail;
            lua_pop(L, 2);
        }
        return 0;
    }

core_fail:
    if (rc == STREAMDB_ERR_CLOSED && w->w == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, "database closed during the write");
        lua_pushinteger(L, STREAMDB_ERR_CLOSED);
        return 3;
    }
    {
        const char *m = streamdb_errmsg(w->link.owner ? w->link.owner->db : NULL);
        lua_pushnil(L);
        lua_pushstring(L, (m && *m) ? m : streamdb_strerror(rc));
        lua_pushinteger(L, rc);
    }
    return 3;
}

/* db:write_document(path, data) -> id | nil, message, code */
static int ldb_write_document(lua_State *L) {
    size_t plen;
    const char *path;
    uint8_t id[16];
    int rc, top;
    lwriter *w;
    GET_HANDLE(L, d, h);
    path = check_path(L, 2, &plen);
    luaL_checkany(L, 3);
    NOT_WRITING(L, d);
    if (lua_type(L, 3) == LUA_TSTRING) {
        size_t len;
        const char *data = lua_tolstring(L, 3, &len);
        rc = streamdb_write_document_n(h, path, plen, data, len, id);
        if (rc < 0) return push_fail(L, h, rc);
        push_id(L, id);
        return 1;
    }
    {
        luaL_Stream *fh = (luaL_Stream *)luaL_testudata(L, 3, LUA_FILEHANDLE);
        int t = lua_type(L, 3);
        if (fh != NULL) {
            if (fh->closef == NULL) return luaL_argerror(L, 3, "attempt to use a closed file");
        } else if (t != LUA_TFUNCTION) {
            int readable = (t == LUA_TTABLE || t == LUA_TUSERDATA);
            if (readable) {
                readable = lua_getfield(L, 3, "read") != LUA_TNIL;
                lua_pop(L, 1);
            }
            if (!readable)
                return luaL_typeerror(L, 3, "string, file, function or object with a read method");
        }
    }
    lua_settop(L, 3);
    w = (lwriter *)lua_newuserdatauv(L, sizeof(lwriter), 1);   /* index 4 */
    memset(w, 0, sizeof *w);
    w->link.close = writer_node_close;
    luaL_setmetatable(L, WRITER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, 4, 1);
    rc = streamdb_writer_begin(h, path, plen, &w->w);
    if (rc < 0 || w->w == NULL) {
        w->w = NULL;
        return push_fail(L, h, rc < 0 ? rc : STREAMDB_ERR_INTERNAL);
    }
    node_link(d, &w->link);
    d->writing = 1;
    lua_pushcfunction(L, write_pump);
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 3);
    top = lua_gettop(L) - 3;   /* == 4 */
    rc = lua_pcall(L, 2, 3, 0);
    d->writing = 0;
    if (rc != LUA_OK) {          /* the data source raised: abort, re-raise */
        node_unlink(&w->link);
        writer_node_close(&w->link);
        return lua_error(L);
    }
    if (lua_isnil(L, top + 1) && !lua_isnil(L, top + 2)) {   /* a failure */
        node_unlink(&w->link);
        writer_node_close(&w->link);
        return 3;
    }
    lua_settop(L, top);
    if (w->w == NULL || d->db == NULL) {
        node_unlink(&w->link);
        return push_closed(L, "database closed during the write");
    }
    node_unlink(&w->link);
    rc = streamdb_writer_commit(w->w, id);
    w->w = NULL;                  /* commit frees the writer either way */
    if (rc < 0) return push_fail(L, h, rc);
    push_id(L, id);
    return 1;
}

/* ---- reading whole documents -------------------------------------------- */

static int push_buffer(lua_State *L, void *data, size_t len) {
    /* (if lua_pushlstring raises a memory error, data leaks: the state is
     * then out of memory anyway) */
    lua_pushlstring(L, data ? (const char *)data : "", len);
    streamdb_free(data);
    return 1;
}

static int get_common(lua_State *L, int by_id) {
    void *data = NULL;
    size_t len = 0;
    int rc;
    int64_t version;
    GET_HANDLE(L, d, h);
    (void)d;
    if (by_id) {
        uint8_t id[16];
        check_id(L, 2, id);
        version = opt_version(L, 3);
        rc = streamdb_get_by_id(h, id, version, &data, &len);
    } else {
        size_t plen;
        const char *path = check_path(L, 2, &plen);
        char small[8192];
        version = opt_version(L, 3);
        /* a document that fits is written onto the stack, no allocation in
         * the core; a bigger one takes the allocating call */
        rc = streamdb_get_into(h, path, plen, version, small, sizeof small, &len);
        if (rc < 0) return push_fail(L, h, rc);
        if (len <= sizeof small) {
            lua_pushlstring(L, small, len);
            return 1;
        }
        rc = streamdb_get_n(h, path, plen, version, &data, &len);
    }
    if (rc < 0) return push_fail(L, h, rc);
    return push_buffer(L, data, len);
}

/* db:get(path [, version]) -> string | nil, message, code */
static int ldb_get(lua_State *L) { return get_common(L, 0); }
/* db:get_by_id(id [, version]) -> string | nil, message, code */
static int ldb_get_by_id(lua_State *L) { return get_common(L, 1); }

/* db:try_get(path [, version]) -> string | nil, message, code: the document
 * if it can be read from memory (STREAMDB_READ_NOWAIT), else nil, message,
 * WOULDBLOCK at once -- for a game's frame, which can send the miss to
 * get_async. */
static int ldb_try_get(lua_State *L) {
    size_t plen, len = 0;
    char small[8192];
    GET_HANDLE(L, d, h);
    (void)d;
    const char *path = check_path(L, 2, &plen);
    int64_t version = opt_version(L, 3);
    int rc = streamdb_get_into_flags(h, path, plen, version, STREAMDB_READ_NOWAIT, small,
                                     sizeof small, &len);
    if (rc < 0) return push_fail(L, h, rc);
    if (len <= sizeof small) {
        lua_pushlstring(L, small, len);
        return 1;
    }
    /* bigger: straight into a Lua buffer of the size just learnt; the
     * document may have grown meanwhile, so a few attempts */
    for (int attempt = 0; attempt < 4; attempt++) {
        luaL_Buffer b;
        size_t cap = len;
        char *p = luaL_buffinitsize(L, &b, cap);
        rc = streamdb_get_into_flags(h, path, plen, version, STREAMDB_READ_NOWAIT, p, cap, &len);
        if (rc < 0) return push_fail(L, h, rc);
        if (len <= cap) {
            luaL_pushresultsize(&b, len);
            return 1;
        }
        lua_pop(L, 1);   /* the buffer's box */
    }
    return push_fail_msg(L, "the document kept growing while it was read", STREAMDB_ERR_BUSY);
}

/* db:read(path, offset, length [, version]) -> string | nil, message, code */
static int ldb_read(lua_State *L) {
    size_t plen, nread = 0;
    const char *path;
    lua_Integer off, len;
    int64_t version;
    luaL_Buffer b;
    char *p;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    path = check_path(L, 2, &plen);
    off = luaL_checkinteger(L, 3);
    len = luaL_checkinteger(L, 4);
    version = opt_version(L, 5);
    luaL_argcheck(L, off >= 0, 3, "offset must be non-negative");
    luaL_argcheck(L, len >= 0, 4, "length must be non-negative");
    {
        /* never allocate more than the document holds */
        streamdb_doc_info info;
        rc = streamdb_stat(h, path, plen, version, &info);
        if (rc < 0) return push_fail(L, h, rc);
        if ((uint64_t)off >= info.size) len = 0;
        else if ((uint64_t)len > info.size - (uint64_t)off) len = (lua_Integer)(info.size - (uint64_t)off);
    }
    p = luaL_buffinitsize(L, &b, (size_t)len);
    rc = streamdb_read_n(h, path, plen, version, (uint64_t)off, p, (size_t)len, &nread);
    if (rc < 0) return push_fail(L, h, rc);
    luaL_pushresultsize(&b, nread);
    return 1;
}

/* ---- metadata ----------------------------------------------------------- */

static void set_int_field(lua_State *L, const char *k, uint64_t v) {
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

/* db:stat(path [, version]) -> table | nil, message, code */
static int ldb_stat(lua_State *L) {
    size_t plen;
    const char *path;
    streamdb_doc_info info;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    path = check_path(L, 2, &plen);
    memset(&info, 0, sizeof info);
    rc = streamdb_stat(h, path, plen, opt_version(L, 3), &info);
    if (rc < 0) return push_fail(L, h, rc);
    lua_createtable(L, 0, 10);
    push_id(L, info.id);
    lua_setfield(L, -2, "id");
    set_int_field(L, "version", info.version);
    set_int_field(L, "size", info.size);
    set_int_field(L, "stored_size", info.stored_size);
    set_int_field(L, "crc32c", info.crc32c);
    set_int_field(L, "created_ns", info.created_ns);
    set_int_field(L, "modified_ns", info.modified_ns);
    set_int_field(L, "flags", info.flags);
    lua_pushboolean(L, (info.flags & STREAMDB_DOC_INLINE) != 0);
    lua_setfield(L, -2, "inline");
    return 1;
}

/* db:versions(path) -> { v1, v2, ... } oldest first | nil, message, code */
static int ldb_versions(lua_State *L) {
    size_t plen, n = 0;
    const char *path;
    uint64_t *v = NULL;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    path = check_path(L, 2, &plen);
    rc = streamdb_versions(h, path, plen, &v, &n);
    if (rc < 0) return push_fail(L, h, rc);
    if (!lua_checkstack(L, 2)) { streamdb_free(v); return luaL_error(L, "stack overflow"); }
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    streamdb_free(v);
    return 1;
}

/* db:exists(path) -> boolean | nil, message, code */
static int ldb_exists(lua_State *L) {
    size_t plen;
    const char *path;
    streamdb_doc_info info;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    path = check_path(L, 2, &plen);
    rc = streamdb_stat(h, path, plen, 0, &info);
    if (rc == STREAMDB_ERR_NOT_FOUND) { lua_pushboolean(L, 0); return 1; }
    if (rc < 0) return push_fail(L, h, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- ids and paths ------------------------------------------------------ */

static int ldb_get_id_by_path(lua_State *L) {
    size_t plen;
    const char *path;
    uint8_t id[16];
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    path = check_path(L, 2, &plen);
    rc = streamdb_get_id_by_path(h, path, plen, id);
    if (rc < 0) return push_fail(L, h, rc);
    push_id(L, id);
    return 1;
}

static int ldb_bind_to_path(lua_State *L) {
    size_t plen;
    const char *path;
    uint8_t id[16];
    int rc;
    GET_HANDLE(L, d, h);
    check_id(L, 2, id);
    path = check_path(L, 3, &plen);
    NOT_WRITING(L, d);
    rc = streamdb_bind_to_path(h, id, path, plen);
    if (rc < 0) return push_fail(L, h, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int ldb_unbind_path(lua_State *L) {
    size_t plen;
    const char *path;
    uint8_t id[16];
    int rc;
    GET_HANDLE(L, d, h);
    check_id(L, 2, id);
    path = check_path(L, 3, &plen);
    NOT_WRITING(L, d);
    rc = streamdb_unbind_path(h, id, path, plen);
    if (rc < 0) return push_fail(L, h, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int ldb_list_paths(lua_State *L) {
    uint8_t id[16];
    char **paths = NULL;
    size_t n = 0;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    check_id(L, 2, id);
    rc = streamdb_list_paths(h, id, &paths, &n);
    if (rc < 0) return push_fail(L, h, rc);
    push_path_array(L, paths, n);
    streamdb_free_paths(paths, n);
    return 1;
}

static int ldb_delete(lua_State *L) {
    size_t plen;
    const char *path;
    int rc;
    GET_HANDLE(L, d, h);
    path = check_path(L, 2, &plen);
    NOT_WRITING(L, d);
    rc = streamdb_delete_n(h, path, plen);
    if (rc < 0) return push_fail(L, h, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int ldb_delete_by_id(lua_State *L) {
    uint8_t id[16];
    int rc;
    GET_HANDLE(L, d, h);
    check_id(L, 2, id);
    NOT_WRITING(L, d);
    rc = streamdb_delete_by_id(h, id);
    if (rc < 0) return push_fail(L, h, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- search and listing -------------------------------------------------- */

static int array_search(lua_State *L, int list) {
    size_t plen, n = 0;
    const char *prefix;
    char **paths = NULL;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    prefix = lua_isnoneornil(L, 2) ? (plen = 1, "/") : check_path(L, 2, &plen);
    rc = list ? streamdb_list(h, prefix, plen, &paths, &n)
              : streamdb_search_n(h, prefix, plen, &paths, &n);
    if (rc < 0) return push_fail(L, h, rc);
    push_path_array(L, paths, n);
    streamdb_free_paths(paths, n);
    return 1;
}

/* db:search(prefix) -> { path, ... } in byte order */
static int ldb_search(lua_State *L) { return array_search(L, 0); }
/* db:list(prefix) -> { name or "dir/", ... } one level */
static int ldb_list(lua_State *L) { return array_search(L, 1); }

typedef struct lcursor {
    node link;
    streamdb_cursor *c;
    int invalidated;            /* closed because its database closed */
} lcursor;

static void cursor_node_close(node *n) {
    lcursor *c = (lcursor *)n;
    if (c->c != NULL) {
        streamdb_cursor_close(c->c);
        c->c = NULL;
        c->invalidated = 1;
    }
}

static lcursor *check_cursor(lua_State *L, int idx) {
    return (lcursor *)luaL_checkudata(L, idx, CURSOR_MT);
}

static void cursor_release(lcursor *c) {
    node_unlink(&c->link);
    if (c->c != NULL) {
        streamdb_cursor_close(c->c);
        c->c = NULL;
    }
}

static int lcursor_close(lua_State *L) {
    cursor_release(check_cursor(L, 1));
    lua_pushboolean(L, 1);
    return 1;
}

static int lcursor_gc(lua_State *L) {
    cursor_release(check_cursor(L, 1));
    return 0;
}

static int lcursor_tostring(lua_State *L) {
    lcursor *c = check_cursor(L, 1);
    if (c->c == NULL) lua_pushliteral(L, "streamdb.cursor (closed)");
    else lua_pushfstring(L, "streamdb.cursor (%p)", (void *)c->c);
    return 1;
}

/* cursor:next() -> path | nil (done) | nil, message, code */
static int cursor_next_common(lua_State *L, int raise) {
    lcursor *c = check_cursor(L, 1);
    const char *p = NULL;
    size_t n = 0;
    int rc;
    if (c->c == NULL) {
        if (c->invalidated) {
            if (raise) return luaL_error(L, "cursor invalidated: its database is closed");
            return push_closed(L, "cursor invalidated: its database is closed");
        }
        if (raise) return luaL_error(L, "attempt to use a closed cursor");
        return push_closed(L, "attempt to use a closed cursor");
    }
    rc = streamdb_cursor_next(c->c, &p, &n);
    if (rc == STREAMDB_DONE) {
        cursor_release(c);     /* release the reader snapshot at once */
        lua_pushnil(L);
        return 1;
    }
    if (rc < 0) {
        streamdb *h = c->link.owner ? c->link.owner->db : NULL;
        const char *m = streamdb_errmsg(h);
        if (m == NULL || *m == '\0') m = streamdb_strerror(rc);
        if (raise) return luaL_error(L, "cursor: %s", m);
        return push_fail_msg(L, m, rc);
    }
    lua_pushlstring(L, p, n);
    return 1;
}

static int lcursor_next(lua_State *L) { return cursor_next_common(L, 0); }
static int lcursor_iter(lua_State *L) { return cursor_next_common(L, 1); }

static int open_cursor(lua_State *L, int list) {
    size_t plen;
    const char *prefix;
    lcursor *c;
    int rc;
    GET_HANDLE(L, d, h);
    prefix = lua_isnoneornil(L, 2) ? (plen = 1, "/") : check_path(L, 2, &plen);
    c = (lcursor *)lua_newuserdatauv(L, sizeof(lcursor), 1);
    memset(c, 0, sizeof *c);
    c->link.close = cursor_node_close;
    luaL_setmetatable(L, CURSOR_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    rc = list ? streamdb_list_open(h, prefix, plen, &c->c)
              : streamdb_search_open(h, prefix, plen, &c->c);
    if (rc < 0 || c->c == NULL) {
        c->c = NULL;
        return push_fail(L, h, rc < 0 ? rc : STREAMDB_ERR_INTERNAL);
    }
    node_link(d, &c->link);
    return 1;
}

/* db:cursor(prefix) -> cursor with :next() and :close() */
static int ldb_cursor(lua_State *L) { return open_cursor(L, 0); }
/* db:list_cursor(prefix) -> cursor over one level */
static int ldb_list_cursor(lua_State *L) { return open_cursor(L, 1); }

/* for path in db:paths(prefix) do ... end.  Returns the iterator, the
 * cursor as state, nil, and the cursor again as the closing value. */
static int paths_common(lua_State *L, int list) {
    int n = open_cursor(L, list);
    if (n != 1)   /* the iterator protocol has no room for nil, message */
        return luaL_error(L, "%s: %s", list ? "entries" : "paths", lua_tostring(L, -n + 1));
    lua_pushcfunction(L, lcursor_iter);
    lua_insert(L, -2);
    lua_pushnil(L);
    lua_pushvalue(L, -2);
    return 4;
}

static int ldb_paths(lua_State *L) { return paths_common(L, 0); }
static int ldb_entries(lua_State *L) { return paths_common(L, 1); }

/* db:count() -> number of documents */
static int ldb_count(lua_State *L) {
    uint64_t n = 0;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    rc = streamdb_count(h, &n);
    if (rc < 0) return push_fail(L, h, rc);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct lstream {
    node link;
    streamdb_stream *s;
    int invalidated;            /* closed because its database closed */
    uint64_t size;              /* the stream reads one fixed version */
    uint64_t pos;               /* logical position (what Lua sees) */
    size_t bpos, blen;          /* buffered bytes buf[bpos..blen) */
    unsigned char buf[STREAM_BUFSZ];
} lstream;

static void stream_node_close(node *n) {
    lstream *s = (lstream *)n;
    if (s->s != NULL) {
        streamdb_stream_close(s->s);
        s->s = NULL;
        s->invalidated = 1;
    }
}

static lstream *check_stream(lua_State *L, int idx) {
    return (lstream *)luaL_checkudata(L, idx, STREAM_MT);
}

static void stream_release(lstream *s) {
    node_unlink(&s->link);
    if (s->s != NULL) {
        streamdb_stream_close(s->s);
        s->s = NULL;
    }
    s->bpos = s->blen = 0;
}

static const char *stream_closed_msg(lstream *s) {
    return s->invalidated ? "stream invalidated: its database is closed"
                          : "attempt to use a closed stream";
}

static int stream_fail(lua_State *L, lstream *s, int rc) {
    streamdb *h = s->link.owner ? s->link.owner->db : NULL;
    return push_fail(L, h, rc);
}

/* Refills the buffer when empty.  Returns <0 on error, 0 at the end of the
 * stream, 1 when bytes are buffered. */
static int stream_fill(lstream *s) {
    size_t n = 0;
    int rc;
    if (s->bpos < s->blen) return 1;
    s->bpos = s->blen = 0;
    if (s->pos >= s->size) return 0;
    rc = streamdb_stream_read(s->s, s->buf, STREAM_BUFSZ, &n);
    if (rc < 0) return rc;
    s->blen = n;
    return n > 0;
}

/* Reads exactly want bytes (fewer at the end) into p. */
static int stream_take(lstream *s, char *p, size_t want, size_t *got) {
    size_t done = 0;
    if (s->bpos < s->blen) {
        size_t k = s->blen - s->bpos;
        if (k > want) k = want;
        memcpy(p, s->buf + s->bpos, k);
        s->bpos += k;
        done = k;
    }
    if (s->bpos == s->blen) s->bpos = s->blen = 0;   /* keep the window exact */
    while (done < want) {
        size_t n = 0;
        int rc;
        if (want - done < STREAM_BUFSZ) {   /* small tail: go through the buffer */
            rc = stream_fill(s);
            if (rc < 0) { s->pos += done; *got = done; return rc; }
            if (rc == 0) break;
            n = s->blen - s->bpos;
            if (n > want - done) n = want - done;
            memcpy(p + done, s->buf + s->bpos, n);
            s->bpos += n;
            done += n;
            continue;
        }
        rc = streamdb_stream_read(s->s, p + done, want - done, &n);
        if (rc < 0) { s->pos += done; *got = done; return rc; }
        if (n == 0) break;
        done += n;
    }
    s->pos += done;
    *got = done;
    return 0;
}

static uint64_t stream_remaining(lstream *s) {
    return s->pos >= s->size ? 0 : s->size - s->pos;
}

/* Pushes up to n bytes; 1 if any were read (or n == 0 and not at the end),
 * 0 at the end of the stream, <0 on error (nothing pushed). */
static int read_chars(lua_State *L, lstream *s, uint64_t n) {
    luaL_Buffer b;
    char *p;
    size_t got = 0;
    uint64_t rem = stream_remaining(s);
    int rc;
    if (n > rem) n = rem;
    if (n == 0) {                   /* read(0) tests for the end, like io */
        lua_pushliteral(L, "");
        return rem > 0;
    }
    p = luaL_buffinitsize(L, &b, (size_t)n);
    rc = stream_take(s, p, (size_t)n, &got);
    if (rc < 0) {
        luaL_pushresultsize(&b, 0);
        lua_pop(L, 1);
        return rc;
    }
    luaL_pushresultsize(&b, got);
    return got > 0;
}

/* "a": never fails at the end (gives ""). */
static int read_all(lua_State *L, lstream *s) {
    int rc = read_chars(L, s, stream_remaining(s));
    return rc < 0 ? rc : 1;
}

/* A line, with or without its '\n'.  1 if read, 0 at the end, <0 error. */
static int read_line(lua_State *L, lstream *s, int chop) {
    luaL_Buffer b;
    int any = 0;
    luaL_buffinit(L, &b);
    for (;;) {
        unsigned char *start, *nl;
        size_t k;
        int rc = stream_fill(s);
        if (rc < 0) {
            luaL_pushresult(&b);
            lua_pop(L, 1);
            return rc;
        }
        if (rc == 0) break;
        start = s->buf + s->bpos;
        k = s->blen - s->bpos;
        nl = memchr(start, '\n', k);
        if (nl != NULL) {
            size_t take = (size_t)(nl - start) + 1;
            luaL_addlstring(&b, (const char *)start, chop ? take - 1 : take);
            s->bpos += take;
            s->pos += take;
            luaL_pushresult(&b);
            return 1;
        }
        luaL_addlstring(&b, (const char *)start, k);
        s->bpos += k;
        s->pos += k;
        any = 1;
    }
    luaL_pushresult(&b);
    return any;                 /* "" pushed and 0 at the end */
}

/* ---- "n": a numeral, as io.read("n") reads it ---- */

#define L_MAXLENNUM 200
typedef struct {
    lstream *s;
    int c;        /* current character (look-ahead), -1 at the end */
    int n;
    int err;
    char buff[L_MAXLENNUM + 1];
} rnum;

static int rn_peek(rnum *rn) {
    int rc = stream_fill(rn->s);
    if (rc < 0) { rn->err = rc; return -1; }
    if (rc == 0) return -1;
    return rn->s->buf[rn->s->bpos];
}

static void rn_advance(rnum *rn) {
    rn->s->bpos++;
    rn->s->pos++;
    rn->c = rn_peek(rn);
}

static int rn_nextc(rnum *rn) {
    if (rn->n >= L_MAXLENNUM) {
        rn->buff[0] = '\0';
        return 0;
    }
    rn->buff[rn->n++] = (char)rn->c;
    rn_advance(rn);
    return 1;
}

static int rn_test2(rnum *rn, const char *set) {
    if (rn->c >= 0 && (rn->c == set[0] || rn->c == set[1])) return rn_nextc(rn);
    return 0;
}

static int rn_digits(rnum *rn, int hex) {
    int count = 0;
    while (rn->c >= 0 && (hex ? (hexval(rn->c) >= 0) : (rn->c >= '0' && rn->c <= '9')) && rn_nextc(rn))
        count++;
    return count;
}

static int read_number(lua_State *L, lstream *s) {
    rnum rn;
    int count = 0, hex = 0;
    char decp[2] = ".";
    rn.s = s;
    rn.n = 0;
    rn.err = 0;
    rn.c = rn_peek(&rn);
    while (rn.c == ' ' || rn.c == '\t' || rn.c == '\n' || rn.c == '\r' || rn.c == '\f' || rn.c == '\v')
        rn_advance(&rn);
    rn_test2(&rn, "-+");
    if (rn_test2(&rn, "00")) {
        if (rn_test2(&rn, "xX")) hex = 1;
        else count = 1;
    }
    count += rn_digits(&rn, hex);
    if (rn_test2(&rn, decp)) count += rn_digits(&rn, hex);
    if (count > 0 && rn_test2(&rn, hex ? "pP" : "eE")) {
        rn_test2(&rn, "-+");
        rn_digits(&rn, 0);
    }
    if (rn.err < 0) return rn.err;
    rn.buff[rn.n] = '\0';
    if (lua_stringtonumber(L, rn.buff)) return 1;
    lua_pushnil(L);
    return 0;
}

/* The body of stream:read(...), formats from index first. */
static int g_read(lua_State *L, lstream *s, int first) {
    int nargs = lua_gettop(L) - 1;
    int n, success = 1, rc = 0;
    if (s->s == NULL) return push_closed(L, stream_closed_msg(s));
    if (nargs == 0) {
        rc = read_line(L, s, 1);
        success = rc;
        n = first + 1;
    } else {
        luaL_checkstack(L, nargs + LUA_MINSTACK, "too many arguments");
        success = 1;
        for (n = first; nargs-- && success > 0; n++) {
            if (lua_type(L, n) == LUA_TNUMBER) {
                lua_Integer l = luaL_checkinteger(L, n);
                luaL_argcheck(L, l >= 0, n, "invalid count");
                success = read_chars(L, s, (uint64_t)l);
            } else {
                const char *p = luaL_checkstring(L, n);
                if (*p == '*') p++;
                switch (*p) {
                case 'n': success = read_number(L, s); break;
                case 'l': success = read_line(L, s, 1); break;
                case 'L': success = read_line(L, s, 0); break;
                case 'a': success = read_all(L, s); break;
                default: return luaL_argerror(L, n, "invalid format");
                }
            }
        }
    }
    if (success < 0) return stream_fail(L, s, success);
    if (success == 0) {
        lua_pop(L, 1);              /* replace the last (empty) result by fail */
        luaL_pushfail(L);
    }
    return n - first;
}

/* stream:read(...) */
static int lstream_read(lua_State *L) {
    lstream *s = check_stream(L, 1);
    return g_read(L, s, 2);
}

/* The iterator of stream:lines(...): upvalues are the stream, the count of
 * formats and the formats. */
static int lines_iter(lua_State *L) {
    lstream *s = (lstream *)lua_touserdata(L, lua_upvalueindex(1));
    int n = (int)lua_tointeger(L, lua_upvalueindex(2));
    int i, r;
    if (s->s == NULL) return luaL_error(L, "%s", stream_closed_msg(s));
    lua_settop(L, 1);
    luaL_checkstack(L, n, "too many arguments");
    for (i = 1; i <= n; i++) lua_pushvalue(L, lua_upvalueindex(2 + i));
    r = g_read(L, s, 2);
    if (lua_toboolean(L, -r)) return r;
    if (r > 1 && !lua_isnil(L, -r + 1))   /* nil, message, code */
        return luaL_error(L, "%s", lua_tostring(L, -r + 1));
    return 0;
}

/* stream:lines(...) -> iterator (does not close the stream, like io) */
static int lstream_lines(lua_State *L) {
    int n = lua_gettop(L) - 1;
    check_stream(L, 1);
    luaL_argcheck(L, n <= 250, 252, "too many arguments");
    lua_pushinteger(L, n);
    lua_insert(L, 2);
    lua_pushcclosure(L, lines_iter, 2 + n);
    return 1;
}

/* stream:seek([whence [, offset]]) -> position | nil, message, code */
static int lstream_seek(lua_State *L) {
    static const char *const modes[] = {"set", "cur", "end", NULL};
    lstream *s = check_stream(L, 1);
    int op = luaL_checkoption(L, 2, "cur", modes);
    lua_Integer off = luaL_optinteger(L, 3, 0);
    int64_t target;
    uint64_t got = 0;
    int rc;
    if (s->s == NULL) return push_closed(L, stream_closed_msg(s));
    if (op == 0) target = off;
    else if (op == 1) target = (int64_t)s->pos + off;
    else target = (int64_t)s->size + off;
    if (target < 0) return push_fail_msg(L, "invalid seek: negative position", STREAMDB_ERR_INVALID);
    if (op == 1 && off == 0) {        /* a plain tell */
        lua_pushinteger(L, (lua_Integer)s->pos);
        return 1;
    }
    {
        /* inside the buffered window: just move in the buffer */
        uint64_t wstart = s->pos - s->bpos;
        if (s->blen > 0 && (uint64_t)target >= wstart && (uint64_t)target <= wstart + s->blen) {
            s->bpos = (size_t)((uint64_t)target - wstart);
            s->pos = (uint64_t)target;
            lua_pushinteger(L, (lua_Integer)s->pos);
            return 1;
        }
    }
    rc = streamdb_stream_seek(s->s, target, 0, &got);
    if (rc < 0) return stream_fail(L, s, rc);
    s->bpos = s->blen = 0;
    s->pos = got;
    lua_pushinteger(L, (lua_Integer)s->pos);
    return 1;
}

/* stream:size() -> bytes in the document version the stream reads */
static int lstream_size(lua_State *L) {
    lstream *s = check_stream(L, 1);
    if (s->s == NULL) return push_closed(L, stream_closed_msg(s));
    lua_pushinteger(L, (lua_Integer)s->size);
    return 1;
}

/* stream:close() -> true.  Idempotent. */
static int lstream_close(lua_State *L) {
    stream_release(check_stream(L, 1));
    lua_pushboolean(L, 1);
    return 1;
}

static int lstream_gc(lua_State *L) {
    stream_release(check_stream(L, 1));
    return 0;
}

static int lstream_tostring(lua_State *L) {
    lstream *s = check_stream(L, 1);
    if (s->s == NULL) lua_pushliteral(L, "streamdb.stream (closed)");
    else lua_pushfstring(L, "streamdb.stream (%p)", (void *)s->s);
    return 1;
}

/* A stream looks like a file to io-minded code: write/flush/setvbuf exist
 * and fail as they do on a read-only file. */
static int lstream_write(lua_State *L) {
    lstream *s = check_stream(L, 1);
    if (s->s == NULL) return push_closed(L, stream_closed_msg(s));
    return push_fail_msg(L, "stream is read-only", STREAMDB_ERR_READONLY);
}

static int lstream_flush(lua_State *L) {
    lstream *s = check_stream(L, 1);
    if (s->s == NULL) return push_closed(L, stream_closed_msg(s));
    lua_pushvalue(L, 1);
    return 1;
}

static int lstream_setvbuf(lua_State *L) {
    lstream *s = check_stream(L, 1);
    if (s->s == NULL) return push_closed(L, stream_closed_msg(s));
    lua_pushboolean(L, 1);
    return 1;
}

/* Opens a stream of path (at idx) on the db at 1; pushes it or a failure. */
static int open_stream(lua_State *L, int pidx, int64_t version) {
    size_t plen;
    const char *path;
    lstream *s;
    int rc;
    GET_HANDLE(L, d, h);
    path = check_path(L, pidx, &plen);
    s = (lstream *)lua_newuserdatauv(L, sizeof(lstream), 1);
    memset(s, 0, offsetof(lstream, buf));
    s->link.close = stream_node_close;
    luaL_setmetatable(L, STREAM_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    rc = streamdb_stream_open(h, path, plen, version, &s->s);
    if (rc < 0 || s->s == NULL) {
        s->s = NULL;
        return push_fail(L, h, rc < 0 ? rc : STREAMDB_ERR_INTERNAL);
    }
    node_link(d, &s->link);
    rc = streamdb_stream_size(s->s, &s->size);
    if (rc < 0) {
        int n = push_fail(L, h, rc);
        stream_release(s);
        return n;
    }
    return 1;
}

/* db:open(path [, version]) -> stream | nil, message, code */
static int ldb_open(lua_State *L) {
    return open_stream(L, 2, opt_version(L, 3));
}

/* The iterator of db:chunks: (stream, _) -> chunk | nil.  Closes the stream
 * at the end. */
static int chunks_iter(lua_State *L) {
    lstream *s = check_stream(L, 1);
    lua_Integer size = lua_tointeger(L, lua_upvalueindex(1));
    int rc;
    if (s->s == NULL) return luaL_error(L, "%s", stream_closed_msg(s));
    rc = read_chars(L, s, (uint64_t)size);
    if (rc < 0) {
        int n = stream_fail(L, s, rc);
        return luaL_error(L, "chunks: %s", lua_tostring(L, -n + 1));
    }
    if (rc == 0) {
        stream_release(s);
        lua_pushnil(L);
    }
    return 1;
}

/* for chunk in db:chunks(path [, size [, version]]) do ... end */
static int ldb_chunks(lua_State *L) {
    lua_Integer size = luaL_optinteger(L, 3, DEFAULT_CHUNK);
    int64_t version = opt_version(L, 4);
    int n;
    luaL_argcheck(L, size > 0, 3, "chunk size must be positive");
    n = open_stream(L, 2, version);
    if (n != 1) {
        /* the iterator protocol has no room for nil, message: raise */
        return luaL_error(L, "chunks: %s", lua_tostring(L, -n + 1));
    }
    lua_pushinteger(L, size);
    lua_pushcclosure(L, chunks_iter, 1);
    lua_insert(L, -2);          /* iter, stream */
    lua_pushnil(L);
    lua_pushvalue(L, -2);       /* closing value */
    return 4;
}

/* ------------------------------------------------------------------------ */
/* Transactions, snapshots, maintenance                                       */
/* ------------------------------------------------------------------------ */

static int simple_result(lua_State *L, streamdb *h, int rc) {
    if (rc < 0) return push_fail(L, h, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int ldb_begin(lua_State *L) {
    GET_HANDLE(L, d, h);
    NOT_WRITING(L, d);
    return simple_result(L, h, streamdb_begin_transaction(h));
}

static int ldb_commit(lua_State *L) {
    GET_HANDLE(L, d, h);
    NOT_WRITING(L, d);
    return simple_result(L, h, streamdb_commit_transaction(h));
}

static int ldb_rollback(lua_State *L) {
    GET_HANDLE(L, d, h);
    NOT_WRITING(L, d);
    return simple_result(L, h, streamdb_rollback_transaction(h));
}

/* db:transaction(fn, ...) -> true, fn's results | nil, message, code.
 * If fn raises, the transaction is rolled back and the error re-raised. */
static int ldb_transaction(lua_State *L) {
    int rc, nargs;
    GET_HANDLE(L, d, h);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    NOT_WRITING(L, d);
    rc = streamdb_begin_transaction(h);
    if (rc < 0) return push_fail(L, h, rc);
    nargs = lua_gettop(L) - 2;
    if (lua_pcall(L, nargs, LUA_MULTRET, 0) != LUA_OK) {
        if (d->db != NULL) (void)streamdb_rollback_transaction(d->db);
        return lua_error(L);
    }
    if (d->db == NULL) return push_closed(L, "database closed during the transaction");
    rc = streamdb_commit_transaction(d->db);
    if (rc < 0) {
        int n = push_fail(L, d->db, rc);
        /* leave no half-open transaction behind */
        (void)streamdb_rollback_transaction(d->db);
        return n;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, 2);
    return lua_gettop(L) - 1;
}

/* db:snapshot() -> read-only db seeing the database as it is now */
static int ldb_snapshot(lua_State *L) {
    ldb *s;
    int rc;
    GET_HANDLE(L, d, h);
    s = new_db(L);
    s->is_snapshot = 1;
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    rc = streamdb_snapshot(h, &s->db);
    if (rc < 0 || s->db == NULL) {
        s->db = NULL;
        return push_fail(L, h, rc < 0 ? rc : STREAMDB_ERR_INTERNAL);
    }
    node_link(d, &s->link);
    return 1;
}

static int ldb_flush(lua_State *L) {
    GET_HANDLE(L, d, h);
    NOT_WRITING(L, d);
    return simple_result(L, h, streamdb_flush(h));
}

static int ldb_compact(lua_State *L) {
    GET_HANDLE(L, d, h);
    NOT_WRITING(L, d);
    return simple_result(L, h, streamdb_compact(h));
}

static int ldb_check(lua_State *L) {
    GET_HANDLE(L, d, h);
    (void)d;
    return simple_result(L, h, streamdb_check(h));
}

static int ldb_set_quick_mode(lua_State *L) {
    GET_HANDLE(L, d, h);
    (void)d;
    luaL_checkany(L, 2);
    return simple_result(L, h, streamdb_set_quick_mode(h, lua_toboolean(L, 2)));
}

static int ldb_stats(lua_State *L) {
    streamdb_stats st;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    memset(&st, 0, sizeof st);
    rc = streamdb_calculate_statistics(h, &st);
    if (rc < 0) return push_fail(L, h, rc);
    lua_createtable(L, 0, 12);
    set_int_field(L, "page_size", st.page_size);
    set_int_field(L, "total_pages", st.total_pages);
    set_int_field(L, "free_pages", st.free_pages);
    set_int_field(L, "document_count", st.document_count);
    set_int_field(L, "path_count", st.path_count);
    set_int_field(L, "wal_bytes", st.wal_bytes);
    set_int_field(L, "wal_frames", st.wal_frames);
    set_int_field(L, "live_readers", st.live_readers);
    set_int_field(L, "oldest_reader_txn", st.oldest_reader_txn);
    set_int_field(L, "last_txn", st.last_txn);
    set_int_field(L, "checkpoints", st.checkpoints);
    set_int_field(L, "file_bytes", st.file_bytes);
    return 1;
}

static int ldb_cache_stats(lua_State *L) {
    streamdb_cache_stats st;
    int rc;
    GET_HANDLE(L, d, h);
    (void)d;
    memset(&st, 0, sizeof st);
    rc = streamdb_get_cache_stats(h, &st);
    if (rc < 0) return push_fail(L, h, rc);
    lua_createtable(L, 0, 6);
    set_int_field(L, "hits", st.hits);
    set_int_field(L, "misses", st.misses);
    set_int_field(L, "prefetch_hits", st.prefetch_hits);
    set_int_field(L, "evictions", st.evictions);
    set_int_field(L, "cached_pages", st.cached_pages);
    set_int_field(L, "capacity_pages", st.capacity_pages);
    return 1;
}

static int ldb_page_size(lua_State *L) {
    GET_HANDLE(L, d, h);
    (void)d;
    lua_pushinteger(L, (lua_Integer)streamdb_page_size(h));
    return 1;
}

static int ldb_max_path_len(lua_State *L) {
    GET_HANDLE(L, d, h);
    (void)d;
    lua_pushinteger(L, (lua_Integer)streamdb_max_path_len(h));
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Futures: db:get_async                                                       */
/* ------------------------------------------------------------------------ */

enum { F_RUNNING = 0, F_DONE = 1 };

typedef struct lfuture {
    node link;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started, joined;
    int state;                  /* F_RUNNING / F_DONE (under mu) */
    int cancelled;              /* under mu */
    /* request (read-only for the worker) */
    streamdb *h;
    char *path;
    size_t path_len;
    int64_t version;
    /* result (written by the worker before F_DONE) */
    int rc;
    void *data;
    size_t len;
    char msg[256];
    int taken;                  /* data moved into the user value */
} lfuture;

static void *future_worker(void *arg) {
    lfuture *f = (lfuture *)arg;
    void *data = NULL;
    size_t len = 0;
    int rc = streamdb_get_n(f->h, f->path, f->path_len, f->version, &data, &len);
    char msg[256];
    msg[0] = '\0';
    if (rc < 0) {
        const char *m = streamdb_errmsg(f->h);
        if (m == NULL || *m == '\0') m = streamdb_strerror(rc);
        snprintf(msg, sizeof msg, "%s", m ? m : "unknown error");
    }
    pthread_mutex_lock(&f->mu);
    if (f->cancelled) {
        streamdb_free(data);
        data = NULL;
    } else {
        f->rc = rc;
        f->data = rc < 0 ? NULL : data;
        f->len = len;
        memcpy(f->msg, msg, sizeof msg);
        if (rc < 0) streamdb_free(data);
    }
    f->state = F_DONE;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void future_join(lfuture *f) {
    if (f->started && !f->joined) {
        pthread_join(f->thread, NULL);
        f->joined = 1;
    }
}

/* Child close (the database closes): wait for the read to finish, so the
 * handle is never closed under it.  The result stays available. */
static void future_node_close(node *n) {
    future_join((lfuture *)n);
}

static lfuture *check_future(lua_State *L, int idx) {
    return (lfuture *)luaL_checkudata(L, idx, FUTURE_MT);
}

static int lfuture_gc(lua_State *L) {
    lfuture *f = check_future(L, 1);
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->cancelled = 1;
        pthread_mutex_unlock(&f->mu);
    }
    node_unlink(&f->link);
    future_join(f);
    if (f->data) { streamdb_free(f->data); f->data = NULL; }
    free(f->path);
    f->path = NULL;
    if (f->started) {
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        f->started = 0;
    }
    return 0;
}

/* db:get_async(path [, version]) -> future | nil, message, code */
static int ldb_get_async(lua_State *L) {
    size_t plen;
    const char *path;
    lfuture *f;
    int64_t version;
    int rc;
    GET_HANDLE(L, d, h);
    path = check_path(L, 2, &plen);
    version = opt_version(L, 3);
    f = (lfuture *)lua_newuserdatauv(L, sizeof(lfuture), 2);
    memset(f, 0, sizeof *f);
    f->link.close = future_node_close;
    luaL_setmetatable(L, FUTURE_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    f->path = (char *)malloc(plen + 1);
    if (f->path == NULL) return luaL_error(L, "not enough memory");
    memcpy(f->path, path, plen);
    f->path[plen] = '\0';
    f->path_len = plen;
    f->version = version;
    f->h = h;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->started = 1;             /* mutex and cv exist from here on */
    f->joined = 1;              /* no thread yet */
    rc = pthread_create(&f->thread, NULL, future_worker, f);
    if (rc != 0) {
        return push_fail_msg(L, "cannot start the worker thread", STREAMDB_ERR_NOMEM);
    }
    f->joined = 0;
    node_link(d, &f->link);
    return 1;
}

static int future_is_ready(lfuture *f) {
    int r;
    if (!f->started) return 1;
    pthread_mutex_lock(&f->mu);
    r = f->state == F_DONE || f->cancelled;
    pthread_mutex_unlock(&f->mu);
    return r;
}

/* future:ready() -> boolean (true also once cancelled) */
static int lfuture_ready(lua_State *L) {
    lua_pushboolean(L, future_is_ready(check_future(L, 1)));
    return 1;
}

/* Pushes the outcome of a finished future. */
static int future_push_result(lua_State *L, lfuture *f) {
    int rc, cancelled;
    pthread_mutex_lock(&f->mu);
    rc = f->rc;
    cancelled = f->cancelled;
    pthread_mutex_unlock(&f->mu);
    if (cancelled) return push_fail_msg(L, "request cancelled", STREAMDB_ERR_CANCELLED);
    if (rc < 0) return push_fail_msg(L, f->msg, rc);
    if (!f->taken) {
        lua_pushlstring(L, f->data ? (const char *)f->data : "", f->len);
        lua_setiuservalue(L, 1, 2);
        streamdb_free(f->data);
        f->data = NULL;
        f->taken = 1;
    }
    lua_getiuservalue(L, 1, 2);
    return 1;
}

/* future:result() -> string | nil, message, code.  Raises if not ready. */
static int lfuture_result(lua_State *L) {
    lfuture *f = check_future(L, 1);
    lua_settop(L, 1);
    if (!f->started) return push_fail_msg(L, "future is closed", STREAMDB_ERR_CLOSED);
    if (!future_is_ready(f)) return luaL_error(L, "future is not ready (use :wait() or check :ready())");
    return future_push_result(L, f);
}

/* future:wait([timeout_seconds]) -> as result(); with a timeout that
 * expires: nil, "timeout", nil (the future keeps running). */
static int lfuture_wait(lua_State *L) {
    lfuture *f = check_future(L, 1);
    int has_timeout = !lua_isnoneornil(L, 2);
    lua_Number secs = has_timeout ? luaL_checknumber(L, 2) : 0;
    lua_settop(L, 1);
    if (!f->started) return push_fail_msg(L, "future is closed", STREAMDB_ERR_CLOSED);
    pthread_mutex_lock(&f->mu);
    if (has_timeout) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (secs < 0) secs = 0;
        ts.tv_sec += (time_t)secs;
        ts.tv_nsec += (long)((secs - (lua_Number)(time_t)secs) * 1e9);
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        while (f->state != F_DONE && !f->cancelled)
            if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT) break;
    } else {
        while (f->state != F_DONE && !f->cancelled) pthread_cond_wait(&f->cv, &f->mu);
    }
    {
        int ready = f->state == F_DONE || f->cancelled;
        pthread_mutex_unlock(&f->mu);
        if (!ready) {
            luaL_pushfail(L);
            lua_pushliteral(L, "timeout");
            return 2;
        }
    }
    return future_push_result(L, f);
}

/* future:cancel() -> true if cancelled before completing, false otherwise.
 * The read itself cannot be interrupted: its result is dropped. */
static int lfuture_cancel(lua_State *L) {
    lfuture *f = check_future(L, 1);
    int r = 0;
    if (!f->started) { lua_pushboolean(L, 0); return 1; }
    pthread_mutex_lock(&f->mu);
    if (f->state != F_DONE && !f->cancelled) {
        f->cancelled = 1;
        r = 1;
    }
    pthread_mutex_unlock(&f->mu);
    lua_pushboolean(L, r);
    return 1;
}

static int lfuture_tostring(lua_State *L) {
    lfuture *f = check_future(L, 1);
    const char *st;
    if (!f->started) st = "closed";
    else {
        pthread_mutex_lock(&f->mu);
        st = f->cancelled ? "cancelled" : f->state == F_DONE ? "ready" : "pending";
        pthread_mutex_unlock(&f->mu);
    }
    lua_pushfstring(L, "streamdb.future (%s)", st);
    return 1;
}

/* Coroutine helper: future:await() / streamdb.await(future).  Inside a
 * coroutine, yields (passing the future to the resumer) until the future is
 * ready, then returns its result; outside one, blocks like wait(). */
static int await_k(lua_State *L, int status, lua_KContext ctx) {
    lfuture *f = check_future(L, 1);
    (void)status;
    (void)ctx;
    lua_settop(L, 1);
    if (!future_is_ready(f)) {
        lua_pushvalue(L, 1);
        return lua_yieldk(L, 1, 0, await_k);
    }
    return future_push_result(L, f);
}

static int lfuture_await(lua_State *L) {
    lfuture *f = check_future(L, 1);
    lua_settop(L, 1);
    if (!f->started) return push_fail_msg(L, "future is closed", STREAMDB_ERR_CLOSED);
    if (!lua_isyieldable(L)) return lfuture_wait(L);
    return await_k(L, LUA_OK, 0);
}

/* ------------------------------------------------------------------------ */
/* Module                                                                      */
/* ------------------------------------------------------------------------ */

static int l_version(lua_State *L) {
    lua_pushstring(L, streamdb_version());
    return 1;
}

static int l_strerror(lua_State *L) {
    lua_pushstring(L, streamdb_strerror((int)luaL_checkinteger(L, 1)));
    return 1;
}

static const luaL_Reg db_methods[] = {
    {"close", ldb_close},
    {"is_open", ldb_is_open},
    {"write_document", ldb_write_document},
    {"write", ldb_write_document},
    {"get", ldb_get},
    {"get_by_id", ldb_get_by_id},
    {"try_get", ldb_try_get},
    {"read", ldb_read},
    {"open", ldb_open},
    {"chunks", ldb_chunks},
    {"stat", ldb_stat},
    {"exists", ldb_exists},
    {"versions", ldb_versions},
    {"get_id_by_path", ldb_get_id_by_path},
    {"bind_to_path", ldb_bind_to_path},
    {"unbind_path", ldb_unbind_path},
    {"list_paths", ldb_list_paths},
    {"delete", ldb_delete},
    {"delete_by_id", ldb_delete_by_id},
    {"search", ldb_search},
    {"list", ldb_list},
    {"paths", ldb_paths},
    {"entries", ldb_entries},
    {"cursor", ldb_cursor},
    {"list_cursor", ldb_list_cursor},
    {"count", ldb_count},
    {"get_async", ldb_get_async},
    {"begin", ldb_begin},
    {"commit", ldb_commit},
    {"rollback", ldb_rollback},
    {"transaction", ldb_transaction},
    {"snapshot", ldb_snapshot},
    {"flush", ldb_flush},
    {"compact", ldb_compact},
    {"check", ldb_check},
    {"set_quick_mode", ldb_set_quick_mode},
    {"stats", ldb_stats},
    {"cache_stats", ldb_cache_stats},
    {"page_size", ldb_page_size},
    {"max_path_len", ldb_max_path_len},
    {NULL, NULL}};

static const luaL_Reg db_meta[] = {
    {"__gc", ldb_gc}, {"__close", ldb_gc}, {"__tostring", ldb_tostring}, {NULL, NULL}};

static const luaL_Reg stream_methods[] = {
    {"read", lstream_read},   {"lines", lstream_lines}, {"seek", lstream_seek},
    {"size", lstream_size},   {"close", lstream_close}, {"write", lstream_write},
    {"flush", lstream_flush}, {"setvbuf", lstream_setvbuf}, {NULL, NULL}};

static const luaL_Reg stream_meta[] = {
    {"__gc", lstream_gc}, {"__close", lstream_gc}, {"__tostring", lstream_tostring}, {NULL, NULL}};

static const luaL_Reg cursor_methods[] = {
    {"next", lcursor_next}, {"close", lcursor_close}, {NULL, NULL}};

static const luaL_Reg cursor_meta[] = {
    {"__gc", lcursor_gc}, {"__close", lcursor_gc}, {"__tostring", lcursor_tostring},
    {"__call", lcursor_iter}, {NULL, NULL}};

static const luaL_Reg future_methods[] = {
    {"ready", lfuture_ready}, {"wait", lfuture_wait}, {"result", lfuture_result},
    {"cancel", lfuture_cancel}, {"await", lfuture_await}, {NULL, NULL}};

static const luaL_Reg future_meta[] = {
    {"__gc", lfuture_gc}, {"__tostring", lfuture_tostring}, {NULL, NULL}};

static const luaL_Reg writer_meta[] = {{"__gc", lwriter_gc}, {"__close", lwriter_gc}, {NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    if (methods != NULL) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

static const luaL_Reg module_funcs[] = {
    {"open", l_open},
    {"version", l_version},
    {"strerror", l_strerror},
    {"await", lfuture_await},
    {NULL, NULL}};

LSDB_EXPORT int luaopen_streamdb(lua_State *L) {
    static const struct { const char *name; int code; } codes[] = {
        {"OK", STREAMDB_OK}, {"DONE", STREAMDB_DONE}, {"IO", STREAMDB_ERR_IO},
        {"NOT_FOUND", STREAMDB_ERR_NOT_FOUND}, {"INVALID", STREAMDB_ERR_INVALID},
        {"INTERNAL", STREAMDB_ERR_INTERNAL}, {"TRANSACTION", STREAMDB_ERR_TRANSACTION},
        {"CORRUPT", STREAMDB_ERR_CORRUPT}, {"LOCKED", STREAMDB_ERR_LOCKED},
        {"TOO_LARGE", STREAMDB_ERR_TOO_LARGE}, {"FULL", STREAMDB_ERR_FULL},
        {"CLOSED", STREAMDB_ERR_CLOSED}, {"NOMEM", STREAMDB_ERR_NOMEM},
        {"BUSY", STREAMDB_ERR_BUSY}, {"READONLY", STREAMDB_ERR_READONLY},
        {"INCOMPATIBLE", STREAMDB_ERR_INCOMPATIBLE}, {"NOT_A_DB", STREAMDB_ERR_NOT_A_DB},
        {"FATAL", STREAMDB_ERR_FATAL}, {"CRYPTO", STREAMDB_ERR_CRYPTO},
        {"UNSUPPORTED", STREAMDB_ERR_UNSUPPORTED}, {"EXISTS", STREAMDB_ERR_EXISTS},
        {"CANCELLED", STREAMDB_ERR_CANCELLED}, {"WOULDBLOCK", STREAMDB_ERR_WOULDBLOCK}};
    new_class(L, DB_MT, db_meta, db_methods);
    new_class(L, STREAM_MT, stream_meta, stream_methods);
    new_class(L, CURSOR_MT, cursor_meta, cursor_methods);
    new_class(L, FUTURE_MT, future_meta, future_methods);
    new_class(L, WRITER_MT, writer_meta, NULL);

    luaL_newlib(L, module_funcs);
    lua_createtable(L, 0, (int)(sizeof codes / sizeof codes[0]));
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        lua_pushinteger(L, codes[i].code);
        lua_setfield(L, -2, codes[i].name);
    }
    lua_setfield(L, -2, "errors");
    lua_pushliteral(L, "streamdb " STREAMDB_VERSION_STRING);
    lua_setfield(L, -2, "_VERSION");
    lua_pushinteger(L, STREAMDB_MAX_PATH);
    lua_setfield(L, -2, "MAX_PATH");
    return 1;
}
