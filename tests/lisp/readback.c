/*
 * readback.c -- prints one document of a StreamDb database to stdout.
 *
 *   readback DB PATH
 *
 * The Lisp tests use it to read back, through the C API alone, what Lisp wrote,
 * when the streamdb command-line tool (STREAMDB_CLI) is not available.
 * run.sh compiles it against libstreamdb.
 */
#include <stdio.h>
#include <string.h>
#include "streamdb.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DB PATH\n", argv[0]);
        return 2;
    }
    streamdb_config *cfg = streamdb_config_new();
    if (!cfg || streamdb_config_set(cfg, "read_only", 1) != STREAMDB_OK) {
        fprintf(stderr, "readback: cannot make a configuration\n");
        return 1;
    }
    streamdb *db = NULL;
    int rc = streamdb_open(argv[1], cfg, &db);
    streamdb_config_free(cfg);
    if (rc != STREAMDB_OK) {
        fprintf(stderr, "readback: open %s: %s (%s)\n", argv[1], streamdb_strerror(rc),
                streamdb_errmsg(NULL));
        return 1;
    }
    void *data = NULL;
    size_t len = 0;
    rc = streamdb_get_n(db, argv[2], strlen(argv[2]), 0, &data, &len);
    if (rc != STREAMDB_OK) {
        fprintf(stderr, "readback: get %s: %s (%s)\n", argv[2], streamdb_strerror(rc),
                streamdb_errmsg(db));
        streamdb_close(db);
        return 1;
    }
    size_t written = len ? fwrite(data, 1, len, stdout) : 0;
    streamdb_free(data);
    rc = streamdb_close(db);
    if (written != len || fflush(stdout) != 0) {
        fprintf(stderr, "readback: write to stdout failed\n");
        return 1;
    }
    return rc == STREAMDB_OK ? 0 : 1;
}
