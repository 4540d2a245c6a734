/* Unit tests for bff/jwks: RSA, EC and oct JWKs become keys that verify libjwt's tokens; every refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bff/jwks.h"
#include "bff/jwt_verify.h"

#define NOW ((time_t)1800000000)

static const char SECRET[] = "jwks-secret-0123456789abcdef0123456789abcdef";
static const char OTHER_SECRET[] = "jwks-other-fedcba9876543210fedcba9876543210";

/* One key pair: its private PEM for signing, its JWK members for the set, its public PEM to compare. */
typedef struct test_key {
    char *private_pem;
    char *public_pem;
    char *n, *e; /* RSA */
    char *x, *y; /* EC */
} test_key;

static struct {
    test_key rsa, rsa_other, rsa_1024;
    test_key p256, p256_other, p384;
    char *secret_k, *other_secret_k;
} keys;

static char last_err[512];

/* ---- strings the tests build: freed after each test ---- */

static char *strings[512];
static size_t nstrings;

static char *keep(char *s)
{
    assert_non_null(s);
    assert_true(nstrings < sizeof(strings) / sizeof(strings[0]));
    strings[nstrings++] = s;
    return s;
}

static char *sfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    return keep(s);
}

static int free_strings(void **state)
{
    (void)state;
    for (size_t i = 0; i < nstrings; i++)
        free(strings[i]);
    nstrings = 0;
    return 0;
}

/* {"keys":[k1,k2,...]} from JWK texts, NULL-terminated. */
static char *jwks(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    char *s = sfmt("{\"keys\":[%s", first != NULL ? first : "");
    for (const char *k = first != NULL ? va_arg(ap, const char *) : NULL; k != NULL; k = va_arg(ap, const char *))
        s = sfmt("%s,%s", s, k);
    va_end(ap);
    return sfmt("%s]}", s);
}

static char *rsa_jwk(const test_key *k, const char *kid, const char *alg)
{
    return sfmt("{\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}", kid, alg, k->n, k->e);
}

static char *ec_jwk(const test_key *k, const char *kid, const char *crv)
{
    return sfmt("{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid, crv, k->x, k->y);
}

static char *oct_jwk(const char *k, const char *kid, const char *alg)
{
    return sfmt("{\"kty\":\"oct\",\"kid\":\"%s\",\"alg\":\"%s\",\"k\":\"%s\"}", kid, alg, k);
}

/* ---- key generation ---- */

static char *base64url(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    assert_non_null(out);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    assert_true(n >= 0);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p != '\0'; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    return out;
}

/* Decodes the test's own base64url (valid by construction) through OpenSSL's base64. */
static unsigned char *unbase64url(const char *s, size_t *out_len)
{
    size_t len = strlen(s);
    char *b64 = malloc(len + 3);
    assert_non_null(b64);
    for (size_t i = 0; i < len; i++)
        b64[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    size_t padded = len;
    while (padded % 4 != 0)
        b64[padded++] = '=';
    unsigned char *out = malloc(padded / 4 * 3 + 1);
    assert_non_null(out);
    int n = EVP_DecodeBlock(out, (unsigned char *)b64, (int)padded);
    assert_true(n >= 0);
    free(b64);
    *out_len = len * 3 / 4; /* EVP_DecodeBlock counts padding as zero bytes */
    return out;
}

static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

static void pems(EVP_PKEY *pkey, test_key *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    k->private_pem = bio_to_string(bio);
    BIO_free(bio);
    bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    k->public_pem = bio_to_string(bio);
    BIO_free(bio);
}

static char *bn_param_b64(EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, name, &bn), 1);
    int len = BN_num_bytes(bn);
    unsigned char *buf = malloc((size_t)len);
    assert_non_null(buf);
    assert_int_equal(BN_bn2bin(bn, buf), len);
    char *s = base64url(buf, (size_t)len);
    free(buf);
    BN_free(bn);
    return s;
}

static void make_rsa(test_key *k, size_t bits)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    assert_non_null(pkey);
    pems(pkey, k);
    k->n = bn_param_b64(pkey, OSSL_PKEY_PARAM_RSA_N);
    k->e = bn_param_b64(pkey, OSSL_PKEY_PARAM_RSA_E);
    EVP_PKEY_free(pkey);
}

static void make_ec(test_key *k, const char *curve, size_t size)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(pkey);
    pems(pkey, k);
    unsigned char point[1 + 2 * 48];
    size_t len = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len), 1);
    assert_int_equal(len, 1 + 2 * size);
    assert_int_equal(point[0], 0x04);
    k->x = base64url(point + 1, size);
    k->y = base64url(point + 1 + size, size);
    EVP_PKEY_free(pkey);
}

static int generate_keys(void **state)
{
    (void)state;
    make_rsa(&keys.rsa, 2048);
    make_rsa(&keys.rsa_other, 2048);
    make_rsa(&keys.rsa_1024, 1024);
    make_ec(&keys.p256, "P-256", 32);
    make_ec(&keys.p256_other, "P-256", 32);
    make_ec(&keys.p384, "P-384", 48);
    keys.secret_k = base64url(SECRET, strlen(SECRET));
    keys.other_secret_k = base64url(OTHER_SECRET, strlen(OTHER_SECRET));
    return 0;
}

