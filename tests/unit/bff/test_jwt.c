/* Unit tests for bff/jwt_verify: pinned keys, alg none and confusion, kid, time claims, iss/aud, size, shape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "bff/jwt_verify.h"

/* A fixed clock: every token's times are relative to it. */
#define NOW ((time_t)1800000000)

static const char SECRET_A[] = "secret-A-0123456789abcdef0123456789abcdef";
static const char SECRET_B[] = "secret-B-fedcba9876543210fedcba9876543210";

/* PEM pairs generated once for the whole run. */
static struct {
    char *rsa_private, *rsa_public;
    char *ec_private, *ec_public;
    char *ec_other_private; /* a second P-256 key: its signatures must not verify with ec_public */
} pem;

static char last_reason[256];

/* ---- key generation ---- */

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

static void pem_pair(EVP_PKEY *pkey, char **private_pem, char **public_pem)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    *private_pem = bio_to_string(bio);
    BIO_free(bio);
    if (public_pem != NULL) {
        bio = BIO_new(BIO_s_mem());
        assert_non_null(bio);
        assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
        *public_pem = bio_to_string(bio);
        BIO_free(bio);
    }
}

static int generate_keys(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec_other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (rsa == NULL || ec == NULL || ec_other == NULL)
        return -1;
    pem_pair(rsa, &pem.rsa_private, &pem.rsa_public);
    pem_pair(ec, &pem.ec_private, &pem.ec_public);
    pem_pair(ec_other, &pem.ec_other_private, NULL);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec_other);
    return 0;
}

static int free_keys(void **state)
{
    (void)state;
    free(pem.rsa_private);
    free(pem.rsa_public);
    free(pem.ec_private);
    free(pem.ec_public);
    free(pem.ec_other_private);
    memset(&pem, 0, sizeof(pem));
    return 0;
}

/* ---- token construction ---- */

/* A token made and signed by libjwt; claims_json is a JSON object of grants (or NULL). */
static char *make_token(jwt_alg_t alg, const char *key, const char *kid, const char *claims_json)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    if (kid != NULL)
        assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    if (claims_json != NULL)
        assert_int_equal(jwt_add_grants_json(jwt, claims_json), 0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    jwt_free(jwt);
    return token;
}

/* HS256 with SECRET_A, no kid, the given claims. */
static char *make_hs256(const char *claims_json)
{
    return make_token(JWT_ALG_HS256, SECRET_A, NULL, claims_json);
}

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

static char *join3(const char *a, const char *b, const char *c)
{
    size_t len = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = malloc(len);
    assert_non_null(s);
    snprintf(s, len, "%s.%s.%s", a, b, c);
    return s;
}

/* A token made by hand: the header and payload texts are used as given, the signature part as given. */
static char *craft_token(const char *header_json, const char *payload_json, const char *signature)
{
    char *h = base64url(header_json, strlen(header_json));
    char *p = base64url(payload_json, strlen(payload_json));
    char *token = join3(h, p, signature);
    free(h);
    free(p);
    return token;
}

/* A correct HMAC-SHA256 signature over the two encoded parts exactly as given, whatever they contain. */
static char *sign_hs256_raw(const char *h, const char *p, const char *secret)
{
    size_t input_len = strlen(h) + 1 + strlen(p);
    char *input = malloc(input_len + 1);
    assert_non_null(input);
    snprintf(input, input_len + 1, "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    assert_non_null(
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)input, input_len, mac, &mac_len));
    char *sig = base64url(mac, mac_len);
    char *token = join3(h, p, sig);
    free(input);
    free(sig);
    return token;
}

/* A token made by hand with a correct HMAC-SHA256 signature over whatever header and payload it is given. */
static char *craft_hs256(const char *header_json, const char *payload_json, const char *secret)
{
    char *h = base64url(header_json, strlen(header_json));
    char *p = base64url(payload_json, strlen(payload_json));
    char *token = sign_hs256_raw(h, p, secret);
    free(h);
    free(p);
    return token;
}

/* The signature part of a token (in place). */
static char *signature_part(char *token)
{
    char *dot = strrchr(token, '.');
    assert_non_null(dot);
    return dot + 1;
}

/* ---- verification ---- */

static int verify_len(const bff_jwt_config *cfg, const char *token, size_t len, json_t **claims_out)
{
    char reason[sizeof(last_reason)] = "";
    json_t *claims = NULL;
    int rc = bff_jwt_verify(cfg, token, len, NOW, &claims, reason, sizeof(reason));
    memcpy(last_reason, reason, sizeof(last_reason));
    if (rc == 0) {
        if (claims == NULL || !json_is_object(claims))
            fail_msg("accepted without a claims object");
        if (claims_out != NULL)
            *claims_out = claims;
        else
            json_decref(claims);
    } else {
        if (rc != -1)
            fail_msg("refusal returned %d, not -1", rc);
        if (reason[0] == '\0')
            fail_msg("refused without a reason");
        /* On failure *claims is not the caller's: it is neither read nor released. */
    }
    return rc;
}

static int verify(const bff_jwt_config *cfg, const char *token)
{
    return verify_len(cfg, token, strlen(token), NULL);
}

static void add_key(bff_jwt_config *cfg, const char *kid, bff_jwt_alg alg, const char *material)
{
    assert_int_equal(bff_jwt_config_add_key(cfg, kid, alg, material, strlen(material)), 0);
}

