/*
 * _streamdb.c -- the CPython extension module behind the `streamdb` package.
 *
 * Written directly against the CPython C API and the public StreamDb header
 * (core/include/streamdb.h).  setup.py compiles it together with the core
 * sources into one shared object, so nothing else has to be installed.
 *
 * Object model.  Every object that owns a core resource is a "node":
 *
 *     Handle (database)  -> Handle (snapshot) -> Stream / Cursor
 *                        -> Stream / Cursor / Writer
 *
 * A child holds a strong reference to its parent; the parent keeps a list
 * of borrowed pointers to its open children.  Closing a node first waits
 * until no thread is inside a core call on it or on any of its descendants
 * ("busy" counts them), then closes the descendants, then the node itself.
 * So streamdb_close never sees an open stream, and nothing is freed under
 * a running call.  A closed node raises ClosedError; it never crashes.
 *
 * Every call into the core runs with the GIL released.  Bookkeeping (busy
 * counts, the child lists, the closed/closing flags) only changes with the
 * GIL held, so the GIL is the lock that protects it.
 *
 * fork: each node remembers the pid that created it; in another process
 * every use raises ClosedError and closing only forgets the core object
 * (the parent still owns it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "streamdb.h"

#define K_DB 0
#define K_SNAP 1
#define K_STREAM 2
#define K_CURSOR 3
#define K_WRITER 4

#define ERRMSG_MAX 1024
#define CANCEL_CHUNK (1u << 20) /* readall() with a cancel token reads 1 MiB at a time */

static PyObject *make_error; /* streamdb._errors._from_code(code, message) */

static const char *const kind_names[] = {"database", "snapshot", "stream", "cursor", "writer"};

/* ---- Nodes ---------------------------------------------------------------- */

#define NODE_HEAD                                                                     \
    PyObject_HEAD int kind;                                                           \
    int closed;          /* the core object is gone */                               \
    int closing;         /* a close is waiting for calls to drain */                 \
    int orphaned;        /* closed because its parent was closed */                  \
    long busy;           /* calls in progress on this node and its descendants */    \
    pid_t pid;           /* process that made the node */                            \
    struct Node *parent; /* strong reference, NULL for a database */                 \
    struct Node *children; /* borrowed: open children */                             \
    struct Node *next, *prev;                                                        \
    streamdb *errdb;     /* the handle whose streamdb_errmsg describes failures */    \
    PyObject *weakreflist;

typedef struct Node {
    NODE_HEAD
} Node;

typedef struct {
    NODE_HEAD
    streamdb *db;
    int in_txn;
    unsigned long txn_thread;
} Handle;

typedef struct {
    NODE_HEAD
    streamdb_stream *s;
} Stream;

typedef struct {
    NODE_HEAD
    streamdb_cursor *c;
} Cursor;

typedef struct {
    NODE_HEAD
    streamdb_writer *w;
} Writer;

static PyTypeObject Handle_Type, Stream_Type, Cursor_Type, Writer_Type;

/* ---- Errors ------------------------------------------------------------- */

static void copy_errmsg(const streamdb *db, int rc, char *buf, size_t cap)
{
    const char *m = streamdb_errmsg(db);
    if (m == NULL || m[0] == '\0')
        m = streamdb_strerror(rc);
    if (m == NULL)
        m = "unknown error";
    snprintf(buf, cap, "%s", m);
}

/* Raises the streamdb.Error subclass for rc with message msg; returns NULL. */
static PyObject *raise_rc(int rc, const char *msg)
{
    PyObject *text, *exc;
    if (msg == NULL || msg[0] == '\0')
        msg = streamdb_strerror(rc);
    if (msg == NULL)
        msg = "unknown error";
    text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    if (text == NULL)
        return NULL;
    exc = PyObject_CallFunction(make_error, "iO", rc, text);
    Py_DECREF(text);
    if (exc == NULL)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *raise_closed(Node *n, const char *why)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s %s", kind_names[n->kind], why);
    return raise_rc(STREAMDB_ERR_CLOSED, msg);
}

/* ---- Node bookkeeping (GIL held) ------------------------------------------- */

/* This process's id, kept by a fork handler: glibc's getpid() is a system
 * call, and every call into a handle compares it (a handle belongs to the
 * process that opened it). */
static pid_t cur_pid;
static void on_fork_child(void) { cur_pid = getpid(); }
static inline pid_t my_pid(void) { return cur_pid; }

static void node_init(Node *n, int kind, Node *parent, streamdb *errdb)
{
    n->kind = kind;
    n->closed = 0;
    n->closing = 0;
    n->busy = 0;
    n->pid = my_pid();
    n->children = NULL;
    n->next = n->prev = NULL;
    n->errdb = errdb;
    n->parent = parent;
    if (parent != NULL) {
        Py_INCREF(parent);
        n->next = parent->children;
        if (parent->children)
            parent->children->prev = n;
        parent->children = n;
    }
}

static void node_detach(Node *n)
{
    Node *p = n->parent;
    if (p == NULL)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else if (p->children == n)
        p->children = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->next = n->prev = NULL;
    n->parent = NULL;
    Py_DECREF(p);
}

/* Checks that n may be used now and marks a call in progress on n and its
 * ancestors.  Returns -1 with an exception set otherwise. */
static int node_enter_ex(Node *n, int allow_closing)
{
    Node *p;
    if (n->pid != my_pid()) {
        raise_closed(n, "was opened in another process (used after fork)");
        return -1;
    }
    if (n->closed || (n->closing && !allow_closing)) {
        raise_closed(n, n->orphaned ? (n->kind == K_DB ? "is closed"
                                                       : "is closed: its database was closed")
                                    : "is closed");
        return -1;
    }
    for (p = n->parent; p != NULL; p = p->parent) {
        if (p->closed || p->closing) {
            raise_closed(n, "belongs to a closed database");
            return -1;
        }
    }
    if (n->kind >= K_STREAM && n->busy > 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "this %s is in use by another thread: a %s belongs to one thread at a time",
                     kind_names[n->kind], kind_names[n->kind]);
        return -1;
    }
    for (p = n; p != NULL; p = p->parent)
        p->busy++;
    return 0;
}

static int node_enter(Node *n)
{
    return node_enter_ex(n, 0);
}

static void node_leave(Node *n)
{
    Node *p;
    for (p = n; p != NULL; p = p->parent)
        p->busy--;
}

static int node_close(Node *n);

/* A new node that is not attached yet (closed, so dealloc does nothing). */
static void *node_alloc(PyTypeObject *t, int kind)
{
    Node *n = (Node *)PyObject_New(Node, t);
    if (n == NULL)
        return NULL;
    /* zero everything after the object header */
    memset((char *)n + sizeof(PyObject), 0, (size_t)t->tp_basicsize - sizeof(PyObject));
    n->kind = kind;
    n->closed = 1;
    n->pid = my_pid();
    return n;
}

/* Releases the core object of a node whose calls have drained.  Returns a
 * core code (0 or negative) and fills msg on failure. */
static int node_release(Node *n, char *msg, size_t cap)
{
    int rc = 0;
    switch (n->kind) {
    case K_DB:
    case K_SNAP: {
        Handle *h = (Handle *)n;
        streamdb *db = h->db;
        if (db == NULL)
            return 0;
        Py_BEGIN_ALLOW_THREADS
        rc = n->kind == K_SNAP ? streamdb_snapshot_close(db) : streamdb_close(db);
        if (rc < 0)
            copy_errmsg(db, rc, msg, cap);
        Py_END_ALLOW_THREADS
        if (rc >= 0) {
            h->db = NULL;
            h->in_txn = 0;
        }
        break;
    }
    case K_STREAM: {
        Stream *s = (Stream *)n;
        if (s->s) {
            streamdb_stream *x = s->s;
            s->s = NULL;
            Py_BEGIN_ALLOW_THREADS
            streamdb_stream_close(x);
            Py_END_ALLOW_THREADS
        }
        break;
    }
    case K_CURSOR: {
        Cursor *c = (Cursor *)n;
        if (c->c) {
            streamdb_cursor *x = c->c;
            c->c = NULL;
            Py_BEGIN_ALLOW_THREADS
            streamdb_cursor_close(x);
            Py_END_ALLOW_THREADS
        }
        break;
    }
    case K_WRITER: {
        Writer *w = (Writer *)n;
        if (w->w) {
            streamdb_writer *x = w->w;
            w->w = NULL;
            Py_BEGIN_ALLOW_THREADS
            streamdb_writer_abort(x);
            Py_END_ALLOW_THREADS
        }
        break;
    }
    }
    return rc;
}

/* Forgets the core object without calling the core (after fork). */
static void node_forget(Node *n)
{
    switch (n->kind) {
    case K_DB:
    case K_SNAP: ((Handle *)n)->db = NULL; break;
    case K_STREAM: ((Stream *)n)->s = NULL; break;
    case K_CURSOR: ((Cursor *)n)->c = NULL; break;
    case K_WRITER: ((Writer *)n)->w = NULL; break;
    }
}