static void free_key(test_key *k)
{
    free(k->private_pem);
    free(k->public_pem);
    free(k->n);
    free(k->e);
    free(k->x);
    free(k->y);
}

static int free_keys(void **state)
{
    (void)state;
    free_key(&keys.rsa);
    free_key(&keys.rsa_other);
    free_key(&keys.rsa_1024);
    free_key(&keys.p256);
    free_key(&keys.p256_other);
    free_key(&keys.p384);
    free(keys.secret_k);
    free(keys.other_secret_k);
    memset(&keys, 0, sizeof(keys));
    return 0;
}

/* ---- tokens and verification ---- */

static char *make_token(jwt_alg_t alg, const char *key, const char *kid, const char *sub)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    if (kid != NULL)
        assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_add_grant(jwt, "sub", sub), 0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    jwt_free(jwt);
    return keep(token);
}

/* 0 when cfg accepts the token and its "sub" is `sub`; -1 when refused. */
static int verify(const bff_jwt_config *cfg, const char *token, const char *sub)
{
    char reason[256] = "";
    json_t *claims = NULL;
    int rc = bff_jwt_verify(cfg, token, strlen(token), NOW, &claims, reason, sizeof(reason));
    if (rc == 0) {
        assert_non_null(claims);
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), sub);
        json_decref(claims);
    } else {
        assert_int_equal(rc, -1);
    }
    return rc;
}

/* ---- loading ---- */

static int load_len(bff_jwt_config *cfg, const char *text, size_t len)
{
    memset(last_err, 'X', sizeof(last_err) - 1);
    last_err[sizeof(last_err) - 1] = '\0';
    int rc = bff_jwks_load(cfg, text, len, last_err, sizeof(last_err));
    if (rc >= 0) {
        if (rc == 0)
            fail_msg("returned 0 keys without an error");
    } else {
        if (rc != -1)
            fail_msg("an error returned %d, not -1", rc);
        if (last_err[0] == '\0' || last_err[0] == 'X')
            fail_msg("an error without a message");
    }
    return rc;
}

static int load(bff_jwt_config *cfg, const char *text)
{
    return load_len(cfg, text, strlen(text));
}

static void assert_err_contains(const char *needle)
{
    if (strstr(last_err, needle) == NULL)
        fail_msg("the error \"%s\" does not contain \"%s\"", last_err, needle);
}

/*
 * Loading `text` into a config that already holds an HMAC key "pre" fails with a message containing `where`
 * and `what`, and leaves the config exactly as it was: same array, same key, still verifying.
 */
static void expect_error(const char *text, const char *where, const char *what)
{
    bff_jwt_config cfg = {0};
    assert_int_equal(bff_jwt_config_add_key(&cfg, "pre", BFF_JWT_HS256, SECRET, strlen(SECRET)), 0);
    bff_jwt_key *before_keys = cfg.keys;
    char *before_kid = cfg.keys[0].kid;
    unsigned char *before_material = cfg.keys[0].material;

    if (load(&cfg, text) != -1)
        fail_msg("accepted %s", text);
    if (strstr(last_err, where) == NULL || (what != NULL && strstr(last_err, what) == NULL))
        fail_msg("the error \"%s\" does not name \"%s\" and \"%s\" (for %s)", last_err, where, what ? what : "", text);
    assert_int_equal(cfg.nkeys, 1);
    assert_ptr_equal(cfg.keys, before_keys);
    assert_ptr_equal(cfg.keys[0].kid, before_kid);
    assert_ptr_equal(cfg.keys[0].material, before_material);
    assert_int_equal(cfg.keys[0].len, strlen(SECRET));
    assert_memory_equal(cfg.keys[0].material, SECRET, strlen(SECRET));
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS256, SECRET, "pre", "u"), "u"), 0);
    bff_jwt_config_release(&cfg);
}

/* ---- accepted keys ---- */

static void test_rsa_key_verifies(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    assert_int_equal(load(&cfg, jwks(rsa_jwk(&keys.rsa, "r1", "RS256"), NULL)), 1);
    assert_int_equal(cfg.nkeys, 1);
    assert_string_equal(cfg.keys[0].kid, "r1");
    assert_int_equal(cfg.keys[0].alg, BFF_JWT_RS256);
    /* The PEM is the one OpenSSL writes for the original key. */
    assert_string_equal((const char *)cfg.keys[0].material, keys.rsa.public_pem);
    assert_int_equal(cfg.keys[0].len, strlen(keys.rsa.public_pem));

    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS256, keys.rsa.private_pem, "r1", "rsa-user"), "rsa-user"), 0);
    /* Another key pair under the same kid, an unknown kid, another RSA algorithm. */
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS256, keys.rsa_other.private_pem, "r1", "x"), "x"), -1);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS256, keys.rsa.private_pem, "r2", "x"), "x"), -1);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS512, keys.rsa.private_pem, "r1", "x"), "x"), -1);
    bff_jwt_config_release(&cfg);

    /* RS384 and RS512 pins. */
    assert_int_equal(load(&cfg, jwks(rsa_jwk(&keys.rsa, "a", "RS384"), rsa_jwk(&keys.rsa, "b", "RS512"), NULL)), 2);
    assert_int_equal(cfg.keys[0].alg, BFF_JWT_RS384);
    assert_int_equal(cfg.keys[1].alg, BFF_JWT_RS512);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS384, keys.rsa.private_pem, "a", "u384"), "u384"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS512, keys.rsa.private_pem, "b", "u512"), "u512"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS512, keys.rsa.private_pem, "a", "x"), "x"), -1);
    bff_jwt_config_release(&cfg);
}

