/* Unit tests for bff/admission: limit, FIFO queue, cancel, counters, and a multi-threaded stress run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bff/admission.h"

/* ---- single-threaded tests: the admit callback records waiter ids in the order it sees them ---- */

typedef struct test_waiter {
    bff_waiter base;
    int id;
} test_waiter;

#define MAX_RECORDED 64
static int admitted_ids[MAX_RECORDED];
static size_t nadmitted;

static void record_admit(bff_waiter *waiter)
{
    test_waiter *tw = waiter->data;
    assert_ptr_equal(&tw->base, waiter);
    assert_true(nadmitted < MAX_RECORDED);
    admitted_ids[nadmitted++] = tw->id;
}

static int reset_recorder(void **state)
{
    (void)state;
    nadmitted = 0;
    memset(admitted_ids, 0, sizeof(admitted_ids));
    return 0;
}

static void init_waiters(test_waiter *waiters, size_t n)
{
    memset(waiters, 0, n * sizeof(*waiters));
    for (size_t i = 0; i < n; i++) {
        waiters[i].id = (int)i;
        waiters[i].base.data = &waiters[i];
    }
}

static void assert_admitted_order(const int *expected, size_t n)
{
    assert_int_equal(nadmitted, n);
    for (size_t i = 0; i < n; i++)
        if (admitted_ids[i] != expected[i])
            fail_msg("admission #%zu went to waiter %d, expected waiter %d", i, admitted_ids[i], expected[i]);
}

static void assert_counters(bff_admission *a, uint64_t admitted, uint64_t queued, uint64_t throttled)
{
    assert_int_equal(atomic_load(&a->counters.admitted), admitted);
    assert_int_equal(atomic_load(&a->counters.queued), queued);
    assert_int_equal(atomic_load(&a->counters.throttled), throttled);
}

static void test_limit_then_queue_then_reject(void **state)
{
    (void)state;
    bff_admission a;
    test_waiter w[8];
    init_waiters(w, 8);
    bff_admission_init(&a, 3, 2, record_admit);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(bff_admission_enter(&a, &w[i].base), BFF_ADMIT_OK);
        assert_int_equal(atomic_load(&a.inflight), i + 1);
    }
    assert_counters(&a, 3, 0, 0);
    assert_int_equal(atomic_load(&a.nqueued), 0);

    for (int i = 3; i < 5; i++) {
        assert_int_equal(bff_admission_enter(&a, &w[i].base), BFF_ADMIT_QUEUED);
        assert_int_equal(atomic_load(&a.nqueued), i - 2);
    }
    assert_int_equal(atomic_load(&a.inflight), 3);
    assert_counters(&a, 3, 2, 0);

    for (int i = 5; i < 8; i++)
        assert_int_equal(bff_admission_enter(&a, &w[i].base), BFF_ADMIT_REJECTED);
    assert_int_equal(atomic_load(&a.inflight), 3);
    assert_int_equal(atomic_load(&a.nqueued), 2);
    assert_counters(&a, 3, 2, 3);
    assert_int_equal(nadmitted, 0); /* nobody left, so nobody was handed a slot */

    /* Drain: each leave hands its slot to the next waiter; then the slots really free up. */
    bff_admission_leave(&a);
    bff_admission_leave(&a);
    assert_int_equal(atomic_load(&a.inflight), 3);
    assert_int_equal(atomic_load(&a.nqueued), 0);
    assert_counters(&a, 5, 2, 3);
    for (int i = 0; i < 3; i++)
        bff_admission_leave(&a);
    assert_int_equal(atomic_load(&a.inflight), 0);

    /* With the queue empty the fast path admits again. */
    assert_int_equal(bff_admission_enter(&a, &w[0].base), BFF_ADMIT_OK);
    bff_admission_leave(&a);
    assert_counters(&a, 6, 2, 3);
    bff_admission_dispose(&a);
}

