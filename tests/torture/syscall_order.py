#!/usr/bin/env python3
"""T14 (RELIABILITY.md): the order of system calls in a commit and a checkpoint.

Runs the streamdb CLI under strace on a fresh database: a small put (through
the log), a 1 MiB put (chunk data straight into the main file), and the close
(a checkpoint and a log reset).  Then checks, from the trace:
  1. each new file is followed by an fsync of its directory before it is used;
  2. main-file data is synced before a log write that could point at it
     (no log frame follows an unsynced main-file write);
  3. a header slot (page 0 or 1 of the main file) is written only after the
     pages it describes are synced, and is synced itself before the log is
     reset;
  4. every commit ends with an fdatasync of the log.
usage: syscall_order.py path/to/streamdb
Exits 0 on success, 1 on a violation, 77 when strace is missing (ctest: skip).
"""
import os, re, shutil, subprocess, sys, tempfile

def main():
    cli = os.path.abspath(sys.argv[1])
    if not shutil.which("strace"):
        print("syscall_order: strace is not installed: SKIPPED")
        return 77
    work = tempfile.mkdtemp(prefix="streamdb-t14-")
    try:
        db = os.path.join(work, "t.sdb")
        small = os.path.join(work, "small.bin")
        big = os.path.join(work, "big.bin")
        with open(small, "wb") as f:
            f.write(os.urandom(3000))
        with open(big, "wb") as f:
            f.write(os.urandom(1 << 20))
        trace = os.path.join(work, "trace")
        env = dict(os.environ)
        # LeakSanitizer cannot run under ptrace: an ASan build of the CLI runs without it here
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        existed = []
        for i, (path, src) in enumerate([("/small", small), ("/big", big)]):
            existed.append({"db": os.path.exists(db), "wal": os.path.exists(db + "-wal")})
            subprocess.run(["strace", "-f", "-o", f"{trace}.{i}", "-e",
                            "trace=openat,pwrite64,fdatasync,fsync,ftruncate,close",
                            cli, db, "put", path, src], check=True, stdout=subprocess.DEVNULL,
                           env=env)
        errors, points = [], 0
        for i in range(2):
            with open(f"{trace}.{i}") as f:
                lines = f.read().splitlines()
            fds = {}            # fd -> "db" | "wal" | "dir"
            unsynced = {"db": False, "wal": False}
            created_unsynced = set()
            slot_written = False
            for ln in lines:
                m = re.search(r'openat\(AT_FDCWD, "([^"]+)", ([^,)]+)[^=]*= (\d+)', ln)
                if m:
                    name, flags, fd = m.group(1), m.group(2), int(m.group(3))
                    kind = ("wal" if name.endswith("-wal") else "db" if name.endswith(".sdb")
                            else "dir" if "O_DIRECTORY" in flags else None)
                    if kind:
                        fds[fd] = kind
                        if kind in ("db", "wal") and not existed[i][kind]:
                            created_unsynced.add(kind)   # a new file: its directory must be synced
                    continue
                m = re.search(r'^\d+\s+(\w+)\((\d+)(.*)= (-?\d+)', ln)
                if not m:
                    continue
                call, fd, rest = m.group(1), int(m.group(2)), m.group(3)
                kind = fds.get(fd)
                if call == "fsync" and kind == "dir":
                    created_unsynced.clear()
                    continue
                if kind not in ("db", "wal"):
                    continue
                if call == "pwrite64":
                    mm = re.search(r', (\d+), (\d+)\)\s*$', rest)
                    size, off = int(mm.group(1)), int(mm.group(2))
                    points += 1
                    if kind == "wal" and off >= 64:
                        if unsynced["db"]:
                            errors.append(f"trace {i}: log frames written while main-file data is unsynced: {ln}")
                        if created_unsynced:
                            errors.append(f"trace {i}: a commit before the directory was synced: {ln}")
                    if kind == "db" and off < 2 * size and size >= 4096 and off in (0, size):
                        if unsynced["db"]:
                            errors.append(f"trace {i}: header slot written before the pages were synced: {ln}")
                        slot_written = True
                    if kind == "wal" and off == 0 and slot_written and unsynced["db"]:
                        errors.append(f"trace {i}: log reset before the header slot was synced: {ln}")
                    unsynced[kind] = True
                elif call in ("fdatasync", "fsync"):
                    unsynced[kind] = False
                elif call == "ftruncate":
                    unsynced[kind] = True
                elif call == "close" and kind == "wal" and unsynced["wal"]:
                    errors.append(f"trace {i}: the log closed with unsynced writes: {ln}")
            if unsynced["db"] or unsynced["wal"]:
                errors.append(f"trace {i}: the process ended with unsynced writes")
        for e in errors:
            print("FAIL", e)
        print(f"T14 syscall order: {points} writes checked in 2 commits and 2 checkpoints, "
              f"{len(errors)} ordering violations")
        return 1 if errors else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
