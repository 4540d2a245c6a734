/* jwks: RFC 7517 key sets to pinned JWT keys; RSA and EC keys are rebuilt with OpenSSL 3 and written as PEM. */
#include "jwks.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384 /* OpenSSL refuses to verify with a larger modulus */
#define RSA_MAX_E_BITS 64  /* and, above 3072-bit moduli, with a larger exponent */

/* Where a message about one key goes. */
typedef struct key_error {
    char *err;
    size_t cap;
    size_t index;
} key_error;

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "keys[i].field: message", or "keys[i]: message" when field is NULL. */
static int key_fail(const key_error *ke, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int key_fail(const key_error *ke, const char *field, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (field != NULL)
        return fail(ke->err, ke->cap, "keys[%zu].%s: %s", ke->index, field, message);
    return fail(ke->err, ke->cap, "keys[%zu]: %s", ke->index, message);
}

/* A document's string for a message: at most 32 characters, anything unprintable as '?'. */
typedef struct quoted {
    char text[40];
} quoted;

static quoted quote(const char *s)
{
    quoted q;
    size_t n = 0;
    for (; s[n] != '\0' && n < 32; ++n)
        q.text[n] = (s[n] >= 0x20 && s[n] < 0x7f) ? s[n] : '?';
    if (s[n] != '\0') {
        memcpy(q.text + n, "...", 3);
        n += 3;
    }
    q.text[n] = '\0';
    return q;
}

static void free_secret(unsigned char *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
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

/* Strict unpadded base64url: only the alphabet, no '=', and zero bits after the last byte (one encoding per
 * value). Returns 0 with *out malloc'd (*out_len bytes), -EINVAL, or -ENOMEM. */
static int b64url_decode_strict(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    if (len % 4 == 1)
        return -EINVAL;
    for (size_t i = 0; i < len; ++i) {
        if (b64url_value((unsigned char)s[i]) < 0)
            return -EINVAL;
    }
    size_t cap = len / 4 * 3 + 2;
    unsigned char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; ++i) {
        acc = ((acc << 6) | (uint32_t)b64url_value((unsigned char)s[i])) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0) {
        free_secret(buf, cap);
        return -EINVAL;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* A string member: 0 with *out set (NULL when absent and optional), or -1 with the message set. */
static int string_member(json_t *key, const char *name, int required, const char **out, const key_error *ke)
{
    json_t *v = json_object_get(key, name);
    *out = NULL;
    if (v == NULL)
        return required ? key_fail(ke, name, "missing") : 0;
    if (!json_is_string(v))
        return key_fail(ke, name, "not a string");
    *out = json_string_value(v);
    return 0;
}

/* A required non-empty base64url member, decoded into *out (malloc'd; the caller frees it with free_secret). */
static int decoded_member(json_t *key, const char *name, unsigned char **out, size_t *out_len, const key_error *ke)
{
    const char *text;
    *out = NULL;
    *out_len = 0;
    if (string_member(key, name, 1, &text, ke) != 0)
        return -1;
    size_t len = json_string_length(json_object_get(key, name));
    if (len == 0)
        return key_fail(ke, name, "empty");
    int rc = b64url_decode_strict(text, len, out, out_len);
    if (rc == -ENOMEM)
        return key_fail(ke, name, "out of memory");
    if (rc != 0)
        return key_fail(ke, name, "not base64url (unpadded, A-Z a-z 0-9 - _ only)");
    return 0;
}

/*
 * The key's "alg", which must be one of `allowed` (`allowed_text` lists them for the message); `what` names the
 * key ("an RSA key"). When absent: an error if required, otherwise *out = allowed[0].
 */
static int key_alg(json_t *key, const bff_jwt_alg *allowed, size_t nallowed, const char *what, const char *allowed_text,
                   int required, bff_jwt_alg *out, const key_error *ke)
{
    const char *name;
    if (string_member(key, "alg", 0, &name, ke) != 0)
        return -1;
    if (name == NULL) {
        if (required)
            return key_fail(ke, NULL, "%s needs \"alg\" (%s)", what, allowed_text);
        *out = allowed[0];
        return 0;
    }
    if (strcmp(name, "none") == 0)
        return key_fail(ke, "alg", "\"none\" is never accepted");
    bff_jwt_alg alg;
    if (bff_jwt_alg_parse(name, &alg) == 0) {
        for (size_t i = 0; i < nallowed; ++i) {
            if (allowed[i] == alg) {
                *out = alg;
                return 0;
            }
        }
    }
    return key_fail(ke, "alg", "\"%s\" is not accepted for %s (%s)", quote(name).text, what, allowed_text);
}

/* RSA and EC keys here are public: a private member means a private key was published by mistake. */
static int refuse_private_members(json_t *key, const key_error *ke)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); ++i) {
        if (json_object_get(key, private_members[i]) != NULL)
            return key_fail(ke, private_members[i],
                            "a private key member; a JWKS for verification holds public keys only");
    }
    return 0;
}

