/* handler: the way of a request: frontend, route, event, invocation, response. */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "../functions/fn_log.h"
#include "framing.h"
#include "overload.h"
#include "request.h"
#include "respond.h"

#define REQUEST_ID_MAX 128

/* xorshift128+: request ids only need to be unique, not secret. Seeded per worker. */
uint64_t gw_random(gw_worker *w)
{
    if (w->rng[0] == 0 && w->rng[1] == 0) {
        if (getrandom(w->rng, sizeof(w->rng), 0) != (ssize_t)sizeof(w->rng) || (w->rng[0] | w->rng[1]) == 0) {
            w->rng[0] = (uint64_t)fn_now_ns() ^ 0x9e3779b97f4a7c15ULL;
            w->rng[1] = (uint64_t)(uintptr_t)w ^ (uint64_t)w->index;
        }
    }
    uint64_t s1 = w->rng[0];
    const uint64_t s0 = w->rng[1];
    w->rng[0] = s0;
    s1 ^= s1 << 23;
    w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return w->rng[1] + s0;
}

static int request_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == ':';
}

/* The client's X-Request-Id when well-formed (1..128 of [A-Za-z0-9._:-]), else 32 random hex digits. */
static h2o_iovec_t request_id(gw_worker *w, h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        int ok = v.len > 0 && v.len <= REQUEST_ID_MAX;
        for (size_t k = 0; ok && k < v.len; ++k)
            ok = request_id_char((unsigned char)v.base[k]);
        if (ok)
            return v;
    }
    static const char hex[] = "0123456789abcdef";
    char *id = h2o_mem_alloc_pool(&req->pool, 32);
    uint64_t r[2] = {gw_random(w), gw_random(w)};
    for (int k = 0; k < 32; ++k)
        id[k] = hex[(r[k / 16] >> ((k % 16) * 4)) & 0xf];
    return h2o_iovec_init(id, 32);
}

static const char *lookup_header(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    h2o_req_t *req = ctx;
    ssize_t i = h2o_find_header_by_str(&req->headers, name, name_len, -1);
    if (i < 0)
        return NULL;
    *value_len = req->headers.entries[i].value.len;
    return req->headers.entries[i].value.base;
}