/* The header does not say who owns issuer and audiences: the tests own them and detach them before release. */
static char audience_api[] = "api", audience_web[] = "web";
static char *audiences_api_web[] = {audience_api, audience_web};

static void release_config(bff_jwt_config *cfg)
{
    cfg->issuer = NULL;
    cfg->audiences = NULL;
    cfg->naudiences = 0;
    bff_jwt_config_release(cfg);
}

static void assert_reason_mentions_algorithm(void)
{
    if (strcasestr(last_reason, "alg") == NULL)
        fail_msg("the reason does not mention the algorithm: \"%s\"", last_reason);
}

/* ---- valid tokens ---- */

static void test_hs256_valid_returns_claims(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);

    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET_A, (int)strlen(SECRET_A)), 0);
    assert_int_equal(jwt_add_grant(jwt, "sub", "user-42"), 0);
    assert_int_equal(jwt_add_grant(jwt, "role", "admin"), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "exp", (long)NOW + 3600), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "iat", (long)NOW - 60), 0);
    assert_int_equal(jwt_add_grants_json(jwt, "{\"scopes\":[\"read\",\"write\"],\"tenant\":7}"), 0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    jwt_free(jwt);

    json_t *claims = NULL;
    assert_int_equal(verify_len(&cfg, token, strlen(token), &claims), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "user-42");
    assert_string_equal(json_string_value(json_object_get(claims, "role")), "admin");
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), (json_int_t)NOW + 3600);
    assert_int_equal(json_integer_value(json_object_get(claims, "tenant")), 7);
    json_t *scopes = json_object_get(claims, "scopes");
    assert_true(json_is_array(scopes));
    assert_int_equal(json_array_size(scopes), 2);
    assert_string_equal(json_string_value(json_array_get(scopes, 1)), "write");
    json_decref(claims);
    free(token);
    release_config(&cfg);
}

static void test_hs384_and_hs512_valid(void **state)
{
    (void)state;
    char claims_json[128];
    snprintf(claims_json, sizeof(claims_json), "{\"sub\":\"u\",\"exp\":%ld}", (long)NOW + 60);

    bff_jwt_config cfg384 = {0};
    add_key(&cfg384, NULL, BFF_JWT_HS384, SECRET_A);
    char *token = make_token(JWT_ALG_HS384, SECRET_A, NULL, claims_json);
    assert_int_equal(verify(&cfg384, token), 0);
    free(token);
    release_config(&cfg384);

    bff_jwt_config cfg512 = {0};
    add_key(&cfg512, NULL, BFF_JWT_HS512, SECRET_A);
    token = make_token(JWT_ALG_HS512, SECRET_A, NULL, claims_json);
    json_t *claims = NULL;
    assert_int_equal(verify_len(&cfg512, token, strlen(token), &claims), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "u");
    json_decref(claims);
    free(token);
    release_config(&cfg512);
}

/* HMAC keys of every length around the digests' block sizes (64 bytes for SHA-256, 128 for SHA-384/512; a
 * longer key is hashed first): tokens minted by libjwt verify, and a key differing in its last byte does
 * not. (The pad states are computed once per key, not per token.) */
static void test_hmac_key_lengths(void **state)
{
    (void)state;
    char claims_json[128];
    snprintf(claims_json, sizeof(claims_json), "{\"sub\":\"u\",\"exp\":%ld}", (long)NOW + 60);
    static const size_t lengths[] = {1, 32, 63, 64, 65, 127, 128, 129, 300};
    static const struct {
        bff_jwt_alg ours;
        jwt_alg_t libjwt;
    } algs[] = {{BFF_JWT_HS256, JWT_ALG_HS256}, {BFF_JWT_HS384, JWT_ALG_HS384}, {BFF_JWT_HS512, JWT_ALG_HS512}};
    for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); ++a) {
        for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); ++l) {
            char key[301], other[301];
            memset(key, 'k', lengths[l]);
            key[lengths[l]] = '\0';
            memcpy(other, key, lengths[l] + 1);
            other[lengths[l] - 1] = 'x';
            bff_jwt_config cfg = {0};
            add_key(&cfg, NULL, algs[a].ours, key);
            char *good = make_token(algs[a].libjwt, key, NULL, claims_json);
            char *bad = make_token(algs[a].libjwt, other, NULL, claims_json);
            if (verify(&cfg, good) != 0)
                fail_msg("%s with a %zu-byte key: a good token was refused", bff_jwt_alg_name(algs[a].ours),
                         lengths[l]);
            if (verify(&cfg, bad) == 0)
                fail_msg("%s with a %zu-byte key: a token of another key passed", bff_jwt_alg_name(algs[a].ours),
                         lengths[l]);
            free(good);
            free(bad);
            release_config(&cfg);
        }
    }
}

static void test_rs256_valid_with_pem_public_key(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_RS256, pem.rsa_public);
    char *token = make_token(JWT_ALG_RS256, pem.rsa_private, NULL, "{\"sub\":\"rsa-user\"}");
    json_t *claims = NULL;
    assert_int_equal(verify_len(&cfg, token, strlen(token), &claims), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "rsa-user");
    json_decref(claims);

    /* The same key pair, but the payload changed after signing. */
    char *forged_payload = base64url("{\"sub\":\"admin\"}", strlen("{\"sub\":\"admin\"}"));
    char *header_end = strchr(token, '.');
    *header_end = '\0';
    char *forged = join3(token, forged_payload, signature_part(header_end + 1));
    assert_int_equal(verify(&cfg, forged), -1);
    free(forged);
    free(forged_payload);
    free(token);

    /* An RS512 token from the same private key is refused by the RS256-pinned key. */
    token = make_token(JWT_ALG_RS512, pem.rsa_private, NULL, "{\"sub\":\"rsa-user\"}");
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

