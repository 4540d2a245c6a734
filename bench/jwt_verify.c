/* jwt_verify: microseconds per token for full verification (HS256, RS256, ES256) and for a cache hit. */

/*
 * What the per-worker cache saves a protected route: each algorithm's token is verified N times
 * with bff_jwt_verify (header checks, libjwt signature check, claims parsed twice), then looked up
 * N times in a bff_jwt_cache. Each measurement runs ROUNDS rounds and reports the fastest.
 * Run: ./bench_jwt_verify [iterations]
 */

#include "bff/jwt_cache.h"
#include "bff/jwt_verify.h"

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ROUNDS = 5, DEFAULT_ITERATIONS = 20000 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* PEM text of a new key pair (private and public), from OpenSSL. */
static void keypair(const char *type, const char *param, char **priv, char **pub)
{
    EVP_PKEY *key = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                             : EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    *priv = strndup(data, (size_t)n);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, key);
    n = BIO_get_mem_data(b, &data);
    *pub = strndup(data, (size_t)n);
    BIO_free(b);
    EVP_PKEY_free(key);
}

static char *mint(jwt_alg_t alg, const char *key)
{
    jwt_t *j = NULL;
    jwt_new(&j);
    jwt_set_alg(j, alg, (const unsigned char *)key, (int)strlen(key));
    jwt_add_grant(j, "sub", "bench-user-0001");
    jwt_add_grant(j, "iss", "https://id.example");
    jwt_add_grant(j, "scope", "orders:read orders:write profile");
    jwt_add_grant_int(j, "exp", (long)time(NULL) + 3600);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

static void run(const char *name, bff_jwt_alg alg, jwt_alg_t lalg, const char *sign_key, const char *verify_key,
                int iterations)
{
    bff_jwt_config cfg = {0};
    bff_jwt_config_add_key(&cfg, NULL, alg, verify_key, strlen(verify_key));
    char *token = mint(lalg, sign_key);
    size_t len = strlen(token);
    char reason[256];
    double best_verify = 1e9, best_hit = 1e9;
    bff_jwt_cache *cache = bff_jwt_cache_new();
    for (int r = 0; r < ROUNDS; ++r) {
        double t0 = now_s();
        for (int i = 0; i < iterations; ++i) {
            json_t *claims = NULL;
            if (bff_jwt_verify(&cfg, token, len, time(NULL), &claims, reason, sizeof(reason)) != 0) {
                fprintf(stderr, "%s: verification failed: %s\n", name, reason);
                exit(1);
            }
            if (i == 0 && r == 0)
                bff_jwt_cache_put(cache, 1, token, len, claims, time(NULL), time(NULL) + 3600);
            json_decref(claims);
        }
        double t1 = now_s();
        for (int i = 0; i < iterations; ++i) {
            if (bff_jwt_cache_get(cache, 1, token, len, time(NULL)) == NULL) {
                fprintf(stderr, "%s: cache miss\n", name);
                exit(1);
            }
        }
        double t2 = now_s();
        if ((t1 - t0) < best_verify)
            best_verify = t1 - t0;
        if ((t2 - t1) < best_hit)
            best_hit = t2 - t1;
    }
    double v = best_verify / iterations * 1e6, h = best_hit / iterations * 1e6;
    printf("| %s | %zu | %.2f | %.3f | %.0fx |\n", name, len, v, h, v / h);
    bff_jwt_cache_free(cache);
    bff_jwt_config_release(&cfg);
    free(token);
}

int main(int argc, char **argv)
{
    int iterations = argc > 1 ? atoi(argv[1]) : DEFAULT_ITERATIONS;
    if (iterations <= 0)
        iterations = DEFAULT_ITERATIONS;
    char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub;
    keypair("RSA", NULL, &rsa_priv, &rsa_pub);
    keypair("EC", "P-256", &ec_priv, &ec_pub);
    const char *secret = "bench-secret-0123456789abcdefghijklmnop";
    printf("| token | bytes | verify (us) | cache hit (us) | ratio |\n|---|---|---|---|---|\n");
    run("HS256", BFF_JWT_HS256, JWT_ALG_HS256, secret, secret, iterations);
    run("RS256", BFF_JWT_RS256, JWT_ALG_RS256, rsa_priv, rsa_pub, iterations / 10);
    run("ES256", BFF_JWT_ES256, JWT_ALG_ES256, ec_priv, ec_pub, iterations / 10);
    printf("\nfastest of %d rounds; %d iterations for HS256, %d for RS256/ES256\n", ROUNDS, iterations,
           iterations / 10);
    free(rsa_priv);
    free(rsa_pub);
    free(ec_priv);
    free(ec_pub);
    return 0;
}
