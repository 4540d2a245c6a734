/* request: admission, deadline, invocation and answer of one routed request, and its client going away. */
#include "request.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../functions/fn_log.h"
#include "call.h"
#include "compose.h"
#include "event.h"
#include "metrics.h"
#include "respond.h"
#include "server.h"
#include "worker.h"

#define SWEEP_INTERVAL_MS 20
#define REQUEST_ID_CAP 129

typedef enum request_state { STATE_QUEUED, STATE_RUNNING, STATE_ANSWERED } request_state;

typedef struct gw_request {
    gw_worker *w;
    h2o_req_t *req; /* NULL once h2o disposed it (the client is gone or the answer was sent) */
    bff_snapshot *snap;
    const bff_frontend *fe;
    bff_route *route;
    char id[REQUEST_ID_CAP];
    size_t id_len;
    bfg_event ev;
    json_t *json;
    json_t *claims;   /* verified JWT claims, or NULL */
    json_t *context;  /* a composed route's "request" context object, or NULL */
    gw_scope scope;   /* what calls made from functions resolve against (fn_call.scope) */
    int holds;        /* C functions its functions called that timed out but still run (gw_request_hold) */
    fn_buf cache_key; /* a cacheable GET that missed: its answer goes into the route's cache */
    fn_call call;
    fn_response res;
    fn_task *task;
    request_state state;
    int holds_slot;
    int slot_until_released; /* a cancelled C call still runs: the slot goes when it ends */
    int refs;                /* one for the h2o request, one while an admission hand-over may be in flight */
    bff_waiter waiter;
    gw_timer deadline;
    gw_timer wait;
    h2o_linklist_t pending; /* in w->http1_pending while an HTTP/1 request is unanswered */
    int fd;                 /* the HTTP/1 connection's socket, or -1 */
} gw_request;

static h2o_iovec_t id_of(gw_request *gr)
{
    return h2o_iovec_init(gr->id, gr->id_len);
}

static void unref(gw_request *gr)
{
    if (--gr->refs > 0)
        return;
    bff_snapshot_release(&gr->snap);
    json_decref(gr->json);
    json_decref(gr->claims);
    json_decref(gr->context);
    fn_buf_release(&gr->cache_key);
    fn_response_release(&gr->res);
    free(gr);
}

static void log_decision(gw_request *gr, fn_log_level level, const char *decision, const char *detail)
{
    if (!fn_log_enabled(level))
        return;
    fn_buf buf = FN_BUF_INIT;
    fn_log_begin(&buf, level);
    fn_log_field_str(&buf, "requestId", gr->id, gr->id_len);
    fn_log_field_str(&buf, "frontend", gr->fe->name, strlen(gr->fe->name));
    fn_log_field_str(&buf, "route", gr->route->pattern, strlen(gr->route->pattern));
    if (gr->route->fn != NULL)
        fn_log_field_str(&buf, "function", gr->route->fn->name, strlen(gr->route->fn->name));
    else
        fn_log_field_str(&buf, "steps", gr->route->plan->summary, strlen(gr->route->plan->summary));
    fn_log_field_str(&buf, "decision", decision, strlen(decision));
    if (detail != NULL)
        fn_log_field_str(&buf, "msg", detail, strlen(detail));
    fn_log_write(&buf);
}

static atomic_int access_log_on = 1;

void gw_access_log_set(int on)
{
    atomic_store_explicit(&access_log_on, on, memory_order_relaxed);
}

static void event(gw_request *gr, gw_route_event ev)
{
    gw_metrics_event(gr->w->index, gr->route->stats_id, ev);
}

/* The client's address as text, for the access log. */
static size_t client_text(h2o_req_t *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    out[0] = '\0';
    if (len == 0)
        return 0;
    const void *addr = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                                               : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    if (inet_ntop(ss.ss_family, addr, out, (socklen_t)cap) == NULL)
        out[0] = '\0';
    return strlen(out);
}