static void test_leave_admits_oldest_waiter_first(void **state)
{
    (void)state;
    bff_admission a;
    test_waiter holders[2], w[5];
    init_waiters(holders, 2);
    init_waiters(w, 5);
    bff_admission_init(&a, 2, 5, record_admit);

    assert_int_equal(bff_admission_enter(&a, &holders[0].base), BFF_ADMIT_OK);
    assert_int_equal(bff_admission_enter(&a, &holders[1].base), BFF_ADMIT_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bff_admission_enter(&a, &w[i].base), BFF_ADMIT_QUEUED);
    assert_int_equal(nadmitted, 0);

    /* Every leave passes exactly one slot to exactly the oldest waiter; inflight stays at the limit. */
    static const int expected[] = {0, 1, 2, 3, 4};
    for (size_t i = 0; i < 5; i++) {
        bff_admission_leave(&a);
        assert_admitted_order(expected, i + 1);
        assert_int_equal(atomic_load(&a.inflight), 2);
        assert_int_equal(atomic_load(&a.nqueued), 4 - i);
    }
    assert_null(a.head);
    assert_null(a.tail);
    bff_admission_leave(&a);
    bff_admission_leave(&a);
    assert_int_equal(atomic_load(&a.inflight), 0);
    assert_int_equal(nadmitted, 5);
    assert_counters(&a, 7, 5, 0);
    bff_admission_dispose(&a);
}

static void test_queue_max_zero_rejects_at_once(void **state)
{
    (void)state;
    bff_admission a;
    test_waiter w[3];
    init_waiters(w, 3);
    bff_admission_init(&a, 1, 0, record_admit);

    assert_int_equal(bff_admission_enter(&a, &w[0].base), BFF_ADMIT_OK);
    assert_int_equal(bff_admission_enter(&a, &w[1].base), BFF_ADMIT_REJECTED);
    assert_int_equal(bff_admission_enter(&a, &w[2].base), BFF_ADMIT_REJECTED);
    assert_int_equal(atomic_load(&a.nqueued), 0);
    assert_null(a.head);
    assert_counters(&a, 1, 0, 2);

    bff_admission_leave(&a);
    assert_int_equal(atomic_load(&a.inflight), 0);
    assert_int_equal(nadmitted, 0); /* the rejected ones were never queued, so never admitted */
    assert_int_equal(bff_admission_enter(&a, &w[1].base), BFF_ADMIT_OK);
    bff_admission_leave(&a);
    assert_counters(&a, 2, 0, 2);
    bff_admission_dispose(&a);
}

static void test_cancel_queued_waiter_is_never_admitted(void **state)
{
    (void)state;
    bff_admission a;
    test_waiter holder, w[5];
    init_waiters(&holder, 1);
    init_waiters(w, 5);
    bff_admission_init(&a, 1, 5, record_admit);

    assert_int_equal(bff_admission_enter(&a, &holder.base), BFF_ADMIT_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bff_admission_enter(&a, &w[i].base), BFF_ADMIT_QUEUED);

    /* Cancel the head, a middle one and the tail: each unlink case of the list. */
    assert_int_equal(bff_admission_cancel(&a, &w[0].base), 1);
    assert_int_equal(bff_admission_cancel(&a, &w[2].base), 1);
    assert_int_equal(bff_admission_cancel(&a, &w[4].base), 1);
    assert_int_equal(atomic_load(&a.nqueued), 2);
    assert_ptr_equal(a.head, &w[1].base);
    assert_ptr_equal(a.tail, &w[3].base);
    /* The queue has room again, and a newcomer links behind the survivors. */
    assert_int_equal(bff_admission_enter(&a, &w[0].base), BFF_ADMIT_QUEUED);

    for (int i = 0; i < 4; i++)
        bff_admission_leave(&a);
    static const int expected[] = {1, 3, 0};
    assert_admitted_order(expected, 3);
    assert_int_equal(atomic_load(&a.inflight), 0);
    assert_int_equal(atomic_load(&a.nqueued), 0);
    assert_null(a.head);
    assert_null(a.tail);
    assert_counters(&a, 4, 6, 0);
    bff_admission_dispose(&a);
}

static void test_cancel_after_admission_returns_zero(void **state)
{
    (void)state;
    bff_admission a;
    test_waiter w[2];
    init_waiters(w, 2);
    bff_admission_init(&a, 1, 1, record_admit);

    assert_int_equal(bff_admission_enter(&a, &w[0].base), BFF_ADMIT_OK);
    assert_int_equal(bff_admission_enter(&a, &w[1].base), BFF_ADMIT_QUEUED);
    bff_admission_leave(&a);
    static const int expected[] = {1};
    assert_admitted_order(expected, 1);

    /* Too late: the slot is already w1's, cancel must say so and must not drop the slot. */
    assert_int_equal(bff_admission_cancel(&a, &w[1].base), 0);
    assert_int_equal(atomic_load(&a.inflight), 1);
    assert_int_equal(atomic_load(&a.nqueued), 0);
    assert_int_equal(nadmitted, 1);
    bff_admission_leave(&a);
    assert_int_equal(atomic_load(&a.inflight), 0);
    assert_counters(&a, 2, 1, 0);
    bff_admission_dispose(&a);
}