/* OpenSSL's last reason in this call, for a message. */
static const char *openssl_reason(void)
{
    const char *reason = ERR_reason_error_string(ERR_peek_last_error());
    return reason != NULL ? reason : "no reason given";
}

static int public_check(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* Builds a public key of `type` ("RSA", "EC") from the parameters in `bld`. NULL with the message set. */
static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, const char *what, const key_error *ke)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params != NULL ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *pkey = NULL;
    if (ctx == NULL) {
        key_fail(ke, NULL, "out of memory");
    } else if (EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        key_fail(ke, NULL, "%s: OpenSSL refused the key (%s)", what, openssl_reason());
        pkey = NULL;
    } else if (!public_check(pkey)) {
        key_fail(ke, NULL, "%s: OpenSSL's public key check failed (%s)", what, openssl_reason());
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* Adds `pkey` to `scratch` as a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----"), which libjwt reads. */
static int add_pkey(bff_jwt_config *scratch, const char *kid, bff_jwt_alg alg, EVP_PKEY *pkey, const key_error *ke)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    int rc = -1;
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0) {
        key_fail(ke, NULL, "cannot write the public key as PEM (%s)", openssl_reason());
    } else {
        int added = bff_jwt_config_add_key(scratch, kid, alg, data, (size_t)n);
        rc = added == 0 ? 0 : key_fail(ke, NULL, "%s", added == -ENOMEM ? "out of memory" : "cannot add the key");
    }
    BIO_free(bio);
    return rc;
}

static int add_rsa(bff_jwt_config *scratch, const char *kid, json_t *key, const key_error *ke)
{
    static const bff_jwt_alg algs[] = {BFF_JWT_RS256, BFF_JWT_RS384, BFF_JWT_RS512};
    bff_jwt_alg alg;
    if (key_alg(key, algs, 3, "an RSA key", "RS256, RS384 or RS512", 1, &alg, ke) != 0 ||
        refuse_private_members(key, ke) != 0)
        return -1;

    unsigned char *n = NULL, *e = NULL;
    size_t n_len = 0, e_len = 0;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = -1;
    if (decoded_member(key, "n", &n, &n_len, ke) != 0 || decoded_member(key, "e", &e, &e_len, ke) != 0)
        goto out;
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL) {
        key_fail(ke, NULL, "out of memory");
        goto out;
    }
    int bits = BN_num_bits(bn_n); /* leading zero bytes do not count */
    if (bits < RSA_MIN_BITS) {
        key_fail(ke, "n", "the modulus has %d bits; at least %d are required", bits, RSA_MIN_BITS);
        goto out;
    }
    if (bits > RSA_MAX_BITS) {
        key_fail(ke, "n", "the modulus has %d bits; at most %d are supported", bits, RSA_MAX_BITS);
        goto out;
    }
    if (BN_num_bits(bn_e) > RSA_MAX_E_BITS) {
        key_fail(ke, "e", "the exponent has %d bits; at most %d are supported", BN_num_bits(bn_e), RSA_MAX_E_BITS);
        goto out;
    }
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1) {
        key_fail(ke, NULL, "out of memory");
        goto out;
    }
    pkey = pkey_from_params("RSA", bld, "n and e are not an RSA public key", ke);
    if (pkey != NULL)
        rc = add_pkey(scratch, kid, alg, pkey, ke);
out:
    EVP_PKEY_free(pkey);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free_secret(n, n_len);
    free_secret(e, e_len);
    return rc;
}

static const struct curve {
    const char *crv;   /* JWK name */
    const char *group; /* OpenSSL name */
    size_t size;       /* bytes per coordinate */
    bff_jwt_alg alg;   /* the only algorithm for the curve */
    const char *what;  /* for messages */
} curves[] = {
    {"P-256", "prime256v1", 32, BFF_JWT_ES256, "a P-256 EC key"},
    {"P-384", "secp384r1", 48, BFF_JWT_ES384, "a P-384 EC key"},
};

#define EC_MAX_COORDINATE 48