static void test_rsa_modulus_with_leading_zero_octet(void **state)
{
    (void)state;
    /* Some libraries write n with a leading zero octet (RFC 7518 6.3.1.1 says not to): same key, same bits. */
    size_t n_len = 0;
    unsigned char *n = unbase64url(keys.rsa.n, &n_len);
    assert_int_equal(n_len, 256);
    unsigned char *zero_n = malloc(n_len + 1);
    assert_non_null(zero_n);
    zero_n[0] = 0;
    memcpy(zero_n + 1, n, n_len);
    char *padded_n = keep(base64url(zero_n, n_len + 1));
    free(n);
    free(zero_n);

    bff_jwt_config cfg = {0};
    assert_int_equal(
        load(&cfg,
             jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}", padded_n, keys.rsa.e), NULL)),
        1);
    assert_null(cfg.keys[0].kid);
    assert_string_equal((const char *)cfg.keys[0].material, keys.rsa.public_pem);
    /* A single key without kid serves tokens without kid. */
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS256, keys.rsa.private_pem, NULL, "nokid"), "nokid"), 0);
    bff_jwt_config_release(&cfg);
}

static void test_ec_p256_key_verifies(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    /* "alg" is optional for EC: the curve decides. */
    assert_int_equal(load(&cfg, jwks(ec_jwk(&keys.p256, "e1", "P-256"), NULL)), 1);
    assert_int_equal(cfg.keys[0].alg, BFF_JWT_ES256);
    assert_string_equal((const char *)cfg.keys[0].material, keys.p256.public_pem);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES256, keys.p256.private_pem, "e1", "ec-user"), "ec-user"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES256, keys.p256_other.private_pem, "e1", "x"), "x"), -1);
    bff_jwt_config_release(&cfg);

    /* With an explicit, matching alg. */
    assert_int_equal(load(&cfg, jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES256\",\"kid\":\"e2\",\"x\":"
                                          "\"%s\",\"y\":\"%s\",\"use\":\"sig\"}",
                                          keys.p256.x, keys.p256.y),
                                     NULL)),
                     1);
    assert_int_equal(cfg.keys[0].alg, BFF_JWT_ES256);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES256, keys.p256.private_pem, "e2", "ec2"), "ec2"), 0);
    bff_jwt_config_release(&cfg);
}

static void test_ec_p384_key_verifies(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    assert_int_equal(load(&cfg, jwks(ec_jwk(&keys.p384, "e384", "P-384"), NULL)), 1);
    assert_int_equal(cfg.keys[0].alg, BFF_JWT_ES384);
    assert_string_equal((const char *)cfg.keys[0].material, keys.p384.public_pem);
    /* libjwt 1.10 reads the PEM written for a P-384 key and verifies ES384 with it. */
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES384, keys.p384.private_pem, "e384", "u384"), "u384"), 0);
    /* A P-256 private key's ES256 token under the P-384 kid: the pinned ES384 refuses it. */
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES256, keys.p256.private_pem, "e384", "x"), "x"), -1);
    bff_jwt_config_release(&cfg);
}

static void test_oct_key_verifies(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    assert_int_equal(
        load(&cfg, jwks(oct_jwk(keys.secret_k, "h1", "HS256"), oct_jwk(keys.secret_k, "h5", "HS512"), NULL)), 2);
    /* The material is the decoded secret, not its base64url text. */
    assert_int_equal(cfg.keys[0].len, strlen(SECRET));
    assert_memory_equal(cfg.keys[0].material, SECRET, strlen(SECRET));
    assert_int_equal(cfg.keys[0].alg, BFF_JWT_HS256);
    assert_int_equal(cfg.keys[1].alg, BFF_JWT_HS512);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS256, SECRET, "h1", "hs"), "hs"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS512, SECRET, "h5", "hs5"), "hs5"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS256, OTHER_SECRET, "h1", "x"), "x"), -1);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS512, SECRET, "h1", "x"), "x"), -1);
    bff_jwt_config_release(&cfg);

    /* One secret byte: the shortest "k". */
    assert_int_equal(load(&cfg, jwks(oct_jwk("QQ", "one", "HS384"), NULL)), 1);
    assert_int_equal(cfg.keys[0].len, 1);
    assert_int_equal(cfg.keys[0].material[0], 'A');
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS384, "A", "one", "a"), "a"), 0);
    bff_jwt_config_release(&cfg);
}

