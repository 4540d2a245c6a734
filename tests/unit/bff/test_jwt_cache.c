/* test_jwt_cache: verified tokens cached per thread: hits, expiry at exp, isolation by auth id, bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bff/jwt_cache.h"

static json_t *claims_for(const char *sub)
{
    return json_pack("{s:s}", "sub", sub);
}

static void test_hit_returns_the_cached_claims(void **state)
{
    (void)state;
    bff_jwt_cache *c = bff_jwt_cache_new();
    assert_non_null(c);
    const char *tok = "aaa.bbb.ccc";
    json_t *claims = claims_for("alice");
    assert_null(bff_jwt_cache_get(c, 1, tok, strlen(tok), 1000));
    bff_jwt_cache_put(c, 1, tok, strlen(tok), claims, 1000, 1100);
    json_decref(claims); /* the cache keeps its own reference */
    json_t *got = bff_jwt_cache_get(c, 1, tok, strlen(tok), 1050);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "sub")), "alice");
    assert_int_equal(c->hits, 1);
    assert_int_equal(c->misses, 1);
    bff_jwt_cache_free(c);
}

static void test_entry_expires_at_until(void **state)
{
    (void)state;
    bff_jwt_cache *c = bff_jwt_cache_new();
    const char *tok = "aaa.bbb.ccc";
    json_t *claims = claims_for("alice");
    bff_jwt_cache_put(c, 1, tok, strlen(tok), claims, 1000, 1100);
    assert_non_null(bff_jwt_cache_get(c, 1, tok, strlen(tok), 1099));
    assert_null(bff_jwt_cache_get(c, 1, tok, strlen(tok), 1100)); /* valid while now < until */
    /* Nothing is cached when until is not after now. */
    bff_jwt_cache_put(c, 1, tok, strlen(tok), claims, 1200, 1200);
    assert_null(bff_jwt_cache_get(c, 1, tok, strlen(tok), 1200));
    json_decref(claims);
    bff_jwt_cache_free(c);
}

static void test_auth_id_and_bytes_must_match(void **state)
{
    (void)state;
    bff_jwt_cache *c = bff_jwt_cache_new();
    json_t *claims = claims_for("alice");
    const char *tok = "header.payload.signature";
    bff_jwt_cache_put(c, 7, tok, strlen(tok), claims, 1000, 2000);
    assert_null(bff_jwt_cache_get(c, 8, tok, strlen(tok), 1000)); /* another auth config */
    assert_null(bff_jwt_cache_get(c, 7, "header.payload.signaturX", strlen(tok), 1000));
    assert_null(bff_jwt_cache_get(c, 7, tok, strlen(tok) - 1, 1000)); /* a prefix */
    assert_non_null(bff_jwt_cache_get(c, 7, tok, strlen(tok), 1000));
    json_decref(claims);
    bff_jwt_cache_free(c);
}

static void test_long_tokens_are_not_cached(void **state)
{
    (void)state;
    bff_jwt_cache *c = bff_jwt_cache_new();
    json_t *claims = claims_for("alice");
    size_t len = BFF_JWT_CACHE_TOKEN_MAX + 1;
    char *tok = malloc(len);
    memset(tok, 'a', len);
    bff_jwt_cache_put(c, 1, tok, len, claims, 1000, 2000);
    assert_null(bff_jwt_cache_get(c, 1, tok, len, 1000));
    bff_jwt_cache_put(c, 1, tok, len - 1, claims, 1000, 2000);
    assert_non_null(bff_jwt_cache_get(c, 1, tok, len - 1, 1000));
    free(tok);
    json_decref(claims);
    bff_jwt_cache_free(c);
}

static void test_bounded_and_still_correct_after_many_tokens(void **state)
{
    (void)state;
    bff_jwt_cache *c = bff_jwt_cache_new();
    size_t n = BFF_JWT_CACHE_SETS * BFF_JWT_CACHE_WAYS * 4;
    char tok[64];
    for (size_t i = 0; i < n; ++i) {
        int len = snprintf(tok, sizeof(tok), "token-%zu", i);
        char sub[32];
        snprintf(sub, sizeof(sub), "user-%zu", i);
        json_t *claims = claims_for(sub);
        bff_jwt_cache_put(c, 1, tok, (size_t)len, claims, 1000, 2000);
        json_decref(claims);
    }
    size_t occupied = 0;
    for (size_t s = 0; s < BFF_JWT_CACHE_SETS; ++s)
        for (size_t w = 0; w < BFF_JWT_CACHE_WAYS; ++w)
            occupied += c->entries[s][w].hash != 0;
    assert_true(occupied <= BFF_JWT_CACHE_SETS * BFF_JWT_CACHE_WAYS);
    /* Whatever is found is the right subject; the last token put is found. */
    size_t found = 0;
    for (size_t i = 0; i < n; ++i) {
        int len = snprintf(tok, sizeof(tok), "token-%zu", i);
        json_t *got = bff_jwt_cache_get(c, 1, tok, (size_t)len, 1000);
        if (got != NULL) {
            char sub[32];
            snprintf(sub, sizeof(sub), "user-%zu", i);
            assert_string_equal(json_string_value(json_object_get(got, "sub")), sub);
            ++found;
        }
    }
    assert_true(found > 0 && found <= BFF_JWT_CACHE_SETS * BFF_JWT_CACHE_WAYS);
    int len = snprintf(tok, sizeof(tok), "token-%zu", n - 1);
    assert_non_null(bff_jwt_cache_get(c, 1, tok, (size_t)len, 1000));
    bff_jwt_cache_free(c);
}

static void test_until_never_passes_exp(void **state)
{
    (void)state;
    json_t *claims = json_pack("{s:s,s:i}", "sub", "a", "exp", 1100);
    assert_int_equal(bff_jwt_cache_until(claims, 0, 1000), 1100);
    assert_int_equal(bff_jwt_cache_until(claims, 30, 1000), 1130); /* the leeway verification grants */
    assert_int_equal(bff_jwt_cache_until(claims, 0, 1200), 1200);  /* already past: nothing to cache */
    json_decref(claims);
    claims = json_pack("{s:s,s:i}", "sub", "a", "exp", 1000000);
    assert_int_equal(bff_jwt_cache_until(claims, 0, 1000), 1000 + BFF_JWT_CACHE_TTL_S);
    json_decref(claims);
    claims = json_pack("{s:s}", "sub", "a"); /* no exp: the TTL alone */
    assert_int_equal(bff_jwt_cache_until(claims, 0, 1000), 1000 + BFF_JWT_CACHE_TTL_S);
    json_decref(claims);
    claims = json_pack("{s:s,s:f}", "sub", "a", "exp", 1100.5);
    assert_true(bff_jwt_cache_until(claims, 0, 1000) <= 1100);
    json_decref(claims);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_returns_the_cached_claims),
        cmocka_unit_test(test_entry_expires_at_until),
        cmocka_unit_test(test_auth_id_and_bytes_must_match),
        cmocka_unit_test(test_long_tokens_are_not_cached),
        cmocka_unit_test(test_bounded_and_still_correct_after_many_tokens),
        cmocka_unit_test(test_until_never_passes_exp),
    };
    return cmocka_run_group_tests_name("unit/bff/jwt_cache", tests, NULL, NULL);
}
