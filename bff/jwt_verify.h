/* jwt_verify: verification of JWT bearer tokens against pinned keys (RFC 8725), with OpenSSL. */
#ifndef BFF_JWT_VERIFY_H
#define BFF_JWT_VERIFY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Every key is pinned to one algorithm. A token is checked step by step, cheapest first: its size
 * (at most max_token_bytes), its shape (three non-empty base64url parts), its header (valid JSON;
 * "alg" a known algorithm, never "none" in any case; "kid" selecting the key when keys have ids,
 * otherwise the only key), and the header's "alg" must be the key's own algorithm, so an HS256
 * token signed with an RSA public key used as an HMAC secret (algorithm confusion) is refused
 * before any signature work. Then the signature over "header.payload", with OpenSSL and the key
 * parsed once when it was added: HMAC compared in constant time, RSA PKCS#1 v1.5, or ECDSA with
 * the JWS r||s form of exactly twice the curve size. Only a verified token's payload is parsed
 * (duplicate claim names refused). Claims: "exp", "nbf" and "iat" must be numbers when present (a
 * string "exp" is invalid) and are checked with `leeway_s`; "iss" must equal `issuer` when one is
 * configured; "aud" (a string or an array of strings) must contain one of `audiences` when any is
 * configured. An empty key is refused at config time and here.
 *
 * (Verification once went through libjwt 1.10, which decodes the PEM key again on every token:
 * with OpenSSL 3 that costs ~0.7 ms per RS256/ES256 token, a lever for anyone sending tokens.)
 *
 * Thread-safe: the config is read-only after bff_jwt_config_add_key (OpenSSL keys are only read);
 * verification allocates only per call (freed before returning, except *claims).
 */

typedef enum bff_jwt_alg {
    BFF_JWT_HS256,
    BFF_JWT_HS384,
    BFF_JWT_HS512,
    BFF_JWT_RS256,
    BFF_JWT_RS384,
    BFF_JWT_RS512,
    BFF_JWT_ES256,
    BFF_JWT_ES384,
    BFF_JWT_ALG_COUNT
} bff_jwt_alg;

/* Parses "HS256" .. "ES384". Returns 0, or -1 for another name (including "none"). */
int bff_jwt_alg_parse(const char *name, bff_jwt_alg *out);
const char *bff_jwt_alg_name(bff_jwt_alg alg);

typedef struct bff_jwt_key {
    char *kid; /* a token with "kid" uses the key with that kid; a token without one, the only key */
    bff_jwt_alg alg;
    unsigned char *material; /* HMAC secret bytes, or a PEM public key (NUL-terminated) */
    size_t len;
    void *pkey; /* RSA/EC: the parsed public key (an OpenSSL EVP_PKEY); NULL for HMAC */
    /* HMAC: the digest states after the key's inner and outer pads (OpenSSL EVP_MD_CTX), made once when
     * the key is added, so a verification copies them instead of setting the key up again. Read-only
     * after that: threads verify with the same key at once. */
    void *hmac_inner, *hmac_outer;
} bff_jwt_key;

/* The config owns every pointer in it (keys, issuer, audiences): bff_jwt_config_release frees them. */
typedef struct bff_jwt_config {
    bff_jwt_key *keys;
    size_t nkeys;
    char *issuer;     /* NULL: not checked */
    char **audiences; /* none: not checked */
    size_t naudiences;
    uint64_t leeway_s;
    size_t max_token_bytes; /* 0: the default, 8192 */
} bff_jwt_config;

#define BFF_JWT_DEFAULT_MAX_TOKEN 8192

/* Adds a key (copies kid and material; parses a PEM public key, which must be RSA of at least 2048 bits
 * for RS*, or EC on the algorithm's curve for ES*). Returns 0, or -EINVAL for an empty or unusable
 * key, -ENOMEM. */
int bff_jwt_config_add_key(bff_jwt_config *cfg, const char *kid, bff_jwt_alg alg, const void *material, size_t len);
/* NULL-safe; leaves *cfg zeroed. */
void bff_jwt_config_release(bff_jwt_config *cfg);

/*
 * Verifies `token` (len bytes, no "Bearer " prefix) at time `now`. Returns 0 with *claims set (a new
 * JSON object the caller decrefs), or -1 with `reason` set for the log (the client is told no more
 * than invalid_token).
 */
int bff_jwt_verify(const bff_jwt_config *cfg, const char *token, size_t len, time_t now, json_t **claims, char *reason,
                   size_t cap);

/* A rule a verified token's claims must satisfy (or the client gets 403). */
typedef enum bff_claim_op { BFF_CLAIM_PRESENT, BFF_CLAIM_EQUALS, BFF_CLAIM_CONTAINS } bff_claim_op;

typedef struct bff_claim_rule {
    char *claim;
    bff_claim_op op;
    char *value; /* EQUALS: the claim is this string; CONTAINS: a string claim holds it as a space-separated
                  * word (OAuth "scope"), or an array claim holds it as an element. NULL for PRESENT. */
} bff_claim_rule;

/* Returns 0 when every rule holds, or -1 with `reason` naming the first that does not. */
int bff_jwt_rules_check(const bff_claim_rule *rules, size_t n, const json_t *claims, char *reason, size_t cap);
/* Frees the rules' strings and the array (NULL-safe). */
void bff_jwt_rules_free(bff_claim_rule *rules, size_t n);

#endif
