/* upstream: HTTP/1.1 calls with h2o's client, per-worker keep-alive pools, connection shares and deadlines. */
#include "upstream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* One per worker and upstream (by name, host and port): the connections this worker keeps and uses. */
typedef struct gw_upstream_pool {
    char *key;
    h2o_socketpool_t sockets;
    int has_sockets; /* 0 when keepalive_ms is 0: every call opens its own connection */
    size_t active;   /* connections in use by this worker's calls */
    h2o_linklist_t waiting;
    h2o_http1client_ctx_t client_ctx; /* the worker's, with this upstream's TLS context */
    SSL_CTX *ssl;                     /* https: verifies the peer against ca_file or the system's CAs */
    int https;
    gw_timer kick; /* starts waiting calls after a connection went back to the pool */
    int kicking;   /* on_kick is starting waiting calls (they are in line already) */
    struct gw_worker *w;
} gw_upstream_pool;

struct gw_upstream_call {
    struct gw_worker *w;
    gw_upstream_pool *pool;
    const bff_upstream *upstream; /* valid while the snapshot that started the call is: the caller holds it */
    h2o_http1client_t *client;    /* while connecting or exchanging */
    h2o_linklist_t waiting;       /* in pool->waiting while it waits for a connection */
    int holds_connection;
    gw_timer deadline;
    h2o_iovec_t reqbufs[2];
    char *head;
    char *body;
    size_t max_body;
    int retry_allowed;
    int too_large;
    int status;
    h2o_iovec_t content_type;
    char content_type_buf[128];
    gw_upstream_cb cb;
    void *data;
    /* The outcome, delivered from the loop (never inside h2o's callbacks or gw_upstream_start) once h2o has
     * let go of the client and pooled its socket. */
    gw_timer later;
    int timed_out;
    const char *error; /* static text, or error_buf */
    char error_buf[96];
    h2o_buffer_t *body_buf; /* the response body, taken over from the socket at its end */
};

static void try_connect(gw_upstream_call *call);

/* ---- pools ---- */

/* A client TLS context that verifies the server's chain (ca_file, else the system's CAs); h2o checks the name. */
static SSL_CTX *client_tls(const char *ca_file)
{
    SSL_CTX *ssl = SSL_CTX_new(TLS_client_method());
    if (ssl == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ssl, ca_file, NULL) == 1
                             : SSL_CTX_set_default_verify_paths(ssl) == 1;
    if (!ok) {
        ERR_clear_error();
        SSL_CTX_free(ssl);
        return NULL;
    }
    return ssl;
}

static gw_upstream_pool *pool_for(struct gw_worker *w, const bff_upstream *up)
{
    char key[1024];
    snprintf(key, sizeof(key), "%s\n%s\n%u\n%llu\n%d\n%s", up->name, up->host, (unsigned)up->port,
             (unsigned long long)up->keepalive_ms, up->https, up->ca_file != NULL ? up->ca_file : "");
    for (size_t i = 0; i < w->nupstream_pools; ++i) {
        if (strcmp(w->upstream_pools[i]->key, key) == 0)
            return w->upstream_pools[i];
    }
    gw_upstream_pool **grown = realloc(w->upstream_pools, (w->nupstream_pools + 1) * sizeof(*grown));
    gw_upstream_pool *pool = calloc(1, sizeof(*pool));
    if (grown != NULL)
        w->upstream_pools = grown;
    if (grown == NULL || pool == NULL || (pool->key = strdup(key)) == NULL) {
        free(pool);
        return NULL;
    }
    pool->w = w;
    h2o_linklist_init_anchor(&pool->waiting);
    pool->client_ctx = w->ctx.proxy.client_ctx;
    pool->https = up->https;
    if (up->https && (pool->ssl = client_tls(up->ca_file)) == NULL) {
        free(pool->key);
        free(pool);
        return NULL;
    }
    pool->client_ctx.ssl_ctx = pool->ssl;
    if (up->keepalive_ms > 0) {
        h2o_socketpool_init_by_hostport(&pool->sockets, h2o_iovec_init(up->host, strlen(up->host)), up->port, up->https,
                                        (size_t)up->max_connections);
        h2o_socketpool_set_timeout(&pool->sockets, w->ctx.loop, up->keepalive_ms);
        pool->has_sockets = 1;
    }
    w->upstream_pools[w->nupstream_pools++] = pool;
    return pool;
}

