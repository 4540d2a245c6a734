/* call: runs one resolved function or upstream call on a worker's loop and decodes its result. */
#include "call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "upstream.h"
#include "worker.h"

struct gw_call {
    struct gw_worker *w;
    gw_call_cb cb;
    fn_host_cb released;
    void *data;
    /* functions */
    fn_task *task;
    fn_call fcall;
    fn_response res;
    bfg_event ev;
    char *input_text;
    gw_timer timer; /* the function's own timeout, as a backstop to the runtime's */
    int status_is_result;
    /* upstreams */
    gw_upstream_call *up;
    bff_cache *cache; /* a cacheable GET: its answer goes into the upstream's cache under cache_key */
    fn_buf cache_key;
    struct gw_flight *flight;     /* a collapsed GET: the shared request it waits for */
    const bff_upstream *upstream; /* an upstream call, for its metrics */
    uint64_t start_ns;
    h2o_linklist_t flight_link;
};

/* One upstream GET shared by identical calls on a worker (the upstream's "collapse"). */
typedef struct gw_flight {
    h2o_linklist_t link; /* in w->flights */
    struct gw_worker *w;
    /* Of one config version: every waiter's request holds the snapshot this upstream belongs to, so it lives
     * as long as the flight; requests on another version never join (their upstream may differ). */
    const bff_upstream *upstream;
    fn_buf key;
    gw_upstream_call *up;
    h2o_linklist_t waiters; /* gw_call.flight_link */
} gw_flight;

static void flight_free(gw_flight *f)
{
    if (h2o_linklist_is_linked(&f->link))
        h2o_linklist_unlink(&f->link);
    fn_buf_release(&f->key);
    free(f);
}

/* Leaves its flight; the last waiter to leave cancels the shared request. */
static void leave_flight(gw_call *call)
{
    if (h2o_linklist_is_linked(&call->flight_link))
        h2o_linklist_unlink(&call->flight_link);
    gw_flight *f = call->flight;
    call->flight = NULL;
    if (f != NULL && h2o_linklist_is_empty(&f->waiters)) {
        if (f->up != NULL)
            gw_upstream_cancel(f->up);
        flight_free(f);
    }
}

static void call_free(gw_call *call)
{
    leave_flight(call);
    gw_timer_stop(&call->timer);
    fn_buf_release(&call->cache_key);
    fn_response_release(&call->res);
    free(call->input_text);
    free(call);
}

/* An upstream call's outcome in its metrics: the status (502 without one, 504 for a timeout), the time. */
static void count_upstream_call(gw_call *call, const gw_call_result *res)
{
    if (call->upstream == NULL || call->upstream->stats_id == 0)
        return;
    unsigned thread = call->w->index;
    int status = res->ok            ? (res->status != 0 ? res->status : 200)
                 : res->timed_out   ? 504
                 : res->status != 0 ? res->status
                                    : 502;
    gw_metrics_request(thread, call->upstream->stats_id, status, fn_now_ns() - call->start_ns);
    if (res->timed_out)
        gw_metrics_event(thread, call->upstream->stats_id, GW_EV_TIMEOUT);
}

static void deliver(gw_call *call, gw_call_result *res)
{
    count_upstream_call(call, res);
    gw_call_cb cb = call->cb;
    void *data = call->data;
    /* The texts may point into the call (its response's error): copied before it goes. */
    char reason[64], detail[sizeof(call->res.error)];
    if (res->reason != NULL) {
        snprintf(reason, sizeof(reason), "%s", res->reason);
        res->reason = reason;
    }
    if (res->detail != NULL) {
        snprintf(detail, sizeof(detail), "%s", res->detail);
        res->detail = detail;
    }
    call_free(call);
    cb(data, res);
}

static void deliver_failure(gw_call *call, int timed_out, int status, const char *reason, const char *detail)
{
    gw_call_result res = {0, status, NULL, timed_out, 0, reason, detail != NULL ? detail : ""};
    deliver(call, &res);
}