static int add_ec(bff_jwt_config *scratch, const char *kid, json_t *key, const key_error *ke)
{
    const char *crv;
    if (string_member(key, "crv", 1, &crv, ke) != 0)
        return -1;
    const struct curve *curve = NULL;
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); ++i) {
        if (strcmp(crv, curves[i].crv) == 0)
            curve = &curves[i];
    }
    if (curve == NULL)
        return key_fail(ke, "crv", "\"%s\" is not supported (P-256 or P-384)", quote(crv).text);
    bff_jwt_alg alg;
    if (key_alg(key, &curve->alg, 1, curve->what, bff_jwt_alg_name(curve->alg), 0, &alg, ke) != 0 ||
        refuse_private_members(key, ke) != 0)
        return -1;

    unsigned char *x = NULL, *y = NULL;
    size_t x_len = 0, y_len = 0;
    unsigned char point[1 + 2 * EC_MAX_COORDINATE];
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = -1;
    if (decoded_member(key, "x", &x, &x_len, ke) != 0 || decoded_member(key, "y", &y, &y_len, ke) != 0)
        goto out;
    if (x_len != curve->size || y_len != curve->size) {
        key_fail(ke, x_len != curve->size ? "x" : "y", "%zu bytes; %s needs exactly %zu",
                 x_len != curve->size ? x_len : y_len, curve->crv, curve->size);
        goto out;
    }
    point[0] = 0x04; /* uncompressed: 0x04 || x || y */
    memcpy(point + 1, x, curve->size);
    memcpy(point + 1 + curve->size, y, curve->size);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve->group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * curve->size) != 1) {
        key_fail(ke, NULL, "out of memory");
        goto out;
    }
    char what[64];
    snprintf(what, sizeof(what), "x and y are not a point on %s", curve->crv);
    pkey = pkey_from_params("EC", bld, what, ke);
    if (pkey != NULL)
        rc = add_pkey(scratch, kid, alg, pkey, ke);
out:
    OPENSSL_cleanse(point, sizeof(point));
    EVP_PKEY_free(pkey);
    OSSL_PARAM_BLD_free(bld);
    free_secret(x, x_len);
    free_secret(y, y_len);
    return rc;
}

static int add_oct(bff_jwt_config *scratch, const char *kid, json_t *key, const key_error *ke)
{
    static const bff_jwt_alg algs[] = {BFF_JWT_HS256, BFF_JWT_HS384, BFF_JWT_HS512};
    bff_jwt_alg alg;
    unsigned char *k = NULL;
    size_t k_len = 0;
    if (key_alg(key, algs, 3, "an oct key", "HS256, HS384 or HS512", 1, &alg, ke) != 0 ||
        decoded_member(key, "k", &k, &k_len, ke) != 0)
        return -1;
    int added = bff_jwt_config_add_key(scratch, kid, alg, k, k_len);
    free_secret(k, k_len);
    if (added != 0)
        return key_fail(ke, "k", "%s", added == -ENOMEM ? "out of memory" : "cannot add the key");
    return 0;
}

/* A key without "use":"sig" or without "verify" in "key_ops" is not for us: 1 to skip, 0 to load, -1 if malformed. */
static int skipped(json_t *key, const key_error *ke)
{
    const char *use;
    if (string_member(key, "use", 0, &use, ke) != 0)
        return -1;
    int skip = use != NULL && strcmp(use, "sig") != 0;
    json_t *ops = json_object_get(key, "key_ops");
    if (ops != NULL) {
        if (!json_is_array(ops))
            return key_fail(ke, "key_ops", "not an array");
        int verify = 0;
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op)
        {
            if (!json_is_string(op))
                return key_fail(ke, "key_ops", "item %zu is not a string", i);
            if (strcmp(json_string_value(op), "verify") == 0)
                verify = 1;
        }
        skip = skip || !verify;
    }
    return skip;
}

/* The kid of keys[index] must not be used by a key already in `cfg` or an earlier loaded key in the document. */
static int kid_unique(const bff_jwt_config *cfg, json_t *keys, const char *kid, const key_error *ke)
{
    for (size_t i = 0; i < cfg->nkeys; ++i) {
        if (cfg->keys[i].kid != NULL && strcmp(cfg->keys[i].kid, kid) == 0)
            return key_fail(ke, "kid", "\"%s\" is already used by a configured key", quote(kid).text);
    }
    for (size_t j = 0; j < ke->index; ++j) {
        json_t *other = json_array_get(keys, j);
        const char *other_kid = json_string_value(json_object_get(other, "kid"));
        key_error quiet = {NULL, 0, j};
        if (other_kid != NULL && strcmp(other_kid, kid) == 0 && skipped(other, &quiet) == 0)
            return key_fail(ke, "kid", "\"%s\" is already used by keys[%zu]", quote(kid).text, j);
    }
    return 0;
}

