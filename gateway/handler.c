/* handler: the way of a request: frontend, route, event, invocation, response. */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "../functions/fn_log.h"

#define MAX_QUERY_PARAMS 256
#define REQUEST_ID_MAX 128

/* xorshift128+: request ids only need to be unique, not secret. Seeded per worker. */
static uint64_t next_random(gw_worker *w)
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
    uint64_t r[2] = {next_random(w), next_random(w)};
    for (int k = 0; k < 32; ++k)
        id[k] = hex[(r[k / 16] >> ((k % 16) * 4)) & 0xf];
    return h2o_iovec_init(id, 32);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* Sends the whole response with a Content-Length (h2o copies the body). */
static void respond(h2o_req_t *req, int status, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = len;
    h2o_send_inline(req, body != NULL ? body : "", len);
}

static void add_header(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t value_len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, name_len, 1, NULL, value, value_len);
}

/* Sends {"error": message, "requestId": id} with the given status. */
static void send_error(h2o_req_t *req, int status, const char *message, h2o_iovec_t id)
{
    fn_buf body = FN_BUF_INIT;
    if (fn_buf_append_str(&body, "{\"error\":") != 0 ||
        fn_buf_append_json_string(&body, message, strlen(message)) != 0 ||
        fn_buf_append_str(&body, ",\"requestId\":") != 0 || fn_buf_append_json_string(&body, id.base, id.len) != 0 ||
        fn_buf_append_char(&body, '}') != 0) {
        fn_buf_release(&body);
        respond(req, 500, NULL, 0);
        return;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    respond(req, status, body.data, body.len);
    fn_buf_release(&body);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes into the request pool; '+' becomes a space when plus_is_space. Bad escapes stay as they are. */
static bfg_str decode(h2o_req_t *req, const char *s, size_t len, int plus_is_space)
{
    if (memchr(s, '%', len) == NULL && (!plus_is_space || memchr(s, '+', len) == NULL))
        return (bfg_str){s, len};
    char *out = h2o_mem_alloc_pool(&req->pool, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus_is_space && s[i] == '+') {
            out[n++] = ' ';
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return (bfg_str){out, n};
}

static size_t parse_query(h2o_req_t *req, bfg_pair **out)
{
    *out = NULL;
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t count = 1;
    for (const char *p = q; p < end; ++p)
        count += *p == '&';
    if (count > MAX_QUERY_PARAMS)
        count = MAX_QUERY_PARAMS;
    bfg_pair *pairs = h2o_mem_alloc_pool(&req->pool, count * sizeof(*pairs));
    size_t n = 0;
    while (q < end && n < count) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        if (amp == NULL)
            amp = end;
        if (amp > q) {
            const char *eq = memchr(q, '=', (size_t)(amp - q));
            const char *name_end = eq != NULL ? eq : amp;
            pairs[n].name = decode(req, q, (size_t)(name_end - q), 1);
            pairs[n].value = eq != NULL ? decode(req, eq + 1, (size_t)(amp - eq - 1), 1) : (bfg_str){"", 0};
            ++n;
        }
        q = amp + 1;
    }
    *out = pairs;
    return n;
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

/* True when the request's content type is application/json or ends in +json (parameters aside). */
static int is_json_request(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t len = v.len;
    const char *semi = memchr(v.base, ';', v.len);
    if (semi != NULL)
        len = (size_t)(semi - v.base);
    while (len > 0 && (v.base[len - 1] == ' ' || v.base[len - 1] == '\t'))
        --len;
    if (len == 16 && h2o_lcstris(v.base, len, H2O_STRLIT("application/json")))
        return 1;
    return len > 5 && h2o_lcstris(v.base + len - 5, 5, H2O_STRLIT("+json"));
}

static int is_hop_by_hop(const char *name, size_t len)
{
    static const char *const names[] = {"connection", "content-length", "keep-alive",        "proxy-connection",
                                        "te",         "trailer",        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return 1;
    }
    return 0;
}

static void send_function_response(h2o_req_t *req, fn_response *res)
{
    for (size_t i = 0; i < res->nheaders; ++i) {
        fn_header *h = &res->headers[i];
        if (is_hop_by_hop(h->name, h->name_len))
            continue;
        h2o_iovec_t name = h2o_strdup(&req->pool, h->name, h->name_len);
        h2o_iovec_t value = h2o_strdup(&req->pool, h->value, h->value_len);
        add_header(req, name.base, name.len, value.base, value.len);
    }
    int bodyless = res->status == 204 || res->status == 304 || res->status < 200;
    respond(req, res->status, bodyless ? NULL : res->body.data, bodyless ? 0 : res->body.len);
}

static void log_failure(const h2o_iovec_t id, const bff_frontend *fe, const bff_route *route, const fn_response *res,
                        int status)
{
    if (!fn_log_enabled(FN_LOG_ERROR))
        return;
    fn_buf buf = FN_BUF_INIT;
    fn_log_begin(&buf, FN_LOG_ERROR);
    fn_log_field_str(&buf, "requestId", id.base, id.len);
    fn_log_field_str(&buf, "frontend", fe->name, strlen(fe->name));
    fn_log_field_str(&buf, "route", route->pattern, strlen(route->pattern));
    fn_log_field_str(&buf, "function", route->fn->name, strlen(route->fn->name));
    fn_log_field_int(&buf, "status", status);
    fn_log_field_str(&buf, "msg", res->error, strlen(res->error));
    fn_log_write(&buf);
}

static void invoke_route(gw_worker *w, h2o_req_t *req, h2o_iovec_t id, const bff_frontend *fe, const bff_route_match *m)
{
    const bff_route *route = m->value;
    bfg_event ev = {.abi_version = BFG_ABI_VERSION};
    ev.method = (bfg_str){req->method.base, req->method.len};
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    ev.path = (bfg_str){req->path.base, path_len};
    ev.route = (bfg_str){route->pattern, strlen(route->pattern)};
    ev.frontend = (bfg_str){fe->name, strlen(fe->name)};
    ev.request_id = (bfg_str){id.base, id.len};
    ev.body = (bfg_str){req->entity.base != NULL ? req->entity.base : "", req->entity.len};

    bfg_pair *params = h2o_mem_alloc_pool(&req->pool, (m->nparams + 1) * sizeof(*params));
    for (size_t i = 0; i < m->nparams; ++i) {
        params[i].name = (bfg_str){m->params[i].name, m->params[i].name_len};
        params[i].value = decode(req, m->params[i].value, m->params[i].value_len, 0);
    }
    ev.params = params;
    ev.nparams = m->nparams;
    bfg_pair *query;
    ev.nquery = parse_query(req, &query);
    ev.query = query;
    bfg_pair *headers = h2o_mem_alloc_pool(&req->pool, (req->headers.size + 1) * sizeof(*headers));
    for (size_t i = 0; i < req->headers.size; ++i) {
        h2o_header_t *h = &req->headers.entries[i];
        headers[i].name = (bfg_str){h->name->base, h->name->len};
        headers[i].value = (bfg_str){h->value.base, h->value.len};
    }
    ev.headers = headers;
    ev.nheaders = req->headers.size;

    json_t *json = NULL;
    if (req->entity.len > 0 && is_json_request(req)) {
        json_error_t jerr;
        json = json_loadb(req->entity.base, req->entity.len, JSON_DECODE_ANY, &jerr);
        if (json == NULL) {
            char msg[300];
            snprintf(msg, sizeof(msg), "invalid JSON body: line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
            send_error(req, 400, msg, id);
            return;
        }
    }

    fn_call call = {.event = &ev, .json = json, .thread = w->index, .start_ns = fn_now_ns()};
    call.limits.timeout_ms = route->limits.timeout_ms;
    call.limits.memory_bytes = route->limits.memory_mb << 20;
    fn_response res;
    fn_response_init(&res);
    int rc = fn_invoke(route->fn, &call, &res);
    json_decref(json);
    if (rc == 0) {
        send_function_response(req, &res);
    } else if (rc == -ETIMEDOUT) {
        log_failure(id, fe, route, &res, 504);
        send_error(req, 504, "the function did not finish before the route's timeout", id);
    } else if (rc == -ENOMEM) {
        log_failure(id, fe, route, &res, 500);
        send_error(req, 500, "the function exceeded its memory limit", id);
    } else {
        log_failure(id, fe, route, &res, 500);
        send_error(req, 500, "the function failed", id);
    }
    fn_response_release(&res);
}

int gw_handle_request(h2o_handler_t *self, h2o_req_t *req)
{
    gw_worker *w = (gw_worker *)req->conn->ctx;
    h2o_iovec_t id = request_id(w, req);
    add_header(req, H2O_STRLIT("x-request-id"), id.base, id.len);

    bff_snapshot *snap = gw_live_cache_acquire(&w->live);
    if (snap == NULL) {
        send_error(req, 503, "no configuration is loaded", id);
        return 0;
    }
    const char *rest;
    size_t rest_len;
    const bff_frontend *fe =
        bff_snapshot_select(snap, req->authority.base, req->authority.len, req->path_normalized.base,
                            req->path_normalized.len, lookup_header, req, &rest, &rest_len);
    if (fe == NULL) {
        send_error(req, 404, "no frontend serves this path", id);
        goto Done;
    }
    bff_route_match m;
    unsigned method = bff_method_from_name(req->method.base, req->method.len);
    int found = bff_route_table_match(fe->table, method, rest, rest_len, &m);
    if (found == 1) {
        invoke_route(w, req, id, fe, &m);
    } else if (found < 0) {
        char allow[128];
        size_t n = bff_method_list(m.allowed, allow, sizeof(allow));
        h2o_iovec_t v = h2o_strdup(&req->pool, allow, n);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, v.base, v.len);
        send_error(req, 405, "method not allowed", id);
    } else {
        send_error(req, 404, "no route matches this path", id);
    }
Done:
    bff_snapshot_release(&snap);
    return 0;
}