static void test_count_throttled(void **state)
{
    (void)state;
    bff_admission a;
    test_waiter w[3];
    init_waiters(w, 3);
    bff_admission_init(&a, 1, 1, record_admit);

    assert_int_equal(bff_admission_enter(&a, &w[0].base), BFF_ADMIT_OK);
    assert_int_equal(bff_admission_enter(&a, &w[1].base), BFF_ADMIT_QUEUED);
    assert_int_equal(bff_admission_enter(&a, &w[2].base), BFF_ADMIT_REJECTED);
    assert_counters(&a, 1, 1, 1);
    /* w1 waited too long: cancel, then count it as throttled. */
    assert_int_equal(bff_admission_cancel(&a, &w[1].base), 1);
    assert_counters(&a, 1, 1, 1); /* cancel alone counts nothing */
    bff_admission_count_throttled(&a);
    assert_counters(&a, 1, 1, 2);
    bff_admission_count_throttled(&a);
    assert_counters(&a, 1, 1, 3);
    bff_admission_leave(&a);
    assert_int_equal(nadmitted, 0);
    assert_int_equal(atomic_load(&a.inflight), 0);
    bff_admission_dispose(&a);
}

/*
 * enter() re-checks for a free slot after enqueueing, because a holder may have left between the failed
 * try and the enqueue while nobody was queued (its leave then returned without looking at the queue).
 * So admit() may run inside bff_admission_enter, on the entering thread, for older waiters and even for
 * the entering waiter itself, before enter returns BFF_ADMIT_QUEUED. That window cannot be hit
 * deterministically from outside; these tests build the same state by hand instead: a leave() is two
 * steps, the decrement of inflight and then (if someone is queued) taking the lock to pop waiters, and
 * the tests run only the first step, as if the leaving thread were still on its way to the lock.
 */
static void leave_before_lock(bff_admission *a)
{
    atomic_fetch_sub(&a->inflight, 1);
}

static void test_enter_hands_freed_slot_to_older_waiter(void **state)
{
    (void)state;
    bff_admission a;
    test_waiter w[4];
    init_waiters(w, 4);
    bff_admission_init(&a, 2, 4, record_admit);

    assert_int_equal(bff_admission_enter(&a, &w[0].base), BFF_ADMIT_OK);
    assert_int_equal(bff_admission_enter(&a, &w[1].base), BFF_ADMIT_OK);
    assert_int_equal(bff_admission_enter(&a, &w[2].base), BFF_ADMIT_QUEUED);
    leave_before_lock(&a);

    /* A slot is free but w2 waits: w3 queues behind it, and enter itself passes the slot to w2. */
    assert_int_equal(bff_admission_enter(&a, &w[3].base), BFF_ADMIT_QUEUED);
    static const int expected[] = {2};
    assert_admitted_order(expected, 1);
    assert_int_equal(atomic_load(&a.inflight), 2);
    assert_int_equal(atomic_load(&a.nqueued), 1);
    assert_ptr_equal(a.head, &w[3].base);
    assert_counters(&a, 3, 2, 0);

    bff_admission_leave(&a);
    static const int expected2[] = {2, 3};
    assert_admitted_order(expected2, 2);
    bff_admission_leave(&a);
    bff_admission_leave(&a);
    assert_int_equal(atomic_load(&a.inflight), 0);
    assert_int_equal(atomic_load(&a.nqueued), 0);
    bff_admission_dispose(&a);
}