static void test_es256_valid(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_ES256, pem.ec_public);
    char *token = make_token(JWT_ALG_ES256, pem.ec_private, NULL, "{\"sub\":\"ec-user\"}");
    json_t *claims = NULL;
    assert_int_equal(verify_len(&cfg, token, strlen(token), &claims), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "ec-user");
    json_decref(claims);
    free(token);

    /* Signed by another P-256 key. */
    token = make_token(JWT_ALG_ES256, pem.ec_other_private, NULL, "{\"sub\":\"ec-user\"}");
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

/* The JWS form of an ECDSA signature is r||s of exactly twice the curve size: DER and other lengths fail. */
static void test_es256_signature_forms(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_ES256, pem.ec_public);
    char *token = make_token(JWT_ALG_ES256, pem.ec_private, NULL, "{\"sub\":\"ec-user\"}");
    assert_int_equal(verify(&cfg, token), 0);
    char *sig_b64 = signature_part(token);
    /* Decode r||s (64 bytes). */
    size_t b64_len = strlen(sig_b64);
    char *std = malloc(b64_len + 4);
    assert_non_null(std);
    size_t n = 0;
    for (size_t i = 0; i < b64_len; ++i)
        std[n++] = sig_b64[i] == '-' ? '+' : sig_b64[i] == '_' ? '/' : sig_b64[i];
    while (n % 4 != 0)
        std[n++] = '=';
    std[n] = '\0';
    unsigned char raw[96];
    int raw_len = EVP_DecodeBlock(raw, (const unsigned char *)std, (int)n);
    free(std);
    assert_true(raw_len >= 64);
    raw_len = 64;
    /* The same signature in DER (what OpenSSL itself produces) is refused. */
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    assert_true(der_len > 0);
    *sig_b64 = '\0';
    char *der_b64 = base64url(der, (size_t)der_len);
    OPENSSL_free(der);
    size_t cap = strlen(token) + strlen(der_b64) + 1;
    char *der_token = malloc(cap);
    snprintf(der_token, cap, "%s%s", token, der_b64);
    assert_int_equal(verify(&cfg, der_token), -1);
    /* r||s with one byte more or one byte less is refused; exactly r||s passes. */
    unsigned char longer[65];
    memcpy(longer, raw, 64);
    longer[64] = 0;
    const size_t lens[] = {63, 65, 64};
    for (size_t i = 0; i < 3; ++i) {
        char *part = base64url(longer, lens[i]);
        char *t = malloc(cap + 100);
        snprintf(t, cap + 100, "%s%s", token, part);
        assert_int_equal(verify(&cfg, t), lens[i] == 64 ? 0 : -1);
        free(t);
        free(part);
    }
    free(der_b64);
    free(der_token);
    free(token);
    release_config(&cfg);
}

static void test_add_key_refuses_unusable_public_keys(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    /* An EC key for an RSA algorithm, an RSA key for EC, a P-256 key for ES384, garbage. */
    assert_int_equal(bff_jwt_config_add_key(&cfg, NULL, BFF_JWT_RS256, pem.ec_public, strlen(pem.ec_public)), -EINVAL);
    assert_int_equal(bff_jwt_config_add_key(&cfg, NULL, BFF_JWT_ES256, pem.rsa_public, strlen(pem.rsa_public)),
                     -EINVAL);
    assert_int_equal(bff_jwt_config_add_key(&cfg, NULL, BFF_JWT_ES384, pem.ec_public, strlen(pem.ec_public)), -EINVAL);
    const char junk[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert_int_equal(bff_jwt_config_add_key(&cfg, NULL, BFF_JWT_RS256, junk, strlen(junk)), -EINVAL);
    /* RSA below 2048 bits. */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, small);
    char *small_pem = bio_to_string(b);
    BIO_free(b);
    EVP_PKEY_free(small);
    assert_int_equal(bff_jwt_config_add_key(&cfg, NULL, BFF_JWT_RS256, small_pem, strlen(small_pem)), -EINVAL);
    free(small_pem);
    assert_int_equal(cfg.nkeys, 0);
    assert_int_equal(bff_jwt_config_add_key(&cfg, NULL, BFF_JWT_RS256, pem.rsa_public, strlen(pem.rsa_public)), 0);
    release_config(&cfg);
}

static void test_duplicate_claim_names_refused(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char *token = craft_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"user\",\"sub\":\"admin\"}", SECRET_A);
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

static void test_token_is_read_for_len_bytes_only(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char *token = make_hs256("{\"sub\":\"u\"}");
    size_t len = strlen(token);
    /* As in an HTTP header: the token is followed by other bytes, not by a NUL. */
    char *buffer = malloc(len + 8);
    assert_non_null(buffer);
    memcpy(buffer, token, len);
    memcpy(buffer + len, "XYZ.abc", 8);
    assert_int_equal(verify_len(&cfg, buffer, len, NULL), 0);
    /* The bytes after the token are not part of it. */
    assert_int_equal(verify_len(&cfg, buffer, len + 3, NULL), -1);
    free(buffer);
    free(token);
    release_config(&cfg);
}

/* ---- signatures ---- */

