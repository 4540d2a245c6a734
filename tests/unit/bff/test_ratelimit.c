/* test_ratelimit: token buckets per key: burst, refill, independence of keys, bounded memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bff/ratelimit.h"

#define MS 1000000ULL

static void test_burst_then_refused_with_wait(void **state)
{
    (void)state;
    bff_ratelimit rl;
    bff_ratelimit_init(&rl, 2.0, 3.0); /* 2 per second, bursts of 3 */
    const uint8_t a[4] = {127, 0, 0, 1};
    uint64_t t = 1000 * MS;
    for (int i = 0; i < 3; ++i)
        assert_int_equal(bff_ratelimit_take(&rl, a, 4, t), 0);
    uint64_t wait = bff_ratelimit_take(&rl, a, 4, t);
    /* The next token comes in 500 ms. */
    assert_true(wait >= 499 && wait <= 501);
    /* Half a second later exactly one more is allowed. */
    assert_int_equal(bff_ratelimit_take(&rl, a, 4, t + 500 * MS), 0);
    assert_true(bff_ratelimit_take(&rl, a, 4, t + 500 * MS) > 0);
    /* A long pause refills up to the burst, not beyond. */
    t += 60000 * MS;
    for (int i = 0; i < 3; ++i)
        assert_int_equal(bff_ratelimit_take(&rl, a, 4, t), 0);
    assert_true(bff_ratelimit_take(&rl, a, 4, t) > 0);
    bff_ratelimit_dispose(&rl);
}

static void test_keys_are_independent(void **state)
{
    (void)state;
    bff_ratelimit rl;
    bff_ratelimit_init(&rl, 1.0, 1.0);
    const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
    uint8_t v6[16] = {0};
    v6[15] = 1;
    assert_int_equal(bff_ratelimit_take(&rl, a, 4, 5 * MS), 0);
    assert_true(bff_ratelimit_take(&rl, a, 4, 5 * MS) > 0);
    assert_int_equal(bff_ratelimit_take(&rl, b, 4, 5 * MS), 0);
    assert_int_equal(bff_ratelimit_take(&rl, v6, 16, 5 * MS), 0);
    /* A 4-byte key and a 16-byte key with the same leading bytes are different clients. */
    uint8_t a16[16] = {10, 0, 0, 1};
    assert_int_equal(bff_ratelimit_take(&rl, a16, 16, 5 * MS), 0);
    bff_ratelimit_dispose(&rl);
}

static void test_many_keys_stay_bounded(void **state)
{
    (void)state;
    bff_ratelimit rl;
    bff_ratelimit_init(&rl, 1.0, 1.0);
    /* Far more clients than slots: every new client starts with a full bucket (never refused), and the
     * table does not grow. */
    for (uint32_t i = 0; i < 200000; ++i) {
        uint8_t key[4];
        memcpy(key, &i, 4);
        assert_int_equal(bff_ratelimit_take(&rl, key, 4, (uint64_t)i * 1000), 0);
    }
    /* A client seen just now is still remembered. */
    uint32_t last = 199999;
    uint8_t key[4];
    memcpy(key, &last, 4);
    assert_true(bff_ratelimit_take(&rl, key, 4, 199999ULL * 1000) > 0);
    bff_ratelimit_dispose(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refused_with_wait),
        cmocka_unit_test(test_keys_are_independent),
        cmocka_unit_test(test_many_keys_stay_bounded),
    };
    return cmocka_run_group_tests_name("unit/bff/ratelimit", tests, NULL, NULL);
}