static void test_enter_may_admit_its_own_waiter(void **state)
{
    (void)state;
    bff_admission a;
    test_waiter w[4];
    init_waiters(w, 4);
    bff_admission_init(&a, 2, 4, record_admit);

    assert_int_equal(bff_admission_enter(&a, &w[0].base), BFF_ADMIT_OK);
    assert_int_equal(bff_admission_enter(&a, &w[1].base), BFF_ADMIT_OK);
    assert_int_equal(bff_admission_enter(&a, &w[2].base), BFF_ADMIT_QUEUED);
    leave_before_lock(&a);
    leave_before_lock(&a);

    /* Two free slots, one older waiter: enter queues w3, then admits w2 and w3 before it returns. */
    assert_int_equal(bff_admission_enter(&a, &w[3].base), BFF_ADMIT_QUEUED);
    static const int expected[] = {2, 3};
    assert_admitted_order(expected, 2);
    assert_int_equal(atomic_load(&a.inflight), 2);
    assert_int_equal(atomic_load(&a.nqueued), 0);
    assert_null(a.head);
    assert_null(a.tail);
    assert_counters(&a, 4, 2, 0);
    /* The caller, not knowing yet, may try to cancel: it must learn that the slot is its own. */
    assert_int_equal(bff_admission_cancel(&a, &w[3].base), 0);

    bff_admission_leave(&a);
    bff_admission_leave(&a);
    assert_int_equal(atomic_load(&a.inflight), 0);
    assert_int_equal(nadmitted, 2);
    bff_admission_dispose(&a);
}

/*
 * ---- stress: worker threads, each driving several requests like an event loop would ----
 *
 * Each thread owns REQUESTS_PER_THREAD requests and steps them round-robin without ever blocking:
 * enter; if queued, poll the per-request flag the admit callback sets (it may be set by any thread,
 * including from inside enter), sometimes cancel; hold the slot for a few steps; leave. Threads record
 * violations in atomics (cmocka's asserts must stay on the main thread); the main thread checks them.
 */
enum { STRESS_THREADS = 4, STRESS_ENTERS_PER_THREAD = 20000, REQUESTS_PER_THREAD = 4 };
enum { STRESS_LIMIT = 3, STRESS_QUEUE_MAX = 8 };
#define STALL_SECONDS 20 /* only a hang guard for a lost wake-up, never reached by a working build */

enum request_state { REQ_IDLE, REQ_QUEUED, REQ_CANCEL_LOST, REQ_HOLDING };

typedef struct stress_request {
    bff_waiter waiter;
    enum request_state state;
    int hold_steps;
    atomic_int admit_calls; /* set by the admit callback, on any thread */
} stress_request;

typedef struct stress_thread {
    pthread_t thread;
    uint64_t rng;
    stress_request requests[REQUESTS_PER_THREAD];
    uint64_t ok, queued, rejected, cancelled, cancel_lost, from_queue;
} stress_thread;

static struct {
    bff_admission admission;
    atomic_int holders;
    atomic_int max_holders;
    atomic_int max_inflight;
    atomic_uint_fast64_t admit_callbacks;
    atomic_int stalls;
} stress;

/* Violations seen on worker threads, checked by the main thread. */
static struct {
    atomic_int count;
    char first[160];
} violations;

static void violation(const char *what, int value)
{
    if (atomic_fetch_add(&violations.count, 1) == 0)
        snprintf(violations.first, sizeof(violations.first), "%s (value %d)", what, value);
}

static void reset_violations(void)
{
    atomic_store(&violations.count, 0);
    violations.first[0] = '\0';
}

static void assert_no_violations(void)
{
    if (atomic_load(&violations.count) != 0)
        fail_msg("%d violations, first: %s", atomic_load(&violations.count), violations.first);
}

static void raise_max(atomic_int *max, int value)
{
    int seen = atomic_load(max);
    while (value > seen && !atomic_compare_exchange_weak(max, &seen, value))
        ;
}

/* A slot was given to a request: count the holder and check nobody exceeds the limit. */
static void holder_arrives(void)
{
    int holders = atomic_fetch_add(&stress.holders, 1) + 1;
    raise_max(&stress.max_holders, holders);
    int inflight = (int)atomic_load(&stress.admission.inflight);
    raise_max(&stress.max_inflight, inflight);
    if (holders > STRESS_LIMIT)
        violation("more holders than the limit", holders);
}

static void stress_admit(bff_waiter *waiter)
{
    stress_request *r = waiter->data;
    atomic_fetch_add(&stress.admit_callbacks, 1);
    holder_arrives();
    if (atomic_fetch_add_explicit(&r->admit_calls, 1, memory_order_release) != 0)
        violation("a waiter was admitted twice", 0);
}