static void test_wrong_secret_refused(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char *token = make_token(JWT_ALG_HS256, SECRET_B, NULL, "{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

static void test_tampered_payload_refused(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char *token = make_hs256("{\"sub\":\"user\",\"role\":\"reader\"}");
    assert_int_equal(verify(&cfg, token), 0);

    char *header_end = strchr(token, '.');
    char *signature = signature_part(token);
    const char *forged_json = "{\"sub\":\"user\",\"role\":\"admin\"}";
    char *forged_payload = base64url(forged_json, strlen(forged_json));
    *header_end = '\0';
    char *forged = join3(token, forged_payload, signature);
    assert_int_equal(verify(&cfg, forged), -1);
    free(forged);
    free(forged_payload);
    free(token);
    release_config(&cfg);
}

static void test_tampered_signature_refused(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char *token = make_hs256("{\"sub\":\"u\"}");
    char *signature = signature_part(token);
    /* The first character carries six bits of the MAC (the last one may carry padding bits only). */
    signature[0] = signature[0] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(&cfg, token), -1);
    free(token);

    /* A signature cut short, and one removed. */
    token = make_hs256("{\"sub\":\"u\"}");
    signature = signature_part(token);
    signature[strlen(signature) / 2] = '\0';
    assert_int_equal(verify(&cfg, token), -1);
    signature[0] = '\0';
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

/* ---- alg none ---- */

static void test_alg_none_refused(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"admin\",\"exp\":%ld}", (long)NOW + 3600);
    const char *headers[] = {
        "{\"alg\":\"none\"}",
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"NONE\"}",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *token = craft_token(headers[i], payload, "");
        if (verify(&cfg, token) != -1)
            fail_msg("accepted an unsigned token with header %s", headers[i]);
        free(token);
        /* Not with a valid HMAC attached either. */
        token = craft_hs256(headers[i], payload, SECRET_A);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted header %s with an HMAC signature", headers[i]);
        free(token);
    }
    release_config(&cfg);
}

/* ---- algorithm pinning ---- */

static void test_algorithm_confusion_refused(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_RS256, pem.rsa_public);
    /* The attacker knows the public key and uses its PEM text as an HMAC secret. */
    char *token = make_token(JWT_ALG_HS256, pem.rsa_public, NULL, "{\"sub\":\"admin\"}");
    assert_int_equal(verify(&cfg, token), -1);
    assert_reason_mentions_algorithm();
    free(token);
    release_config(&cfg);

    bff_jwt_config ec_cfg = {0};
    add_key(&ec_cfg, NULL, BFF_JWT_ES256, pem.ec_public);
    token = make_token(JWT_ALG_HS256, pem.ec_public, NULL, "{\"sub\":\"admin\"}");
    assert_int_equal(verify(&ec_cfg, token), -1);
    assert_reason_mentions_algorithm();
    free(token);
    release_config(&ec_cfg);
}