static void test_mixed_set_kid_selects_key(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    assert_int_equal(bff_jwt_config_add_key(&cfg, "pre", BFF_JWT_HS256, OTHER_SECRET, strlen(OTHER_SECRET)), 0);
    const char *text = jwks(rsa_jwk(&keys.rsa, "rsa", "RS256"), ec_jwk(&keys.p256, "p256", "P-256"),
                            sfmt("{\"kty\":\"RSA\",\"use\":\"enc\",\"alg\":\"RSA-OAEP\",\"kid\":\"enc\",\"n\":\"%s\","
                                 "\"e\":\"%s\"}",
                                 keys.rsa_other.n, keys.rsa_other.e),
                            ec_jwk(&keys.p384, "p384", "P-384"), oct_jwk(keys.secret_k, "hmac", "HS256"), NULL);
    assert_int_equal(load(&cfg, text), 4);
    assert_int_equal(cfg.nkeys, 5);
    const char *kids[] = {"pre", "rsa", "p256", "p384", "hmac"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(cfg.keys[i].kid, kids[i]);

    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS256, OTHER_SECRET, "pre", "pre"), "pre"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS256, keys.rsa.private_pem, "rsa", "r"), "r"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES256, keys.p256.private_pem, "p256", "e"), "e"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES384, keys.p384.private_pem, "p384", "e3"), "e3"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS256, SECRET, "hmac", "h"), "h"), 0);
    /* Right signer, wrong kid: the kid picks the key. */
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES256, keys.p256.private_pem, "rsa", "x"), "x"), -1);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_ES384, keys.p384.private_pem, "p256", "x"), "x"), -1);
    /* The skipped encryption key's kid is not a key. */
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS256, keys.rsa_other.private_pem, "enc", "x"), "x"), -1);
    bff_jwt_config_release(&cfg);
}

static void test_skipped_keys(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    /* Skipped keys are not checked: an "enc" key with an encryption alg and no members is fine. */
    const char *text = jwks(
        "{\"kty\":\"RSA\",\"use\":\"enc\",\"alg\":\"RSA-OAEP-256\"}",
        "{\"kty\":\"OKP\",\"key_ops\":[\"encrypt\",\"wrapKey\"]}",
        sfmt("{\"kty\":\"oct\",\"use\":\"sig\",\"key_ops\":[\"sign\"],\"alg\":\"HS256\",\"kid\":\"signonly\","
             "\"k\":\"%s\"}",
             keys.secret_k),
        sfmt("{\"kty\":\"oct\",\"key_ops\":[\"sign\",\"verify\"],\"alg\":\"HS256\",\"kid\":\"ops\",\"k\":\"%s\"}",
             keys.secret_k),
        sfmt("{\"kty\":\"oct\",\"use\":\"sig\",\"alg\":\"HS256\",\"kid\":\"use\",\"k\":\"%s\"}", keys.secret_k), NULL);
    assert_int_equal(load(&cfg, text), 2);
    assert_string_equal(cfg.keys[0].kid, "ops");
    assert_string_equal(cfg.keys[1].kid, "use");
    bff_jwt_config_release(&cfg);

    /* A kid shared with a skipped key is not a duplicate. */
    assert_int_equal(
        load(&cfg, jwks(sfmt("{\"kty\":\"RSA\",\"use\":\"enc\",\"kid\":\"same\",\"n\":\"%s\",\"e\":\"%s\"}", keys.rsa.n,
                             keys.rsa.e),
                        rsa_jwk(&keys.rsa, "same", "RS256"), NULL)),
        1);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS256, keys.rsa.private_pem, "same", "s"), "s"), 0);
    bff_jwt_config_release(&cfg);

    /* Nothing left. */
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"use\":\"enc\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}", keys.rsa.n,
                           keys.rsa.e),
                      NULL),
                 "no signature keys", "1 skipped");
    expect_error(jwks(NULL), "no signature keys", NULL);
    /* "use" and "key_ops" of the wrong type are errors, not reasons to skip. */
    expect_error(jwks(oct_jwk(keys.secret_k, "a", "HS256"),
                      sfmt("{\"kty\":\"oct\",\"use\":5,\"alg\":\"HS256\",\"k\":\"%s\"}", keys.secret_k), NULL),
                 "keys[1].use", "not a string");
    expect_error(
        jwks(sfmt("{\"kty\":\"oct\",\"key_ops\":\"verify\",\"alg\":\"HS256\",\"k\":\"%s\"}", keys.secret_k), NULL),
        "keys[0].key_ops", "not an array");
    expect_error(
        jwks(sfmt("{\"kty\":\"oct\",\"key_ops\":[\"verify\",1],\"alg\":\"HS256\",\"k\":\"%s\"}", keys.secret_k), NULL),
        "keys[0].key_ops", "not a string");
}

static void test_appends_and_returns_count(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    assert_int_equal(load(&cfg, jwks(oct_jwk(keys.secret_k, "a", "HS256"), NULL)), 1);
    assert_int_equal(
        load(&cfg, jwks(oct_jwk(keys.other_secret_k, "b", "HS256"), rsa_jwk(&keys.rsa, "c", "RS256"), NULL)), 2);
    assert_int_equal(cfg.nkeys, 3);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS256, SECRET, "a", "a"), "a"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_HS256, OTHER_SECRET, "b", "b"), "b"), 0);
    assert_int_equal(verify(&cfg, make_token(JWT_ALG_RS256, keys.rsa.private_pem, "c", "c"), "c"), 0);
    /* A kid already configured. */
    assert_int_equal(load(&cfg, jwks(oct_jwk(keys.other_secret_k, "a", "HS256"), NULL)), -1);
    assert_err_contains("keys[0].kid");
    assert_err_contains("\"a\"");
    assert_int_equal(cfg.nkeys, 3);
    bff_jwt_config_release(&cfg);
}