/* Once per request: metrics, then the access log line (time, id, frontend, route, method, path, status,
 * duration, bytes, client, config version). */
static void record(gw_request *gr, int status, size_t bytes)
{
    uint64_t duration = fn_now_ns() - gr->call.start_ns;
    gw_metrics_request(gr->w->index, gr->route->stats_id, status, duration);
    if (!atomic_load_explicit(&access_log_on, memory_order_relaxed) || !fn_log_enabled(FN_LOG_INFO))
        return;
    fn_buf buf = FN_BUF_INIT;
    fn_log_begin(&buf, FN_LOG_INFO);
    fn_log_field_str(&buf, "log", "access", 6);
    fn_log_field_str(&buf, "requestId", gr->id, gr->id_len);
    fn_log_field_str(&buf, "frontend", gr->fe->name, strlen(gr->fe->name));
    fn_log_field_str(&buf, "route", gr->route->pattern, strlen(gr->route->pattern));
    if (gr->req != NULL) {
        char client[64];
        size_t clen = client_text(gr->req, client, sizeof(client));
        fn_log_field_str(&buf, "method", gr->req->method.base, gr->req->method.len);
        size_t plen = gr->req->query_at != SIZE_MAX ? gr->req->query_at : gr->req->path.len;
        fn_log_field_str(&buf, "path", gr->req->path.base, plen > 512 ? 512 : plen);
        fn_log_field_str(&buf, "client", client, clen);
    }
    fn_log_field_int(&buf, "status", status);
    char ms[32];
    int n = snprintf(ms, sizeof(ms), "%.3f", (double)duration / 1e6);
    fn_log_field_raw(&buf, "durationMs", ms, (size_t)n);
    fn_log_field_int(&buf, "bytes", (long long)bytes);
    fn_log_field_int(&buf, "config", (long long)gr->snap->version);
    fn_log_write(&buf);
}

/* Once per invocation, in the spirit of Lambda's REPORT line. */
static void report(gw_request *gr, int rc)
{
    event(gr, GW_EV_INVOCATION);
    gw_metrics_request(gr->w->index, gr->route->fn_stats_id, rc == 0 ? 200 : 500, gr->res.report.duration_ns);
    if (!atomic_load_explicit(&access_log_on, memory_order_relaxed) || !fn_log_enabled(FN_LOG_INFO))
        return;
    const fn_function *fn = gr->route->fn;
    const fn_report *r = &gr->res.report;
    static const char *const outcomes[] = {"ok", "error", "timeout", "memory_limit", "cancelled"};
    int o = rc == 0 ? 0 : rc == -ETIMEDOUT ? 2 : rc == -ENOMEM ? 3 : rc == -ECANCELED ? 4 : 1;
    fn_buf buf = FN_BUF_INIT;
    fn_log_begin(&buf, FN_LOG_INFO);
    fn_log_field_str(&buf, "log", "report", 6);
    fn_log_field_str(&buf, "requestId", gr->id, gr->id_len);
    fn_log_field_str(&buf, "function", fn->name, strlen(fn->name));
    fn_log_field_str(&buf, "version", fn->version, strlen(fn->version));
    char ms[32];
    int n = snprintf(ms, sizeof(ms), "%.3f", (double)r->duration_ns / 1e6);
    fn_log_field_raw(&buf, "durationMs", ms, (size_t)n);
    fn_log_field_int(&buf, "peakMemoryBytes", (long long)r->peak_bytes);
    fn_log_field_str(&buf, "start", r->cold ? "cold" : "warm", r->cold ? 4 : 4);
    fn_log_field_str(&buf, "outcome", outcomes[o], strlen(outcomes[o]));
    fn_log_write(&buf);
}

static void stop_timers(gw_request *gr)
{
    gw_timer_stop(&gr->deadline);
    gw_timer_stop(&gr->wait);
}

static void release_slot(gw_request *gr)
{
    if (gr->holds_slot) {
        gr->holds_slot = 0;
        bff_admission_leave(&gr->route->admission);
    }
}

