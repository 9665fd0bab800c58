/*
 * compress.c -- snappy through libsnappy's C API.  Each 64 KiB chunk is
 * compressed on its own, so a seek or a range read decodes only the chunks
 * it touches.  Decoding checks the announced length first: a damaged or
 * hostile chunk is CORRUPT, never a buffer overrun.
 */
#include "codec/codec.h"

#ifdef STREAMDB_HAVE_SNAPPY
#include <snappy-c.h>

int sdb_have_snappy(void) { return 1; }

size_t sdb_compress_bound(size_t n) { return snappy_max_compressed_length(n); }

int sdb_compress(const uint8_t *in, size_t n, uint8_t *out, size_t *outlen)
{
    *outlen = snappy_max_compressed_length(n);
    if (snappy_compress((const char *)in, n, (char *)out, outlen) != SNAPPY_OK)
        return sdb_err(STREAMDB_ERR_INTERNAL, "snappy compression failed");
    return 0;
}

int sdb_uncompress(const uint8_t *in, size_t n, uint8_t *out, size_t expect)
{
    size_t len;
    if (snappy_uncompressed_length((const char *)in, n, &len) != SNAPPY_OK || len != expect)
        return sdb_err(STREAMDB_ERR_CORRUPT, "compressed chunk announces a wrong length");
    if (snappy_uncompress((const char *)in, n, (char *)out, &len) != SNAPPY_OK || len != expect)
        return sdb_err(STREAMDB_ERR_CORRUPT, "compressed chunk does not decode");
    return 0;
}
#else
int sdb_have_snappy(void) { return 0; }
size_t sdb_compress_bound(size_t n) { return n; }
int sdb_compress(const uint8_t *in, size_t n, uint8_t *out, size_t *outlen)
{
    return sdb_err(STREAMDB_ERR_UNSUPPORTED, "not built with compression (libsnappy)");
}
int sdb_uncompress(const uint8_t *in, size_t n, uint8_t *out, size_t expect)
{
    return sdb_err(STREAMDB_ERR_UNSUPPORTED, "not built with compression (libsnappy)");
}
#endif