static size_t share_of(const struct gw_worker *w, const bff_upstream *up)
{
    unsigned threads = w->nthreads > 0 ? w->nthreads : 1;
    size_t share = (size_t)((up->max_connections + threads - 1) / threads);
    return share > 0 ? share : 1;
}

static void on_kick(gw_timer *timer)
{
    gw_upstream_pool *pool = H2O_STRUCT_FROM_MEMBER(gw_upstream_pool, kick, timer);
    pool->kicking = 1;
    while (!h2o_linklist_is_empty(&pool->waiting)) {
        gw_upstream_call *call = H2O_STRUCT_FROM_MEMBER(gw_upstream_call, waiting, pool->waiting.next);
        if (pool->active >= share_of(pool->w, call->upstream))
            break;
        h2o_linklist_unlink(&call->waiting);
        try_connect(call);
    }
    pool->kicking = 0;
}

/* Gives the connection slot back; waiting calls start from the loop, after h2o has pooled the socket. */
static void release_connection(gw_upstream_call *call)
{
    if (!call->holds_connection)
        return;
    call->holds_connection = 0;
    --call->pool->active;
    if (!h2o_linklist_is_empty(&call->pool->waiting) && !gw_timer_active(&call->pool->kick))
        gw_timer_start(call->w, &call->pool->kick, 0, on_kick);
}

void gw_upstreams_dispose(struct gw_worker *w)
{
    for (size_t i = 0; i < w->nupstream_pools; ++i) {
        gw_upstream_pool *pool = w->upstream_pools[i];
        gw_timer_stop(&pool->kick);
        if (pool->has_sockets)
            h2o_socketpool_dispose(&pool->sockets);
        if (pool->ssl != NULL)
            SSL_CTX_free(pool->ssl);
        free(pool->key);
        free(pool);
    }
    free(w->upstream_pools);
    w->upstream_pools = NULL;
    w->nupstream_pools = 0;
}

/* ---- one call ---- */

static void call_free(gw_upstream_call *call)
{
    gw_timer_stop(&call->deadline);
    gw_timer_stop(&call->later);
    if (h2o_linklist_is_linked(&call->waiting))
        h2o_linklist_unlink(&call->waiting);
    release_connection(call);
    if (call->body_buf != NULL)
        h2o_buffer_dispose(&call->body_buf);
    free(call->head);
    free(call->body);
    free(call);
}

static void on_later(gw_timer *timer)
{
    gw_upstream_call *call = H2O_STRUCT_FROM_MEMBER(gw_upstream_call, later, timer);
    gw_upstream_result res = {.status = call->status,
                              .error = call->error,
                              .timed_out = call->timed_out,
                              .too_large = call->too_large,
                              .body = call->body_buf != NULL
                                          ? h2o_iovec_init(call->body_buf->bytes, call->body_buf->size)
                                          : h2o_iovec_init(NULL, 0),
                              .content_type = call->content_type};
    gw_upstream_cb cb = call->cb;
    void *data = call->data;
    /* The result points into the call: freed after the callback. Its connection slot goes first, so that the
     * callback's next call to this upstream can take the socket h2o has just pooled. */
    gw_timer_stop(&call->deadline);
    release_connection(call);
    cb(data, &res);
    call_free(call);
}

/* Ends the call: h2o closes (or pools) the client after the current callback returns; the outcome is
 * delivered from a 0 ms timer. `error` must be static text or call->error_buf. */