/* Closes n and everything opened from it.  0, or -1 with an exception. */
static int node_close(Node *n)
{
    char msg[ERRMSG_MAX];
    int rc;

    if (n->closed)
        return 0;
    if (n->pid != my_pid()) {
        /* A forked child: the parent process owns the core object. */
        while (n->children) {
            Node *c = n->children;
            Py_INCREF(c);
            node_close(c);
            Py_DECREF(c);
        }
        node_forget(n);
        n->closed = 1;
        node_detach(n);
        return 0;
    }
    if (n->closing) {
        /* Another thread is closing n: wait until it is done. */
        while (n->closing && !n->closed) {
            Py_BEGIN_ALLOW_THREADS
            usleep(200);
            Py_END_ALLOW_THREADS
        }
        return 0;
    }
    n->closing = 1;
    if (n->kind == K_DB) {
        /* A transaction this thread owns would make writers in other threads
         * wait for it forever while we wait for them: roll it back first. */
        Handle *h = (Handle *)n;
        if (h->in_txn && h->txn_thread == PyThread_get_thread_ident() && h->db != NULL) {
            streamdb *db = h->db;
            Py_BEGIN_ALLOW_THREADS
            (void)streamdb_rollback_transaction(db);
            Py_END_ALLOW_THREADS
            h->in_txn = 0;
        }
        if (h->in_txn && h->db != NULL) {
            /* the core would refuse (BUSY): refuse before closing any child,
             * so that a refused close changes nothing */
            n->closing = 0;
            raise_rc(STREAMDB_ERR_BUSY, "another thread has a transaction open");
            return -1;
        }
    }
    /* Wait until no thread is inside a core call on n or below it.  New calls
     * are refused from now on because n->closing is set. */
    while (n->busy > 0) {
        Py_BEGIN_ALLOW_THREADS
        usleep(200);
        Py_END_ALLOW_THREADS
    }
    if (n->kind == K_DB && ((Handle *)n)->in_txn && ((Handle *)n)->db != NULL) {
        /* a transaction begun by another thread while we waited */
        n->closing = 0;
        raise_rc(STREAMDB_ERR_BUSY, "another thread has a transaction open");
        return -1;
    }
    while (n->children) {
        Node *c = n->children;
        Py_INCREF(c);
        c->orphaned = 1;
        if (node_close(c) < 0) {
            /* cannot happen for streams, cursors and writers; a snapshot
             * close failing leaves it attached */
            Py_DECREF(c);
            n->closing = 0;
            return -1;
        }
        Py_DECREF(c);
    }
    rc = node_release(n, msg, sizeof msg);
    if (rc < 0) {
        n->closing = 0;
        raise_rc(rc, msg);
        return -1;
    }
    n->closed = 1;
    n->closing = 0;
    node_detach(n);
    return 0;
}

static void node_dealloc(PyObject *self)
{
    Node *n = (Node *)self;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (n->weakreflist != NULL)
        PyObject_ClearWeakRefs(self);
    if (!n->closed) {
        if (node_close(n) < 0)
            PyErr_WriteUnraisable(self);
    }
    /* A handle whose close failed (BUSY) stays allocated in the core: there
     * is nothing safe to do with it any more. */
    node_detach(n);
    PyErr_Restore(t, v, tb);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *node_close_meth(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (node_close((Node *)self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *node_get_closed(PyObject *self, void *Py_UNUSED(closure))
{
    Node *n = (Node *)self;
    Node *p;
    if (n->closed || n->closing || n->pid != my_pid())
        Py_RETURN_TRUE;
    for (p = n->parent; p != NULL; p = p->parent)
        if (p->closed || p->closing)
            Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyObject *node_enter_ctx(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    return self;
}

static PyObject *node_exit_ctx(PyObject *self, PyObject *Py_UNUSED(args))
{
    if (node_close((Node *)self) < 0)
        return NULL;
    Py_RETURN_FALSE;
}

/* ---- Argument converters --------------------------------------------------- */

typedef struct {
    const char *p;
    Py_ssize_t n;
} pathbuf;

/* str (encoded as UTF-8) or bytes; the pointer borrows from the argument. */
static int path_conv(PyObject *o, void *addr)
{
    pathbuf *pb = (pathbuf *)addr;
    if (PyUnicode_Check(o)) {
        pb->p = PyUnicode_AsUTF8AndSize(o, &pb->n);
        return pb->p != NULL;
    }
    if (PyBytes_Check(o)) {
        pb->p = PyBytes_AS_STRING(o);
        pb->n = PyBytes_GET_SIZE(o);
        return 1;
    }
    PyErr_Format(PyExc_TypeError, "a path must be str or bytes, not %.100s", Py_TYPE(o)->tp_name);
    return 0;
}

/* None -> 0 (current version), or an int. */
static int version_conv(PyObject *o, void *addr)
{
    int64_t *v = (int64_t *)addr;
    long long x;
    if (o == Py_None) {
        *v = 0;
        return 1;
    }
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "a version must be int or None, not %.100s",
                     Py_TYPE(o)->tp_name);
        return 0;
    }
    x = PyLong_AsLongLong(o);
    if (x == -1 && PyErr_Occurred())
        return 0;
    *v = (int64_t)x;
    return 1;
}

/* 16 bytes. */
static int id_conv(PyObject *o, void *addr)
{
    const uint8_t **id = (const uint8_t **)addr;
    if (!PyBytes_Check(o) || PyBytes_GET_SIZE(o) != STREAMDB_ID_SIZE) {
        PyErr_SetString(PyExc_TypeError, "a document id must be 16 bytes (or a uuid.UUID)");
        return 0;
    }
    *id = (const uint8_t *)PyBytes_AS_STRING(o);
    return 1;
}

static PyObject *decode_path(const char *p, size_t n)
{
    return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "surrogateescape");
}

/* Builds a list of str from a path array and frees the array. */
static PyObject *paths_to_list(char **paths, size_t count)
{
    PyObject *list = PyList_New((Py_ssize_t)count);
    size_t i;
    if (list != NULL) {
        for (i = 0; i < count; i++) {
            PyObject *s = decode_path(paths[i], strlen(paths[i]));
            if (s == NULL) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)i, s);
        }
    }
    streamdb_free_paths(paths, count);
    return list;
}

/* Copies a library buffer into a new bytes object (copy without the GIL) and
 * frees the buffer. */
/* Copies shorter than this keep the GIL: releasing and taking it back costs
 * more than copying 64 KiB. */
#define BIG_COPY (64 * 1024)

static PyObject *take_buffer(void *data, size_t len)
{
    PyObject *b;
    if (len > (size_t)PY_SSIZE_T_MAX) {
        streamdb_free(data);
        return PyErr_NoMemory();
    }
    b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
    if (b == NULL) {
        streamdb_free(data);
        return NULL;
    }
    if (len < BIG_COPY) {
        memcpy(PyBytes_AS_STRING(b), data, len);
        streamdb_free(data);
        return b;
    }
    Py_BEGIN_ALLOW_THREADS
    memcpy(PyBytes_AS_STRING(b), data, len);
    streamdb_free(data);
    Py_END_ALLOW_THREADS
    return b;
}

/* ---- Calling the core ---------------------------------------------------------- */

/* Runs STMT (which assigns rc) without the GIL while n is marked busy, and
 * copies the thread's error message on failure.  Leaves rc and msg set;
 * returns NULL from the enclosing function if n cannot be used. */
#define CORE_CALL(n, STMT)                                                   \
    do {                                                                     \
        if (node_enter((Node *)(n)) < 0)                                     \
            return NULL;                                                     \
        Py_BEGIN_ALLOW_THREADS                                               \
        STMT;                                                                \
        if (rc < 0)                                                          \
            copy_errmsg(((Node *)(n))->errdb, rc, msg, sizeof msg);          \
        Py_END_ALLOW_THREADS                                                 \
        node_leave((Node *)(n));                                             \
    } while (0)

#define RETURN_IF_ERR()                                                      \
    do {                                                                     \
        if (rc < 0)                                                          \
            return raise_rc(rc, msg);                                        \
    } while (0)

/* ---- Module-level functions ----------------------------------------------------- */