static void test_alg_differs_from_pinned_alg_refused(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char *token = make_token(JWT_ALG_HS512, SECRET_A, NULL, "{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg, token), -1);
    assert_reason_mentions_algorithm();
    free(token);
    release_config(&cfg);

    bff_jwt_config cfg512 = {0};
    add_key(&cfg512, NULL, BFF_JWT_HS512, SECRET_A);
    token = make_token(JWT_ALG_HS256, SECRET_A, NULL, "{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg512, token), -1);
    free(token);
    release_config(&cfg512);
}

/* ---- kid ---- */

static void test_kid_selects_key(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, "a", BFF_JWT_HS256, SECRET_A);
    add_key(&cfg, "b", BFF_JWT_HS256, SECRET_B);

    char *token = make_token(JWT_ALG_HS256, SECRET_A, "a", "{\"sub\":\"via-a\"}");
    json_t *claims = NULL;
    assert_int_equal(verify_len(&cfg, token, strlen(token), &claims), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "via-a");
    json_decref(claims);
    free(token);

    token = make_token(JWT_ALG_HS256, SECRET_B, "b", "{\"sub\":\"via-b\"}");
    claims = NULL;
    assert_int_equal(verify_len(&cfg, token, strlen(token), &claims), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "via-b");
    json_decref(claims);
    free(token);

    /* kid "a" but signed with b's secret: the kid picks the key, keys are not tried in turn. */
    token = make_token(JWT_ALG_HS256, SECRET_B, "a", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg, token), -1);
    free(token);

    /* An unknown kid. */
    token = make_token(JWT_ALG_HS256, SECRET_A, "c", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg, token), -1);
    free(token);

    /* No kid when there are two keys. */
    token = make_token(JWT_ALG_HS256, SECRET_A, NULL, "{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg, token), -1);
    free(token);

    /* A kid that is not a string. */
    token = craft_hs256("{\"alg\":\"HS256\",\"kid\":1}", "{\"sub\":\"u\"}", SECRET_A);
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

/* The header's alg and kid are remembered per thread by the header's bytes: the same header again, a
 * different one, a kid too long to remember, and a kid with a NUL (which must not match the key named by the
 * part before it) all give the answer a fresh parse would. */
static void test_header_memo(void **state)
{
    (void)state;
    char long_kid[400];
    memset(long_kid, 'L', sizeof(long_kid) - 1);
    long_kid[sizeof(long_kid) - 1] = '\0';
    bff_jwt_config cfg = {0};
    add_key(&cfg, "a", BFF_JWT_HS256, SECRET_A);
    add_key(&cfg, long_kid, BFF_JWT_HS256, SECRET_B);
    for (int round = 0; round < 2; ++round) {
        char *a = make_token(JWT_ALG_HS256, SECRET_A, "a", "{\"sub\":\"u\"}");
        char *a_wrong = make_token(JWT_ALG_HS256, SECRET_B, "a", "{\"sub\":\"u\"}");
        char *l = make_token(JWT_ALG_HS256, SECRET_B, long_kid, "{\"sub\":\"u\"}");
        char *l_wrong = make_token(JWT_ALG_HS256, SECRET_A, long_kid, "{\"sub\":\"u\"}");
        assert_int_equal(verify(&cfg, a), 0);
        assert_int_equal(verify(&cfg, a), 0); /* remembered */
        assert_int_equal(verify(&cfg, a_wrong), -1);
        assert_int_equal(verify(&cfg, l), 0);
        assert_int_equal(verify(&cfg, l_wrong), -1);
        assert_int_equal(verify(&cfg, a), 0);
        free(a);
        free(a_wrong);
        free(l);
        free(l_wrong);
    }
    char *nul = craft_hs256("{\"alg\":\"HS256\",\"kid\":\"a\\u0000x\"}", "{\"sub\":\"u\"}", SECRET_A);
    char reason[256] = "";
    json_t *claims = NULL;
    assert_int_equal(bff_jwt_verify(&cfg, nul, strlen(nul), NOW, &claims, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "header")); /* jansson refuses \u0000 in strings: never a kid "a" */
    free(nul);
    release_config(&cfg);
}

static void test_single_key_without_kid(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char *token = make_token(JWT_ALG_HS256, SECRET_A, NULL, "{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg, token), 0);
    free(token);
    /* RFC 7515 4.1.4: a kid is a string; one that is not is not the same as none. */
    const char *bad_kids[] = {"{\"alg\":\"HS256\",\"kid\":1}", "{\"alg\":\"HS256\",\"kid\":null}",
                              "{\"alg\":\"HS256\",\"kid\":[\"a\"]}"};
    for (size_t i = 0; i < sizeof(bad_kids) / sizeof(bad_kids[0]); i++) {
        token = craft_hs256(bad_kids[i], "{\"sub\":\"u\"}", SECRET_A);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted header %s", bad_kids[i]);
        free(token);
    }
    release_config(&cfg);

    /* A single key with an id does not accept another id. */
    bff_jwt_config with_id = {0};
    add_key(&with_id, "a", BFF_JWT_HS256, SECRET_A);
    token = make_token(JWT_ALG_HS256, SECRET_A, "b", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&with_id, token), -1);
    free(token);
    token = make_token(JWT_ALG_HS256, SECRET_A, "a", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&with_id, token), 0);
    free(token);
    release_config(&with_id);
}

/* ---- time claims ---- */

static int verify_claims_with_leeway(uint64_t leeway_s, const char *claims_json)
{
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    cfg.leeway_s = leeway_s;
    char *token = make_hs256(claims_json);
    int rc = verify(&cfg, token);
    free(token);
    release_config(&cfg);
    return rc;
}

static void test_exp(void **state)
{
    (void)state;
    char claims[128];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"exp\":%ld}", (long)NOW - 10);
    assert_int_equal(verify_claims_with_leeway(0, claims), -1);
    assert_int_equal(verify_claims_with_leeway(5, claims), -1);
    assert_int_equal(verify_claims_with_leeway(30, claims), 0);

    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"exp\":%ld}", (long)NOW + 10);
    assert_int_equal(verify_claims_with_leeway(0, claims), 0);
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"exp\":%ld}", (long)NOW + 1);
    assert_int_equal(verify_claims_with_leeway(0, claims), 0);

    /* RFC 7519 4.1.4: the current time must be before exp, so a token is expired at exp itself. */
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"exp\":%ld}", (long)NOW);
    assert_int_equal(verify_claims_with_leeway(0, claims), -1);

    /* Long expired is expired whatever the leeway's size relative to it. */
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"exp\":%ld}", (long)NOW - 86400);
    assert_int_equal(verify_claims_with_leeway(60, claims), -1);
}

static void test_nbf(void **state)
{
    (void)state;
    char claims[128];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"nbf\":%ld}", (long)NOW + 10);
    assert_int_equal(verify_claims_with_leeway(0, claims), -1);
    assert_int_equal(verify_claims_with_leeway(30, claims), 0);
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"nbf\":%ld}", (long)NOW - 10);
    assert_int_equal(verify_claims_with_leeway(0, claims), 0);
    /* RFC 7519 4.1.5: valid from nbf itself. */
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"nbf\":%ld}", (long)NOW);
    assert_int_equal(verify_claims_with_leeway(0, claims), 0);
}

static void test_iat(void **state)
{
    (void)state;
    char claims[128];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"iat\":%ld}", (long)NOW + 3600);
    assert_int_equal(verify_claims_with_leeway(0, claims), -1);
    assert_int_equal(verify_claims_with_leeway(60, claims), -1);
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"iat\":%ld}", (long)NOW + 30);
    assert_int_equal(verify_claims_with_leeway(60, claims), 0);
    snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"iat\":%ld}", (long)NOW - 60);
    assert_int_equal(verify_claims_with_leeway(0, claims), 0);
}