static void test_length_is_honoured(void **state)
{
    (void)state;
    const char *text = jwks(oct_jwk(keys.secret_k, "a", "HS256"), NULL);
    size_t len = strlen(text);
    char *buffer = keep(malloc(len + 8));
    memcpy(buffer, text, len);
    memcpy(buffer + len, "garbage", 7); /* not NUL-terminated */
    bff_jwt_config cfg = {0};
    assert_int_equal(load_len(&cfg, buffer, len), 1);
    assert_int_equal(load_len(&cfg, buffer, len + 7), -1);
    assert_err_contains("not JSON");
    assert_int_equal(cfg.nkeys, 1);
    bff_jwt_config_release(&cfg);

    /* No message buffer: still -1, still no change. */
    assert_int_equal(bff_jwks_load(&cfg, "{}", 2, NULL, 0), -1);
    assert_int_equal(cfg.nkeys, 0);
    /* A tiny one is truncated, not overrun. */
    char tiny[8];
    memset(tiny, 'Z', sizeof(tiny));
    assert_int_equal(bff_jwks_load(&cfg, "{}", 2, tiny, 4), -1);
    assert_int_equal(tiny[3], '\0');
    assert_int_equal(tiny[4], 'Z');
    assert_int_equal(bff_jwks_load(&cfg, NULL, 0, NULL, 0), -1);
    assert_int_equal(bff_jwks_load(NULL, text, len, NULL, 0), -1);
}

/* ---- refused documents ---- */

static void test_not_a_key_set(void **state)
{
    (void)state;
    expect_error("", "not JSON", NULL);
    expect_error("not json", "not JSON", NULL);
    expect_error("{\"keys\":[", "not JSON", NULL);
    expect_error(sfmt("%s{}", jwks(oct_jwk(keys.secret_k, "a", "HS256"), NULL)), "not JSON", NULL);
    expect_error(sfmt("{\"keys\":[%s],\"keys\":[]}", oct_jwk(keys.secret_k, "a", "HS256")), "not JSON", "duplicate");
    expect_error("[]", "not a JSON object", NULL);
    expect_error(sfmt("[%s]", oct_jwk(keys.secret_k, "a", "HS256")), "not a JSON object", NULL);
    expect_error("{}", "\"keys\" is missing", NULL);
    expect_error(sfmt("{\"key\":[%s]}", oct_jwk(keys.secret_k, "a", "HS256")), "\"keys\" is missing", NULL);
    expect_error("{\"keys\":{}}", "\"keys\" is not an array", NULL);
    expect_error(sfmt("{\"keys\":%s}", oct_jwk(keys.secret_k, "a", "HS256")), "\"keys\" is not an array", NULL);
    expect_error("{\"keys\":\"x\"}", "\"keys\" is not an array", NULL);
    expect_error("{\"keys\":null}", "\"keys\" is not an array", NULL);
}

static void test_key_not_an_object(void **state)
{
    (void)state;
    const char *valid = oct_jwk(keys.secret_k, "a", "HS256");
    expect_error(jwks(valid, "\"oct\"", NULL), "keys[1]", "not a JSON object");
    expect_error(jwks("1", valid, NULL), "keys[0]", "not a JSON object");
    expect_error(jwks(valid, "[]", NULL), "keys[1]", "not a JSON object");
    expect_error(jwks(valid, "null", NULL), "keys[1]", "not a JSON object");
    /* A member repeated inside a key. */
    expect_error(jwks(sfmt("{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"%s\",\"k\":\"QQ\"}", keys.secret_k), NULL),
                 "not JSON", "duplicate");
}

static void test_unknown_kty(void **state)
{
    (void)state;
    const char *valid = rsa_jwk(&keys.rsa, "r", "RS256");
    expect_error(jwks(valid,
                      "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
                      NULL),
                 "keys[1].kty", "\"OKP\" is not supported");
    expect_error(jwks(valid, "{\"kty\":\"rsa\"}", NULL), "keys[1].kty", "not supported");
    expect_error(jwks(valid, sfmt("{\"alg\":\"HS256\",\"k\":\"%s\"}", keys.secret_k), NULL), "keys[1].kty", "missing");
    expect_error(jwks(valid, "{\"kty\":7}", NULL), "keys[1].kty", "not a string");
    /* A control character in a message is not copied. */
    expect_error(jwks("{\"kty\":\"a\\nb\"}", NULL), "keys[0].kty", "\"a?b\"");
}

static void test_alg_none_refused(void **state)
{
    (void)state;
    expect_error(jwks(rsa_jwk(&keys.rsa, "r", "none"), NULL), "keys[0].alg", "\"none\" is never accepted");
    expect_error(jwks(oct_jwk(keys.secret_k, "h", "none"), NULL), "keys[0].alg", "\"none\" is never accepted");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"none\",\"x\":\"%s\",\"y\":\"%s\"}", keys.p256.x,
                           keys.p256.y),
                      NULL),
                 "keys[0].alg", "\"none\" is never accepted");
}

