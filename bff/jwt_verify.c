/* jwt_verify: pinned-key JWT verification: header checks, then the signature with OpenSSL and a key parsed once. */
#include "jwt_verify.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Each algorithm: its name, digest, and for ECDSA the curve and the size of r and s in a signature. */
static const struct {
    const char *name;
    const char *digest;
    const char *curve;
    size_t ec_size;
} algs[BFF_JWT_ALG_COUNT] = {
    [BFF_JWT_HS256] = {"HS256", "SHA256", NULL, 0},          [BFF_JWT_HS384] = {"HS384", "SHA384", NULL, 0},
    [BFF_JWT_HS512] = {"HS512", "SHA512", NULL, 0},          [BFF_JWT_RS256] = {"RS256", "SHA256", NULL, 0},
    [BFF_JWT_RS384] = {"RS384", "SHA384", NULL, 0},          [BFF_JWT_RS512] = {"RS512", "SHA512", NULL, 0},
    [BFF_JWT_ES256] = {"ES256", "SHA256", "prime256v1", 32}, [BFF_JWT_ES384] = {"ES384", "SHA384", "secp384r1", 48},
};

static int is_hmac(bff_jwt_alg alg)
{
    return alg <= BFF_JWT_HS512;
}

/* Parses a PEM public key and checks it fits the algorithm: RSA of at least 2048 bits, or EC on its curve. */
static EVP_PKEY *parse_public_key(bff_jwt_alg alg, const void *pem, size_t len)
{
    if (len > INT32_MAX)
        return NULL;
    ERR_set_mark();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    int ok = pkey != NULL;
    if (ok && algs[alg].curve == NULL) {
        ok = EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= 2048;
    } else if (ok) {
        char group[64];
        ok = EVP_PKEY_is_a(pkey, "EC") &&
             EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group), NULL) == 1 &&
             strcmp(group, algs[alg].curve) == 0;
    }
    ERR_pop_to_mark();
    if (!ok) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

int bff_jwt_alg_parse(const char *name, bff_jwt_alg *out)
{
    for (int i = 0; i < BFF_JWT_ALG_COUNT; ++i) {
        if (strcmp(algs[i].name, name) == 0) {
            *out = (bff_jwt_alg)i;
            return 0;
        }
    }
    return -1;
}

const char *bff_jwt_alg_name(bff_jwt_alg alg)
{
    return (unsigned)alg < BFF_JWT_ALG_COUNT ? algs[alg].name : "?";
}

/* RFC 2104: the digest states after absorbing (K ^ ipad) and (K ^ opad), K being the key, or its digest when
 * longer than a block, padded with zeros to the block. Returns 0, or -ENOMEM / -EINVAL (OpenSSL failed). */
static int hmac_precompute(bff_jwt_alg alg, const unsigned char *key, size_t len, EVP_MD_CTX **inner,
                           EVP_MD_CTX **outer)
{
    const EVP_MD *md = EVP_get_digestbyname(algs[alg].digest);
    int block = md != NULL ? EVP_MD_get_block_size(md) : 0;
    unsigned char k[128], pad[128]; /* SHA-512's block is the largest */
    if (block <= 0 || block > (int)sizeof(k))
        return -EINVAL;
    memset(k, 0, sizeof(k));
    unsigned klen = 0;
    int ok = 1;
    if (len > (size_t)block)
        ok = EVP_Digest(key, len, k, &klen, md, NULL) == 1;
    else
        memcpy(k, key, len);
    *inner = EVP_MD_CTX_new();
    *outer = EVP_MD_CTX_new();
    ok = ok && *inner != NULL && *outer != NULL;
    for (int i = 0; ok && i < block; ++i)
        pad[i] = k[i] ^ 0x36;
    ok = ok && EVP_DigestInit_ex(*inner, md, NULL) == 1 && EVP_DigestUpdate(*inner, pad, (size_t)block) == 1;
    for (int i = 0; ok && i < block; ++i)
        pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(*outer, md, NULL) == 1 && EVP_DigestUpdate(*outer, pad, (size_t)block) == 1;
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    if (!ok) {
        int rc = *inner == NULL || *outer == NULL ? -ENOMEM : -EINVAL;
        EVP_MD_CTX_free(*inner);
        EVP_MD_CTX_free(*outer);
        *inner = *outer = NULL;
        return rc;
    }
    return 0;
}