static void test_time_claims_must_be_numbers(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);

    /* A string exp far in the future: a lenient parser would read it as a valid expiry. */
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET_A, (int)strlen(SECRET_A)), 0);
    assert_int_equal(jwt_add_grant(jwt, "sub", "u"), 0);
    assert_int_equal(jwt_add_grant(jwt, "exp", "9999999999"), 0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    jwt_free(jwt);
    assert_int_equal(verify(&cfg, token), -1);
    free(token);

    const char *invalid[] = {
        "{\"sub\":\"u\",\"exp\":true}",  "{\"sub\":\"u\",\"exp\":null}",  "{\"sub\":\"u\",\"exp\":[9999999999]}",
        "{\"sub\":\"u\",\"nbf\":\"0\"}", "{\"sub\":\"u\",\"iat\":\"0\"}",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        token = make_hs256(invalid[i]);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted claims %s", invalid[i]);
        free(token);
    }
    release_config(&cfg);
}

static void test_no_exp_accepted(void **state)
{
    (void)state;
    assert_int_equal(verify_claims_with_leeway(0, "{\"sub\":\"u\"}"), 0);
    assert_int_equal(verify_claims_with_leeway(0, NULL), 0);
}

/* ---- iss and aud ---- */

static void test_issuer(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    char issuer[] = "https://issuer.example";
    cfg.issuer = issuer;

    char *token = make_hs256("{\"sub\":\"u\",\"iss\":\"https://issuer.example\"}");
    assert_int_equal(verify(&cfg, token), 0);
    free(token);
    const char *refused[] = {
        "{\"sub\":\"u\",\"iss\":\"https://evil.example\"}",
        "{\"sub\":\"u\",\"iss\":\"https://issuer.example.evil\"}",
        "{\"sub\":\"u\",\"iss\":\"https://issuer.exampl\"}",
        "{\"sub\":\"u\"}",
        "{\"sub\":\"u\",\"iss\":[\"https://issuer.example\"]}",
        "{\"sub\":\"u\",\"iss\":null}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        token = make_hs256(refused[i]);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted claims %s with issuer %s", refused[i], issuer);
        free(token);
    }
    /* An issuer that equals the configured one only up to an escaped NUL. */
    token = craft_hs256("{\"alg\":\"HS256\"}", "{\"iss\":\"https://issuer.example\\u0000.evil\"}", SECRET_A);
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

static void test_audience(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    cfg.audiences = audiences_api_web;
    cfg.naudiences = 2;

    const char *accepted[] = {
        "{\"sub\":\"u\",\"aud\":\"web\"}",
        "{\"sub\":\"u\",\"aud\":\"api\"}",
        "{\"sub\":\"u\",\"aud\":[\"x\",\"api\"]}",
    };
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        char *token = make_hs256(accepted[i]);
        if (verify(&cfg, token) != 0)
            fail_msg("refused claims %s: %s", accepted[i], last_reason);
        free(token);
    }
    const char *refused[] = {
        "{\"sub\":\"u\",\"aud\":\"other\"}",     "{\"sub\":\"u\"}",
        "{\"sub\":\"u\",\"aud\":[1,2]}",         "{\"sub\":\"u\",\"aud\":[]}",
        "{\"sub\":\"u\",\"aud\":[\"x\",\"y\"]}", "{\"sub\":\"u\",\"aud\":\"ap\"}",
        "{\"sub\":\"u\",\"aud\":\"apiweb\"}",    "{\"sub\":\"u\",\"aud\":{\"api\":true}}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char *token = make_hs256(refused[i]);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted claims %s", refused[i]);
        free(token);
    }
    /* An audience that equals a configured one only up to an escaped NUL. */
    char *token = craft_hs256("{\"alg\":\"HS256\"}", "{\"aud\":\"api\\u0000other\"}", SECRET_A);
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

/* ---- size ---- */

/* Valid tokens padded with a "p" claim: the longest at most `limit` bytes and the shortest above it. */
static void tokens_around(size_t limit, char **at_most, char **above)
{
    *at_most = NULL;
    *above = NULL;
    size_t pad = limit > 200 ? (limit - 200) * 3 / 4 : 0;
    for (;; pad++) {
        char *claims = malloc(pad + 16);
        assert_non_null(claims);
        memcpy(claims, "{\"p\":\"", 6);
        memset(claims + 6, 'x', pad);
        memcpy(claims + 6 + pad, "\"}", 3);
        char *token = make_hs256(claims);
        free(claims);
        if (strlen(token) <= limit) {
            free(*at_most);
            *at_most = token;
        } else {
            *above = token;
            break;
        }
    }
    if (*at_most == NULL)
        fail_msg("no valid token fits in %zu bytes", limit);
}

static void test_max_token_bytes(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    cfg.max_token_bytes = 100;
    char *at_most = NULL, *above = NULL;
    tokens_around(100, &at_most, &above);
    assert_int_equal(verify(&cfg, at_most), 0);
    assert_int_equal(verify(&cfg, above), -1);
    free(at_most);
    free(above);

    /* Refused on its length alone: a length beyond the limit is never read. */
    char small[] = "x";
    assert_int_equal(verify_len(&cfg, small, (size_t)1 << 30, NULL), -1);
    release_config(&cfg);
}

static void test_default_max_token_bytes(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    assert_int_equal(cfg.max_token_bytes, 0);
    char *at_most = NULL, *above = NULL;
    tokens_around(BFF_JWT_DEFAULT_MAX_TOKEN, &at_most, &above);
    assert_true(strlen(at_most) > BFF_JWT_DEFAULT_MAX_TOKEN - 4);
    assert_int_equal(verify(&cfg, at_most), 0);
    assert_int_equal(verify(&cfg, above), -1);
    free(at_most);
    free(above);
    release_config(&cfg);
}