static int is_json_type(h2o_iovec_t ct)
{
    for (size_t i = 0; i + 4 <= ct.len; ++i) {
        if (h2o_lcstris(ct.base + i, 4, H2O_STRLIT("json")))
            return 1;
    }
    return 0;
}

/* A body as a JSON value: parsed when it says it is JSON (or says nothing and parses), else text. */
static json_t *decode_body(const char *data, size_t len, h2o_iovec_t content_type, int *invalid)
{
    *invalid = 0;
    if (len == 0)
        return json_null();
    if (content_type.len == 0 || is_json_type(content_type)) {
        json_error_t jerr;
        json_t *v = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
        if (v != NULL)
            return v;
        if (content_type.len > 0) {
            *invalid = 1;
            return NULL;
        }
    }
    json_t *text = json_stringn(data, len);
    if (text == NULL) /* not UTF-8: JSON cannot carry it */
        *invalid = 1;
    return text;
}

static void deliver_body(gw_call *call, int status, const char *body, size_t len, h2o_iovec_t content_type,
                         const char *who)
{
    if (status >= 400 && !call->status_is_result) {
        char reason[32];
        snprintf(reason, sizeof(reason), "status %d", status);
        deliver_failure(call, 0, status, reason, NULL);
        return;
    }
    int invalid;
    json_t *v = decode_body(body, len, content_type, &invalid);
    if (invalid) {
        char detail[96];
        snprintf(detail, sizeof(detail), "the %s's response is not valid JSON", who);
        deliver_failure(call, 0, status, "invalid JSON", detail);
        return;
    }
    if (call->cache != NULL && status == 200)
        bff_cache_put(call->cache, call->cache_key.data, call->cache_key.len, v, len, fn_now_ns());
    gw_call_result res = {1, status, v, 0, 0, NULL, NULL};
    deliver(call, &res);
}

/* ---- functions ---- */

static void on_fn_done(void *data, int rc)
{
    gw_call *call = data;
    call->task = NULL;
    if (rc == -ETIMEDOUT) {
        deliver_failure(call, 1, 0, "timeout", call->res.error);
    } else if (rc == -ENOMEM) {
        deliver_failure(call, 0, 0, "memory limit", call->res.error);
    } else if (rc != 0) {
        deliver_failure(call, 0, 0, "function error", call->res.error);
    } else {
        h2o_iovec_t ct = h2o_iovec_init(NULL, 0);
        for (size_t i = 0; i < call->res.nheaders; ++i) {
            const fn_header *h = &call->res.headers[i];
            if (h->name_len == 12 && h2o_lcstris(h->name, 12, H2O_STRLIT("content-type")))
                ct = h2o_iovec_init(h->value, h->value_len);
        }
        deliver_body(call, call->res.status, call->res.body.data, call->res.body.len, ct, "function");
    }
}

static void on_fn_timeout(gw_timer *timer)
{
    gw_call *call = H2O_STRUCT_FROM_MEMBER(gw_call, timer, timer);
    fn_task *task = call->task;
    call->task = NULL;
    if (task != NULL && fn_task_cancel(task) == 1) {
        /* A C function still runs on its pool thread: the callback goes now, the memory when it ends. */
        gw_call_result res = {0, 0, NULL, 1, 1, "timeout", "the call's timeout passed"};
        call->cb(call->data, &res);
        return;
    }
    deliver_failure(call, 1, 0, "timeout", "the call's timeout passed");
}

/* An abandoned C function has ended on its pool thread. */
static void on_fn_released(void *data)
{
    gw_call *call = data;
    fn_host_cb released = call->released;
    void *released_data = call->data;
    call_free(call);
    if (released != NULL)
        released(released_data);
}

