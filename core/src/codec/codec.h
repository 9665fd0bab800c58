/*
 * codec.h -- snappy compression and AES-256-GCM, each optional at build time
 * (STREAMDB_HAVE_SNAPPY, STREAMDB_HAVE_OPENSSL).  Without them the functions
 * report "not built with ...".
 */
#ifndef SDB_CODEC_H
#define SDB_CODEC_H

#include "sdb.h"

SDB_HIDDEN int sdb_have_snappy(void);
SDB_HIDDEN size_t sdb_compress_bound(size_t n);
/* 0 and *outlen on success; out holds sdb_compress_bound(n) bytes. */
SDB_HIDDEN int sdb_compress(const uint8_t *in, size_t n, uint8_t *out, size_t *outlen);
/* Decompresses exactly `expect` bytes; CORRUPT on anything else. */
SDB_HIDDEN int sdb_uncompress(const uint8_t *in, size_t n, uint8_t *out, size_t expect);

SDB_HIDDEN int sdb_have_crypto(void);
/* In-place AES-256-GCM with a fresh random 96-bit nonce. */
SDB_HIDDEN int sdb_gcm_seal(const uint8_t *key, const uint8_t *aad, size_t aadn, uint8_t *buf,
                            size_t n, uint8_t *nonce, uint8_t *tag);
/* In-place decryption; STREAMDB_ERR_CRYPTO when the tag does not match. */
SDB_HIDDEN int sdb_gcm_open(const uint8_t *key, const uint8_t *aad, size_t aadn, uint8_t *buf,
                            size_t n, const uint8_t *nonce, const uint8_t *tag);

#endif