/* HMAC of input with a key's precomputed pad states; mac has room for EVP_MAX_MD_SIZE. Returns 1, or 0. */
static int hmac_compute(const bff_jwt_key *key, const unsigned char *input, size_t input_len, unsigned char *mac,
                        unsigned *mac_len)
{
    unsigned char inner[EVP_MAX_MD_SIZE];
    unsigned inner_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_MD_CTX_copy_ex(ctx, key->hmac_inner) == 1 &&
             EVP_DigestUpdate(ctx, input, input_len) == 1 && EVP_DigestFinal_ex(ctx, inner, &inner_len) == 1 &&
             EVP_MD_CTX_copy_ex(ctx, key->hmac_outer) == 1 && EVP_DigestUpdate(ctx, inner, inner_len) == 1 &&
             EVP_DigestFinal_ex(ctx, mac, mac_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(inner, sizeof(inner));
    return ok;
}

int bff_jwt_config_add_key(bff_jwt_config *cfg, const char *kid, bff_jwt_alg alg, const void *material, size_t len)
{
    if (material == NULL || len == 0 || (unsigned)alg >= BFF_JWT_ALG_COUNT)
        return -EINVAL;
    EVP_PKEY *pkey = NULL;
    if (!is_hmac(alg) && (pkey = parse_public_key(alg, material, len)) == NULL)
        return -EINVAL;
    bff_jwt_key *keys = realloc(cfg->keys, (cfg->nkeys + 1) * sizeof(*keys));
    if (keys == NULL) {
        EVP_PKEY_free(pkey);
        return -ENOMEM;
    }
    cfg->keys = keys;
    bff_jwt_key *k = &keys[cfg->nkeys];
    memset(k, 0, sizeof(*k));
    k->alg = alg;
    k->material = malloc(len + 1); /* NUL-terminated, so a PEM key reads as a C string */
    k->kid = kid != NULL ? strdup(kid) : NULL;
    if (k->material == NULL || (kid != NULL && k->kid == NULL)) {
        free(k->material);
        free(k->kid);
        EVP_PKEY_free(pkey);
        return -ENOMEM;
    }
    k->pkey = pkey;
    if (is_hmac(alg)) {
        EVP_MD_CTX *inner = NULL, *outer = NULL;
        int rc = hmac_precompute(alg, material, len, &inner, &outer);
        if (rc != 0) {
            free(k->material);
            free(k->kid);
            return rc;
        }
        k->hmac_inner = inner;
        k->hmac_outer = outer;
    }
    memcpy(k->material, material, len);
    k->material[len] = '\0';
    k->len = len;
    ++cfg->nkeys;
    return 0;
}

void bff_jwt_config_release(bff_jwt_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nkeys; ++i) {
        free(cfg->keys[i].kid);
        if (cfg->keys[i].material != NULL)
            OPENSSL_cleanse(cfg->keys[i].material, cfg->keys[i].len); /* HMAC secrets do not outlive the config */
        free(cfg->keys[i].material);
        EVP_PKEY_free(cfg->keys[i].pkey);
        EVP_MD_CTX_free(cfg->keys[i].hmac_inner);
        EVP_MD_CTX_free(cfg->keys[i].hmac_outer);
    }
    free(cfg->keys);
    for (size_t i = 0; i < cfg->naudiences; ++i)
        free(cfg->audiences[i]);
    free(cfg->audiences);
    free(cfg->issuer);
    memset(cfg, 0, sizeof(*cfg));
}