static void test_alg_must_fit_kty(void **state)
{
    (void)state;
    /* RSA needs one of its own algorithms. */
    expect_error(jwks(oct_jwk(keys.secret_k, "h", "HS256"),
                      sfmt("{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"%s\",\"e\":\"%s\"}", keys.rsa.n, keys.rsa.e), NULL),
                 "keys[1]: an RSA key needs \"alg\" (RS256, RS384 or RS512)", NULL);
    expect_error(jwks(rsa_jwk(&keys.rsa, "r", "HS256"), NULL), "keys[0].alg", "\"HS256\" is not accepted for an RSA");
    expect_error(jwks(rsa_jwk(&keys.rsa, "r", "ES256"), NULL), "keys[0].alg", "RSA");
    expect_error(jwks(rsa_jwk(&keys.rsa, "r", "PS256"), NULL), "keys[0].alg", "\"PS256\"");
    expect_error(jwks(rsa_jwk(&keys.rsa, "r", "RSA-OAEP"), NULL), "keys[0].alg", "\"RSA-OAEP\"");
    expect_error(jwks(rsa_jwk(&keys.rsa, "r", "rs256"), NULL), "keys[0].alg", "\"rs256\"");
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":256,\"n\":\"%s\",\"e\":\"%s\"}", keys.rsa.n, keys.rsa.e), NULL),
                 "keys[0].alg", "not a string");
    /* oct too. */
    expect_error(jwks(sfmt("{\"kty\":\"oct\",\"k\":\"%s\"}", keys.secret_k), NULL),
                 "keys[0]: an oct key needs \"alg\" (HS256, HS384 or HS512)", NULL);
    expect_error(jwks(oct_jwk(keys.secret_k, "h", "RS256"), NULL), "keys[0].alg",
                 "\"RS256\" is not accepted for an oct");
}

static void test_ec_alg_must_fit_curve(void **state)
{
    (void)state;
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES384\",\"x\":\"%s\",\"y\":\"%s\"}",
                           keys.p256.x, keys.p256.y),
                      NULL),
                 "keys[0].alg", "\"ES384\" is not accepted for a P-256 EC key (ES256)");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-384\",\"alg\":\"ES256\",\"x\":\"%s\",\"y\":\"%s\"}",
                           keys.p384.x, keys.p384.y),
                      NULL),
                 "keys[0].alg", "(ES384)");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"RS256\",\"x\":\"%s\",\"y\":\"%s\"}",
                           keys.p256.x, keys.p256.y),
                      NULL),
                 "keys[0].alg", "\"RS256\"");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES512\",\"x\":\"%s\",\"y\":\"%s\"}",
                           keys.p256.x, keys.p256.y),
                      NULL),
                 "keys[0].alg", "\"ES512\"");
    /* Curves. */
    expect_error(jwks(ec_jwk(&keys.p256, "e", "P-521"), NULL), "keys[0].crv", "\"P-521\" is not supported");
    expect_error(jwks(ec_jwk(&keys.p256, "e", "secp256k1"), NULL), "keys[0].crv", "not supported");
    expect_error(jwks(ec_jwk(&keys.p256, "e", "prime256v1"), NULL), "keys[0].crv", "not supported");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", keys.p256.x, keys.p256.y), NULL),
                 "keys[0].crv", "missing");
}

static void test_base64url_refused(void **state)
{
    (void)state;
    const char *valid = rsa_jwk(&keys.rsa, "ok", "RS256");
    size_t n_len = strlen(keys.rsa.n);
    assert_int_equal(n_len % 4, 2); /* 256 bytes: padding would be "==" */

    /* Padding, plain-base64 characters, spaces, and the other characters of nothing. */
    const char *bad_n[] = {
        sfmt("%s==", keys.rsa.n),
        sfmt("%s=", keys.rsa.n),
        sfmt("+%s", keys.rsa.n + 1),
        sfmt("/%s", keys.rsa.n + 1),
        sfmt("%.100s %s", keys.rsa.n, keys.rsa.n + 101),
        sfmt("%.100s.%s", keys.rsa.n, keys.rsa.n + 101),
        sfmt("%sAAA", keys.rsa.n), /* 4k+1 characters: no byte count encodes to that */
    };
    for (size_t i = 0; i < sizeof(bad_n) / sizeof(bad_n[0]); i++) {
        expect_error(jwks(valid,
                          sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}", bad_n[i], keys.rsa.e),
                          NULL),
                     "keys[1].n", "not base64url");
    }
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQAB=\"}", keys.rsa.n), NULL),
                 "keys[0].e", "not base64url");
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQ+B\"}", keys.rsa.n), NULL),
                 "keys[0].e", "not base64url");
    /* Non-zero bits after the last byte: "AQA" is 0x01 0x00 and 2 zero bits, "AQF" the same bytes with a spare bit
     * set; "QQ" is 'A' and 4 zero bits, "QR" 'A' with one set. One encoding per value. */
    expect_error(jwks(oct_jwk("AQF", "h", "HS256"), NULL), "keys[0].k", "not base64url");
    expect_error(jwks(oct_jwk("QR", "h", "HS256"), NULL), "keys[0].k", "not base64url");
    /* Empty, and not a string. */
    expect_error(jwks(oct_jwk("", "h", "HS256"), NULL), "keys[0].k", "empty");
    expect_error(jwks("{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":1}", NULL), "keys[0].k", "not a string");
    expect_error(jwks("{\"kty\":\"oct\",\"alg\":\"HS256\"}", NULL), "keys[0].k", "missing");
    /* Secret with padding. */
    size_t k_len = strlen(keys.secret_k);
    assert_true(k_len % 4 != 0);
    expect_error(jwks(oct_jwk(sfmt("%s%s", keys.secret_k, k_len % 4 == 2 ? "==" : "="), "h", "HS256"), NULL),
                 "keys[0].k", "not base64url");
    /* EC coordinates. */
    expect_error(
        jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s=\",\"y\":\"%s\"}", keys.p256.x, keys.p256.y), NULL),
        "keys[0].x", "not base64url");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%.20s+%s\"}", keys.p256.x,
                           keys.p256.y, keys.p256.y + 21),
                      NULL),
                 "keys[0].y", "not base64url");
    /* The valid control: the same shapes without the defect load. */
    bff_jwt_config cfg = {0};
    assert_int_equal(load(&cfg, jwks(oct_jwk("AQA", "h", "HS256"), NULL)), 1);
    assert_int_equal(cfg.keys[0].len, 2);
    bff_jwt_config_release(&cfg);
}

