/* host: timers per duration, cross-thread posts through the worker's h2o queue, and fn_host. */
#include "host.h"

#include <errno.h>
#include <stdlib.h>

#include "../functions/fn_log.h"
#include "worker.h"

typedef struct posted_call {
    h2o_multithread_message_t super;
    void (*cb)(void *);
    void *data;
} posted_call;

typedef struct host_timer {
    h2o_timeout_entry_t entry;
    fn_host_cb cb;
    void *data;
} host_timer;

static h2o_timeout_t *timeout_for(gw_worker *w, uint64_t ms)
{
    gw_host *h = &w->host;
    size_t longer = SIZE_MAX, longest = 0;
    for (size_t i = 0; i < h->ntimeouts; ++i) {
        if (h->timeouts[i].ms == ms)
            return &h->timeouts[i].timeout;
        if (h->timeouts[i].ms > ms && (longer == SIZE_MAX || h->timeouts[i].ms < h->timeouts[longer].ms))
            longer = i;
        if (h->timeouts[i].ms > h->timeouts[longest].ms)
            longest = i;
    }
    if (h->ntimeouts < GW_MAX_TIMEOUTS) {
        size_t i = h->ntimeouts++;
        h->timeouts[i].ms = ms;
        h2o_timeout_init(w->ctx.loop, &h->timeouts[i].timeout, ms);
        return &h->timeouts[i].timeout;
    }
    static int warned;
    if (!warned) {
        warned = 1;
        fn_log_msg(FN_LOG_WARN, "more than %d distinct timer durations: some timers fire late", GW_MAX_TIMEOUTS);
    }
    return &h->timeouts[longer != SIZE_MAX ? longer : longest].timeout;
}

void gw_timer_link(gw_worker *w, uint64_t ms, h2o_timeout_entry_t *entry)
{
    h2o_timeout_link(w->ctx.loop, timeout_for(w, ms), entry);
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

static void on_host_timer(h2o_timeout_entry_t *entry)
{
    host_timer *t = (host_timer *)entry;
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
    t->entry.cb = on_host_timer;
    t->cb = cb;
    t->data = data;
    gw_timer_link(h->worker, ms, &t->entry);
    return t;
}

static void host_timer_stop(fn_host *fh, void *timer)
{
    host_timer *t = timer;
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
    free(t);
}

static int host_post(fn_host *fh, fn_host_cb cb, void *data)
{
    return gw_post(((gw_host *)fh)->worker, cb, data);
}

static const fn_host_ops host_ops = {host_timer_start, host_timer_stop, host_post};

void gw_host_init(gw_worker *w)
{
    w->host.super.ops = &host_ops;
    w->host.worker = w;
    pthread_mutex_init(&w->host.post_lock, NULL);
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
    for (size_t i = 0; i < w->host.ntimeouts; ++i) {
        if (!h2o_linklist_is_empty(&w->host.timeouts[i].timeout._entries))
            return -1;
    }
    for (size_t i = 0; i < w->host.ntimeouts; ++i)
        h2o_timeout_dispose(w->ctx.loop, &w->host.timeouts[i].timeout);
    w->host.ntimeouts = 0;
    return 0;
}