static int config_apply(streamdb_config *cfg, PyObject *config)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    if (config == NULL || config == Py_None)
        return 0;
    if (!PyDict_Check(config)) {
        PyErr_SetString(PyExc_TypeError, "config must be a dict");
        return -1;
    }
    while (PyDict_Next(config, &pos, &key, &value)) {
        const char *name;
        int rc;
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "config keys must be str");
            return -1;
        }
        name = PyUnicode_AsUTF8(key);
        if (name == NULL)
            return -1;
        if (value == Py_None)
            continue;
        if (strcmp(name, "encryption_key") == 0) {
            Py_buffer view;
            if (PyObject_GetBuffer(value, &view, PyBUF_SIMPLE) < 0)
                return -1;
            rc = streamdb_config_set_key(cfg, view.buf, (size_t)view.len);
            PyBuffer_Release(&view);
            if (rc < 0) {
                raise_rc(rc, "invalid encryption_key (it must be 32 bytes)");
                return -1;
            }
        } else {
            unsigned long long v;
            char msg[200];
            if (PyBool_Check(value)) {
                v = value == Py_True;
            } else if (PyLong_Check(value)) {
                PyObject *zero = PyLong_FromLong(0);
                int neg = zero ? PyObject_RichCompareBool(value, zero, Py_LT) : -1;
                Py_XDECREF(zero);
                if (neg < 0)
                    return -1;
                if (neg) {
                    PyErr_Format(PyExc_ValueError, "config %s must not be negative", name);
                    return -1;
                }
                v = PyLong_AsUnsignedLongLong(value);
                if (v == (unsigned long long)-1 && PyErr_Occurred())
                    return -1;
            } else {
                PyErr_Format(PyExc_TypeError, "config %s must be int or bool, not %.100s", name,
                             Py_TYPE(value)->tp_name);
                return -1;
            }
            rc = streamdb_config_set(cfg, name, (uint64_t)v);
            if (rc < 0) {
                snprintf(msg, sizeof msg, "invalid config option %s=%llu", name, v);
                raise_rc(rc, msg);
                return -1;
            }
        }
    }
    return 0;
}

static PyObject *mod_open(PyObject *Py_UNUSED(mod), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "config", NULL};
    PyObject *fspath = NULL, *config = NULL;
    streamdb_config *cfg;
    streamdb *db = NULL;
    Handle *h;
    char msg[ERRMSG_MAX];
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O:open", kwlist, PyUnicode_FSConverter,
                                     &fspath, &config))
        return NULL;
    if (memchr(PyBytes_AS_STRING(fspath), '\0', (size_t)PyBytes_GET_SIZE(fspath)) != NULL) {
        Py_DECREF(fspath);
        return raise_rc(STREAMDB_ERR_INVALID, "database file name contains a NUL byte");
    }
    cfg = streamdb_config_new();
    if (cfg == NULL) {
        Py_DECREF(fspath);
        return PyErr_NoMemory();
    }
    if (config_apply(cfg, config) < 0) {
        streamdb_config_free(cfg);
        Py_DECREF(fspath);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_open(PyBytes_AS_STRING(fspath), cfg, &db);
    if (rc < 0)
        copy_errmsg(NULL, rc, msg, sizeof msg);
    streamdb_config_free(cfg);
    Py_END_ALLOW_THREADS
    Py_DECREF(fspath);
    if (rc < 0)
        return raise_rc(rc, msg);

    h = node_alloc(&Handle_Type, K_DB);
    if (h == NULL) {
        Py_BEGIN_ALLOW_THREADS
        streamdb_close(db);
        Py_END_ALLOW_THREADS
        return NULL;
    }
    node_init((Node *)h, K_DB, NULL, db);
    h->db = db;
    return (PyObject *)h;
}

static PyObject *mod_version(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(streamdb_version());
}

static PyObject *mod_features(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(streamdb_features());
}

static PyObject *mod_strerror(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    long code = PyLong_AsLong(arg);
    const char *s;
    if (code == -1 && PyErr_Occurred())
        return NULL;
    s = streamdb_strerror((int)code);
    return PyUnicode_FromString(s ? s : "unknown error");
}

/* ---- Handle (database or snapshot) ------------------------------------------- */

#define HANDLE_DB(h) (((Handle *)(h))->db)