static gw_call *start_function(gw_call *call, const gw_call_spec *spec, const gw_call_origin *origin)
{
    const fn_call *route = origin->call;
    call->ev = *route->event;
    call->fcall = *route; /* without input: the route's own body, however the route gives it */
    if (spec->input_text != NULL) {
        call->input_text = strdup(spec->input_text);
        if (call->input_text == NULL) {
            deliver_failure(call, 0, 0, "out of memory", NULL);
            return NULL;
        }
        call->ev.body = (bfg_str){call->input_text, strlen(call->input_text)};
        call->fcall.json = NULL;
        call->fcall.body_is_json = 1; /* JSON text the gateway made: the runtime decodes it */
    }
    call->fcall.event = &call->ev;
    call->fcall.limits.timeout_ms = spec->timeout_ms;
    call->fcall.start_ns = fn_now_ns();
    call->fcall.released = on_fn_released;
    call->fcall.depth = route->depth + 1;
    gw_timer_start(call->w, &call->timer, spec->timeout_ms, on_fn_timeout);
    int rc = fn_start(spec->fn, &call->fcall, &call->res, on_fn_done, call, &call->task);
    if (rc != FN_PENDING) {
        call->task = NULL;
        on_fn_done(call, rc);
        return NULL;
    }
    return call;
}

/* ---- upstreams ---- */

static void on_upstream_done(void *data, const gw_upstream_result *res)
{
    gw_call *call = data;
    call->up = NULL;
    if (res->error != NULL) {
        deliver_failure(call, res->timed_out, 0,
                        res->timed_out   ? "timeout"
                        : res->too_large ? "response too large"
                                         : "unreachable",
                        res->error);
        return;
    }
    deliver_body(call, res->status, res->body.base, res->body.len, res->content_type, "upstream");
}

/* What makes two GETs the same request: the target and the headers the call sends. */
static void request_key(fn_buf *key, const gw_call_spec *spec)
{
    fn_buf_append_str(key, spec->upstream->name);
    fn_buf_append_char(key, '\n');
    fn_buf_append(key, spec->target.base, spec->target.len);
    for (size_t i = 0; i < 2 * spec->nheaders; ++i) {
        fn_buf_append_char(key, '\n');
        fn_buf_append(key, spec->headers[i].base, spec->headers[i].len);
    }
    if (spec->body.len > 0) { /* a GET with a body (a search): the body is part of the question */
        fn_buf_append_str(key, "\nbody=");
        fn_buf_append(key, spec->body.base, spec->body.len);
    }
}