static uint64_t next_random(stress_thread *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start_holding(stress_thread *t, stress_request *r)
{
    r->state = REQ_HOLDING;
    r->hold_steps = (int)(next_random(t) % 4);
}

static void step_request(stress_thread *t, stress_request *r, int may_enter, int may_cancel)
{
    switch (r->state) {
    case REQ_IDLE:
        if (!may_enter)
            return;
        atomic_store_explicit(&r->admit_calls, 0, memory_order_relaxed);
        switch (bff_admission_enter(&stress.admission, &r->waiter)) {
        case BFF_ADMIT_OK:
            t->ok++;
            holder_arrives();
            start_holding(t, r);
            break;
        case BFF_ADMIT_QUEUED:
            t->queued++;
            r->state = REQ_QUEUED;
            break;
        case BFF_ADMIT_REJECTED:
            t->rejected++;
            break;
        default:
            violation("enter returned an unknown code", 0);
        }
        return;
    case REQ_QUEUED:
        if (atomic_load_explicit(&r->admit_calls, memory_order_acquire) != 0) {
            t->from_queue++;
            start_holding(t, r);
        } else if (may_cancel && next_random(t) % 32 == 0) {
            if (bff_admission_cancel(&stress.admission, &r->waiter)) {
                t->cancelled++;
                bff_admission_count_throttled(&stress.admission);
                if (atomic_load(&r->admit_calls) != 0)
                    violation("cancel returned 1 for an admitted waiter", atomic_load(&r->admit_calls));
                r->state = REQ_IDLE;
            } else {
                /* Admitted meanwhile; admit() may still be running on another thread. */
                t->cancel_lost++;
                r->state = REQ_CANCEL_LOST;
            }
        }
        return;
    case REQ_CANCEL_LOST:
        if (atomic_load_explicit(&r->admit_calls, memory_order_acquire) != 0) {
            t->from_queue++;
            start_holding(t, r);
        }
        return;
    case REQ_HOLDING:
        if (r->hold_steps > 0) {
            r->hold_steps--;
            if (next_random(t) % 16 == 0)
                sched_yield(); /* let other threads run while we hold a slot, even on one core */
            return;
        }
        if (atomic_load(&r->admit_calls) > 1)
            violation("a waiter was admitted more than once", atomic_load(&r->admit_calls));
        atomic_fetch_sub(&stress.holders, 1);
        bff_admission_leave(&stress.admission);
        r->state = REQ_IDLE;
        return;
    }
}

static void *stress_thread_main(void *arg)
{
    stress_thread *t = arg;
    uint64_t enters = 0;
    while (enters < STRESS_ENTERS_PER_THREAD) {
        int holding = 0;
        for (int i = 0; i < REQUESTS_PER_THREAD && enters < STRESS_ENTERS_PER_THREAD; i++) {
            stress_request *r = &t->requests[i];
            if (r->state == REQ_IDLE)
                enters++;
            step_request(t, r, 1, 1);
            holding |= r->state == REQ_HOLDING;
        }
        /* Nothing of ours can progress until another thread leaves: let it run, as an idle event loop would. */
        if (!holding)
            sched_yield();
    }
    /* Drain without cancelling, so a waiter whose wake-up was lost would stay stuck and be caught. */
    double deadline = now_seconds() + STALL_SECONDS;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < REQUESTS_PER_THREAD; i++) {
            step_request(t, &t->requests[i], 0, 0);
            busy |= t->requests[i].state != REQ_IDLE;
        }
        if (!busy)
            break;
        sched_yield();
        if (now_seconds() > deadline) {
            atomic_fetch_add(&stress.stalls, 1);
            for (int i = 0; i < REQUESTS_PER_THREAD; i++)
                if (t->requests[i].state == REQ_QUEUED &&
                    bff_admission_cancel(&stress.admission, &t->requests[i].waiter)) {
                    t->requests[i].state = REQ_IDLE;
                    t->cancelled++;
                }
            deadline = now_seconds() + STALL_SECONDS;
        }
    }
    return NULL;
}