static void test_small_rsa_modulus_refused(void **state)
{
    (void)state;
    expect_error(jwks(rsa_jwk(&keys.rsa, "ok", "RS256"), rsa_jwk(&keys.rsa_1024, "small", "RS256"), NULL), "keys[1].n",
                 "1024 bits; at least 2048");
}

static void test_rsa_members_checked(void **state)
{
    (void)state;
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"e\":\"%s\"}", keys.rsa.e), NULL), "keys[0].n",
                 "missing");
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\"}", keys.rsa.n), NULL), "keys[0].e",
                 "missing");
    /* Exponents OpenSSL's public key check refuses: 1, and an even one. */
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQ\"}", keys.rsa.n), NULL),
                 "keys[0]", "not an RSA public key");
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQAA\"}", keys.rsa.n), NULL),
                 "keys[0]", "not an RSA public key");
    /* An even modulus of the right size (n - 1). */
    size_t n_len = 0;
    unsigned char *n = unbase64url(keys.rsa.n, &n_len);
    assert_int_equal(n[n_len - 1] & 1, 1);
    n[n_len - 1] &= 0xfe;
    char *even_n = keep(base64url(n, n_len));
    free(n);
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}", even_n, keys.rsa.e), NULL),
                 "keys[0]", "not an RSA public key");
    /* Sizes OpenSSL would not verify with: e over 64 bits (2^64 + 1), n over 16384 bits. */
    unsigned char big_e[9] = {1, 0, 0, 0, 0, 0, 0, 0, 1};
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}", keys.rsa.n,
                           keep(base64url(big_e, sizeof(big_e)))),
                      NULL),
                 "keys[0].e", "65 bits; at most 64");
    unsigned char *huge = malloc(2049);
    assert_non_null(huge);
    memset(huge, 0xff, 2049);
    char *huge_n = keep(base64url(huge, 2049));
    free(huge);
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQAB\"}", huge_n), NULL),
                 "keys[0].n", "16392 bits; at most 16384");
    /* Private members: a private key published by mistake. */
    expect_error(jwks(sfmt("{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\",\"d\":\"AQAB\"}", keys.rsa.n,
                           keys.rsa.e),
                      NULL),
                 "keys[0].d", "private");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"d\":\"AQAB\"}", keys.p256.x,
                           keys.p256.y),
                      NULL),
                 "keys[0].d", "private");
}

static void test_ec_coordinate_length(void **state)
{
    (void)state;
    size_t len = 0;
    unsigned char *x = unbase64url(keys.p256.x, &len);
    assert_int_equal(len, 32);
    unsigned char raw[33] = {0};
    memcpy(raw + 1, x, 32);
    free(x);
    char *x31 = keep(base64url(raw + 2, 31)); /* the first byte dropped */
    char *x33 = keep(base64url(raw, 33));     /* a zero byte in front */
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x31, keys.p256.y), NULL),
                 "keys[0].x", "31 bytes; P-256 needs exactly 32");
    /* A leading zero byte is still the wrong size: the coordinate is fixed-length. */
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x33, keys.p256.y), NULL),
                 "keys[0].x", "33 bytes");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", keys.p256.x, x31), NULL),
                 "keys[0].y", "31 bytes");
    /* P-256 coordinates declared as P-384, and the other way round. */
    expect_error(jwks(ec_jwk(&keys.p256, "e", "P-384"), NULL), "keys[0].x", "32 bytes; P-384 needs exactly 48");
    expect_error(jwks(ec_jwk(&keys.p384, "e", "P-256"), NULL), "keys[0].x", "48 bytes; P-256 needs exactly 32");
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\"}", keys.p256.x), NULL), "keys[0].y",
                 "missing");
}