/* ---- malformed tokens ---- */

static void test_malformed_shapes(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    const char *tokens[] = {
        "", "abc", "a.b", "a.b.c.d", ".", "..", "...", "a..c", ".b.c", "a.b.", "eyJ.eyJ.", "!!!.???.***",
    };
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        if (verify(&cfg, tokens[i]) != -1)
            fail_msg("accepted \"%s\"", tokens[i]);
    /* A valid token with four parts: its own signature appended again. */
    char *token = make_hs256("{\"sub\":\"u\"}");
    size_t len = strlen(token);
    char *sig = signature_part(token);
    size_t four_len = len + 1 + strlen(sig);
    char *four = malloc(four_len + 1);
    assert_non_null(four);
    snprintf(four, four_len + 1, "%s.%s", token, sig);
    assert_int_equal(verify(&cfg, four), -1);
    free(four);
    free(token);
    release_config(&cfg);
}

/* Header and payload texts as libjwt encodes them for a small token. */
static void encoded_parts(const char *payload_json, char **h, char **p)
{
    const char *header_json = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    *h = base64url(header_json, strlen(header_json));
    *p = base64url(payload_json, strlen(payload_json));
}

static void test_non_base64url_characters(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    /* Every token here carries a correct HMAC over its text: only the shape check can refuse it. */
    const char bad[] = {'+', '/', '=', '!', ' ', '*', '\n', '%', '.'};
    for (size_t i = 0; i < sizeof(bad); i++) {
        char *h, *p;
        encoded_parts("{\"sub\":\"u\"}", &h, &p);
        char saved = h[3];
        h[3] = bad[i];
        char *token = sign_hs256_raw(h, p, SECRET_A);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted a header with 0x%02x", (unsigned char)bad[i]);
        free(token);
        h[3] = saved;
        p[2] = bad[i];
        token = sign_hs256_raw(h, p, SECRET_A);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted a payload with 0x%02x", (unsigned char)bad[i]);
        free(token);
        free(h);
        free(p);
    }

    /* Plain base64 for base64url: a lenient decoder reads the same JSON, so only the alphabet tells them apart. */
    char *h = NULL, *p = NULL, *url_char = NULL;
    for (int n = 1; n < 12 && url_char == NULL; n++) {
        char payload[64];
        snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"x\":\"%.*s\"}", n, "~~~~~~~~~~~~");
        free(h);
        free(p);
        encoded_parts(payload, &h, &p);
        url_char = strpbrk(p, "-_");
    }
    assert_non_null(url_char);
    char *token = sign_hs256_raw(h, p, SECRET_A);
    assert_int_equal(verify(&cfg, token), 0);
    free(token);
    *url_char = *url_char == '-' ? '+' : '/';
    token = sign_hs256_raw(h, p, SECRET_A);
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    free(h);
    free(p);

    /* Padding on the payload, signed as it stands. */
    encoded_parts("{\"sub\":\"u\"}", &h, &p);
    char *padded_payload = malloc(strlen(p) + 3);
    assert_non_null(padded_payload);
    sprintf(padded_payload, "%s%s", p, strlen(p) % 4 == 2 ? "==" : "=");
    token = sign_hs256_raw(h, padded_payload, SECRET_A);
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    free(padded_payload);
    free(h);
    free(p);

    /* Base64 padding after a valid signature. */
    token = make_hs256("{\"sub\":\"u\"}");
    size_t len = strlen(token);
    char *padded = malloc(len + 2);
    assert_non_null(padded);
    memcpy(padded, token, len);
    memcpy(padded + len, "=", 2);
    assert_int_equal(verify(&cfg, padded), -1);
    free(padded);

    /* A NUL inside the counted bytes: the token before it is valid, the bytes given are not a token. */
    char *with_nul = malloc(len + 4);
    assert_non_null(with_nul);
    memcpy(with_nul, token, len);
    memcpy(with_nul + len, "\0AB", 4);
    assert_int_equal(verify_len(&cfg, with_nul, len + 3, NULL), -1);
    free(with_nul);
    free(token);
    release_config(&cfg);
}

static void test_rs256_signature_in_plain_base64_refused(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_RS256, pem.rsa_public);
    /* libjwt decodes an RSA signature leniently: '-' written as '+' and '_' as '/' would still verify. */
    char *token = NULL;
    char *url_char = NULL;
    for (int attempt = 0; attempt < 20 && url_char == NULL; attempt++) {
        char claims[64];
        snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"n\":%d}", attempt);
        free(token);
        token = make_token(JWT_ALG_RS256, pem.rsa_private, NULL, claims);
        url_char = strpbrk(signature_part(token), "-_");
    }
    assert_non_null(url_char);
    assert_int_equal(verify(&cfg, token), 0);
    *url_char = *url_char == '-' ? '+' : '/';
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
    release_config(&cfg);
}