/* Everything the request holds besides its memory: timers, queue place or slot, task, sweep entry. */
static void settle(gw_request *gr)
{
    stop_timers(gr);
    if (gr->state == STATE_QUEUED && bff_admission_cancel(&gr->route->admission, &gr->waiter))
        unref(gr); /* no hand-over will come */
    if (gr->task != NULL) {
        /* A C call still running on a pool thread keeps the route's slot until it really ends, so a
         * route cannot take more pool threads than its concurrency, abandoned calls included. */
        if (fn_task_cancel(gr->task) == 1 && gr->holds_slot) {
            gr->slot_until_released = 1;
            ++gr->refs;
        }
        gr->task = NULL;
    }
    if (!gr->slot_until_released && gr->holds == 0)
        release_slot(gr);
    if (h2o_linklist_is_linked(&gr->pending))
        h2o_linklist_unlink(&gr->pending);
    if (gr->state != STATE_ANSWERED)
        --gr->w->inflight;
    gr->state = STATE_ANSWERED;
}

static void answer_error(gw_request *gr, int status, const char *message, const char *limit)
{
    settle(gr);
    record(gr, status, 0);
    if (gr->req != NULL)
        gw_send_error(gr->req, status, message, limit, id_of(gr));
}

static void answer_throttled(gw_request *gr, const char *message)
{
    settle(gr);
    event(gr, GW_EV_THROTTLED_CONCURRENCY);
    record(gr, 429, 0);
    if (gr->req != NULL) {
        gw_add_header(gr->req, H2O_STRLIT("retry-after"), H2O_STRLIT("1"));
        gw_send_error(gr->req, 429, message, "concurrency", id_of(gr));
    }
}

/* The client's address as a rate-limit key: 4 bytes for IPv4, 16 for IPv6. */
static size_t client_key(h2o_req_t *req, uint8_t key[16])
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len == 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        memcpy(key, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return 4;
    }
    if (ss.ss_family == AF_INET6) {
        memcpy(key, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

/* The bearer token: "Authorization: Bearer X", else the frontend's cookie. */
static h2o_iovec_t find_token(h2o_req_t *req, const char *cookie)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len > 7 && h2o_lcstris(v.base, 7, H2O_STRLIT("bearer "))) {
            size_t skip = 7;
            while (skip < v.len && v.base[skip] == ' ')
                ++skip;
            return h2o_iovec_init(v.base + skip, v.len - skip);
        }
    }
    if (cookie != NULL) {
        size_t clen = strlen(cookie);
        for (ssize_t c = -1; (c = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, c)) >= 0;) {
            h2o_iovec_t v = req->headers.entries[c].value;
            for (size_t pos = 0; pos < v.len;) {
                while (pos < v.len && (v.base[pos] == ' ' || v.base[pos] == ';'))
                    ++pos;
                size_t end = pos;
                while (end < v.len && v.base[end] != ';')
                    ++end;
                if (end - pos > clen && memcmp(v.base + pos, cookie, clen) == 0 && v.base[pos + clen] == '=')
                    return h2o_iovec_init(v.base + pos + clen + 1, end - pos - clen - 1);
                pos = end;
            }
        }
    }
    return h2o_iovec_init(NULL, 0);
}

/* Verifies the token, or finds it verified in this thread's cache. Returns 0 with gr->claims set. */
static int verify_token(gw_request *gr, const bff_auth *auth, h2o_iovec_t token, char *reason, size_t cap)
{
    time_t now = time(NULL);
    if (gr->w->jwt_cache == NULL)
        gr->w->jwt_cache = bff_jwt_cache_new();
    bff_jwt_cache *cache = gr->w->jwt_cache;
    json_t *cached = cache != NULL ? bff_jwt_cache_get(cache, auth->id, token.base, token.len, now) : NULL;
    if (cached != NULL) {
        gr->claims = json_incref(cached);
        return 0;
    }
    if (bff_jwt_verify(&auth->jwt, token.base, token.len, now, &gr->claims, reason, cap) != 0)
        return -1;
    if (cache != NULL)
        bff_jwt_cache_put(cache, auth->id, token.base, token.len, gr->claims, now,
                          bff_jwt_cache_until(gr->claims, auth->jwt.leeway_s, now));
    return 0;
}