/* "\nsub=" and the JSON text of the verified subject, whatever its type (none: empty). */
void gw_call_append_subject(fn_buf *key, const json_t *claims)
{
    fn_buf_append_str(key, "\nsub=");
    json_t *sub = json_object_get(claims, "sub");
    char *text = sub != NULL ? json_dumps(sub, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (text != NULL)
        fn_buf_append_str(key, text);
    free(text);
}

/* The cache key of a GET: the request, and the user unless entries are shared. */
static void build_cache_key(fn_buf *key, const gw_call_spec *spec, const gw_call_origin *origin)
{
    request_key(key, spec);
    if (bff_cache_config_of(spec->upstream->cache)->per_user)
        gw_call_append_subject(key, origin->call->claims);
}

/* ---- collapsed GETs ---- */

static void on_flight_done(void *data, const gw_upstream_result *res)
{
    gw_flight *f = data;
    f->up = NULL;
    /* The waiters move to a local list and forget the flight: a waiter's callback may cancel others. */
    h2o_linklist_t waiters;
    h2o_linklist_init_anchor(&waiters);
    h2o_linklist_insert_list(&waiters, &f->waiters);
    for (h2o_linklist_t *n = waiters.next; n != &waiters; n = n->next)
        H2O_STRUCT_FROM_MEMBER(gw_call, flight_link, n)->flight = NULL;
    flight_free(f);
    int invalid = 0;
    json_t *value = NULL;
    if (res->error == NULL)
        value = decode_body(res->body.base, res->body.len, res->content_type, &invalid);
    while (!h2o_linklist_is_empty(&waiters)) {
        gw_call *call = H2O_STRUCT_FROM_MEMBER(gw_call, flight_link, waiters.next);
        h2o_linklist_unlink(&call->flight_link);
        if (res->error != NULL) {
            deliver_failure(call, res->timed_out, 0,
                            res->timed_out   ? "timeout"
                            : res->too_large ? "response too large"
                                             : "unreachable",
                            res->error);
        } else if (res->status >= 400 && !call->status_is_result) {
            char reason[32];
            snprintf(reason, sizeof(reason), "status %d", res->status);
            deliver_failure(call, 0, res->status, reason, NULL);
        } else if (invalid) {
            deliver_failure(call, 0, res->status, "invalid JSON", "the upstream's response is not valid JSON");
        } else {
            if (call->cache != NULL && res->status == 200)
                bff_cache_put(call->cache, call->cache_key.data, call->cache_key.len, value, res->body.len,
                              fn_now_ns());
            gw_call_result r = {1, res->status, json_incref(value), 0, 0, NULL, NULL};
            deliver(call, &r);
        }
    }
    json_decref(value);
}

static void on_waiter_timeout(gw_timer *timer)
{
    gw_call *call = H2O_STRUCT_FROM_MEMBER(gw_call, timer, timer);
    leave_flight(call);
    deliver_failure(call, 1, 0, "timeout", "the call's timeout passed (waiting for an identical call)");
}

/* Joins the identical GET in flight on this worker, or becomes the first of a new one. Returns 1 when
 * the call is now a waiter. */
static int join_flight(gw_call *call, const gw_call_spec *spec)
{
    fn_buf key = FN_BUF_INIT;
    request_key(&key, spec);
    h2o_linklist_t *flights = &call->w->flights;
    for (h2o_linklist_t *n = flights->next; n != flights; n = n->next) {
        gw_flight *f = H2O_STRUCT_FROM_MEMBER(gw_flight, link, n);
        if (f->upstream == spec->upstream && f->key.len == key.len && memcmp(f->key.data, key.data, key.len) == 0) {
            fn_buf_release(&key);
            call->flight = f;
            h2o_linklist_insert(&f->waiters, &call->flight_link);
            gw_timer_start(call->w, &call->timer, spec->timeout_ms, on_waiter_timeout);
            return 1;
        }
    }
    gw_flight *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        fn_buf_release(&key);
        return 0;
    }
    f->w = call->w;
    f->upstream = spec->upstream;
    f->key = key;
    h2o_linklist_init_anchor(&f->waiters);
    h2o_linklist_insert(flights, &f->link);
    call->flight = f;
    h2o_linklist_insert(&f->waiters, &call->flight_link);
    gw_timer_start(call->w, &call->timer, spec->timeout_ms, on_waiter_timeout);
    return 0;
}

