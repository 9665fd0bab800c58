/*
 * faultvfs.h -- two VFS layers for the torture families (RELIABILITY.md).
 *
 * 1. The fault VFS (fv_*) wraps any streamdb_vfs (the file backend or a
 *    memory backend) and counts every call by kind.  Armed with (kind, N,
 *    fault, persistent) it makes the Nth call of that kind fail:
 *      FV_EIO / FV_ENOSPC  the call returns that errno and does nothing;
 *      FV_SHORT            a read or write transfers only part of the bytes
 *                          and returns 0 (the core must loop);
 *      FV_EINTR            the call returns EINTR and does nothing (the core
 *                          must retry).
 *    Once: only call N.  Persistent: every call of that kind from N on (for
 *    EINTR: every call from N on fails its first attempt, so retrying works;
 *    for SHORT: every read/write from N on is short).
 *
 * 2. The power-loss simulator (pl_*) layers over a memory VFS.  Every write
 *    and truncate since a file's last sync is kept in a pending list; a sync
 *    makes the file's pending operations durable.  The simulator "crashes"
 *    at the Nth sync (that sync does not complete, and every later call
 *    fails with EIO).  pl_crash_image() then builds, in a new memory VFS,
 *    what a disk could hold after the power cut: the durable content plus,
 *    for each pending operation, one of keep / drop / tear (a random subset
 *    of its 512-byte sectors, aligned to file offsets), applied in the
 *    original or a random order.  A file whose creation was never made
 *    durable (no sync of the file followed by a sync of its directory) is
 *    absent from the image (T6).  PL_DEBUG=1 in the environment prints
 *    every sync and the fate of every pending write when an image is built.
 */
#ifndef STREAMDB_TORTURE_FAULTVFS_H
#define STREAMDB_TORTURE_FAULTVFS_H

#include <stdint.h>
#include "streamdb.h"

/* ---- fault VFS ---- */
typedef enum {
    FV_OPEN, FV_READ, FV_WRITE, FV_SYNC, FV_TRUNCATE, FV_SIZE, FV_LOCK, FV_NKINDS
} fv_kind;
typedef enum { FV_EIO, FV_ENOSPC, FV_SHORT, FV_EINTR, FV_NFAULTS } fv_fault;

typedef struct faultvfs faultvfs;
faultvfs *fv_new(const streamdb_vfs *inner);
void fv_free(faultvfs *fv);
const streamdb_vfs *fv_vfs(faultvfs *fv);
/* n >= 1; n == 0 disarms. */
void fv_arm(faultvfs *fv, fv_kind kind, long n, fv_fault fault, int persistent);
void fv_disarm(faultvfs *fv);
long fv_count(faultvfs *fv, fv_kind kind);   /* calls of that kind so far */
long fv_delivered(faultvfs *fv);             /* faults delivered so far */
void fv_reset_counts(faultvfs *fv);
const char *fv_kind_name(fv_kind k);
const char *fv_fault_name(fv_fault f);

/* ---- power-loss simulator ---- */
typedef struct plsim plsim;
enum { PL_KEEP_ALL = 0, PL_DROP_ALL = 1, PL_RANDOM = 2 };

plsim *pl_new(void);
void pl_free(plsim *pl);
const streamdb_vfs *pl_vfs(plsim *pl);
/* Crash when the nth sync (file or directory) is called; 0: never. */
void pl_crash_at_sync(plsim *pl, long n);
long pl_syncs(plsim *pl);       /* sync calls so far (completed or not) */
int pl_crashed(plsim *pl);
long pl_pending(plsim *pl);     /* pending operations over all files */
/* A new memory VFS holding the post-crash disk (free it with
 * streamdb_vfs_memory_free).  mode PL_KEEP_ALL keeps every pending write in
 * order, PL_DROP_ALL forgets them (T6), PL_RANDOM keeps, drops or tears each
 * one and may reorder them, from seed. */
streamdb_vfs *pl_crash_image(plsim *pl, int mode, uint64_t seed);

#endif