static void test_malformed_headers(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    add_key(&cfg, NULL, BFF_JWT_HS256, SECRET_A);
    const char *payload = "{\"sub\":\"u\"}";

    /* The hand-made signer agrees with libjwt: a well-formed hand-made token verifies. */
    char *token = craft_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, SECRET_A);
    assert_int_equal(verify(&cfg, token), 0);
    free(token);

    /* Each one correctly signed with the key's secret: only the header is wrong. */
    const char *headers[] = {
        "not json",
        "{\"alg\":\"HS256\"",
        "",
        "[]",
        "\"HS256\"",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":256}",
        "{\"alg\":null}",
        "{\"alg\":[\"HS256\"]}",
        "{\"alg\":\"\"}",
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":\"XS256\"}",
        "{\"alg\":\"ES512\"}",
        "{\"alg\":\"HS256\\u0000x\"}",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        token = craft_hs256(headers[i], payload, SECRET_A);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted header '%s'", headers[i]);
        free(token);
    }

    /* A payload that is not a JSON object, correctly signed. */
    const char *payloads[] = {"not json", "[1,2]", "\"sub\"", ""};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        token = craft_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payloads[i], SECRET_A);
        if (verify(&cfg, token) != -1)
            fail_msg("accepted payload '%s'", payloads[i]);
        free(token);
    }
    release_config(&cfg);
}

/* ---- config and algorithm names ---- */

static void test_add_key_refuses_empty_key(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    assert_int_equal(bff_jwt_config_add_key(&cfg, NULL, BFF_JWT_HS256, "", 0), -EINVAL);
    assert_int_equal(bff_jwt_config_add_key(&cfg, "a", BFF_JWT_HS256, NULL, 0), -EINVAL);
    assert_int_equal(bff_jwt_config_add_key(&cfg, "a", BFF_JWT_RS256, "", 0), -EINVAL);
    assert_int_equal(cfg.nkeys, 0);

    /* The copy is the config's own: the caller's buffers may change afterwards. */
    char kid[] = "k1";
    char secret[sizeof(SECRET_A)];
    memcpy(secret, SECRET_A, sizeof(SECRET_A));
    assert_int_equal(bff_jwt_config_add_key(&cfg, kid, BFF_JWT_HS256, secret, strlen(secret)), 0);
    assert_int_equal(cfg.nkeys, 1);
    memset(secret, 'z', strlen(secret));
    kid[1] = '9';
    char *token = make_token(JWT_ALG_HS256, SECRET_A, "k1", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg, token), 0);
    free(token);
    release_config(&cfg);
}

static void test_verify_without_keys_refuses(void **state)
{
    (void)state;
    bff_jwt_config cfg = {0};
    char *token = make_hs256("{\"sub\":\"u\"}");
    assert_int_equal(verify(&cfg, token), -1);
    free(token);
}

static void test_alg_names(void **state)
{
    (void)state;
    const char *names[BFF_JWT_ALG_COUNT] = {
        [BFF_JWT_HS256] = "HS256", [BFF_JWT_HS384] = "HS384", [BFF_JWT_HS512] = "HS512", [BFF_JWT_RS256] = "RS256",
        [BFF_JWT_RS384] = "RS384", [BFF_JWT_RS512] = "RS512", [BFF_JWT_ES256] = "ES256", [BFF_JWT_ES384] = "ES384",
    };
    for (int i = 0; i < BFF_JWT_ALG_COUNT; i++) {
        const char *name = bff_jwt_alg_name((bff_jwt_alg)i);
        assert_non_null(name);
        assert_string_equal(name, names[i]);
        bff_jwt_alg parsed = BFF_JWT_ALG_COUNT;
        assert_int_equal(bff_jwt_alg_parse(name, &parsed), 0);
        assert_int_equal(parsed, i);
    }
    const char *unknown[] = {"none", "None", "NONE", "", "hs256", "HS256 ", "ES512", "PS256", "HS2560"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        bff_jwt_alg parsed = BFF_JWT_ALG_COUNT;
        if (bff_jwt_alg_parse(unknown[i], &parsed) != -1)
            fail_msg("parsed \"%s\"", unknown[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256_valid_returns_claims),
        cmocka_unit_test(test_hs384_and_hs512_valid),
        cmocka_unit_test(test_hmac_key_lengths),
        cmocka_unit_test(test_rs256_valid_with_pem_public_key),
        cmocka_unit_test(test_es256_valid),
        cmocka_unit_test(test_es256_signature_forms),
        cmocka_unit_test(test_add_key_refuses_unusable_public_keys),
        cmocka_unit_test(test_duplicate_claim_names_refused),
        cmocka_unit_test(test_token_is_read_for_len_bytes_only),
        cmocka_unit_test(test_wrong_secret_refused),
        cmocka_unit_test(test_tampered_payload_refused),
        cmocka_unit_test(test_tampered_signature_refused),
        cmocka_unit_test(test_alg_none_refused),
        cmocka_unit_test(test_algorithm_confusion_refused),
        cmocka_unit_test(test_alg_differs_from_pinned_alg_refused),
        cmocka_unit_test(test_kid_selects_key),
        cmocka_unit_test(test_header_memo),
        cmocka_unit_test(test_single_key_without_kid),
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_nbf),
        cmocka_unit_test(test_iat),
        cmocka_unit_test(test_time_claims_must_be_numbers),
        cmocka_unit_test(test_no_exp_accepted),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_max_token_bytes),
        cmocka_unit_test(test_default_max_token_bytes),
        cmocka_unit_test(test_malformed_shapes),
        cmocka_unit_test(test_non_base64url_characters),
        cmocka_unit_test(test_rs256_signature_in_plain_base64_refused),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_add_key_refuses_empty_key),
        cmocka_unit_test(test_verify_without_keys_refuses),
        cmocka_unit_test(test_alg_names),
    };
    return cmocka_run_group_tests(tests, generate_keys, free_keys);
}