static void test_stress_threads(void **state)
{
    (void)state;
    static stress_thread threads[STRESS_THREADS];
    memset(&stress, 0, sizeof(stress));
    memset(threads, 0, sizeof(threads));
    reset_violations();
    bff_admission_init(&stress.admission, STRESS_LIMIT, STRESS_QUEUE_MAX, stress_admit);

    for (int i = 0; i < STRESS_THREADS; i++) {
        threads[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        for (int j = 0; j < REQUESTS_PER_THREAD; j++)
            threads[i].requests[j].waiter.data = &threads[i].requests[j];
        assert_int_equal(pthread_create(&threads[i].thread, NULL, stress_thread_main, &threads[i]), 0);
    }
    uint64_t ok = 0, queued = 0, rejected = 0, cancelled = 0, cancel_lost = 0, from_queue = 0;
    for (int i = 0; i < STRESS_THREADS; i++) {
        assert_int_equal(pthread_join(threads[i].thread, NULL), 0);
        ok += threads[i].ok;
        queued += threads[i].queued;
        rejected += threads[i].rejected;
        cancelled += threads[i].cancelled;
        cancel_lost += threads[i].cancel_lost;
        from_queue += threads[i].from_queue;
    }
    print_message("stress: %llu ok, %llu queued (%llu admitted later, %llu cancelled, %llu cancel too late), "
                  "%llu rejected, max holders %d\n",
                  (unsigned long long)ok, (unsigned long long)queued, (unsigned long long)from_queue,
                  (unsigned long long)cancelled, (unsigned long long)cancel_lost, (unsigned long long)rejected,
                  atomic_load(&stress.max_holders));

    assert_no_violations();
    assert_int_equal(atomic_load(&stress.stalls), 0);
    assert_true(atomic_load(&stress.max_holders) <= STRESS_LIMIT);
    assert_true(atomic_load(&stress.max_inflight) <= STRESS_LIMIT);
    assert_int_equal(atomic_load(&stress.holders), 0);

    /* Every enter got exactly one answer; every queued waiter was admitted once or cancelled, not both. */
    assert_int_equal(ok + queued + rejected, (uint64_t)STRESS_THREADS * STRESS_ENTERS_PER_THREAD);
    assert_int_equal(from_queue + cancelled, queued);
    assert_int_equal(atomic_load(&stress.admit_callbacks), from_queue);
    assert_int_equal(atomic_load(&stress.admission.counters.admitted), ok + from_queue);
    assert_int_equal(atomic_load(&stress.admission.counters.queued), queued);
    assert_int_equal(atomic_load(&stress.admission.counters.throttled), rejected + cancelled);

    assert_int_equal(atomic_load(&stress.admission.inflight), 0);
    assert_int_equal(atomic_load(&stress.admission.nqueued), 0);
    assert_null(stress.admission.head);
    assert_null(stress.admission.tail);
    /* The run must have exercised the contended paths, or it proved nothing. */
    assert_true(queued > 0);
    assert_true(from_queue > 0);
    bff_admission_dispose(&stress.admission);
}

/*
 * ---- the lost wake-up race, checked exactly ----
 *
 * limit 1: thread L holds the only slot; then, released together, L leaves while thread E enters. Once
 * both calls have returned, E must hold the slot: BFF_ADMIT_OK, or BFF_ADMIT_QUEUED with admit() already
 * called (by L's leave, or by E's own re-check in enter). Nobody else will ever leave, so a waiter still
 * queued at that point has lost its wake-up for good. A random delay on each side sweeps the relative
 * timing across the window between enter's failed try and its enqueue. No timing is asserted.
 */
enum { HANDOFF_ROUNDS = 100000, HANDOFF_MAX_DELAY = 256 };

typedef struct spin_barrier {
    atomic_uint arrived;
    atomic_uint generation;
} spin_barrier;

static void spin_barrier_wait(spin_barrier *b)
{
    unsigned generation = atomic_load(&b->generation);
    if (atomic_fetch_add(&b->arrived, 1) == 1) {
        atomic_store(&b->arrived, 0);
        atomic_fetch_add(&b->generation, 1);
        return;
    }
    for (unsigned spins = 0; atomic_load(&b->generation) == generation; spins++)
        if (spins > 64)
            sched_yield(); /* the other party may need this core */
}

static struct {
    bff_admission admission;
    spin_barrier barrier;
    bff_waiter waiter; /* E's */
    atomic_int admitted;
    uint64_t queued_rounds; /* E's enter returned QUEUED (written by E, read after join) */
    atomic_int stop;        /* set by E after a violation: the state is no longer worth testing */
} handoff;

static void handoff_admit(bff_waiter *waiter)
{
    if (waiter != &handoff.waiter)
        violation("admit called for an unknown waiter", 0);
    if (atomic_fetch_add(&handoff.admitted, 1) != 0)
        violation("waiter admitted twice", 0);
}

/* A few hundred nanoseconds at most: enough to move each side across the other's critical steps. */
static int random_delay(uint64_t *rng)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return (int)(*rng % HANDOFF_MAX_DELAY);
}

static void spin_for(int iterations)
{
    for (volatile int i = iterations; i > 0; i--)
        ;
}

