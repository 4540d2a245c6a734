/* admission: lock-free fast paths around a mutex-protected FIFO of waiters. */
#include "admission.h"

#include <string.h>

void bff_admission_init(bff_admission *a, uint64_t limit, uint64_t queue_max, void (*admit)(bff_waiter *))
{
    memset(a, 0, sizeof(*a));
    a->limit = limit;
    a->queue_max = queue_max;
    a->admit = admit;
    pthread_mutex_init(&a->lock, NULL);
}

void bff_admission_dispose(bff_admission *a)
{
    pthread_mutex_destroy(&a->lock);
}

/* Takes a slot if one is free. */
static int try_take(bff_admission *a)
{
    uint_fast64_t n = atomic_load(&a->inflight);
    while (n < a->limit) {
        if (atomic_compare_exchange_weak(&a->inflight, &n, n + 1))
            return 1;
    }
    return 0;
}

static void unlink_waiter(bff_admission *a, bff_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        a->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        a->tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = 0;
    atomic_fetch_sub(&a->nqueued, 1);
}

/* Under the lock: pops waiters while slots are free. Returns the list (linked by next). */
static bff_waiter *pop_admitted(bff_admission *a)
{
    bff_waiter *first = NULL, *last = NULL;
    while (a->head != NULL && try_take(a)) {
        bff_waiter *w = a->head;
        unlink_waiter(a, w);
        if (last != NULL)
            last->next = w;
        else
            first = w;
        last = w;
    }
    return first;
}

static void admit_all(bff_admission *a, bff_waiter *list)
{
    while (list != NULL) {
        bff_waiter *next = list->next;
        list->next = NULL;
        atomic_fetch_add_explicit(&a->counters.admitted, 1, memory_order_relaxed);
        a->admit(list);
        list = next;
    }
}

int bff_admission_enter(bff_admission *a, bff_waiter *waiter)
{
    waiter->queued = 0; /* so a cancel after OK or REJECTED is a harmless 0 */
    if (atomic_load(&a->nqueued) == 0 && try_take(a)) {
        atomic_fetch_add_explicit(&a->counters.admitted, 1, memory_order_relaxed);
        return BFF_ADMIT_OK;
    }
    pthread_mutex_lock(&a->lock);
    if (a->head == NULL && try_take(a)) {
        pthread_mutex_unlock(&a->lock);
        atomic_fetch_add_explicit(&a->counters.admitted, 1, memory_order_relaxed);
        return BFF_ADMIT_OK;
    }
    if (atomic_load(&a->nqueued) >= a->queue_max) {
        pthread_mutex_unlock(&a->lock);
        atomic_fetch_add_explicit(&a->counters.throttled, 1, memory_order_relaxed);
        return BFF_ADMIT_REJECTED;
    }
    waiter->next = NULL;
    waiter->prev = a->tail;
    if (a->tail != NULL)
        a->tail->next = waiter;
    else
        a->head = waiter;
    a->tail = waiter;
    waiter->queued = 1;
    atomic_fetch_add(&a->nqueued, 1); /* seq_cst: pairs with the decrement-then-load in leave */
    atomic_fetch_add_explicit(&a->counters.queued, 1, memory_order_relaxed);
    /* A holder may have left between our failed try_take and the enqueue, seeing nobody queued. */
    bff_waiter *ready = pop_admitted(a);
    pthread_mutex_unlock(&a->lock);
    admit_all(a, ready);
    return BFF_ADMIT_QUEUED;
}

void bff_admission_leave(bff_admission *a)
{
    atomic_fetch_sub(&a->inflight, 1);
    if (atomic_load(&a->nqueued) == 0)
        return;
    pthread_mutex_lock(&a->lock);
    bff_waiter *ready = pop_admitted(a);
    pthread_mutex_unlock(&a->lock);
    admit_all(a, ready);
}

int bff_admission_cancel(bff_admission *a, bff_waiter *waiter)
{
    pthread_mutex_lock(&a->lock);
    int was_queued = waiter->queued;
    if (was_queued)
        unlink_waiter(a, waiter);
    pthread_mutex_unlock(&a->lock);
    return was_queued;
}

void bff_admission_count_throttled(bff_admission *a)
{
    atomic_fetch_add_explicit(&a->counters.throttled, 1, memory_order_relaxed);
}
