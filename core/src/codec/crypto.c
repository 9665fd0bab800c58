/*
 * crypto.c -- AES-256-GCM through OpenSSL's libcrypto.
 *
 * Nonces are 96 random bits from RAND_bytes, drawn for every encryption
 * (docs/format.md explains why not a counter).  The tag is 16 bytes and is
 * always verified, in quick mode too.  A context is made per call: contexts
 * are not shared between threads, and nothing of the key outlives the call
 * in libcrypto's memory.
 */
#include "codec/codec.h"

#ifdef STREAMDB_HAVE_OPENSSL
#include <openssl/evp.h>
#include <openssl/rand.h>

int sdb_have_crypto(void) { return 1; }

int sdb_gcm_seal(const uint8_t *key, const uint8_t *aad, size_t aadn, uint8_t *buf, size_t n,
                 uint8_t *nonce, uint8_t *tag)
{
    if (RAND_bytes(nonce, 12) != 1)
        return sdb_err(STREAMDB_ERR_CRYPTO, "no random bytes for a nonce");
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len, ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
                  (!aadn || EVP_EncryptUpdate(c, NULL, &len, aad, (int)aadn) == 1) &&
                  EVP_EncryptUpdate(c, buf, &len, buf, (int)n) == 1 &&
                  EVP_EncryptFinal_ex(c, buf + len, &len) == 1 &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : sdb_err(STREAMDB_ERR_CRYPTO, "AES-GCM encryption failed");
}

int sdb_gcm_open(const uint8_t *key, const uint8_t *aad, size_t aadn, uint8_t *buf, size_t n,
                 const uint8_t *nonce, const uint8_t *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t t[16];
    memcpy(t, tag, 16);
    int len, ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
                  (!aadn || EVP_DecryptUpdate(c, NULL, &len, aad, (int)aadn) == 1) &&
                  EVP_DecryptUpdate(c, buf, &len, buf, (int)n) == 1 &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, t) == 1 &&
                  EVP_DecryptFinal_ex(c, buf + len, &len) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : STREAMDB_ERR_CRYPTO;
}
#else
int sdb_have_crypto(void) { return 0; }
int sdb_gcm_seal(const uint8_t *key, const uint8_t *aad, size_t aadn, uint8_t *buf, size_t n,
                 uint8_t *nonce, uint8_t *tag)
{
    return sdb_err(STREAMDB_ERR_UNSUPPORTED, "not built with encryption");
}
int sdb_gcm_open(const uint8_t *key, const uint8_t *aad, size_t aadn, uint8_t *buf, size_t n,
                 const uint8_t *nonce, const uint8_t *tag)
{
    return sdb_err(STREAMDB_ERR_UNSUPPORTED, "not built with encryption");
}
#endif