static void test_ec_point_not_on_curve(void **state)
{
    (void)state;
    /* y with its last character changed: same length, not the curve's y for this x (nor, almost surely, any). */
    char *bad_y = sfmt("%s", keys.p256.y);
    char *last = bad_y + strlen(bad_y) - 1; /* 43 characters: the last holds 4 bits and 2 zero bits */
    *last = *last == 'A' ? 'E' : 'A';
    expect_error(jwks(ec_jwk(&keys.p256, "ok", "P-256"),
                      sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", keys.p256.x, bad_y), NULL),
                 "keys[1]", "not a point on P-256");
    /* The other key's y with this key's x. */
    expect_error(
        jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", keys.p256.x, keys.p256_other.y),
             NULL),
        "keys[0]", "not a point on P-256");
    /* (0, 0), and P-384 with a changed y. */
    const char *zeros32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", zeros32, zeros32), NULL),
                 "keys[0]", "not a point on P-256");
    char *bad_y384 = sfmt("%s", keys.p384.y); /* 64 characters, no spare bits */
    bad_y384[10] = bad_y384[10] == 'A' ? 'B' : 'A';
    expect_error(
        jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\"}", keys.p384.x, bad_y384), NULL),
        "keys[0]", "not a point on P-384");
    /* A coordinate not below the field prime: all ones. */
    const char *ones32 = "__________________________________________8";
    expect_error(jwks(sfmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", ones32, keys.p256.y), NULL),
                 "keys[0]", "not a point on P-256");
}

static void test_kid(void **state)
{
    (void)state;
    expect_error(jwks(rsa_jwk(&keys.rsa, "dup", "RS256"), ec_jwk(&keys.p256, "other", "P-256"),
                      oct_jwk(keys.secret_k, "dup", "HS256"), NULL),
                 "keys[2].kid", "\"dup\" is already used by keys[0]");
    expect_error(jwks(oct_jwk(keys.secret_k, "a", "HS256"), oct_jwk(keys.other_secret_k, "a", "HS384"), NULL),
                 "keys[1].kid", "keys[0]");
    /* The config in expect_error already has "pre". */
    expect_error(jwks(oct_jwk(keys.secret_k, "pre", "HS256"), NULL), "keys[0].kid", "already used");
    expect_error(jwks(sfmt("{\"kty\":\"oct\",\"alg\":\"HS256\",\"kid\":7,\"k\":\"%s\"}", keys.secret_k), NULL),
                 "keys[0].kid", "not a string");
    expect_error(jwks(sfmt("{\"kty\":\"oct\",\"alg\":\"HS256\",\"kid\":null,\"k\":\"%s\"}", keys.secret_k), NULL),
                 "keys[0].kid", "not a string");
    /* Keys without kid are not duplicates of each other. */
    bff_jwt_config cfg = {0};
    assert_int_equal(load(&cfg, jwks(sfmt("{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"%s\"}", keys.secret_k),
                                     sfmt("{\"kty\":\"oct\",\"alg\":\"HS384\",\"k\":\"%s\"}", keys.secret_k), NULL)),
                     2);
    assert_null(cfg.keys[0].kid);
    assert_null(cfg.keys[1].kid);
    bff_jwt_config_release(&cfg);
}

static void test_error_after_valid_keys_leaves_config(void **state)
{
    (void)state;
    /* Valid RSA, EC and oct keys are built before the last one fails: none of them reaches the config. */
    expect_error(jwks(rsa_jwk(&keys.rsa, "r", "RS256"), ec_jwk(&keys.p256, "e", "P-256"),
                      ec_jwk(&keys.p384, "e3", "P-384"), oct_jwk(keys.secret_k, "h", "HS256"),
                      "{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"!\"}", NULL),
                 "keys[4].k", "not base64url");
    /* And into an empty config. */
    bff_jwt_config cfg = {0};
    assert_int_equal(load(&cfg, jwks(rsa_jwk(&keys.rsa, "r", "RS256"), rsa_jwk(&keys.rsa_1024, "s", "RS256"), NULL)),
                     -1);
    assert_int_equal(cfg.nkeys, 0);
    assert_null(cfg.keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rsa_key_verifies, free_strings),
        cmocka_unit_test_teardown(test_rsa_modulus_with_leading_zero_octet, free_strings),
        cmocka_unit_test_teardown(test_ec_p256_key_verifies, free_strings),
        cmocka_unit_test_teardown(test_ec_p384_key_verifies, free_strings),
        cmocka_unit_test_teardown(test_oct_key_verifies, free_strings),
        cmocka_unit_test_teardown(test_mixed_set_kid_selects_key, free_strings),
        cmocka_unit_test_teardown(test_skipped_keys, free_strings),
        cmocka_unit_test_teardown(test_appends_and_returns_count, free_strings),
        cmocka_unit_test_teardown(test_length_is_honoured, free_strings),
        cmocka_unit_test_teardown(test_not_a_key_set, free_strings),
        cmocka_unit_test_teardown(test_key_not_an_object, free_strings),
        cmocka_unit_test_teardown(test_unknown_kty, free_strings),
        cmocka_unit_test_teardown(test_alg_none_refused, free_strings),
        cmocka_unit_test_teardown(test_alg_must_fit_kty, free_strings),
        cmocka_unit_test_teardown(test_ec_alg_must_fit_curve, free_strings),
        cmocka_unit_test_teardown(test_base64url_refused, free_strings),
        cmocka_unit_test_teardown(test_small_rsa_modulus_refused, free_strings),
        cmocka_unit_test_teardown(test_rsa_members_checked, free_strings),
        cmocka_unit_test_teardown(test_ec_coordinate_length, free_strings),
        cmocka_unit_test_teardown(test_ec_point_not_on_curve, free_strings),
        cmocka_unit_test_teardown(test_kid, free_strings),
        cmocka_unit_test_teardown(test_error_after_valid_keys_leaves_config, free_strings),
    };
    return cmocka_run_group_tests(tests, generate_keys, free_keys);
}
