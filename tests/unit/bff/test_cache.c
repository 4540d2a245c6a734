/* test_cache: the response cache: hits until the TTL, LRU eviction by entries and bytes, threads, config. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bff/cache.h"

#define MS 1000000ULL

static bff_cache *make(uint64_t ttl_ms, uint64_t max_entries, uint64_t max_bytes)
{
    bff_cache_config cfg = {ttl_ms, max_entries, max_bytes, 1};
    bff_cache *c = bff_cache_new(&cfg);
    assert_non_null(c);
    return c;
}

static void put_int(bff_cache *c, const char *key, int v, size_t bytes, uint64_t now)
{
    json_t *value = json_integer(v);
    bff_cache_put(c, key, strlen(key), value, bytes, now);
    json_decref(value); /* the cache keeps its own reference */
}

static int get_int(bff_cache *c, const char *key, uint64_t now)
{
    json_t *v = bff_cache_get(c, key, strlen(key), now);
    int out = v != NULL ? (int)json_integer_value(v) : -1;
    json_decref(v);
    return out;
}

static void test_hit_until_the_ttl(void **state)
{
    (void)state;
    bff_cache *c = make(100, 10, 1 << 20);
    uint64_t t = 1000 * MS;
    assert_int_equal(get_int(c, "a", t), -1);
    put_int(c, "a", 7, 10, t);
    assert_int_equal(get_int(c, "a", t + 99 * MS), 7);
    assert_int_equal(get_int(c, "a", t + 100 * MS), -1); /* expired exactly at the TTL */
    bff_cache_stats s;
    bff_cache_stats_get(c, &s);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.entries, 0); /* the expired entry was dropped when met */
    bff_cache_free(c);
}

static void test_replace_and_binary_keys(void **state)
{
    (void)state;
    bff_cache *c = make(1000, 10, 1 << 20);
    put_int(c, "k", 1, 10, 0);
    put_int(c, "k", 2, 20, 0);
    assert_int_equal(get_int(c, "k", 0), 2);
    bff_cache_stats s;
    bff_cache_stats_get(c, &s);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, 20);
    /* Keys are bytes: a NUL inside counts. */
    json_t *v = json_integer(5);
    bff_cache_put(c, "x\0y", 3, v, 1, 0);
    json_decref(v);
    assert_null(bff_cache_get(c, "x", 1, 0));
    json_t *got = bff_cache_get(c, "x\0y", 3, 0);
    assert_int_equal(json_integer_value(got), 5);
    json_decref(got);
    bff_cache_free(c);
}

static void test_lru_eviction_by_entries(void **state)
{
    (void)state;
    bff_cache *c = make(1000, 3, 1 << 20);
    put_int(c, "a", 1, 1, 0);
    put_int(c, "b", 2, 1, 0);
    put_int(c, "c", 3, 1, 0);
    assert_int_equal(get_int(c, "a", 0), 1); /* a is now the most recently used */
    put_int(c, "d", 4, 1, 0);                /* evicts b, the least recently used */
    assert_int_equal(get_int(c, "b", 0), -1);
    assert_int_equal(get_int(c, "a", 0), 1);
    assert_int_equal(get_int(c, "c", 0), 3);
    assert_int_equal(get_int(c, "d", 0), 4);
    bff_cache_stats s;
    bff_cache_stats_get(c, &s);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.evictions, 1);
    bff_cache_free(c);
}

static void test_bounded_by_bytes(void **state)
{
    (void)state;
    bff_cache *c = make(1000, 100, 2048);
    put_int(c, "a", 1, 1000, 0);
    put_int(c, "b", 2, 1000, 0);
    put_int(c, "c", 3, 1000, 0); /* 3000 > 2048: a goes */
    assert_int_equal(get_int(c, "a", 0), -1);
    assert_int_equal(get_int(c, "c", 0), 3);
    put_int(c, "huge", 4, 4096, 0); /* larger than the whole cache: not stored, nothing evicted */
    assert_int_equal(get_int(c, "huge", 0), -1);
    assert_int_equal(get_int(c, "b", 0), 2);
    bff_cache_stats s;
    bff_cache_stats_get(c, &s);
    assert_true(s.bytes <= 2048);
    bff_cache_free(c);
}

static void *hammer(void *arg)
{
    bff_cache *c = arg;
    char key[32];
    for (int i = 0; i < 20000; ++i) {
        snprintf(key, sizeof(key), "k%d", i % 500);
        if (i % 3 == 0)
            put_int(c, key, i % 500, 8, 0);
        else {
            int v = get_int(c, key, 0);
            if (v != -1 && v != i % 500)
                return (void *)1;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    bff_cache *c = make(1000, 100, 1 << 20);
    pthread_t t[4];
    for (int i = 0; i < 4; ++i)
        pthread_create(&t[i], NULL, hammer, c);
    for (int i = 0; i < 4; ++i) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    bff_cache_stats s;
    bff_cache_stats_get(c, &s);
    assert_true(s.entries <= 100);
    bff_cache_free(c);
}

static void test_config(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *obj = json_loads("{\"cache\": {\"ttl_ms\": 500, \"per_user\": false}}", 0, &jerr);
    cfg_errors errs = {0};
    bff_cache_config cfg;
    assert_int_equal(bff_cache_config_load(obj, "web.json", "routes[0]", &cfg, &errs), 1);
    assert_int_equal(cfg.ttl_ms, 500);
    assert_int_equal(cfg.max_entries, 10000);
    assert_false(cfg.per_user);
    json_decref(obj);
    obj = json_loads("{\"cache\": {\"max_entries\": 5, \"bogus\": 1}}", 0, &jerr);
    assert_int_equal(bff_cache_config_load(obj, "web.json", "routes[0]", &cfg, &errs), -1);
    int ttl = 0, bogus = 0;
    for (size_t i = 0; i < errs.count; ++i) {
        ttl |= strcmp(errs.items[i], "web.json: routes[0].cache.ttl_ms: missing required key") == 0;
        bogus |= strstr(errs.items[i], "routes[0].cache.bogus: unknown key") != NULL;
    }
    assert_true(ttl && bogus);
    cfg_errors_release(&errs);
    json_decref(obj);
    obj = json_loads("{}", 0, &jerr);
    assert_int_equal(bff_cache_config_load(obj, "web.json", "routes[0]", &cfg, &errs), 0);
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_until_the_ttl),
        cmocka_unit_test(test_replace_and_binary_keys),
        cmocka_unit_test(test_lru_eviction_by_entries),
        cmocka_unit_test(test_bounded_by_bytes),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests_name("unit/bff/cache", tests, NULL, NULL);
}