/* Returns 1 when the request lacks a valid token (and answers 401), or its claims break a rule (403). */
static int unauthorized(gw_request *gr)
{
    const bff_auth *auth = gr->route->auth;
    if (auth == NULL)
        return 0;
    h2o_iovec_t token = find_token(gr->req, auth->cookie);
    char reason[256] = "no bearer token";
    if (token.base != NULL && verify_token(gr, auth, token, reason, sizeof(reason)) == 0) {
        /* A valid token that lacks what the route's auth or the route itself requires: 403. */
        if (bff_jwt_rules_check(auth->rules, auth->nrules, gr->claims, reason, sizeof(reason)) == 0 &&
            bff_jwt_rules_check(gr->route->rules, gr->route->nrules, gr->claims, reason, sizeof(reason)) == 0)
            return 0;
        event(gr, GW_EV_FORBIDDEN);
        log_decision(gr, FN_LOG_INFO, "forbidden", reason);
        settle(gr);
        record(gr, 403, 0);
        gw_add_header(gr->req, H2O_STRLIT("www-authenticate"), H2O_STRLIT("Bearer error=\"insufficient_scope\""));
        gw_send_error(gr->req, 403, "forbidden", NULL, id_of(gr));
        return 1;
    }
    event(gr, GW_EV_UNAUTHORIZED);
    log_decision(gr, FN_LOG_INFO, "unauthorized", reason);
    settle(gr);
    record(gr, 401, 0);
    /* RFC 6750: no error code when no token was sent; otherwise nothing beyond invalid_token. */
    if (token.base == NULL)
        gw_add_header(gr->req, H2O_STRLIT("www-authenticate"), H2O_STRLIT("Bearer"));
    else
        gw_add_header(gr->req, H2O_STRLIT("www-authenticate"), H2O_STRLIT("Bearer error=\"invalid_token\""));
    gw_send_error(gr->req, 401, "unauthorized", NULL, id_of(gr));
    return 1;
}

/* The rate limit key: the value of the route's "by_claim" claim when the request carries it (hashed
 * to 15 bytes, a length no address has), else the client's address. */
static size_t rate_key(gw_request *gr, uint8_t key[16])
{
    const char *claim = gr->route->limits.rate_claim;
    json_t *v = claim[0] != '\0' && gr->claims != NULL ? json_object_get(gr->claims, claim) : NULL;
    char text[64];
    const char *bytes = NULL;
    size_t len = 0;
    if (json_is_string(v)) {
        bytes = json_string_value(v);
        len = json_string_length(v);
    } else if (json_is_integer(v)) {
        len = (size_t)snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
        bytes = text;
    }
    if (bytes == NULL)
        return client_key(gr->req, key);
    uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
    for (size_t i = 0; i < len; ++i) {
        h1 = (h1 ^ (uint8_t)bytes[i]) * 0x100000001b3ULL;
        h2 = (h2 ^ (uint8_t)bytes[i]) * 0x9e3779b97f4a7c15ULL;
    }
    memcpy(key, &h1, 8);
    memcpy(key + 8, &h2, 7);
    return 15;
}

