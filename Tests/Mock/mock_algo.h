/* mock_algo.h: the mock modules' fake (not cryptographic) algorithms, shared with the
 * tests so a test can compute what a given module must answer and so prove which
 * module served a call. Byte-at-a-time, so multi-part and single-part agree. */
#ifndef P11PROXY_MOCK_ALGO_H
#define P11PROXY_MOCK_ALGO_H

#include <stddef.h>
#include <stdint.h>

#define MOCK_DIGEST_LEN 32

struct mock_digest {
    uint64_t h[4];
    uint64_t len;
};

/* tag: the module's MOCK_TAG; key: 0 for C_Digest, the key's secret for signatures. */
static inline void mock_digest_init(struct mock_digest *d, uint64_t tag, uint64_t key)
{
    for (int i = 0; i < 4; i++)
        d->h[i] = 0xcbf29ce484222325ULL ^ (tag * 0x9E3779B97F4A7C15ULL) ^ (key * 0xC2B2AE3D27D4EB4FULL)
                  ^ ((uint64_t)(i + 1) << 56);
    d->len = 0;
}

static inline void mock_digest_update(struct mock_digest *d, const unsigned char *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        for (int i = 0; i < 4; i++)
            d->h[i] = (d->h[i] ^ (uint64_t)(p[k] + i)) * 0x100000001b3ULL;
    d->len += n;
}

static inline void mock_digest_final(const struct mock_digest *d, unsigned char out[MOCK_DIGEST_LEN])
{
    for (int i = 0; i < 4; i++) {
        uint64_t v = d->h[i] ^ (d->len * 0xFF51AFD7ED558CCDULL);
        v ^= v >> 33;
        v *= 0xC4CEB9FE1A85EC53ULL;
        v ^= v >> 29;
        for (int b = 0; b < 8; b++)
            out[i * 8 + b] = (unsigned char)(v >> (8 * b));
    }
}

/* What CKM_SHA256 "digests" to on the module with this tag. */
static inline void mock_fake_digest(uint64_t tag, const unsigned char *data, size_t n,
                                    unsigned char out[MOCK_DIGEST_LEN])
{
    struct mock_digest d;
    mock_digest_init(&d, tag, 0);
    mock_digest_update(&d, data, n);
    mock_digest_final(&d, out);
}

/* The byte encrypt/decrypt XOR with, from a key's secret; never 0. */
static inline unsigned char mock_xor_byte(uint64_t secret)
{
    return (unsigned char)(secret % 255 + 1);
}

/* Folds a message-function parameter (IV, nonce) into one value. */
static inline uint64_t mock_param_mix(const void *param, size_t n)
{
    uint64_t v = 0x84222325ULL;
    const unsigned char *p = param;
    for (size_t i = 0; p && i < n; i++)
        v = (v ^ p[i]) * 0x100000001b3ULL;
    return v;
}

#endif
