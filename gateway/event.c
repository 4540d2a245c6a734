/* event: builds the function event from the h2o request (decoding, query parsing, JSON bodies). */
#include "event.h"

#include "../functions/lua_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUERY_PARAMS 256

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

int gw_event_build(h2o_req_t *req, bfg_str id, const bff_frontend *fe, const bff_route_match *m, bfg_event *ev,
                   int check, int *is_json, char *err, size_t cap)
{
    const bff_route *route = m->value;
    memset(ev, 0, sizeof(*ev));
    ev->abi_version = BFG_ABI_VERSION;
    ev->method = (bfg_str){req->method.base, req->method.len};
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    ev->path = (bfg_str){req->path.base, path_len};
    ev->route = (bfg_str){route->pattern, strlen(route->pattern)};
    ev->frontend = (bfg_str){fe->name, strlen(fe->name)};
    ev->request_id = id;
    ev->body = (bfg_str){req->entity.base != NULL ? req->entity.base : "", req->entity.len};

    bfg_pair *params = h2o_mem_alloc_pool(&req->pool, (m->nparams + 1) * sizeof(*params));
    for (size_t i = 0; i < m->nparams; ++i) {
        params[i].name = (bfg_str){m->params[i].name, m->params[i].name_len};
        params[i].value = decode(req, m->params[i].value, m->params[i].value_len, 0);
    }
    ev->params = params;
    ev->nparams = m->nparams;
    bfg_pair *query;
    ev->nquery = parse_query(req, &query);
    ev->query = query;
    bfg_pair *headers = h2o_mem_alloc_pool(&req->pool, (req->headers.size + 1) * sizeof(*headers));
    for (size_t i = 0; i < req->headers.size; ++i) {
        h2o_header_t *h = &req->headers.entries[i];
        headers[i].name = (bfg_str){h->name->base, h->name->len};
        headers[i].value = (bfg_str){h->value.base, h->value.len};
    }
    ev->headers = headers;
    ev->nheaders = req->headers.size;

    *is_json = 0;
    if (req->entity.len > 0 && is_json_request(req)) {
        char why[200];
        if (check && fn_json_parse(NULL, req->entity.base, req->entity.len, 0, why, sizeof(why)) != 0) {
            snprintf(err, cap, "invalid JSON body: %s", why);
            return -1;
        }
        *is_json = 1;
    }
    return 0;
}

json_t *gw_event_json(const bfg_event *ev, char *err, size_t cap)
{
    json_error_t jerr;
    json_t *v = json_loadb(ev->body.ptr, ev->body.len, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        snprintf(err, cap, "invalid JSON body: line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
    return v;
}

/* A JSON string of the bytes, or null when they are not UTF-8 (JSON text must be). */
static json_t *text_value(const char *p, size_t len)
{
    json_t *v = json_stringn(p, len);
    return v != NULL ? v : json_null();
}

static json_t *pairs_object(const bfg_pair *pairs, size_t n, int join_repeats)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj != NULL && i < n; ++i) {
        char name[256];
        size_t len = pairs[i].name.len < sizeof(name) - 1 ? pairs[i].name.len : sizeof(name) - 1;
        memcpy(name, pairs[i].name.ptr, len);
        name[len] = '\0';
        json_t *have = json_object_get(obj, name);
        if (have != NULL && join_repeats && json_is_string(have)) {
            size_t hlen = json_string_length(have), vlen = pairs[i].value.len;
            char *joined = malloc(hlen + 2 + vlen);
            if (joined != NULL) {
                memcpy(joined, json_string_value(have), hlen);
                memcpy(joined + hlen, ", ", 2);
                memcpy(joined + hlen + 2, pairs[i].value.ptr, vlen);
                json_object_set_new(obj, name, text_value(joined, hlen + 2 + vlen));
                free(joined);
            }
        } else if (have == NULL) {
            json_object_set_new(obj, name, text_value(pairs[i].value.ptr, pairs[i].value.len));
        }
    }
    return obj;
}

json_t *gw_event_context(const bfg_event *ev, const json_t *json, const json_t *claims)
{
    json_t *body = json != NULL       ? json_incref((json_t *)json)
                   : ev->body.len > 0 ? text_value(ev->body.ptr, ev->body.len)
                                      : json_null();
    return json_pack("{s:s#, s:s#, s:o, s:o, s:o, s:o, s:O}", "method", ev->method.ptr, (int)ev->method.len, "path",
                     ev->path.ptr, (int)ev->path.len, "params", pairs_object(ev->params, ev->nparams, 0), "query",
                     pairs_object(ev->query, ev->nquery, 0), "headers", pairs_object(ev->headers, ev->nheaders, 1),
                     "body", body, "claims", claims != NULL ? (json_t *)claims : json_null());
}