/* Returns 1 when the client is over the route's rate limit (and answers 429). */
static int rate_limited(gw_request *gr)
{
    bff_ratelimit *rl = gr->route->ratelimit;
    if (rl == NULL)
        return 0;
    uint8_t key[16];
    size_t len = rate_key(gr, key);
    uint64_t wait_ms = bff_ratelimit_take(rl, key, len, gr->call.start_ns);
    if (wait_ms == 0)
        return 0;
    bff_admission_count_throttled(&gr->route->admission);
    log_decision(gr, FN_LOG_DEBUG, "rate_limited", NULL);
    settle(gr);
    event(gr, GW_EV_THROTTLED_RATE);
    record(gr, 429, 0);
    char *retry = h2o_mem_alloc_pool(&gr->req->pool, 24);
    int n = snprintf(retry, 24, "%llu", (unsigned long long)((wait_ms + 999) / 1000));
    gw_add_header(gr->req, H2O_STRLIT("retry-after"), retry, (size_t)n);
    gw_send_error(gr->req, 429, "too many requests from this client", "rate_limit", id_of(gr));
    return 1;
}

/* ---- the route's cache ---- */

/* GET and HEAD of a route with a cache: the key is the path and query, and the user unless shared. */
static int cache_key(gw_request *gr, fn_buf *key)
{
    h2o_req_t *req = gr->req;
    if (gr->route->cache == NULL || !(h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                                      h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))))
        return 0;
    fn_buf_append(key, req->path.base, req->path.len);
    if (bff_cache_config_of(gr->route->cache)->per_user)
        gw_call_append_subject(key, gr->claims);
    return key->len > 0;
}

/* A cached answer: {"status": 200, "type": content type, "body": text}. Returns 1 when it answered. */
static int answered_from_cache(gw_request *gr)
{
    if (!cache_key(gr, &gr->cache_key))
        return 0;
    json_t *hit = bff_cache_get(gr->route->cache, gr->cache_key.data, gr->cache_key.len, fn_now_ns());
    if (hit == NULL)
        return 0; /* the key stays: on_done stores the answer */
    fn_buf_release(&gr->cache_key);
    h2o_req_t *req = gr->req;
    const char *type = json_string_value(json_object_get(hit, "type"));
    json_t *body = json_object_get(hit, "body");
    h2o_iovec_t b = h2o_strdup(&req->pool, json_string_value(body), json_string_length(body));
    settle(gr);
    record(gr, 200, b.len);
    if (type != NULL) {
        h2o_iovec_t t = h2o_strdup(&req->pool, type, SIZE_MAX);
        gw_add_header(req, H2O_STRLIT("content-type"), t.base, t.len);
    }
    gw_add_header(req, H2O_STRLIT("x-bffgate-cache"), H2O_STRLIT("hit"));
    gw_respond(req, 200, b.base, b.len);
    json_decref(hit);
    return 1;
}

/* Stores a 200 answer that is whole (no fallback used) and text (JSON strings must be UTF-8). */
static void cache_store(gw_request *gr)
{
    const fn_response *res = &gr->res;
    if (res->status != 200)
        return;
    const char *type = NULL;
    for (size_t i = 0; i < res->nheaders; ++i) {
        const fn_header *h = &res->headers[i];
        if (h->name_len == 17 && h2o_lcstris(h->name, 17, H2O_STRLIT("x-bffgate-partial")))
            return;
        if (h->name_len == 12 && h2o_lcstris(h->name, 12, H2O_STRLIT("content-type")))
            type = h->value;
    }
    json_t *body = json_stringn(res->body.data != NULL ? res->body.data : "", res->body.len);
    if (body == NULL)
        return;
    json_t *entry = json_pack("{s:o, s:s?}", "body", body, "type", type);
    if (entry != NULL)
        bff_cache_put(gr->route->cache, gr->cache_key.data, gr->cache_key.len, entry, res->body.len, fn_now_ns());
    json_decref(entry);
    if (gr->req != NULL)
        gw_add_header(gr->req, H2O_STRLIT("x-bffgate-cache"), H2O_STRLIT("miss"));
}