static void finish(gw_upstream_call *call, int status, const char *error, int timed_out)
{
    call->client = NULL;
    call->status = error != NULL ? 0 : status;
    call->error = error;
    call->timed_out = timed_out;
    gw_timer_stop(&call->deadline);
    gw_timer_start(call->w, &call->later, 0, on_later);
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    gw_upstream_call *call = client->data;
    h2o_buffer_t *in = client->sock->input;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        finish(call, 0, errstr, 0);
        return -1;
    }
    if (in->size > call->max_body) {
        snprintf(call->error_buf, sizeof(call->error_buf), "the response is larger than %zu bytes (max_body_bytes)",
                 call->max_body);
        call->too_large = 1;
        finish(call, 0, call->error_buf, 0);
        return -1;
    }
    if (errstr == h2o_http1client_error_is_eos) {
        /* The body is taken over (the socket gets a fresh buffer, as h2o's proxy does): it outlives the client. */
        call->body_buf = client->sock->input;
        h2o_buffer_init(&client->sock->input, &h2o_socket_buffer_prototype);
        finish(call, call->status, NULL, 0);
    }
    return 0;
}

/* An error that a kept-alive connection closed by the upstream just before it was used produces. */
static int stale_connection_error(const char *errstr)
{
    return strcmp(errstr, "I/O error (head)") == 0 || strcmp(errstr, "I/O error (send request)") == 0;
}

/* A failure before any response byte: a GET or HEAD that met a closed kept-alive connection gets one more try. */
static void failed_before_head(gw_upstream_call *call, const char *errstr)
{
    call->client = NULL;
    if (call->retry_allowed && stale_connection_error(errstr) && gw_timer_active(&call->deadline)) {
        call->retry_allowed = 0;
        release_connection(call);
        try_connect(call);
        return;
    }
    finish(call, 0, errstr, 0);
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    gw_upstream_call *call = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        failed_before_head(call, errstr);
        return NULL;
    }
    call->status = status;
    for (size_t i = 0; i < num_headers; ++i) {
        if (headers[i].name == &H2O_TOKEN_CONTENT_TYPE->buf) {
            size_t n = headers[i].value.len < sizeof(call->content_type_buf) ? headers[i].value.len
                                                                             : sizeof(call->content_type_buf);
            memcpy(call->content_type_buf, headers[i].value.base, n);
            call->content_type = h2o_iovec_init(call->content_type_buf, n);
        }
    }
    if (errstr == h2o_http1client_error_is_eos) { /* no body (HEAD, 204, 304) */
        finish(call, status, NULL, 0);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs,
                                          size_t *reqbufcnt, int *method_is_head)
{
    gw_upstream_call *call = client->data;
    if (errstr != NULL) {
        failed_before_head(call, errstr);
        return NULL;
    }
    *reqbufs = call->reqbufs;
    *reqbufcnt = call->reqbufs[1].len > 0 ? 2 : 1;
    *method_is_head = strncmp(call->head, "HEAD ", 5) == 0;
    return on_head;
}

static void try_connect(gw_upstream_call *call)
{
    gw_upstream_pool *pool = call->pool;
    if (pool->active >= share_of(call->w, call->upstream) ||
        (!h2o_linklist_is_empty(&pool->waiting) && !h2o_linklist_is_linked(&call->waiting) && !pool->kicking)) {
        /* At its share, or others wait already: in line, in order. */
        if (!h2o_linklist_is_linked(&call->waiting))
            h2o_linklist_insert(&pool->waiting, &call->waiting);
        return;
    }
    call->holds_connection = 1;
    ++pool->active;
    call->status = 0;
    call->content_type = h2o_iovec_init(NULL, 0);
    h2o_http1client_ctx_t *ctx = &pool->client_ctx;
    if (pool->has_sockets)
        h2o_http1client_connect_with_pool(&call->client, call, ctx, &pool->sockets, on_connect);
    else
        h2o_http1client_connect(&call->client, call, ctx,
                                h2o_iovec_init(call->upstream->host, strlen(call->upstream->host)),
                                call->upstream->port, pool->https, on_connect);
}

