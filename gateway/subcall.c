/* subcall: the calls functions make (ctx.call, ctx.fetch, ctx.all), resolved in the request's snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "worker.h"

typedef struct subcall_batch subcall_batch;

typedef struct subcall_item {
    subcall_batch *batch;
    size_t index;
    gw_call *call;   /* in flight */
    gw_scope *scope; /* the request's: an abandoned C function holds its slot (gw_request_hold) */
} subcall_item;

struct subcall_batch {
    struct gw_worker *w;
    fn_subcall_result *results;
    size_t n, pending;
    subcall_item items[FN_SUBCALLS_MAX];
    fn_host_cb done;
    void *data;
    gw_timer later; /* delivers done from the loop when every call ended inside gw_subcalls_start */
    unsigned refs;  /* 1 until done runs or the batch is cancelled, +1 per abandoned C function */
    int starting;
};

#define DEFAULT_DEADLINE_MS 30000

static void batch_unref(subcall_batch *b)
{
    if (--b->refs > 0)
        return;
    gw_timer_stop(&b->later);
    free(b);
}

static void deliver(subcall_batch *b)
{
    fn_host_cb done = b->done;
    void *data = b->data;
    batch_unref(b);
    done(data);
}

static void on_later(gw_timer *timer)
{
    deliver(H2O_STRUCT_FROM_MEMBER(subcall_batch, later, timer));
}

static void item_done(subcall_item *item, const gw_call_result *res)
{
    subcall_batch *b = item->batch;
    fn_subcall_result *out = &b->results[item->index];
    item->call = NULL;
    out->ok = res->ok;
    out->status = res->status;
    out->value = res->value;
    if (!res->ok)
        snprintf(out->error, sizeof(out->error), "%s%s%s", res->reason,
                 res->detail != NULL && res->detail[0] ? ": " : "", res->detail != NULL ? res->detail : "");
    if (res->abandoned) {
        ++b->refs; /* on_released drops it */
        gw_request_hold(item->scope);
    }
    if (--b->pending == 0 && !b->starting)
        deliver(b);
}

static void on_call_done(void *data, gw_call_result *res)
{
    item_done(data, res);
}

static void on_released(void *data)
{
    subcall_item *item = data;
    gw_request_unhold(item->scope);
    batch_unref(item->batch);
}

static void fail_item(subcall_item *item, const char *fmt, const char *name)
{
    char reason[160];
    snprintf(reason, sizeof(reason), fmt, name);
    gw_call_result res = {0, 0, NULL, 0, 0, reason, NULL};
    item_done(item, &res);
}

static fn_function *find_function(const bff_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->nfunctions; ++i) {
        if (strcmp(snap->functions[i].name, name) == 0)
            return snap->functions[i].fn;
    }
    return NULL;
}

static const bff_upstream *find_upstream(const bff_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->nupstreams; ++i) {
        if (strcmp(snap->upstreams[i].name, name) == 0)
            return &snap->upstreams[i];
    }
    return NULL;
}

static void start_item(subcall_item *item, const fn_call *call, const fn_subcall *sc, uint64_t left_ms)
{
    subcall_batch *b = item->batch;
    gw_scope *scope = (gw_scope *)call->scope; /* the request's own, handed to functions as const void * */
    item->scope = scope;
    gw_scope_trace(b->w, scope);
    gw_call_origin origin = {call, h2o_iovec_init(call->event->request_id.ptr, call->event->request_id.len),
                             scope->trace_id, scope->trace_flags};
    gw_call_spec spec = {0};
    if (left_ms == 0) {
        fail_item(item, "timeout%s", "");
        return;
    }
    if (sc->kind == FN_SUBCALL_FUNCTION) {
        spec.kind = BFF_CALL_FUNCTION;
        spec.fn = find_function(scope->snap, sc->target);
        if (spec.fn == NULL) {
            fail_item(item, "no function \"%s\" in the config", sc->target);
            return;
        }
        spec.input_text = sc->body; /* JSON text encoded by the caller's runtime */
        spec.timeout_ms = sc->timeout_ms != 0 && sc->timeout_ms < left_ms ? sc->timeout_ms : left_ms;
    } else {
        spec.kind = BFF_CALL_UPSTREAM;
        spec.upstream = find_upstream(scope->snap, sc->target);
        if (spec.upstream == NULL) {
            fail_item(item, "no upstream \"%s\" in the config", sc->target);
            return;
        }
        h2o_iovec_t headers[2 * 32];
        size_t nh = sc->nheaders < 32 ? sc->nheaders : 32;
        for (size_t i = 0; i < 2 * nh; ++i)
            headers[i] = h2o_iovec_init(sc->headers[i], strlen(sc->headers[i]));
        spec.method = sc->method != NULL ? sc->method : "GET";
        spec.target = sc->path != NULL ? h2o_iovec_init(sc->path, strlen(sc->path)) : h2o_iovec_init(H2O_STRLIT("/"));
        spec.headers = headers;
        spec.nheaders = nh;
        spec.body = sc->body != NULL ? h2o_iovec_init(sc->body, strlen(sc->body)) : h2o_iovec_init(NULL, 0);
        spec.status_is_result = 1;
        uint64_t own = sc->timeout_ms != 0 ? sc->timeout_ms : spec.upstream->timeout_ms;
        spec.timeout_ms = own < left_ms ? own : left_ms;
        item->call = gw_call_start(b->w, &spec, &origin, on_call_done, on_released, item);
        return;
    }
    item->call = gw_call_start(b->w, &spec, &origin, on_call_done, on_released, item);
}

void *gw_subcalls_start(struct gw_worker *w, const fn_call *call, const fn_subcall *calls, fn_subcall_result *results,
                        size_t n, fn_host_cb done, void *data)
{
    if (n == 0 || n > FN_SUBCALLS_MAX || call->scope == NULL)
        return NULL;
    subcall_batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->w = w;
    b->results = results;
    b->n = b->pending = n;
    b->done = done;
    b->data = data;
    b->refs = 1;
    b->starting = 1;
    uint64_t now = fn_now_ns();
    uint64_t deadline =
        call->start_ns + (call->limits.timeout_ms != 0 ? call->limits.timeout_ms : DEFAULT_DEADLINE_MS) * 1000000ULL;
    /* Rounded up: a call cut by the invocation's deadline ends at or after it, never just before, so the
     * invocation then times out instead of carrying on with a failed call. */
    uint64_t left_ms = deadline > now ? (deadline - now + 999999ULL) / 1000000ULL : 0;
    for (size_t i = 0; i < n; ++i) {
        memset(&results[i], 0, sizeof(results[i]));
        b->items[i] = (subcall_item){b, i, NULL, (gw_scope *)call->scope};
    }
    for (size_t i = 0; i < n; ++i)
        start_item(&b->items[i], call, &calls[i], left_ms);
    b->starting = 0;
    if (b->pending == 0) /* everything ended already: done comes from the loop, never from here */
        gw_timer_start(w, &b->later, 0, on_later);
    return b;
}

void gw_subcalls_cancel(void *handle)
{
    subcall_batch *b = handle;
    gw_timer_stop(&b->later);
    for (size_t i = 0; i < b->n; ++i) {
        subcall_item *item = &b->items[i];
        if (item->call != NULL && gw_call_cancel(item->call) == 1) {
            ++b->refs; /* on_released drops it */
            gw_request_hold(item->scope);
        }
        item->call = NULL;
    }
    batch_unref(b);
}