static h2o_iovec_t header_value(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

/*
 * CORS for a frontend that configures it. Adds the response headers a browser needs for an allowed
 * Origin, and answers preflights (OPTIONS with Access-Control-Request-Method): 204 with the path's
 * methods, 403 for an origin not allowed, 404 for an unknown path. Returns 1 when it answered.
 */
static int cors(h2o_req_t *req, h2o_iovec_t id, const bff_frontend *fe, unsigned method, const char *path,
                size_t path_len)
{
    const bff_cors *c = fe->cors;
    /* Always: a shared cache must not serve a response without CORS headers to a browser that needs them. */
    gw_add_header(req, H2O_STRLIT("vary"), H2O_STRLIT("Origin"));
    h2o_iovec_t origin = header_value(req, H2O_STRLIT("origin"));
    if (origin.base == NULL)
        return 0;
    int allowed = bff_cors_origin_allowed(c, origin.base, origin.len);
    int preflight =
        method == BFF_METHOD_OPTIONS && header_value(req, H2O_STRLIT("access-control-request-method")).base != NULL;
    if (allowed) {
        /* With credentials the origin is echoed ("*" is not allowed then); otherwise "*" when any origin may call. */
        if (c->any_origin && !c->credentials)
            gw_add_header(req, H2O_STRLIT("access-control-allow-origin"), H2O_STRLIT("*"));
        else
            gw_add_header(req, H2O_STRLIT("access-control-allow-origin"), origin.base, origin.len);
        if (c->credentials)
            gw_add_header(req, H2O_STRLIT("access-control-allow-credentials"), H2O_STRLIT("true"));
        if (c->expose_headers != NULL && !preflight) {
            /* Copied: header values must outlive the snapshot this request may release first. */
            h2o_iovec_t e = h2o_strdup(&req->pool, c->expose_headers, SIZE_MAX);
            gw_add_header(req, H2O_STRLIT("access-control-expose-headers"), e.base, e.len);
        }
    }
    if (!preflight)
        return 0;
    if (!allowed) {
        if (fn_log_enabled(FN_LOG_INFO)) { /* what an operator needs to find a missing origin */
            fn_buf buf = FN_BUF_INIT;
            fn_log_begin(&buf, FN_LOG_INFO);
            fn_log_field_str(&buf, "requestId", id.base, id.len);
            fn_log_field_str(&buf, "frontend", fe->name, strlen(fe->name));
            fn_log_field_str(&buf, "decision", "cors_refused", 12);
            fn_log_field_str(&buf, "origin", origin.base, origin.len < 256 ? origin.len : 256);
            fn_log_write(&buf);
        }
        gw_send_error(req, 403, "origin not allowed", NULL, id);
        return 1;
    }
    bff_route_match m;
    int found = bff_route_table_match(fe->table, 0, path, path_len, &m);
    if (found == 0) {
        gw_send_error(req, 404, "no route matches this path", NULL, id);
        return 1;
    }
    char methods[128];
    size_t n = bff_method_list(c->methods != 0 ? m.allowed & c->methods : m.allowed, methods, sizeof(methods));
    h2o_iovec_t v = h2o_strdup(&req->pool, methods, n);
    gw_add_header(req, H2O_STRLIT("access-control-allow-methods"), v.base, v.len);
    if (c->allow_headers != NULL) {
        h2o_iovec_t h = h2o_strdup(&req->pool, c->allow_headers, SIZE_MAX);
        gw_add_header(req, H2O_STRLIT("access-control-allow-headers"), h.base, h.len);
    }
    char age[24];
    int alen = snprintf(age, sizeof(age), "%llu", (unsigned long long)c->max_age_s);
    h2o_iovec_t a = h2o_strdup(&req->pool, age, (size_t)alen);
    gw_add_header(req, H2O_STRLIT("access-control-max-age"), a.base, a.len);
    gw_respond(req, 204, NULL, 0);
    return 1;
}

int gw_handle_request(h2o_handler_t *self, h2o_req_t *req)
{
    gw_worker *w = (gw_worker *)req->conn->ctx;
    h2o_iovec_t id = request_id(w, req);
    gw_add_header(req, H2O_STRLIT("x-request-id"), id.base, id.len);
    /* h2o's own caps (HTTP/1: 100 fields and a head of 408 KiB, answered 400) come first; these hold for
     * HTTP/2 too, before any routing work. */
    size_t header_bytes = 0;
    for (size_t i = 0; i < req->headers.size; ++i)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    const char *ambiguous = gw_http1_framing_conflict(req);
    if (ambiguous != NULL) {
        /* What follows an ambiguous body on this connection cannot be trusted to be a request: it closes. */
        req->http1_is_persistent = 0;
        char msg[160];
        snprintf(msg, sizeof(msg), "the request's body length is ambiguous: %s", ambiguous);
        if (fn_log_enabled(FN_LOG_WARN)) {
            fn_buf line = FN_BUF_INIT;
            fn_log_begin(&line, FN_LOG_WARN);
            fn_log_field_str(&line, "requestId", id.base, id.len);
            fn_log_field_str(&line, "decision", "ambiguous_framing", 17);
            fn_log_field_str(&line, "msg", ambiguous, strlen(ambiguous));
            fn_log_write(&line);
        }
        gw_send_error(req, 400, msg, NULL, id);
        return 0;
    }
    if (req->headers.size > w->max_header_count || header_bytes > w->max_header_bytes) {
        gw_send_error(req, 431, "the request's header fields are too large",
                      req->headers.size > w->max_header_count ? "max_header_count" : "max_header_bytes", id);
        return 0;
    }

    bff_snapshot *snap = gw_live_cache_acquire(&w->live);
    if (snap == NULL) {
        gw_send_error(req, 503, "no configuration is loaded", NULL, id);
        return 0;
    }
    /* Copied: the header must outlive the snapshot, which an unrouted request releases before h2o sends. */
    h2o_iovec_t v = h2o_strdup(&req->pool, snap->version_text, snap->version_len);
    gw_add_header(req, H2O_STRLIT("x-bffgate-config"), v.base, v.len);
    const char *rest;
    size_t rest_len;
    const bff_frontend *fe =
        bff_snapshot_select(snap, req->authority.base, req->authority.len, req->path_normalized.base,
                            req->path_normalized.len, lookup_header, req, &rest, &rest_len);
    if (fe == NULL) {
        gw_send_error(req, 404, "no frontend serves this path", NULL, id);
        goto Done;
    }
    bff_route_match m;
    unsigned method = bff_method_from_name(req->method.base, req->method.len);
    if (fe->cors != NULL && cors(req, id, fe, method, rest, rest_len))
        goto Done; /* a preflight, answered here: before authentication, which browsers do not send */
    int found = bff_route_table_match(fe->table, method, rest, rest_len, &m);
    if (found == 1) {
        const char *mark = gw_overload_check(w);
        if (mark != NULL) {
            char retry[16];
            int n = snprintf(retry, sizeof(retry), "%u", gw_overload_retry_after_s());
            h2o_iovec_t v = h2o_strdup(&req->pool, retry, (size_t)n);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v.base, v.len);
            gw_send_error(req, 503, "the gateway is overloaded", mark, id);
            goto Done;
        }
        gw_request_run(w, req, id, snap, fe, &m); /* takes the snapshot reference */
        return 0;
    } else if (found < 0) {
        char allow[128];
        size_t n = bff_method_list(m.allowed, allow, sizeof(allow));
        h2o_iovec_t v = h2o_strdup(&req->pool, allow, n);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, v.base, v.len);
        gw_send_error(req, 405, "method not allowed", NULL, id);
    } else {
        gw_send_error(req, 404, "no route matches this path", NULL, id);
    }
Done:
    bff_snapshot_release(&snap);
    return 0;
}