static int load_key(bff_jwt_config *scratch, const bff_jwt_config *cfg, json_t *keys, const key_error *ke)
{
    json_t *key = json_array_get(keys, ke->index);
    if (!json_is_object(key))
        return key_fail(ke, NULL, "not a JSON object");
    int skip = skipped(key, ke);
    if (skip != 0)
        return skip < 0 ? -1 : 0;
    const char *kty, *kid;
    if (string_member(key, "kty", 1, &kty, ke) != 0 || string_member(key, "kid", 0, &kid, ke) != 0)
        return -1;
    if (kid != NULL && kid_unique(cfg, keys, kid, ke) != 0)
        return -1;
    if (strcmp(kty, "RSA") == 0)
        return add_rsa(scratch, kid, key, ke);
    if (strcmp(kty, "EC") == 0)
        return add_ec(scratch, kid, key, ke);
    if (strcmp(kty, "oct") == 0)
        return add_oct(scratch, kid, key, ke);
    return key_fail(ke, "kty", "\"%s\" is not supported (RSA, EC or oct)", quote(kty).text);
}

/* Frees a scratch config (bff_jwt_config_release zeroes its HMAC secrets too; zeroing twice is harmless). */
static void scratch_release(bff_jwt_config *scratch)
{
    for (size_t i = 0; i < scratch->nkeys; ++i)
        OPENSSL_cleanse(scratch->keys[i].material, scratch->keys[i].len);
    bff_jwt_config_release(scratch);
}

/* Zeroes the "k" strings jansson holds (its own malloc'd copies, written through the const pointer it returns). */
static void cleanse_secrets(json_t *keys)
{
    size_t i;
    json_t *key;
    json_array_foreach(keys, i, key)
    {
        json_t *k = json_object_get(key, "k");
        if (json_is_string(k))
            OPENSSL_cleanse((char *)json_string_value(k), json_string_length(k));
    }
}

int bff_jwks_load(bff_jwt_config *cfg, const char *text, size_t len, char *err, size_t cap)
{
    if (err != NULL && cap > 0)
        err[0] = '\0';
    if (cfg == NULL || (text == NULL && len > 0))
        return fail(err, cap, "no config or no text");
    json_error_t jerr;
    json_t *doc = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return fail(err, cap, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);

    bff_jwt_config scratch = {0};
    json_t *keys = json_object_get(doc, "keys");
    size_t skipped_keys = 0;
    int rc = -1;
    ERR_set_mark(); /* OpenSSL errors raised here are popped: the caller's error queue is left as it was */
    if (!json_is_object(doc)) {
        fail(err, cap, "the JWKS is not a JSON object");
        goto out;
    }
    if (keys == NULL) {
        fail(err, cap, "\"keys\" is missing");
        goto out;
    }
    if (!json_is_array(keys)) {
        fail(err, cap, "\"keys\" is not an array");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(keys); ++i) {
        key_error ke = {err, cap, i};
        size_t before = scratch.nkeys;
        if (load_key(&scratch, cfg, keys, &ke) != 0)
            goto out;
        skipped_keys += scratch.nkeys == before;
    }
    if (scratch.nkeys == 0) {
        fail(err, cap, "no signature keys (%zu skipped)", skipped_keys);
        goto out;
    }
    if (scratch.nkeys > INT_MAX) {
        fail(err, cap, "too many keys");
        goto out;
    }

    /* Everything is valid: move the keys over; only the array's growth can fail, and it leaves cfg as it was. */
    bff_jwt_key *grown = realloc(cfg->keys, (cfg->nkeys + scratch.nkeys) * sizeof(*grown));
    if (grown == NULL) {
        fail(err, cap, "out of memory");
        goto out;
    }
    memcpy(grown + cfg->nkeys, scratch.keys, scratch.nkeys * sizeof(*grown));
    cfg->keys = grown;
    cfg->nkeys += scratch.nkeys;
    rc = (int)scratch.nkeys;
    free(scratch.keys);
    memset(&scratch, 0, sizeof(scratch));
out:
    ERR_pop_to_mark();
    scratch_release(&scratch);
    if (json_is_array(keys))
        cleanse_secrets(keys);
    json_decref(doc);
    return rc;
}
