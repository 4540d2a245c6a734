/* Unit tests for gateway/host: the worker's timers (a 0 ms timer runs in the loop's next turn; a longer one
 * never runs before its due time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "functions/fn.h"
#include "gateway/host.h"
#include "gateway/worker.h"

typedef struct fixture {
    h2o_globalconf_t conf;
    gw_worker w;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    h2o_config_init(&f->conf);
    h2o_config_register_host(&f->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_context_init(&f->w.ctx, h2o_evloop_create(), &f->conf);
    gw_host_init(&f->w);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gw_host_close(&f->w);
    assert_int_equal(gw_host_dispose(&f->w), 0);
    h2o_evloop_t *loop = f->w.ctx.loop;
    h2o_context_dispose(&f->w.ctx);
    h2o_evloop_destroy(loop);
    h2o_config_dispose(&f->conf);
    free(f);
    return 0;
}

typedef struct fired {
    gw_timer timer; /* first */
    int count;
    uint64_t at_ns;
} fired;

static void on_fired(gw_timer *timer)
{
    fired *x = (fired *)timer;
    x->count++;
    x->at_ns = fn_now_ns();
}

/* A 0 ms timer runs in the next turn of the loop even when the loop does not wait at all: it defers work
 * out of the current callback without adding a millisecond (composed calls deliver results this way). */
static void test_zero_timer_runs_in_the_next_turn(void **state)
{
    fixture *f = *state;
    fired zero = {0}, later = {0};
    gw_timer_start(&f->w, &later.timer, 60000, on_fired);
    gw_timer_start(&f->w, &zero.timer, 0, on_fired);
    h2o_evloop_run(f->w.ctx.loop, 0);
    assert_int_equal(zero.count, 1);
    assert_int_equal(later.count, 0);
    assert_false(gw_timer_active(&zero.timer));
    assert_true(gw_timer_active(&later.timer));
    gw_timer_stop(&later.timer);
    assert_false(gw_timer_active(&later.timer));
}

typedef struct chain {
    gw_timer timer; /* first */
    gw_worker *w;
    long hops;
} chain;

static void on_chain(gw_timer *timer)
{
    chain *c = (chain *)timer;
    if (++c->hops < 1000000)
        gw_timer_start(c->w, &c->timer, 0, on_chain);
}

/* A 0 ms timer that starts itself again from its callback (a handler calling ctx.sleep(0) in a loop) runs
 * at most two hops per turn of the loop: sockets and other timers still get their turn. */
static void test_zero_chain_yields_the_loop(void **state)
{
    fixture *f = *state;
    chain c = {.w = &f->w};
    fired other = {0};
    gw_timer_start(&f->w, &c.timer, 0, on_chain);
    h2o_evloop_run(f->w.ctx.loop, 0);
    assert_true(c.hops >= 1 && c.hops <= 2);
    gw_timer_start(&f->w, &other.timer, 1, on_fired);
    for (int turns = 0; turns < 100000 && other.count == 0; ++turns)
        h2o_evloop_run(f->w.ctx.loop, 0);
    assert_int_equal(other.count, 1);
    assert_true(c.hops < 1000000); /* the chain is still going: it did not run to its end first */
    gw_timer_stop(&c.timer);
}

/* Timers of any length fire once, never before their due time; one restarted from its own callback runs
 * again. */
static void test_timers_never_fire_early(void **state)
{
    fixture *f = *state;
    static const uint64_t ms[] = {1, 3, 7, 25};
    fired t[4];
    memset(t, 0, sizeof(t));
    uint64_t due[4];
    for (size_t i = 0; i < 4; ++i) {
        due[i] = fn_now_ns() + ms[i] * 1000000ULL;
        gw_timer_start(&f->w, &t[i].timer, ms[i], on_fired);
    }
    for (int turns = 0; turns < 10000 && t[3].count == 0; ++turns)
        h2o_evloop_run(f->w.ctx.loop, 5);
    for (size_t i = 0; i < 4; ++i) {
        assert_int_equal(t[i].count, 1);
        assert_true(t[i].at_ns >= due[i]);
    }
}

/* Restarting a running timer moves it: it fires once, for the new duration. */
static void test_restart_replaces(void **state)
{
    fixture *f = *state;
    fired t = {0};
    gw_timer_start(&f->w, &t.timer, 60000, on_fired);
    gw_timer_start(&f->w, &t.timer, 0, on_fired);
    h2o_evloop_run(f->w.ctx.loop, 0);
    assert_int_equal(t.count, 1);
    assert_false(gw_timer_active(&t.timer));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zero_timer_runs_in_the_next_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_chain_yields_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_never_fire_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_replaces, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