static int fail(char *reason, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *reason, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url into a malloc'd NUL-terminated buffer. Returns NULL on a bad character. */
static char *b64url_decode(const char *s, size_t len, size_t *out_len)
{
    if (len % 4 == 1)
        return NULL;
    char *out = malloc(len * 3 / 4 + 3);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; ++i) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* A NumericDate claim: absent (1, *present = 0), a number (1), or anything else (0). */
static int numeric_claim(json_t *claims, const char *name, double *value, int *present)
{
    json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (v == NULL)
        return 1;
    if (!json_is_number(v))
        return 0;
    *value = json_number_value(v);
    return 1;
}

static int check_claims(const bff_jwt_config *cfg, json_t *claims, time_t now, char *reason, size_t cap)
{
    double exp = 0, nbf = 0, iat = 0, t = (double)now, leeway = (double)cfg->leeway_s;
    int has_exp, has_nbf, has_iat;
    if (!numeric_claim(claims, "exp", &exp, &has_exp) || !numeric_claim(claims, "nbf", &nbf, &has_nbf) ||
        !numeric_claim(claims, "iat", &iat, &has_iat))
        return fail(reason, cap, "exp, nbf and iat must be numbers");
    if (has_exp && t >= exp + leeway) /* RFC 7519 4.1.4: valid only before exp */
        return fail(reason, cap, "expired");
    if (has_nbf && t + leeway < nbf)
        return fail(reason, cap, "not valid yet (nbf)");
    if (has_iat && iat > t + leeway)
        return fail(reason, cap, "issued in the future (iat)");
    if (cfg->issuer != NULL) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (iss == NULL || strcmp(iss, cfg->issuer) != 0)
            return fail(reason, cap, "wrong or missing issuer");
    }
    if (cfg->naudiences > 0) {
        json_t *aud = json_object_get(claims, "aud");
        int ok = 0;
        for (size_t i = 0; i < cfg->naudiences && !ok; ++i) {
            if (json_is_string(aud)) {
                ok = strcmp(json_string_value(aud), cfg->audiences[i]) == 0;
            } else if (json_is_array(aud)) {
                size_t k;
                json_t *item;
                json_array_foreach(aud, k, item)
                {
                    if (json_is_string(item) && strcmp(json_string_value(item), cfg->audiences[i]) == 0)
                        ok = 1;
                }
            }
        }
        if (!ok)
            return fail(reason, cap, "wrong or missing audience");
    }
    return 0;
}

/* HMAC compared in constant time; RSA PKCS#1 v1.5; ECDSA with the JWS r||s signature turned into DER. */
static int verify_signature(const bff_jwt_key *key, const unsigned char *input, size_t input_len,
                            const unsigned char *sig, size_t sig_len)
{
    if (is_hmac(key->alg)) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        if (key->hmac_inner == NULL || !hmac_compute(key, input, input_len, mac, &mac_len))
            return 0;
        int ok = sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
        OPENSSL_cleanse(mac, sizeof(mac)); /* the valid signature for what the client sent */
        return ok;
    }
    const EVP_MD *md = EVP_get_digestbyname(algs[key->alg].digest);
    if (md == NULL)
        return 0;
    unsigned char *der = NULL;
    int der_len = 0;
    if (algs[key->alg].curve != NULL) {
        size_t n = algs[key->alg].ec_size;
        if (sig_len != 2 * n)
            return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)n, NULL), *s = BN_bin2bn(sig + n, (int)n, NULL);
        if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return 0;
        }
        der_len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (der_len <= 0)
            return 0;
        sig = der;
        sig_len = (size_t)der_len;
    }
    ERR_set_mark();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, input, input_len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_pop_to_mark();
    OPENSSL_free(der);
    return ok;
}

/* A header's base64url text and what it says: alg and kid. */
typedef struct header_memo {
    char text[256]; /* the base64url text; len 0: nothing remembered */
    size_t len;
    bff_jwt_alg alg;
    int has_kid;
    char kid[256];
} header_memo;