static void on_done(void *data, int rc)
{
    gw_request *gr = data;
    gr->task = NULL;
    if (gr->route->fn != NULL && rc != -EBADMSG) /* composed routes' calls are logged by the composition */
        report(gr, rc);
    if (rc == 0 && gr->res.pending_release && gr->holds_slot) {
        /* Work the invocation started still runs (an abandoned C call): its slot goes when on_released says. */
        gr->slot_until_released = 1;
        ++gr->refs;
    }
    if (rc == 0) {
        settle(gr);
        record(gr, gr->res.status, gr->res.body.len);
        if (gr->cache_key.len > 0)
            cache_store(gr);
        if (gr->req != NULL)
            gw_send_function_response(gr->req, &gr->res, gr->fe->cors != NULL);
    } else if (rc == -ETIMEDOUT) {
        event(gr, GW_EV_TIMEOUT);
        log_decision(gr, FN_LOG_WARN, "timeout", gr->res.error);
        answer_error(gr, 504, "the route did not finish before its timeout", "timeout_ms");
    } else if (rc == -EBADMSG) { /* a JSON body decoded by the runtime itself, found invalid there */
        log_decision(gr, FN_LOG_DEBUG, "bad_request", gr->res.error);
        answer_error(gr, 400, gr->res.error, NULL);
    } else if (rc == -EPIPE) { /* an isolated C function's process died: the gateway did not */
        event(gr, GW_EV_FUNCTION_ERROR);
        log_decision(gr, FN_LOG_ERROR, "function_crash", gr->res.error);
        answer_error(gr, 502, "the function's process failed", NULL);
    } else if (rc == -ENOMEM) {
        event(gr, GW_EV_MEMORY_LIMIT);
        log_decision(gr, FN_LOG_WARN, "memory_limit", gr->res.error);
        answer_error(gr, 500, "the function exceeded its memory limit", "memory_mb");
    } else {
        event(gr, GW_EV_FUNCTION_ERROR);
        log_decision(gr, FN_LOG_ERROR, "function_error", gr->res.error);
        answer_error(gr, 500, "the function failed", NULL);
    }
}

static void on_sweep(gw_timer *timer);

static void watch_disconnect(gw_request *gr)
{
    if (gr->fd < 0 || h2o_linklist_is_linked(&gr->pending))
        return;
    gw_worker *w = gr->w;
    h2o_linklist_insert(&w->http1_pending, &gr->pending);
    if (!gw_timer_active(&w->sweep))
        gw_timer_start(w, &w->sweep, SWEEP_INTERVAL_MS, on_sweep);
}

void gw_request_hold(gw_scope *scope)
{
    gw_request *gr = scope->owner;
    ++gr->holds;
    ++gr->refs;
}

void gw_request_unhold(gw_scope *scope)
{
    gw_request *gr = scope->owner;
    if (--gr->holds == 0 && gr->state == STATE_ANSWERED && !gr->slot_until_released)
        release_slot(gr);
    unref(gr);
}

/* A cancelled C call has really ended on its pool thread. */
static void on_released(void *data)
{
    gw_request *gr = data;
    gr->slot_until_released = 0;
    if (gr->holds == 0)
        release_slot(gr);
    unref(gr);
}

/* A composed route: its plan, with the request as the context's "request". */
static int start_composition(gw_request *gr)
{
    /* A composition reads the body through jansson (its context), once per request. */
    if (gr->call.body_is_json && gr->json == NULL &&
        (gr->json = gw_event_json(&gr->ev, gr->res.error, sizeof(gr->res.error))) == NULL)
        return -EBADMSG;
    if (gr->context == NULL && (gr->context = gw_event_context(&gr->ev, gr->json, gr->claims)) == NULL) {
        snprintf(gr->res.error, sizeof(gr->res.error), "out of memory");
        return -ENOMEM;
    }
    gw_compose_input in = {gr->context, &gr->call, id_of(gr), &gr->scope};
    return gw_compose_start(gr->w, gr->route, &in, &gr->res, on_done, gr, &gr->task);
}

static void start_invocation(gw_request *gr)
{
    gr->state = STATE_RUNNING;
    gr->holds_slot = 1;
    fn_response_init(&gr->res);
    int rc = gr->route->plan != NULL ? start_composition(gr)
                                     : fn_start(gr->route->fn, &gr->call, &gr->res, on_done, gr, &gr->task);
    if (rc == FN_PENDING)
        watch_disconnect(gr);
    else
        on_done(gr, rc);
}