static void on_deadline(gw_timer *timer)
{
    gw_upstream_call *call = H2O_STRUCT_FROM_MEMBER(gw_upstream_call, deadline, timer);
    if (call->client != NULL) {
        h2o_http1client_cancel(call->client);
        call->client = NULL;
    }
    if (h2o_linklist_is_linked(&call->waiting))
        h2o_linklist_unlink(&call->waiting);
    finish(call, 0, "timeout", 1);
}

void gw_upstream_cancel(gw_upstream_call *call)
{
    if (call->client != NULL) {
        h2o_http1client_cancel(call->client);
        call->client = NULL;
    }
    call_free(call);
}

/* "METHOD base+target HTTP/1.1", host, content-length and type, the upstream's and the call's headers. */
static char *build_head(const gw_upstream_request *req, size_t *len)
{
    const bff_upstream *up = req->upstream;
    size_t cap = strlen(req->method) + strlen(up->base_path) + req->target.len + strlen(up->host) + 128;
    for (size_t i = 0; i < up->nheaders; ++i)
        cap += strlen(up->header_names[i]) + strlen(up->header_values[i]) + 4;
    for (size_t i = 0; i < req->nheaders; ++i)
        cap += req->headers[2 * i].len + req->headers[2 * i + 1].len + 4;
    char *head = malloc(cap);
    if (head == NULL)
        return NULL;
    int v6 = strchr(up->host, ':') != NULL; /* an IPv6 literal: brackets in Host */
    int n = snprintf(head, cap, "%s %s%.*s HTTP/1.1\r\nhost: %s%s%s", req->method, up->base_path, (int)req->target.len,
                     req->target.base, v6 ? "[" : "", up->host, v6 ? "]" : "");
    size_t at = (size_t)n;
    if (up->port != (up->https ? 443 : 80))
        at += (size_t)snprintf(head + at, cap - at, ":%u", (unsigned)up->port);
    at += (size_t)snprintf(head + at, cap - at, "\r\n");
    int has_body = req->body.len > 0;
    int sends_length = has_body || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0 ||
                       strcmp(req->method, "PATCH") == 0;
    if (sends_length)
        at += (size_t)snprintf(head + at, cap - at, "content-length: %zu\r\n", req->body.len);
    if (has_body)
        at += (size_t)snprintf(head + at, cap - at, "content-type: application/json\r\n");
    for (size_t i = 0; i < up->nheaders; ++i)
        at += (size_t)snprintf(head + at, cap - at, "%s: %s\r\n", up->header_names[i], up->header_values[i]);
    for (size_t i = 0; i < req->nheaders; ++i)
        at +=
            (size_t)snprintf(head + at, cap - at, "%.*s: %.*s\r\n", (int)req->headers[2 * i].len,
                             req->headers[2 * i].base, (int)req->headers[2 * i + 1].len, req->headers[2 * i + 1].base);
    at += (size_t)snprintf(head + at, cap - at, "\r\n");
    *len = at;
    return head;
}

gw_upstream_call *gw_upstream_start(struct gw_worker *w, const gw_upstream_request *req, gw_upstream_cb cb, void *data)
{
    gw_upstream_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->w = w;
    call->upstream = req->upstream;
    call->pool = pool_for(w, req->upstream);
    size_t head_len = 0;
    call->head = build_head(req, &head_len);
    call->body = req->body.len > 0 ? malloc(req->body.len) : NULL;
    if (call->pool == NULL || call->head == NULL || (req->body.len > 0 && call->body == NULL)) {
        free(call->head);
        free(call->body);
        free(call);
        return NULL;
    }
    if (req->body.len > 0)
        memcpy(call->body, req->body.base, req->body.len);
    call->reqbufs[0] = h2o_iovec_init(call->head, head_len);
    call->reqbufs[1] = h2o_iovec_init(call->body, req->body.len);
    call->max_body = req->upstream->max_body_bytes;
    call->retry_allowed = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    call->cb = cb;
    call->data = data;
    gw_timer_start(w, &call->deadline, req->timeout_ms, on_deadline);
    try_connect(call);
    return call;
}