/* Decodes and checks the header (base64url text b64 of b64_len bytes): a JSON object with an accepted "alg"
 * and, if present, a string "kid" without NUL. Fills memo (remembering the text when it and the kid fit; a
 * kid too long for memo->kid goes to *long_kid, malloc'd, with has_kid 2), or returns -1 with reason set
 * and memo forgotten. */
static int read_header(const char *b64, size_t b64_len, header_memo *memo, char **long_kid, char *reason, size_t cap)
{
    memo->len = 0;
    size_t header_len;
    char *header_text = b64url_decode(b64, b64_len, &header_len);
    if (header_text == NULL)
        return fail(reason, cap, "header is not base64url");
    json_error_t jerr;
    json_t *header = json_loadb(header_text, header_len, 0, &jerr);
    free(header_text);
    if (!json_is_object(header)) {
        json_decref(header);
        return fail(reason, cap, "header is not a JSON object");
    }
    const char *alg_name = json_string_value(json_object_get(header, "alg"));
    json_t *kid_value = json_object_get(header, "kid");
    if (alg_name == NULL || bff_jwt_alg_parse(alg_name, &memo->alg) != 0) {
        int rc = fail(reason, cap, "algorithm \"%s\" is not accepted", alg_name != NULL ? alg_name : "(missing)");
        json_decref(header);
        return rc;
    }
    if (kid_value != NULL && !json_is_string(kid_value)) {
        json_decref(header);
        return fail(reason, cap, "kid is not a string");
    }
    const char *kid = json_string_value(kid_value);
    size_t kid_len = kid_value != NULL ? json_string_length(kid_value) : 0;
    if (kid != NULL && strlen(kid) != kid_len) {
        int rc = fail(reason, cap, "kid has a NUL character");
        json_decref(header);
        return rc;
    }
    memo->has_kid = kid == NULL ? 0 : kid_len < sizeof(memo->kid) ? 1 : 2;
    if (memo->has_kid == 1)
        memcpy(memo->kid, kid, kid_len + 1);
    if (memo->has_kid == 2 && (*long_kid = strdup(kid)) == NULL) {
        json_decref(header);
        return fail(reason, cap, "out of memory");
    }
    json_decref(header);
    if (memo->has_kid != 2 && b64_len <= sizeof(memo->text)) {
        memcpy(memo->text, b64, b64_len);
        memo->len = b64_len;
    }
    return 0;
}