static void on_deadline(gw_timer *timer)
{
    gw_request *gr = H2O_STRUCT_FROM_MEMBER(gw_request, deadline, timer);
    event(gr, GW_EV_TIMEOUT);
    log_decision(gr, FN_LOG_WARN, "timeout", gr->state == STATE_QUEUED ? "deadline reached while queued" : NULL);
    answer_error(gr, 504, "the route did not finish before its timeout", "timeout_ms");
}

static void on_wait_expired(gw_timer *timer)
{
    gw_request *gr = H2O_STRUCT_FROM_MEMBER(gw_request, wait, timer);
    if (!bff_admission_cancel(&gr->route->admission, &gr->waiter))
        return; /* a slot was handed over just now: on_admitted is on its way */
    unref(gr);
    gr->state = STATE_RUNNING; /* not queued any more; settle must not cancel again */
    bff_admission_count_throttled(&gr->route->admission);
    log_decision(gr, FN_LOG_DEBUG, "throttled", "queue wait exceeded");
    answer_throttled(gr, "the route is at its concurrency limit (queue wait exceeded)");
}

/* On the owner's thread: the slot handed over by admission is now this request's. */
static void on_admitted(void *data)
{
    gw_request *gr = data;
    if (gr->state != STATE_QUEUED) {
        /* Answered (deadline) or abandoned meanwhile: give the slot straight back. */
        bff_admission_leave(&gr->route->admission);
    } else {
        gw_timer_stop(&gr->wait);
        start_invocation(gr);
    }
    unref(gr);
}

void gw_request_admit(bff_waiter *waiter)
{
    gw_request *gr = waiter->data;
    int rc;
    /* Out of memory for a message: the hand-over cannot be dropped (it carries a slot). */
    while ((rc = gw_post(gr->w, on_admitted, gr)) == -ENOMEM)
        sched_yield();
    if (rc != 0) /* the waiter's worker has shut down: the slot goes back (its request is abandoned) */
        bff_admission_leave(&gr->route->admission);
}

/* h2o disposes the request: after the answer was sent, or because the client went away. */
static void on_req_disposed(void *holder)
{
    gw_request *gr = *(gw_request **)holder;
    if (gr->state != STATE_ANSWERED)
        gw_server_note_cancel(gr->req); /* HTTP/2 Rapid Reset is counted per connection */
    gr->req = NULL;
    if (gr->state != STATE_ANSWERED) {
        event(gr, GW_EV_CLIENT_GONE);
        log_decision(gr, FN_LOG_INFO, "client_gone", gr->state == STATE_QUEUED ? "while queued" : "while running");
        settle(gr);
        record(gr, 499, 0);
    }
    unref(gr);
}

/* HTTP/1 connections are not read while a request is handled, so a closed one is found by peeking. */
static void on_sweep(gw_timer *timer)
{
    gw_worker *w = H2O_STRUCT_FROM_MEMBER(gw_worker, sweep, timer);
    h2o_linklist_t *node = w->http1_pending.next;
    while (node != &w->http1_pending) {
        gw_request *gr = H2O_STRUCT_FROM_MEMBER(gw_request, pending, node);
        node = node->next;
        char c;
        ssize_t n = recv(gr->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            event(gr, GW_EV_CLIENT_GONE);
            log_decision(gr, FN_LOG_INFO, "client_gone", gr->state == STATE_QUEUED ? "while queued" : "while running");
            /* The answer finishes h2o's request; its write fails and h2o closes the connection. */
            answer_error(gr, 499, "the client closed the connection", NULL);
        }
    }
    if (!h2o_linklist_is_empty(&w->http1_pending))
        gw_timer_start(w, &w->sweep, SWEEP_INTERVAL_MS, on_sweep);
}

