/* host: timers per duration, cross-thread posts through the worker's h2o queue, and fn_host. */
#include "host.h"

#include <errno.h>
#include <stdlib.h>

#include "../functions/fn_log.h"
#include "call.h"
#include "worker.h"

typedef struct posted_call {
    h2o_multithread_message_t super;
    void (*cb)(void *);
    void *data;
} posted_call;

typedef struct host_timer {
    gw_timer timer; /* first */
    fn_host_cb cb;
    void *data;
} host_timer;

/* lists[0] is for 0 ms timers only: a timer due later but in under 1 ms waits on the 1 ms list, so the
 * loop never spins on a short remainder. */
static const uint64_t ladder_ms[GW_TIMER_LISTS] = {0,   1,   2,    5,    10,   20,    50,    100,
                                                   200, 500, 1000, 2000, 5000, 10000, 30000, 60000};

static void link_for_remaining(gw_timer *t, uint64_t now_ns)
{
    uint64_t left_ms = t->due_ns > now_ns ? (t->due_ns - now_ns) / 1000000ULL : 0;
    size_t i = 1;
    while (i + 1 < GW_TIMER_LISTS && ladder_ms[i + 1] <= left_ms)
        ++i;
    h2o_timeout_link(t->w->ctx.loop, &t->w->host.lists[i], &t->entry);
}

static void on_timer_list(h2o_timeout_entry_t *entry)
{
    gw_timer *t = (gw_timer *)entry;
    uint64_t now = fn_now_ns();
    /* Early: another, shorter hop (the shortest list it goes on is 1 ms, so this ends). */
    if (t->due_ns > now) {
        link_for_remaining(t, now);
        return;
    }
    t->cb(t);
}

static void run_zero(h2o_timeout_entry_t *entry, int list)
{
    gw_timer *t = (gw_timer *)entry;
    gw_host *host = &t->w->host;
    int outer = host->zero_running;
    host->zero_running = list;
    t->cb(t);
    host->zero_running = outer;
}

static void on_zero(h2o_timeout_entry_t *entry)
{
    run_zero(entry, 1);
}

static void on_zero_next(h2o_timeout_entry_t *entry)
{
    run_zero(entry, 2);
}

void gw_timer_start(gw_worker *w, gw_timer *t, uint64_t ms, void (*cb)(gw_timer *))
{
    gw_timer_stop(t);
    t->w = w;
    t->cb = cb;
    t->entry.cb = on_timer_list;
    uint64_t now = fn_now_ns();
    t->due_ns = now + ms * 1000000ULL;
    if (ms != 0) {
        link_for_remaining(t, now);
    } else if (w->host.zero_running == 1) {
        t->entry.cb = on_zero_next; /* later in this turn */
        h2o_timeout_link(w->ctx.loop, &w->host.zero_next, &t->entry);
    } else {
        t->entry.cb = on_zero; /* this turn when started from I/O or a longer timer, else the next turn */
        h2o_timeout_link(w->ctx.loop, &w->host.lists[0], &t->entry);
    }
}

void gw_timer_stop(gw_timer *t)
{
    if (t != NULL && h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
}

int gw_timer_active(const gw_timer *t)
{
    return h2o_timeout_is_linked((h2o_timeout_entry_t *)&t->entry);
}

static void on_posted(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        posted_call *call = H2O_STRUCT_FROM_MEMBER(posted_call, super.link, messages->next);
        h2o_linklist_unlink(&call->super.link);
        void (*cb)(void *) = call->cb;
        void *data = call->data;
        free(call);
        cb(data);
    }
}

int gw_post(gw_worker *w, void (*cb)(void *), void *data)
{
    posted_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return -ENOMEM;
    call->cb = cb;
    call->data = data;
    pthread_mutex_lock(&w->host.post_lock);
    int closed = w->host.closed;
    if (!closed)
        h2o_multithread_send_message(&w->host.calls, &call->super);
    pthread_mutex_unlock(&w->host.post_lock);
    if (closed) {
        free(call);
        return -EPIPE;
    }
    return 0;
}

void gw_host_close(gw_worker *w)
{
    pthread_mutex_lock(&w->host.post_lock);
    w->host.closed = 1;
    pthread_mutex_unlock(&w->host.post_lock);
}

static void on_host_timer(gw_timer *timer)
{
    host_timer *t = (host_timer *)timer;
    fn_host_cb cb = t->cb;
    void *data = t->data;
    free(t);
    cb(data);
}

static void *host_timer_start(fn_host *fh, uint64_t ms, fn_host_cb cb, void *data)
{
    gw_host *h = (gw_host *)fh;
    host_timer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->cb = cb;
    t->data = data;
    gw_timer_start(h->worker, &t->timer, ms, on_host_timer);
    return t;
}

static void host_timer_stop(fn_host *fh, void *timer)
{
    host_timer *t = timer;
    gw_timer_stop(&t->timer);
    free(t);
}

static int host_post(fn_host *fh, fn_host_cb cb, void *data)
{
    return gw_post(((gw_host *)fh)->worker, cb, data);
}

static void *host_subcalls_start(fn_host *fh, const fn_call *call, const fn_subcall *calls, fn_subcall_result *results,
                                 size_t n, fn_host_cb done, void *data)
{
    return gw_subcalls_start(((gw_host *)fh)->worker, call, calls, results, n, done, data);
}

static void host_subcalls_cancel(fn_host *fh, void *batch)
{
    gw_subcalls_cancel(batch);
}

static const fn_host_ops host_ops = {host_timer_start, host_timer_stop, host_post, host_subcalls_start,
                                     host_subcalls_cancel};

void gw_host_init(gw_worker *w)
{
    w->host.super.ops = &host_ops;
    w->host.worker = w;
    pthread_mutex_init(&w->host.post_lock, NULL);
    for (size_t i = 0; i < GW_TIMER_LISTS; ++i)
        h2o_timeout_init(w->ctx.loop, &w->host.lists[i], ladder_ms[i]);
    h2o_timeout_init(w->ctx.loop, &w->host.zero_next, 0); /* after lists[0]: h2o runs lists in this order */
    h2o_multithread_register_receiver(w->ctx.queue, &w->host.calls, on_posted);
}

int gw_host_dispose(gw_worker *w)
{
    /* Posts made before the close are delivered by the loop; give it a few turns, then check. */
    for (int i = 0; i < 3 && !h2o_linklist_is_empty(&w->host.calls._messages); ++i)
        h2o_evloop_run(w->ctx.loop, 10);
    if (!h2o_linklist_is_empty(&w->host.calls._messages))
        return -1;
    h2o_multithread_unregister_receiver(w->ctx.queue, &w->host.calls);
    for (size_t i = 0; i < GW_TIMER_LISTS; ++i) {
        if (!h2o_linklist_is_empty(&w->host.lists[i]._entries))
            return -1;
    }
    if (!h2o_linklist_is_empty(&w->host.zero_next._entries))
        return -1;
    for (size_t i = 0; i < GW_TIMER_LISTS; ++i)
        h2o_timeout_dispose(w->ctx.loop, &w->host.lists[i]);
    h2o_timeout_dispose(w->ctx.loop, &w->host.zero_next);
    return 0;
}