int bff_jwt_verify(const bff_jwt_config *cfg, const char *token, size_t len, time_t now, json_t **claims, char *reason,
                   size_t cap)
{
    *claims = NULL;
    size_t max = cfg->max_token_bytes != 0 ? cfg->max_token_bytes : BFF_JWT_DEFAULT_MAX_TOKEN;
    if (len == 0)
        return fail(reason, cap, "empty token");
    if (len > max) /* libjwt decodes on the stack: refuse before it sees anything large */
        return fail(reason, cap, "token longer than %zu bytes", max);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL ||
        dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == token + len)
        return fail(reason, cap, "not three non-empty base64url parts");
    for (size_t i = 0; i < len; ++i) {
        if (token[i] != '.' && b64url_value((unsigned char)token[i]) < 0)
            return fail(reason, cap, "not base64url");
    }

    /* The header: its alg and kid, from the last header this thread read when the bytes are the same (tokens
     * of one issuer share a header), else parsed. */
    static __thread header_memo memo;
    size_t header_b64_len = (size_t)(dot1 - token);
    json_error_t jerr;
    char *long_kid = NULL;
    if (memo.len == 0 || memo.len != header_b64_len || memcmp(memo.text, token, header_b64_len) != 0) {
        int rc = read_header(token, header_b64_len, &memo, &long_kid, reason, cap);
        if (rc != 0)
            return rc;
    }
    bff_jwt_alg alg = memo.alg;
    const char *kid = memo.has_kid == 2 ? long_kid : memo.has_kid ? memo.kid : NULL;
    const bff_jwt_key *key = NULL;
    for (size_t i = 0; i < cfg->nkeys; ++i) {
        const bff_jwt_key *k = &cfg->keys[i];
        if (kid != NULL ? (k->kid != NULL && strcmp(k->kid, kid) == 0) : cfg->nkeys == 1)
            key = k;
    }
    if (key == NULL) {
        int rc = kid != NULL ? fail(reason, cap, "no key with kid \"%.64s\"", kid)
                             : fail(reason, cap, "the token has no kid and several keys are configured");
        free(long_kid);
        return rc;
    }
    free(long_kid);
    if (key->alg != alg)
        return fail(reason, cap, "algorithm %s does not match the key's %s", bff_jwt_alg_name(alg),
                    bff_jwt_alg_name(key->alg));
    if (key->len == 0 || (!is_hmac(alg) && key->pkey == NULL))
        return fail(reason, cap, "empty key");

    /* Only now the signature, with the pinned key, over "header.payload". */
    size_t sig_len;
    unsigned char *sig = (unsigned char *)b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig_len);
    if (sig == NULL)
        return fail(reason, cap, "signature is not base64url");
    int ok = verify_signature(key, (const unsigned char *)token, (size_t)(dot2 - token), sig, sig_len);
    free(sig);
    if (!ok)
        return fail(reason, cap, "invalid signature");

    size_t payload_len;
    char *payload = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload_len);
    if (payload == NULL)
        return fail(reason, cap, "payload is not base64url");
    json_t *parsed = json_loadb(payload, payload_len, JSON_REJECT_DUPLICATES, &jerr);
    free(payload);
    if (!json_is_object(parsed)) {
        json_decref(parsed);
        return fail(reason, cap, "the claims are not a JSON object");
    }
    if (check_claims(cfg, parsed, now, reason, cap) != 0) {
        json_decref(parsed);
        return -1;
    }
    *claims = parsed;
    return 0;
}

static int contains_word(const char *text, const char *word)
{
    size_t wlen = strlen(word);
    for (const char *p = text; *p != '\0';) {
        while (*p == ' ')
            ++p;
        const char *end = strchr(p, ' ');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == wlen && memcmp(p, word, len) == 0)
            return 1;
        p += len;
    }
    return 0;
}

int bff_jwt_rules_check(const bff_claim_rule *rules, size_t n, const json_t *claims, char *reason, size_t cap)
{
    for (size_t i = 0; i < n; ++i) {
        const bff_claim_rule *r = &rules[i];
        json_t *v = json_object_get(claims, r->claim);
        int ok = v != NULL;
        if (ok && r->op == BFF_CLAIM_EQUALS)
            ok = json_is_string(v) && strcmp(json_string_value(v), r->value) == 0;
        if (ok && r->op == BFF_CLAIM_CONTAINS) {
            if (json_is_string(v)) {
                ok = contains_word(json_string_value(v), r->value);
            } else if (json_is_array(v)) {
                size_t k;
                json_t *item;
                ok = 0;
                json_array_foreach(v, k, item)
                {
                    if (json_is_string(item) && strcmp(json_string_value(item), r->value) == 0)
                        ok = 1;
                }
            } else {
                ok = 0;
            }
        }
        if (v == NULL)
            return fail(reason, cap, "claim \"%s\" is missing", r->claim);
        if (!ok)
            return fail(reason, cap, "claim \"%s\" %s \"%s\"", r->claim, r->op == BFF_CLAIM_EQUALS ? "is not" : "lacks",
                        r->value);
    }
    return 0;
}

void bff_jwt_rules_free(bff_claim_rule *rules, size_t n)
{
    for (size_t i = 0; rules != NULL && i < n; ++i) {
        free(rules[i].claim);
        free(rules[i].value);
    }
    free(rules);
}