static int http1_fd(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return -1;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock != NULL ? h2o_socket_get_fd(sock) : -1;
}

void gw_request_run(gw_worker *w, h2o_req_t *req, h2o_iovec_t id, bff_snapshot *snap, const bff_frontend *fe,
                    const bff_route_match *m)
{
    gw_request *gr = calloc(1, sizeof(*gr));
    gw_request **holder = gr != NULL ? h2o_mem_alloc_shared(&req->pool, sizeof(*holder), on_req_disposed) : NULL;
    if (holder == NULL) {
        free(gr);
        bff_snapshot_release(&snap);
        gw_send_error(req, 503, "out of memory", NULL, id);
        return;
    }
    *holder = gr;
    gr->w = w;
    gr->req = req;
    gr->snap = snap;
    gr->fe = fe;
    gr->route = m->value;
    gr->refs = 1;
    gr->id_len = id.len < REQUEST_ID_CAP ? id.len : REQUEST_ID_CAP - 1;
    memcpy(gr->id, id.base, gr->id_len);
    gr->fd = http1_fd(req);
    gr->waiter.data = gr;
    gr->state = STATE_RUNNING;
    gr->call.start_ns = fn_now_ns();
    ++w->inflight;
    /* A rate limit per address comes first: a refused client costs no token check and no body parsing. A
     * rate limit per claim needs the verified token first. */
    if (gr->route->limits.rate_claim[0] == '\0' ? rate_limited(gr) || unauthorized(gr)
                                                : unauthorized(gr) || rate_limited(gr))
        return;
    if (answered_from_cache(gr)) /* after auth: a cached answer is not a way around the token */
        return;

    char err[320];
    /* A JSON body is checked here for C functions; Lua and compositions decode it once, later, and answer
     * 400 from there if it is invalid (one pass over the text instead of two). */
    int is_json = 0, check = gr->route->fn != NULL && gr->route->fn->kind == FN_KIND_C;
    if (gw_event_build(req, (bfg_str){gr->id, gr->id_len}, fe, m, &gr->ev, check, &is_json, err, sizeof(err)) != 0) {
        answer_error(gr, 400, err, NULL);
        return;
    }
    const bff_limits *limits = &gr->route->limits;
    ssize_t tp = h2o_find_header_by_str(&req->headers, H2O_STRLIT("traceparent"), -1);
    gr->scope.snap = gr->snap;
    gr->scope.owner = gr;
    gr->scope.traceparent = tp >= 0 ? req->headers.entries[tp].value : h2o_iovec_init(NULL, 0);
    gr->call = (fn_call){.event = &gr->ev,
                         .body_is_json = is_json,
                         .claims = gr->claims,
                         .thread = w->index,
                         .limits = {limits->timeout_ms, limits->memory_mb << 20},
                         .start_ns = gr->call.start_ns,
                         .host = &w->host.super,
                         .scope = &gr->scope,
                         .released = on_released};
    gw_timer_start(w, &gr->deadline, limits->timeout_ms, on_deadline);

    switch (bff_admission_enter(&gr->route->admission, &gr->waiter)) {
    case BFF_ADMIT_OK:
        start_invocation(gr);
        break;
    case BFF_ADMIT_QUEUED:
        gr->state = STATE_QUEUED;
        ++gr->refs; /* for the hand-over (it may already be posted) */
        gw_timer_start(w, &gr->wait, limits->queue_wait_ms, on_wait_expired);
        watch_disconnect(gr);
        break;
    default:
        log_decision(gr, FN_LOG_DEBUG, "throttled", "queue full");
        answer_throttled(gr, "the route is at its concurrency limit");
        break;
    }
}

void gw_requests_init(gw_worker *w)
{
    h2o_linklist_init_anchor(&w->http1_pending);
    h2o_linklist_init_anchor(&w->flights);
    gw_host_init(w);
}

void gw_requests_dispose(gw_worker *w)
{
    gw_timer_stop(&w->sweep);
}