static void *handoff_leaver(void *arg)
{
    uint64_t rng = 0x2545f4914f6cdd1dull;
    for (int round = 0; round < HANDOFF_ROUNDS; round++) {
        if (bff_admission_enter(&handoff.admission, &handoff.waiter) != BFF_ADMIT_OK)
            violation("the free slot was not taken at once", round);
        spin_barrier_wait(&handoff.barrier); /* go */
        spin_for(random_delay(&rng));
        bff_admission_leave(&handoff.admission);
        spin_barrier_wait(&handoff.barrier); /* both calls returned */
        spin_barrier_wait(&handoff.barrier); /* E checked and left */
        if (atomic_load(&handoff.stop))
            break;
    }
    return arg;
}

static void *handoff_enterer(void *arg)
{
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < HANDOFF_ROUNDS; round++) {
        atomic_store(&handoff.admitted, 0);
        spin_barrier_wait(&handoff.barrier); /* go */
        spin_for(random_delay(&rng));
        int rc = bff_admission_enter(&handoff.admission, &handoff.waiter);
        spin_barrier_wait(&handoff.barrier); /* both calls returned */
        int admitted = atomic_load(&handoff.admitted);
        if (rc == BFF_ADMIT_QUEUED) {
            handoff.queued_rounds++;
            if (admitted != 1)
                violation("lost wake-up: still queued after the holder left", round);
        } else if (rc == BFF_ADMIT_OK) {
            if (admitted != 0)
                violation("admit called for a waiter that got BFF_ADMIT_OK", round);
        } else {
            violation("refused with an empty queue", rc);
        }
        if (atomic_load(&handoff.admission.inflight) != 1 || atomic_load(&handoff.admission.nqueued) != 0)
            violation("inflight must be 1 and the queue empty after the hand-off",
                      (int)atomic_load(&handoff.admission.inflight));
        if (atomic_load(&violations.count) != 0)
            atomic_store(&handoff.stop, 1);
        else
            bff_admission_leave(&handoff.admission);
        spin_barrier_wait(&handoff.barrier); /* E checked and left */
        if (atomic_load(&handoff.stop))
            break;
    }
    return arg;
}

static void test_handoff_race_loses_no_wakeup(void **state)
{
    (void)state;
    memset(&handoff, 0, sizeof(handoff));
    reset_violations();
    bff_admission_init(&handoff.admission, 1, 1, handoff_admit);
    pthread_t leaver, enterer;
    assert_int_equal(pthread_create(&leaver, NULL, handoff_leaver, NULL), 0);
    assert_int_equal(pthread_create(&enterer, NULL, handoff_enterer, NULL), 0);
    assert_int_equal(pthread_join(leaver, NULL), 0);
    assert_int_equal(pthread_join(enterer, NULL), 0);
    print_message("hand-off: %llu of %d rounds queued\n", (unsigned long long)handoff.queued_rounds, HANDOFF_ROUNDS);
    assert_no_violations();
    assert_int_equal(atomic_load(&handoff.admission.inflight), 0);
    assert_int_equal(atomic_load(&handoff.admission.nqueued), 0);
    uint64_t queued = handoff.queued_rounds;
    assert_int_equal(atomic_load(&handoff.admission.counters.admitted), 2 * (uint64_t)HANDOFF_ROUNDS);
    assert_int_equal(atomic_load(&handoff.admission.counters.queued), queued);
    assert_int_equal(atomic_load(&handoff.admission.counters.throttled), 0);
    bff_admission_dispose(&handoff.admission);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_limit_then_queue_then_reject, reset_recorder),
        cmocka_unit_test_setup(test_leave_admits_oldest_waiter_first, reset_recorder),
        cmocka_unit_test_setup(test_queue_max_zero_rejects_at_once, reset_recorder),
        cmocka_unit_test_setup(test_cancel_queued_waiter_is_never_admitted, reset_recorder),
        cmocka_unit_test_setup(test_cancel_after_admission_returns_zero, reset_recorder),
        cmocka_unit_test_setup(test_count_throttled, reset_recorder),
        cmocka_unit_test_setup(test_enter_hands_freed_slot_to_older_waiter, reset_recorder),
        cmocka_unit_test_setup(test_enter_may_admit_its_own_waiter, reset_recorder),
        cmocka_unit_test(test_handoff_race_loses_no_wakeup),
        cmocka_unit_test(test_stress_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