static gw_call *start_upstream(gw_call *call, const gw_call_spec *spec, const gw_call_origin *origin)
{
    call->start_ns = fn_now_ns();
    if (spec->upstream->cache != NULL && strcmp(spec->method, "GET") == 0) {
        build_cache_key(&call->cache_key, spec, origin);
        json_t *hit = bff_cache_get(spec->upstream->cache, call->cache_key.data, call->cache_key.len, fn_now_ns());
        if (hit != NULL) {
            if (spec->upstream->stats_id != 0)
                gw_metrics_event(call->w->index, spec->upstream->stats_id, GW_EV_CACHE_HIT);
            gw_call_result res = {1, 200, hit, 0, 0, NULL, NULL};
            deliver(call, &res);
            return NULL;
        }
        call->cache = spec->upstream->cache;
    }
    enum { MAX_HEADERS = 64 };
    if (spec->nheaders > MAX_HEADERS) {
        deliver_failure(call, 0, 0, "bad input", "too many headers");
        return NULL;
    }
    call->upstream = spec->upstream;
    if (spec->upstream->collapse && strcmp(spec->method, "GET") == 0 && join_flight(call, spec))
        return call;
    h2o_iovec_t headers[2 * (MAX_HEADERS + 2)];
    memcpy(headers, spec->headers, 2 * spec->nheaders * sizeof(*headers));
    static const char hex[] = "0123456789abcdef";
    uint64_t r = gw_random(call->w);
    /* 00-<trace id>-<a new span id>-<flags> */
    char traceparent[56];
    size_t tlen = strlen(origin->trace_id), flen = strlen(origin->trace_flags);
    if (tlen > 32)
        tlen = 32;
    if (flen > 2)
        flen = 2;
    memcpy(traceparent, "00-", 3);
    memcpy(traceparent + 3, origin->trace_id, tlen);
    char *at = traceparent + 3 + tlen;
    *at++ = '-';
    for (int k = 0; k < 16; ++k)
        *at++ = hex[(r >> (k * 4)) & 0xf];
    *at++ = '-';
    memcpy(at, origin->trace_flags, flen);
    int n = (int)(at + flen - traceparent);
    size_t nh = spec->nheaders;
    headers[2 * nh] = h2o_iovec_init(H2O_STRLIT("x-request-id"));
    headers[2 * nh + 1] = origin->request_id;
    headers[2 * nh + 2] = h2o_iovec_init(H2O_STRLIT("traceparent"));
    headers[2 * nh + 3] = h2o_iovec_init(traceparent, (size_t)n);
    gw_upstream_request req = {
        spec->upstream, spec->method, spec->target, headers, nh + 2, spec->body, spec->timeout_ms,
    };
    gw_flight *f = call->flight; /* the first call of a collapsed GET: the request is the flight's */
    gw_upstream_call *up = gw_upstream_start(call->w, &req, f != NULL ? on_flight_done : on_upstream_done,
                                             f != NULL ? (void *)f : (void *)call);
    if (up == NULL) {
        deliver_failure(call, 0, 0, "out of memory", NULL);
        return NULL;
    }
    if (f != NULL)
        f->up = up;
    else
        call->up = up;
    return call;
}

gw_call *gw_call_start(struct gw_worker *w, const gw_call_spec *spec, const gw_call_origin *origin, gw_call_cb cb,
                       fn_host_cb released, void *data)
{
    gw_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        gw_call_result res = {0, 0, NULL, 0, 0, "out of memory", NULL};
        cb(data, &res);
        return NULL;
    }
    call->w = w;
    call->cb = cb;
    call->released = released;
    call->data = data;
    call->status_is_result = spec->status_is_result;
    fn_response_init(&call->res);
    return spec->kind == BFF_CALL_FUNCTION ? start_function(call, spec, origin) : start_upstream(call, spec, origin);
}

int gw_call_cancel(gw_call *call)
{
    gw_timer_stop(&call->timer);
    if (call->up != NULL) {
        gw_upstream_cancel(call->up);
        call->up = NULL;
    }
    if (call->task != NULL) {
        fn_task *task = call->task;
        call->task = NULL;
        if (fn_task_cancel(task) == 1)
            return 1; /* on_fn_released frees it */
    }
    call_free(call);
    return 0;
}

static int hex_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

void gw_call_trace_context(struct gw_worker *w, h2o_iovec_t tp, char trace_id[33], char flags[3])
{
    if (tp.len == 55 && memcmp(tp.base, "00-", 3) == 0 && tp.base[35] == '-' && tp.base[52] == '-' &&
        hex_digits(tp.base + 3, 32) && hex_digits(tp.base + 36, 16) && hex_digits(tp.base + 53, 2) &&
        strspn(tp.base + 3, "0") < 32) {
        memcpy(trace_id, tp.base + 3, 32);
        memcpy(flags, tp.base + 53, 2);
    } else {
        static const char hex[] = "0123456789abcdef";
        uint64_t r[2] = {gw_random(w), gw_random(w) | 1};
        for (int k = 0; k < 32; ++k)
            trace_id[k] = hex[(r[k / 16] >> ((k % 16) * 4)) & 0xf];
        memcpy(flags, "01", 2);
    }
    trace_id[32] = '\0';
    flags[2] = '\0';
}

void gw_scope_trace(struct gw_worker *w, gw_scope *scope)
{
    if (scope->trace_ready)
        return;
    gw_call_trace_context(w, scope->traceparent, scope->trace_id, scope->trace_flags);
    scope->trace_ready = 1;
}