static PyObject *Handle_write_document(PyObject *self, PyObject *args)
{
    pathbuf path;
    Py_buffer view;
    uint8_t id[STREAMDB_ID_SIZE];
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&y*:write_document", path_conv, &path, &view))
        return NULL;
    if (node_enter((Node *)self) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_write_document_n(HANDLE_DB(self), path.p, (size_t)path.n, view.buf,
                                   (size_t)view.len, id);
    if (rc < 0)
        copy_errmsg(HANDLE_DB(self), rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    PyBuffer_Release(&view);
    RETURN_IF_ERR();
    return PyBytes_FromStringAndSize((const char *)id, STREAMDB_ID_SIZE);
}

static PyObject *Handle_writer(PyObject *self, PyObject *args)
{
    pathbuf path;
    streamdb_writer *w = NULL;
    Writer *obj;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:writer", path_conv, &path))
        return NULL;
    /* allocate first so that a failure cannot leak the write lock */
    obj = node_alloc(&Writer_Type, K_WRITER);
    if (obj == NULL)
        return NULL;
    if (node_enter((Node *)self) < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_writer_begin(HANDLE_DB(self), path.p, (size_t)path.n, &w);
    if (rc < 0)
        copy_errmsg(HANDLE_DB(self), rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    if (rc < 0) {
        Py_DECREF(obj);
        return raise_rc(rc, msg);
    }
    node_init((Node *)obj, K_WRITER, (Node *)self, HANDLE_DB(self));
    obj->w = w;
    return (PyObject *)obj;
}

/* get(path, version=None): the hottest call, so METH_FASTCALL (the Python
 * classes bind it on each instance, with no Python frame in between) and, for
 * a document that fits, the core writes into a buffer on the stack (no
 * allocation in the core), from memory with the GIL held where it can;
 * bigger ones go straight into the bytes object. */
static PyObject *Handle_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    pathbuf path;
    int64_t version = 0;
    char small[8192];
    size_t len = 0, cap;
    char msg[ERRMSG_MAX];
    int rc = 0;
    PyObject *b, *argv[2] = {NULL, NULL};
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2 || nargs + nkw > 2) {
        PyErr_Format(PyExc_TypeError, "get() takes 1 or 2 arguments (%zd given)", nargs + nkw);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        argv[i] = args[i];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        int slot = PyUnicode_CompareWithASCIIString(name, "path") == 0      ? 0
                   : PyUnicode_CompareWithASCIIString(name, "version") == 0 ? 1
                                                                            : -1;
        if (slot < 0 || argv[slot] != NULL) {
            PyErr_Format(PyExc_TypeError, slot < 0 ? "get() got an unexpected keyword argument '%U'"
                                                   : "get() got multiple values for argument '%U'",
                         name);
            return NULL;
        }
        argv[slot] = args[nargs + i];
    }
    if (argv[0] == NULL) {
        PyErr_SetString(PyExc_TypeError, "get() missing required argument 'path'");
        return NULL;
    }
    if (!path_conv(argv[0], &path) || (argv[1] != NULL && !version_conv(argv[1], &version)))
        return NULL;
    /* First from memory only, with the GIL held: most gets of a warm
     * database are served so, and letting the GIL go and taking it back
     * cost more than a tenth of such a call (1.40x py-lmdb's txn.get with
     * it, 1.26-1.30x without).  The core takes no lock that is held across
     * I/O then [streamdb.h, STREAMDB_READ_NOWAIT]; where the read would need
     * the disk, it is made again with the GIL released. */
    if (node_enter((Node *)self) < 0)
        return NULL;
    rc = streamdb_get_into_flags(HANDLE_DB(self), path.p, (size_t)path.n, version,
                                 STREAMDB_READ_NOWAIT, small, sizeof small, &len);
    if (rc == STREAMDB_ERR_WOULDBLOCK) {
        Py_BEGIN_ALLOW_THREADS
        rc = streamdb_get_into(HANDLE_DB(self), path.p, (size_t)path.n, version, small,
                               sizeof small, &len);
        if (rc < 0)
            copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
        Py_END_ALLOW_THREADS
    } else if (rc < 0) {
        copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
    }
    node_leave((Node *)self);
    RETURN_IF_ERR();
    if (len <= sizeof small)
        return PyBytes_FromStringAndSize(small, (Py_ssize_t)len);
    /* too big for the stack: a bytes object of the size just learnt; the
     * document may change in between, so a few attempts, then the
     * allocating call */
    for (int attempt = 0; attempt < 4; attempt++) {
        if (len > (size_t)PY_SSIZE_T_MAX)
            return PyErr_NoMemory();
        b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
        if (b == NULL)
            return NULL;
        cap = len;
        if (node_enter((Node *)self) < 0) {
            Py_DECREF(b);
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = streamdb_get_into(HANDLE_DB(self), path.p, (size_t)path.n, version,
                               PyBytes_AS_STRING(b), cap, &len);
        if (rc < 0)
            copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
        Py_END_ALLOW_THREADS
        node_leave((Node *)self);
        if (rc < 0) {
            Py_DECREF(b);
            return raise_rc(rc, msg);
        }
        if (len <= cap) {
            if (len < cap && _PyBytes_Resize(&b, (Py_ssize_t)len) < 0)
                return NULL;
            return b;
        }
        Py_DECREF(b);
    }
    {
        void *data = NULL;
        CORE_CALL(self, rc = streamdb_get_n(HANDLE_DB(self), path.p, (size_t)path.n, version,
                                            &data, &len));
        RETURN_IF_ERR();
        return take_buffer(data, len);
    }
}

static PyObject *Handle_get_by_id(PyObject *self, PyObject *args)
{
    const uint8_t *id;
    int64_t version = 0;
    void *data = NULL;
    size_t len = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&|O&:get_by_id", id_conv, &id, version_conv, &version))
        return NULL;
    CORE_CALL(self, rc = streamdb_get_by_id(HANDLE_DB(self), id, version, &data, &len));
    RETURN_IF_ERR();
    return take_buffer(data, len);
}

static PyObject *Handle_read(PyObject *self, PyObject *args)
{
    pathbuf path;
    int64_t version = 0;
    unsigned long long offset;
    Py_ssize_t length;
    size_t nread = 0;
    PyObject *b;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&Kn|O&:read", path_conv, &path, &offset, &length, version_conv,
                          &version))
        return NULL;
    if (length < 0) {
        PyErr_SetString(PyExc_ValueError, "length must not be negative");
        return NULL;
    }
    b = PyBytes_FromStringAndSize(NULL, length);
    if (b == NULL)
        return NULL;
    if (node_enter((Node *)self) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_read_n(HANDLE_DB(self), path.p, (size_t)path.n, version, (uint64_t)offset,
                         PyBytes_AS_STRING(b), (size_t)length, &nread);
    if (rc < 0)
        copy_errmsg(HANDLE_DB(self), rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    if (rc < 0) {
        Py_DECREF(b);
        return raise_rc(rc, msg);
    }
    if ((Py_ssize_t)nread != length && _PyBytes_Resize(&b, (Py_ssize_t)nread) < 0)
        return NULL;
    return b;
}

static PyObject *Handle_stream(PyObject *self, PyObject *args)
{
    pathbuf path;
    int64_t version = 0;
    streamdb_stream *s = NULL;
    Stream *obj;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&|O&:stream", path_conv, &path, version_conv, &version))
        return NULL;
    obj = node_alloc(&Stream_Type, K_STREAM);
    if (obj == NULL)
        return NULL;
    if (node_enter((Node *)self) < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_stream_open(HANDLE_DB(self), path.p, (size_t)path.n, version, &s);
    if (rc < 0)
        copy_errmsg(HANDLE_DB(self), rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    if (rc < 0) {
        Py_DECREF(obj);
        return raise_rc(rc, msg);
    }
    node_init((Node *)obj, K_STREAM, (Node *)self, HANDLE_DB(self));
    obj->s = s;
    return (PyObject *)obj;
}

static PyObject *cursor_open(PyObject *self, PyObject *args, int list)
{
    pathbuf prefix;
    streamdb_cursor *c = NULL;
    Cursor *obj;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, list ? "O&:list_cursor" : "O&:search_cursor", path_conv, &prefix))
        return NULL;
    obj = node_alloc(&Cursor_Type, K_CURSOR);
    if (obj == NULL)
        return NULL;
    if (node_enter((Node *)self) < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = list ? streamdb_list_open(HANDLE_DB(self), prefix.p, (size_t)prefix.n, &c)
              : streamdb_search_open(HANDLE_DB(self), prefix.p, (size_t)prefix.n, &c);
    if (rc < 0)
        copy_errmsg(HANDLE_DB(self), rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    if (rc < 0) {
        Py_DECREF(obj);
        return raise_rc(rc, msg);
    }
    node_init((Node *)obj, K_CURSOR, (Node *)self, HANDLE_DB(self));
    obj->c = c;
    return (PyObject *)obj;
}

static PyObject *Handle_search_cursor(PyObject *self, PyObject *args)
{
    return cursor_open(self, args, 0);
}

static PyObject *Handle_list_cursor(PyObject *self, PyObject *args)
{
    return cursor_open(self, args, 1);
}

static PyObject *Handle_search(PyObject *self, PyObject *args)
{
    pathbuf prefix;
    char **paths = NULL;
    size_t count = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:search", path_conv, &prefix))
        return NULL;
    CORE_CALL(self, rc = streamdb_search_n(HANDLE_DB(self), prefix.p, (size_t)prefix.n, &paths,
                                           &count));
    RETURN_IF_ERR();
    return paths_to_list(paths, count);
}

static PyObject *Handle_list(PyObject *self, PyObject *args)
{
    pathbuf prefix;
    char **paths = NULL;
    size_t count = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:list", path_conv, &prefix))
        return NULL;
    CORE_CALL(self,
              rc = streamdb_list(HANDLE_DB(self), prefix.p, (size_t)prefix.n, &paths, &count));
    RETURN_IF_ERR();
    return paths_to_list(paths, count);
}

static PyObject *Handle_count(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t count = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    CORE_CALL(self, rc = streamdb_count(HANDLE_DB(self), &count));
    RETURN_IF_ERR();
    return PyLong_FromUnsignedLongLong(count);
}

static PyObject *Handle_stat(PyObject *self, PyObject *args)
{
    pathbuf path;
    int64_t version = 0;
    streamdb_doc_info info;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&|O&:stat", path_conv, &path, version_conv, &version))
        return NULL;
    memset(&info, 0, sizeof info);
    CORE_CALL(self,
              rc = streamdb_stat(HANDLE_DB(self), path.p, (size_t)path.n, version, &info));
    RETURN_IF_ERR();
    return Py_BuildValue("(y#KKKKKKK)", (const char *)info.id, (Py_ssize_t)STREAMDB_ID_SIZE,
                         (unsigned long long)info.version, (unsigned long long)info.size,
                         (unsigned long long)info.stored_size, (unsigned long long)info.crc32c,
                         (unsigned long long)info.created_ns, (unsigned long long)info.modified_ns,
                         (unsigned long long)info.flags);
}

static PyObject *Handle_versions(PyObject *self, PyObject *args)
{
    pathbuf path;
    uint64_t *vs = NULL;
    size_t count = 0, i;
    PyObject *list;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:versions", path_conv, &path))
        return NULL;
    CORE_CALL(self,
              rc = streamdb_versions(HANDLE_DB(self), path.p, (size_t)path.n, &vs, &count));
    RETURN_IF_ERR();
    list = PyList_New((Py_ssize_t)count);
    if (list != NULL) {
        for (i = 0; i < count; i++) {
            PyObject *v = PyLong_FromUnsignedLongLong(vs[i]);
            if (v == NULL) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)i, v);
        }
    }
    streamdb_free(vs);
    return list;
}

static PyObject *Handle_get_id_by_path(PyObject *self, PyObject *args)
{
    pathbuf path;
    uint8_t id[STREAMDB_ID_SIZE];
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:get_id_by_path", path_conv, &path))
        return NULL;
    CORE_CALL(self, rc = streamdb_get_id_by_path(HANDLE_DB(self), path.p, (size_t)path.n, id));
    RETURN_IF_ERR();
    return PyBytes_FromStringAndSize((const char *)id, STREAMDB_ID_SIZE);
}

static PyObject *Handle_bind_to_path(PyObject *self, PyObject *args)
{
    const uint8_t *id;
    pathbuf path;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&O&:bind_to_path", id_conv, &id, path_conv, &path))
        return NULL;
    CORE_CALL(self, rc = streamdb_bind_to_path(HANDLE_DB(self), id, path.p, (size_t)path.n));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_unbind_path(PyObject *self, PyObject *args)
{
    const uint8_t *id;
    pathbuf path;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&O&:unbind_path", id_conv, &id, path_conv, &path))
        return NULL;
    CORE_CALL(self, rc = streamdb_unbind_path(HANDLE_DB(self), id, path.p, (size_t)path.n));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_list_paths(PyObject *self, PyObject *args)
{
    const uint8_t *id;
    char **paths = NULL;
    size_t count = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:list_paths", id_conv, &id))
        return NULL;
    CORE_CALL(self, rc = streamdb_list_paths(HANDLE_DB(self), id, &paths, &count));
    RETURN_IF_ERR();
    return paths_to_list(paths, count);
}

static PyObject *Handle_delete(PyObject *self, PyObject *args)
{
    pathbuf path;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:delete", path_conv, &path))
        return NULL;
    CORE_CALL(self, rc = streamdb_delete_n(HANDLE_DB(self), path.p, (size_t)path.n));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_delete_by_id(PyObject *self, PyObject *args)
{
    const uint8_t *id;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:delete_by_id", id_conv, &id))
        return NULL;
    CORE_CALL(self, rc = streamdb_delete_by_id(HANDLE_DB(self), id));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_begin_transaction(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Handle *h = (Handle *)self;
    char msg[ERRMSG_MAX];
    int rc = 0;
    CORE_CALL(self, rc = streamdb_begin_transaction(h->db));
    RETURN_IF_ERR();
    h->in_txn = 1;
    h->txn_thread = PyThread_get_thread_ident();
    Py_RETURN_NONE;
}

static PyObject *Handle_commit_transaction(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Handle *h = (Handle *)self;
    char msg[ERRMSG_MAX];
    int rc = 0;
    CORE_CALL(self, rc = streamdb_commit_transaction(h->db));
    /* a failed commit (other than "not the owner") ends the transaction too */
    if (rc != STREAMDB_ERR_TRANSACTION)
        h->in_txn = 0;
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_rollback_transaction(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Handle *h = (Handle *)self;
    char msg[ERRMSG_MAX];
    int rc = 0;
    /* Allowed while another thread is closing the handle: that close waits
     * for writers that may be waiting for this very transaction. */
    if (node_enter_ex((Node *)self, 1) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_rollback_transaction(h->db);
    if (rc < 0)
        copy_errmsg(h->db, rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    if (rc != STREAMDB_ERR_TRANSACTION)
        h->in_txn = 0;
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_snapshot(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    streamdb *snap = NULL;
    Handle *obj;
    char msg[ERRMSG_MAX];
    int rc = 0;
    obj = node_alloc(&Handle_Type, K_SNAP);
    if (obj == NULL)
        return NULL;
    if (node_enter((Node *)self) < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_snapshot(HANDLE_DB(self), &snap);
    if (rc < 0)
        copy_errmsg(HANDLE_DB(self), rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    if (rc < 0) {
        Py_DECREF(obj);
        return raise_rc(rc, msg);
    }
    node_init((Node *)obj, K_SNAP, (Node *)self, snap);
    obj->db = snap;
    return (PyObject *)obj;
}

static PyObject *Handle_flush(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    char msg[ERRMSG_MAX];
    int rc = 0;
    CORE_CALL(self, rc = streamdb_flush(HANDLE_DB(self)));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_set_quick_mode(PyObject *self, PyObject *arg)
{
    char msg[ERRMSG_MAX];
    int rc = 0;
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    CORE_CALL(self, rc = streamdb_set_quick_mode(HANDLE_DB(self), on));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_check(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    char msg[ERRMSG_MAX];
    int rc = 0;
    CORE_CALL(self, rc = streamdb_check(HANDLE_DB(self)));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_compact(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    char msg[ERRMSG_MAX];
    int rc = 0;
    CORE_CALL(self, rc = streamdb_compact(HANDLE_DB(self)));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Handle_verify(PyObject *self, PyObject *args)
{
    pathbuf prefix;
    uint64_t checked = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&:verify", path_conv, &prefix))
        return NULL;
    CORE_CALL(self,
              rc = streamdb_verify(HANDLE_DB(self), prefix.p, (size_t)prefix.n, &checked));
    RETURN_IF_ERR();
    return PyLong_FromUnsignedLongLong(checked);
}

static PyObject *Handle_get_stat(PyObject *self, PyObject *args)
{
    const char *name;
    uint64_t value = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "s:get_stat", &name))
        return NULL;
    CORE_CALL(self, rc = streamdb_get_stat(HANDLE_DB(self), name, &value));
    RETURN_IF_ERR();
    return PyLong_FromUnsignedLongLong(value);
}

static int dict_put_u64(PyObject *d, const char *key, uint64_t v)
{
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    int r;
    if (o == NULL)
        return -1;
    r = PyDict_SetItemString(d, key, o);
    Py_DECREF(o);
    return r;
}

static PyObject *Handle_statistics(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    streamdb_stats st;
    PyObject *d;
    char msg[ERRMSG_MAX];
    int rc = 0;
    memset(&st, 0, sizeof st);
    CORE_CALL(self, rc = streamdb_calculate_statistics(HANDLE_DB(self), &st));
    RETURN_IF_ERR();
    d = PyDict_New();
    if (d == NULL)
        return NULL;
#define PUT(f)                                                                                     \
    if (dict_put_u64(d, #f, st.f) < 0)                                                             \
        goto fail;
    PUT(page_size)
    PUT(total_pages)
    PUT(free_pages)
    PUT(document_count)
    PUT(path_count)
    PUT(wal_bytes)
    PUT(wal_frames)
    PUT(live_readers)
    PUT(oldest_reader_txn)
    PUT(last_txn)
    PUT(checkpoints)
    PUT(file_bytes)
#undef PUT
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static PyObject *Handle_cache_stats(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    streamdb_cache_stats st;
    PyObject *d;
    char msg[ERRMSG_MAX];
    int rc = 0;
    memset(&st, 0, sizeof st);
    CORE_CALL(self, rc = streamdb_get_cache_stats(HANDLE_DB(self), &st));
    RETURN_IF_ERR();
    d = PyDict_New();
    if (d == NULL)
        return NULL;
#define PUT(f)                                                                                     \
    if (dict_put_u64(d, #f, st.f) < 0)                                                             \
        goto fail;
    PUT(hits)
    PUT(misses)
    PUT(prefetch_hits)
    PUT(evictions)
    PUT(cached_pages)
    PUT(capacity_pages)
#undef PUT
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static PyObject *Handle_page_size(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    uint32_t v;
    if (node_enter((Node *)self) < 0)
        return NULL;
    v = streamdb_page_size(HANDLE_DB(self));
    node_leave((Node *)self);
    return PyLong_FromUnsignedLong(v);
}

static PyObject *Handle_max_path_len(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    size_t v;
    if (node_enter((Node *)self) < 0)
        return NULL;
    v = streamdb_max_path_len(HANDLE_DB(self));
    node_leave((Node *)self);
    return PyLong_FromSize_t(v);
}

static PyObject *Handle_get_is_snapshot(PyObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((Node *)self)->kind == K_SNAP);
}

static PyObject *Handle_get_in_transaction(PyObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((Handle *)self)->in_txn);
}

static PyObject *Handle_get_open_children(PyObject *self, void *Py_UNUSED(closure))
{
    Py_ssize_t n = 0;
    Node *c;
    for (c = ((Node *)self)->children; c; c = c->next)
        n++;
    return PyLong_FromSsize_t(n);
}

static PyObject *Handle_get_future(PyObject *self, PyObject *args); /* below */

static PyMethodDef Handle_methods[] = {
    {"close", node_close_meth, METH_NOARGS,
     "close()\n--\n\nClose the handle after closing every stream, cursor, writer and snapshot "
     "opened from it.  Waits for calls running in other threads.  Idempotent."},
    {"__enter__", node_enter_ctx, METH_NOARGS, "Return self."},
    {"__exit__", node_exit_ctx, METH_VARARGS, "Close the handle."},
    {"write_document", Handle_write_document, METH_VARARGS,
     "write_document(path, data)\n--\n\nWrite bytes-like data as a new version of path; return "
     "the 16-byte id."},
    {"writer", Handle_writer, METH_VARARGS,
     "writer(path)\n--\n\nBegin a streaming write of path and return a Writer."},
    {"get", (PyCFunction)(void (*)(void))Handle_get, METH_FASTCALL | METH_KEYWORDS,
     "get(path, version=None)\n--\n\nReturn the document at path as bytes.\n\n"
     "version: None or 0 for the current version, a negative number counts back (-1 is\n"
     "the previous version), a positive number names a version.  Raises NotFoundError\n"
     "(a KeyError) when there is no such document."},
    {"get_by_id", Handle_get_by_id, METH_VARARGS,
     "get_by_id(id, version=None)\n--\n\nReturn the document with this 16-byte id."},
    {"read", Handle_read, METH_VARARGS,
     "read(path, offset, length, version=None)\n--\n\nReturn up to length bytes from offset."},
    {"stream", Handle_stream, METH_VARARGS,
     "stream(path, version=None)\n--\n\nOpen the document for streaming reads; return a Stream."},
    {"search_cursor", Handle_search_cursor, METH_VARARGS,
     "search_cursor(prefix)\n--\n\nOpen a Cursor over every path starting with prefix."},
    {"list_cursor", Handle_list_cursor, METH_VARARGS,
     "list_cursor(prefix)\n--\n\nOpen a Cursor over one directory level under prefix."},
    {"search", Handle_search, METH_VARARGS,
     "search(prefix)\n--\n\nReturn the list of paths starting with prefix."},
    {"list", Handle_list, METH_VARARGS,
     "list(prefix)\n--\n\nReturn one directory level under prefix."},
    {"count", Handle_count, METH_NOARGS, "count()\n--\n\nNumber of documents (distinct ids)."},
    {"stat", Handle_stat, METH_VARARGS,
     "stat(path, version=None)\n--\n\nReturn (id, version, size, stored_size, crc32c, "
     "created_ns, modified_ns, flags)."},
    {"versions", Handle_versions, METH_VARARGS,
     "versions(path)\n--\n\nReturn the readable version numbers, oldest first."},
    {"get_id_by_path", Handle_get_id_by_path, METH_VARARGS,
     "get_id_by_path(path)\n--\n\nReturn the 16-byte id of the document at path."},
    {"bind_to_path", Handle_bind_to_path, METH_VARARGS,
     "bind_to_path(id, path)\n--\n\nBind path to the document id."},
    {"unbind_path", Handle_unbind_path, METH_VARARGS,
     "unbind_path(id, path)\n--\n\nUnbind path from the document id."},
    {"list_paths", Handle_list_paths, METH_VARARGS,
     "list_paths(id)\n--\n\nReturn every path bound to the document id."},
    {"delete", Handle_delete, METH_VARARGS, "delete(path)\n--\n\nUnbind path."},
    {"delete_by_id", Handle_delete_by_id, METH_VARARGS,
     "delete_by_id(id)\n--\n\nRemove the document and all its paths."},
    {"begin_transaction", Handle_begin_transaction, METH_NOARGS,
     "begin_transaction()\n--\n\nStart a transaction owned by the calling thread."},
    {"commit_transaction", Handle_commit_transaction, METH_NOARGS,
     "commit_transaction()\n--\n\nCommit the transaction."},
    {"rollback_transaction", Handle_rollback_transaction, METH_NOARGS,
     "rollback_transaction()\n--\n\nRoll the transaction back."},
    {"snapshot", Handle_snapshot, METH_NOARGS,
     "snapshot()\n--\n\nReturn a read-only snapshot Handle of the database as it is now."},
    {"flush", Handle_flush, METH_NOARGS, "flush()\n--\n\nMake commits durable and checkpoint."},
    {"set_quick_mode", Handle_set_quick_mode, METH_O,
     "set_quick_mode(on)\n--\n\nSkip (or stop skipping) CRC checks on reads."},
    {"check", Handle_check, METH_NOARGS, "check()\n--\n\nFull integrity walk."},
    {"compact", Handle_compact, METH_NOARGS,
     "compact()\n--\n\nCheckpoint and give free pages at the end of the file back to the OS."},
    {"get_future", Handle_get_future, METH_VARARGS,
     "get_future(path, version=None)\n--\n\nSubmit a whole-document read to the core's "
     "worker threads; return a Future."},
    {"verify", Handle_verify, METH_VARARGS,
     "verify(prefix)\n--\n\nRe-read every version of every document under prefix and check "
     "its CRC32Cs; return the number of versions checked."},
    {"get_stat", Handle_get_stat, METH_VARARGS,
     "get_stat(name)\n--\n\nOne named statistic (streamdb_get_stat)."},
    {"statistics", Handle_statistics, METH_NOARGS,
     "statistics()\n--\n\nReturn streamdb_calculate_statistics as a dict."},
    {"cache_stats", Handle_cache_stats, METH_NOARGS,
     "cache_stats()\n--\n\nReturn streamdb_get_cache_stats as a dict."},
    {"page_size", Handle_page_size, METH_NOARGS, "page_size()\n--\n\nThe page size in bytes."},
    {"max_path_len", Handle_max_path_len, METH_NOARGS,
     "max_path_len()\n--\n\nThe longest path this database accepts, in bytes."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Handle_getset[] = {
    {"closed", node_get_closed, NULL, "True once the handle (or its database) is closed.", NULL},
    {"is_snapshot", Handle_get_is_snapshot, NULL, "True for a snapshot handle.", NULL},
    {"in_transaction", Handle_get_in_transaction, NULL,
     "True between begin_transaction and commit/rollback.", NULL},
    {"open_children", Handle_get_open_children, NULL,
     "Number of streams, cursors, writers and snapshots now open on this handle.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

/* ---- Stream ------------------------------------------------------------------ */

#define STREAM(o) (((Stream *)(o))->s)

/* Reads into buf until it is full or the document ends.  GIL released. */
static int stream_fill(streamdb_stream *s, char *buf, size_t len, size_t *total)
{
    int rc = 0;
    *total = 0;
    while (*total < len) {
        size_t nr = 0;
        rc = streamdb_stream_read(s, buf + *total, len - *total, &nr);
        if (rc < 0 || nr == 0)
            break;
        *total += nr;
    }
    return rc < 0 ? rc : 0;
}

static PyObject *Stream_readinto(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    size_t total = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE) < 0)
        return NULL;
    if (node_enter((Node *)self) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = stream_fill(STREAM(self), (char *)view.buf, (size_t)view.len, &total);
    if (rc < 0)
        copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    PyBuffer_Release(&view);
    RETURN_IF_ERR();
    return PyLong_FromSize_t(total);
}

/* Bytes left from the current position to the end; -1 with an exception. */
static int64_t stream_remaining(PyObject *self)
{
    uint64_t size = 0, pos = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (node_enter((Node *)self) < 0)
        return -1;
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_stream_size(STREAM(self), &size);
    if (rc >= 0)
        rc = streamdb_stream_tell(STREAM(self), &pos);
    if (rc < 0)
        copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    if (rc < 0) {
        raise_rc(rc, msg);
        return -1;
    }
    return pos >= size ? 0 : (int64_t)(size - pos);
}

/* Reads n bytes (or up to the end) into a new bytes object.  With a cancel
 * object, reads CANCEL_CHUNK at a time and stops with CancelledError as soon
 * as cancel.is_set() is true. */
static PyObject *stream_read_bytes(PyObject *self, int64_t n, PyObject *cancel)
{
    PyObject *b;
    size_t done = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if ((uint64_t)n > (uint64_t)PY_SSIZE_T_MAX)
        return PyErr_NoMemory();
    b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (b == NULL)
        return NULL;
    while (done < (size_t)n) {
        size_t want = (size_t)n - done, got = 0;
        if (cancel != NULL && cancel != Py_None) {
            PyObject *r = PyObject_CallMethod(cancel, "is_set", NULL);
            int stop;
            if (r == NULL) {
                Py_DECREF(b);
                return NULL;
            }
            stop = PyObject_IsTrue(r);
            Py_DECREF(r);
            if (stop < 0) {
                Py_DECREF(b);
                return NULL;
            }
            if (stop) {
                Py_DECREF(b);
                return raise_rc(STREAMDB_ERR_CANCELLED, "the read was cancelled");
            }
            if (want > CANCEL_CHUNK)
                want = CANCEL_CHUNK;
        }
        if (node_enter((Node *)self) < 0) {
            Py_DECREF(b);
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = stream_fill(STREAM(self), PyBytes_AS_STRING(b) + done, want, &got);
        if (rc < 0)
            copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
        Py_END_ALLOW_THREADS
        node_leave((Node *)self);
        if (rc < 0) {
            Py_DECREF(b);
            return raise_rc(rc, msg);
        }
        done += got;
        if (got < want)
            break;
    }
    if (done != (size_t)n && _PyBytes_Resize(&b, (Py_ssize_t)done) < 0)
        return NULL;
    return b;
}

static PyObject *Stream_read(PyObject *self, PyObject *args)
{
    Py_ssize_t n = -1;
    int64_t left;
    if (!PyArg_ParseTuple(args, "|n:read", &n))
        return NULL;
    left = stream_remaining(self);
    if (left < 0)
        return NULL;
    if (n < 0 || (int64_t)n > left)
        n = (Py_ssize_t)left;
    return stream_read_bytes(self, n, NULL);
}

static PyObject *Stream_readall(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"cancel", NULL};
    PyObject *cancel = NULL;
    int64_t left;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:readall", kwlist, &cancel))
        return NULL;
    left = stream_remaining(self);
    if (left < 0)
        return NULL;
    return stream_read_bytes(self, left, cancel);
}

static PyObject *Stream_seek(PyObject *self, PyObject *args)
{
    long long offset;
    int whence = 0;
    uint64_t pos = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "L|i:seek", &offset, &whence))
        return NULL;
    if (whence < 0 || whence > 2) {
        PyErr_Format(PyExc_ValueError, "invalid whence (%d, should be 0, 1 or 2)", whence);
        return NULL;
    }
    CORE_CALL(self, rc = streamdb_stream_seek(STREAM(self), (int64_t)offset, whence, &pos));
    RETURN_IF_ERR();
    return PyLong_FromUnsignedLongLong(pos);
}

static PyObject *Stream_tell(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t pos = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    CORE_CALL(self, rc = streamdb_stream_tell(STREAM(self), &pos));
    RETURN_IF_ERR();
    return PyLong_FromUnsignedLongLong(pos);
}

static PyObject *Stream_size(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t size = 0;
    char msg[ERRMSG_MAX];
    int rc = 0;
    CORE_CALL(self, rc = streamdb_stream_size(STREAM(self), &size));
    RETURN_IF_ERR();
    return PyLong_FromUnsignedLongLong(size);
}

static PyMethodDef Stream_methods[] = {
    {"readinto", Stream_readinto, METH_O,
     "readinto(buffer)\n--\n\nFill buffer from the current position; return the byte count "
     "(less than len(buffer) only at the end)."},
    {"read", Stream_read, METH_VARARGS,
     "read(n=-1)\n--\n\nReturn up to n bytes (all that is left when n < 0)."},
    {"readall", (PyCFunction)(void (*)(void))Stream_readall, METH_VARARGS | METH_KEYWORDS,
     "readall(cancel=None)\n--\n\nReturn everything left.  cancel, if given, is an object "
     "with is_set() (threading.Event) polled between 1 MiB reads; when it is set the read "
     "stops with CancelledError."},
    {"seek", Stream_seek, METH_VARARGS,
     "seek(offset, whence=0)\n--\n\nMove the position; return the new one."},
    {"tell", Stream_tell, METH_NOARGS, "tell()\n--\n\nThe current position."},
    {"size", Stream_size, METH_NOARGS, "size()\n--\n\nThe document's size in bytes."},
    {"close", node_close_meth, METH_NOARGS, "close()\n--\n\nClose the stream.  Idempotent."},
    {"__enter__", node_enter_ctx, METH_NOARGS, "Return self."},
    {"__exit__", node_exit_ctx, METH_VARARGS, "Close the stream."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Node_getset[] = {
    {"closed", node_get_closed, NULL, "True once closed (or once its database is closed).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

/* ---- Cursor ------------------------------------------------------------------ */

static PyObject *Cursor_next(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    const char *p = NULL;
    size_t n = 0;
    PyObject *result;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (node_enter((Node *)self) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_cursor_next(((Cursor *)self)->c, &p, &n);
    if (rc < 0)
        copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    /* p is valid until the next call on the cursor: decode while still busy */
    if (rc == STREAMDB_OK)
        result = decode_path(p, n);
    else if (rc == STREAMDB_DONE) {
        result = Py_None;
        Py_INCREF(result);
    } else
        result = NULL;
    node_leave((Node *)self);
    if (rc < 0)
        return raise_rc(rc, msg);
    return result;
}

static PyObject *Cursor_iternext(PyObject *self)
{
    PyObject *r = Cursor_next(self, NULL);
    if (r == Py_None) {
        Py_DECREF(r);
        return NULL; /* StopIteration */
    }
    return r;
}

static PyMethodDef Cursor_methods[] = {
    {"next", Cursor_next, METH_NOARGS,
     "next()\n--\n\nReturn the next path, or None when the cursor is exhausted."},
    {"close", node_close_meth, METH_NOARGS, "close()\n--\n\nClose the cursor.  Idempotent."},
    {"__enter__", node_enter_ctx, METH_NOARGS, "Return self."},
    {"__exit__", node_exit_ctx, METH_VARARGS, "Close the cursor."},
    {NULL, NULL, 0, NULL}};

/* ---- Writer ------------------------------------------------------------------ */

static PyObject *Writer_write(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (node_enter((Node *)self) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_writer_write(((Writer *)self)->w, view.buf, (size_t)view.len);
    if (rc < 0)
        copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    PyBuffer_Release(&view);
    RETURN_IF_ERR();
    return PyLong_FromSsize_t(view.len);
}

static PyObject *Writer_set_compression(PyObject *self, PyObject *arg)
{
    char msg[ERRMSG_MAX];
    int rc = 0;
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    CORE_CALL(self, rc = streamdb_writer_set_compression(((Writer *)self)->w, on));
    RETURN_IF_ERR();
    Py_RETURN_NONE;
}

static PyObject *Writer_commit(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Writer *w = (Writer *)self;
    streamdb_writer *x;
    uint8_t id[STREAMDB_ID_SIZE];
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (node_enter((Node *)self) < 0)
        return NULL;
    x = w->w;
    w->w = NULL; /* commit frees the writer whatever it returns */
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_writer_commit(x, id);
    if (rc < 0)
        copy_errmsg(((Node *)self)->errdb, rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    /* the writer is finished: detach it from its database */
    w->closed = 1;
    node_detach((Node *)self);
    RETURN_IF_ERR();
    return PyBytes_FromStringAndSize((const char *)id, STREAMDB_ID_SIZE);
}

static PyMethodDef Writer_methods[] = {
    {"write", Writer_write, METH_O,
     "write(data)\n--\n\nAppend bytes-like data to the document; return its length."},
    {"set_compression", Writer_set_compression, METH_O,
     "set_compression(on)\n--\n\nCompress this document's chunks (or not), whatever the "
     "database's use_compression says; before the first write."},
    {"commit", Writer_commit, METH_NOARGS,
     "commit()\n--\n\nMake the document visible; return its 16-byte id."},
    {"abort", node_close_meth, METH_NOARGS,
     "abort()\n--\n\nDrop everything written.  Idempotent."},
    {"close", node_close_meth, METH_NOARGS, "close()\n--\n\nSame as abort() unless committed."},
    {"__enter__", node_enter_ctx, METH_NOARGS, "Return self."},
    {"__exit__", node_exit_ctx, METH_VARARGS, "Abort the writer unless it was committed."},
    {NULL, NULL, 0, NULL}};


/* ---- Future (streamdb_future) -------------------------------------------------- */

/* A future is not a child of its handle: the core lets it outlive the handle
 * (close cancels queued requests and waits for running ones), so closing the
 * database needs nothing from it.  It keeps a reference to the handle only
 * to report the handle's fork state. */
typedef struct {
    PyObject_HEAD
    streamdb_future *f;
    pid_t pid;
    PyObject *result;   /* the bytes, once taken */
    PyObject *error;    /* the exception instance, once taken */
    int busy;           /* a thread is waiting on it without the GIL */
    PyObject *weakreflist;
} Future;

static PyTypeObject Future_Type = {PyVarObject_HEAD_INIT(NULL, 0) "streamdb._streamdb.Future"};

static int future_check(Future *fu)
{
    if (fu->pid != my_pid()) {
        raise_rc(STREAMDB_ERR_CLOSED, "future was made in another process (used after fork)");
        return -1;
    }
    if (fu->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this future is being waited on by another thread");
        return -1;
    }
    return 0;
}

static void Future_dealloc(PyObject *self)
{
    Future *fu = (Future *)self;
    if (fu->weakreflist != NULL)
        PyObject_ClearWeakRefs(self);
    if (fu->f != NULL && fu->pid == my_pid()) {
        streamdb_future *f = fu->f;
        Py_BEGIN_ALLOW_THREADS
        streamdb_future_free(f);
        Py_END_ALLOW_THREADS
    }
    Py_CLEAR(fu->result);
    Py_CLEAR(fu->error);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *Handle_get_future(PyObject *self, PyObject *args)
{
    pathbuf path;
    int64_t version = 0;
    streamdb_future *f = NULL;
    Future *fu;
    char msg[ERRMSG_MAX];
    int rc = 0;
    if (!PyArg_ParseTuple(args, "O&|O&:get_future", path_conv, &path, version_conv, &version))
        return NULL;
    fu = PyObject_New(Future, &Future_Type);
    if (fu == NULL)
        return NULL;
    fu->f = NULL;
    fu->pid = my_pid();
    fu->result = fu->error = NULL;
    fu->busy = 0;
    fu->weakreflist = NULL;
    if (node_enter((Node *)self) < 0) {
        Py_DECREF(fu);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_get_future(HANDLE_DB(self), path.p, (size_t)path.n, version, &f);
    if (rc < 0)
        copy_errmsg(HANDLE_DB(self), rc, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    node_leave((Node *)self);
    if (rc < 0) {
        Py_DECREF(fu);
        return raise_rc(rc, msg);
    }
    fu->f = f;
    return (PyObject *)fu;
}

/* Waits up to timeout seconds (< 0: forever) in slices, so that signals
 * (Ctrl-C) are seen.  1 when done, 0 on timeout, -1 with an exception. */
static int future_wait(Future *fu, double timeout)
{
    double left = timeout;
    for (;;) {
        int64_t slice = 100;
        int rc;
        streamdb_future *f = fu->f;
        if (timeout >= 0 && left * 1000.0 < (double)slice)
            slice = (int64_t)(left * 1000.0);
        fu->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        rc = streamdb_future_wait(f, slice);
        Py_END_ALLOW_THREADS
        fu->busy = 0;
        if (rc == 0)
            return 1;
        if (rc != STREAMDB_ERR_BUSY)
            return raise_rc(rc, "waiting for the future failed"), -1;
        if (PyErr_CheckSignals() < 0)
            return -1;
        if (timeout >= 0) {
            left -= (double)slice / 1000.0;
            if (left <= 0)
                return 0;
        }
    }
}

static int timeout_conv(PyObject *o, void *addr)
{
    double *t = (double *)addr;
    if (o == Py_None) {
        *t = -1.0;
        return 1;
    }
    *t = PyFloat_AsDouble(o);
    if (*t == -1.0 && PyErr_Occurred())
        return 0;
    if (*t < 0) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be negative");
        return 0;
    }
    return 1;
}

static PyObject *Future_ready(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Future *fu = (Future *)self;
    /* no busy check: this keeps the GIL, so fu->f cannot be freed under it */
    if (fu->pid != my_pid())
        return raise_rc(STREAMDB_ERR_CLOSED,
                        "future was made in another process (used after fork)");
    if (fu->f == NULL)
        Py_RETURN_TRUE;
    return PyBool_FromLong(streamdb_future_ready(fu->f));
}

static PyObject *Future_wait(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    Future *fu = (Future *)self;
    double timeout = -1.0;
    int r;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O&:wait", kwlist, timeout_conv, &timeout))
        return NULL;
    if (future_check(fu) < 0)
        return NULL;
    if (fu->f == NULL)
        Py_RETURN_TRUE;
    r = future_wait(fu, timeout);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

static PyObject *Future_result(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    Future *fu = (Future *)self;
    double timeout = -1.0;
    void *data = NULL;
    size_t len = 0;
    const char *em = NULL;
    char msg[ERRMSG_MAX];
    int rc, r;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O&:result", kwlist, timeout_conv, &timeout))
        return NULL;
    if (future_check(fu) < 0)
        return NULL;
    if (fu->f != NULL) {
        r = future_wait(fu, timeout);
        if (r < 0)
            return NULL;
        if (r == 0) {
            PyErr_SetString(PyExc_TimeoutError, "the request is not finished");
            return NULL;
        }
        {
            /* Claim the core future before anything releases the GIL, so that
             * no other thread takes or frees it too. */
            streamdb_future *f = fu->f;
            PyObject *t, *v, *tb;
            fu->f = NULL;
            fu->busy = 1;
            rc = streamdb_future_result(f, &data, &len, &em);
            snprintf(msg, sizeof msg, "%s", em ? em : "");
            Py_BEGIN_ALLOW_THREADS
            streamdb_future_free(f); /* keeps the data it handed over */
            Py_END_ALLOW_THREADS
            if (rc == 0)
                fu->result = take_buffer(data, len);
            else
                raise_rc(rc, msg);
            fu->busy = 0;
            if (fu->result == NULL) {
                PyErr_Fetch(&t, &v, &tb);
                PyErr_NormalizeException(&t, &v, &tb);
                Py_XDECREF(t);
                Py_XDECREF(tb);
                fu->error = v;
            }
        }
    }
    if (fu->error != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(fu->error), fu->error);
        return NULL;
    }
    Py_INCREF(fu->result);
    return fu->result;
}

static PyObject *Future_cancel(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Future *fu = (Future *)self;
    int rc;
    streamdb_future *f;
    if (future_check(fu) < 0)
        return NULL;
    if (fu->f == NULL)
        Py_RETURN_FALSE;
    f = fu->f;
    fu->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = streamdb_future_cancel(f);
    Py_END_ALLOW_THREADS
    fu->busy = 0;
    return PyBool_FromLong(rc == 0);
}

static PyMethodDef Future_methods[] = {
    {"ready", Future_ready, METH_NOARGS,
     "ready()\n--\n\nTrue once the result is ready (or the request was cancelled)."},
    {"wait", (PyCFunction)(void (*)(void))Future_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None)\n--\n\nWait up to timeout seconds (None: until done), without the "
     "GIL; return True when done."},
    {"result", (PyCFunction)(void (*)(void))Future_result, METH_VARARGS | METH_KEYWORDS,
     "result(timeout=None)\n--\n\nWait, then return the document as bytes or raise its "
     "error (CancelledError when cancelled); TimeoutError if not done in time."},
    {"cancel", Future_cancel, METH_NOARGS,
     "cancel()\n--\n\nCancel the request if it has not started; return True if it will not "
     "run."},
    {NULL, NULL, 0, NULL}};

/* ---- Types and module --------------------------------------------------------- */

static PyTypeObject Handle_Type = {PyVarObject_HEAD_INIT(NULL, 0) "streamdb._streamdb.Handle"};
static PyTypeObject Stream_Type = {PyVarObject_HEAD_INIT(NULL, 0) "streamdb._streamdb.Stream"};
static PyTypeObject Cursor_Type = {PyVarObject_HEAD_INIT(NULL, 0) "streamdb._streamdb.Cursor"};
static PyTypeObject Writer_Type = {PyVarObject_HEAD_INIT(NULL, 0) "streamdb._streamdb.Writer"};

static int init_type(PyTypeObject *t, const char *name, Py_ssize_t size, const char *doc,
                     PyMethodDef *methods, PyGetSetDef *getset)
{
    t->tp_name = name;
    t->tp_basicsize = size;
    t->tp_dealloc = node_dealloc;
    t->tp_flags = Py_TPFLAGS_DEFAULT;
    t->tp_doc = doc;
    t->tp_methods = methods;
    t->tp_getset = getset;
    t->tp_weaklistoffset = offsetof(Node, weakreflist);
    return PyType_Ready(t);
}

static PyMethodDef module_methods[] = {
    {"open", (PyCFunction)(void (*)(void))mod_open, METH_VARARGS | METH_KEYWORDS,
     "open(path, config=None)\n--\n\nOpen (or create) a database file; return a Handle.  "
     "config maps streamdb_config field names to int/bool values, and encryption_key to "
     "bytes."},
    {"version", mod_version, METH_NOARGS, "version()\n--\n\nThe core library's version."},
    {"strerror", mod_strerror, METH_O, "strerror(code)\n--\n\nThe name of a return code."},
    {"features", mod_features, METH_NOARGS,
     "features()\n--\n\nThe FEATURE_* bits this build of the core has."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    "_streamdb",
    "Low-level binding of libstreamdb (core/include/streamdb.h).  Use the streamdb package.",
    -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL};

static int add_type(PyObject *m, const char *name, PyTypeObject *t)
{
    Py_INCREF(t);
    if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__streamdb(void)
{
    PyObject *m, *errors;
    static int fork_handler_set;

    if (!fork_handler_set) {
        cur_pid = getpid();
        if (pthread_atfork(NULL, NULL, on_fork_child) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return NULL;
        }
        fork_handler_set = 1;
    }

    if (init_type(&Handle_Type, "streamdb._streamdb.Handle", sizeof(Handle),
                  "A database or snapshot handle (streamdb *).", Handle_methods,
                  Handle_getset) < 0 ||
        init_type(&Stream_Type, "streamdb._streamdb.Stream", sizeof(Stream),
                  "A document opened for reading (streamdb_stream *).", Stream_methods,
                  Node_getset) < 0 ||
        init_type(&Writer_Type, "streamdb._streamdb.Writer", sizeof(Writer),
                  "A streaming document writer (streamdb_writer *).", Writer_methods,
                  Node_getset) < 0)
        return NULL;
    Cursor_Type.tp_iter = PyObject_SelfIter;
    Cursor_Type.tp_iternext = Cursor_iternext;
    if (init_type(&Cursor_Type, "streamdb._streamdb.Cursor", sizeof(Cursor),
                  "A prefix search or listing (streamdb_cursor *); iterating yields paths.",
                  Cursor_methods, Node_getset) < 0)
        return NULL;

    Future_Type.tp_basicsize = sizeof(Future);
    Future_Type.tp_dealloc = Future_dealloc;
    Future_Type.tp_flags = Py_TPFLAGS_DEFAULT;
    Future_Type.tp_doc = "A whole-document read running on the core's workers (streamdb_future *).";
    Future_Type.tp_methods = Future_methods;
    Future_Type.tp_weaklistoffset = offsetof(Future, weakreflist);
    if (PyType_Ready(&Future_Type) < 0)
        return NULL;

    errors = PyImport_ImportModule("streamdb._errors");
    if (errors == NULL)
        return NULL;
    make_error = PyObject_GetAttrString(errors, "_from_code");
    Py_DECREF(errors);
    if (make_error == NULL)
        return NULL;

    m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    if (add_type(m, "Handle", &Handle_Type) < 0 || add_type(m, "Stream", &Stream_Type) < 0 ||
        add_type(m, "Cursor", &Cursor_Type) < 0 || add_type(m, "Writer", &Writer_Type) < 0 ||
        add_type(m, "Future", &Future_Type) < 0)
        goto fail;
#define C(name)                                                                                    \
    if (PyModule_AddIntConstant(m, #name, STREAMDB_##name) < 0)                                    \
        goto fail;
    C(OK)
    C(DONE)
    C(ERR_IO)
    C(ERR_NOT_FOUND)
    C(ERR_INVALID)
    C(ERR_INTERNAL)
    C(ERR_TRANSACTION)
    C(ERR_CORRUPT)
    C(ERR_LOCKED)
    C(ERR_TOO_LARGE)
    C(ERR_FULL)
    C(ERR_CLOSED)
    C(ERR_NOMEM)
    C(ERR_BUSY)
    C(ERR_READONLY)
    C(ERR_INCOMPATIBLE)
    C(ERR_NOT_A_DB)
    C(ERR_FATAL)
    C(ERR_CRYPTO)
    C(ERR_UNSUPPORTED)
    C(ERR_EXISTS)
    C(ERR_CANCELLED)
    C(ERR_WOULDBLOCK)
    C(MAX_PATH)
    C(ID_SIZE)
    C(DOC_INLINE)
    C(DOC_COMPRESSED)
    C(FEATURE_COMPRESSION)
    C(FEATURE_ENCRYPTION)
#undef C
    if (PyModule_AddStringConstant(m, "HEADER_VERSION", STREAMDB_VERSION_STRING) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
