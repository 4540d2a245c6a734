/* upstream: HTTP/1.1 calls to upstream services on the worker's loop: our own client over h2o sockets, with
 * per-worker keep-alive pools whose sockets stay attached to the loop, connection shares and deadlines. */
#include "upstream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../functions/fn.h"
#include "h1_response.h"
#include "worker.h"

/* One per worker and upstream (by name, host, port, keep-alive and TLS settings): the connections this worker
 * keeps for it. */
typedef struct gw_upstream_pool {
    /* what tells pools apart: an upstream keeps its pool across reloads while these stay the same */
    char *name;
    char *host; /* without IPv6 brackets */
    unsigned port;
    int https;
    uint64_t keepalive_ms; /* 0: a connection serves one call */
    char *ca_file;         /* NULL: the system's CAs */
    struct gw_worker *w;
    char port_text[8];
    char *host_line; /* "host: ...\r\n", as every request sends it */
    size_t host_line_len;
    SSL_CTX *ssl;           /* https: verifies the peer against ca_file or the system's CAs */
    size_t open;            /* connections open or opening, idle ones included */
    h2o_linklist_t idle;    /* gw_upstream_conn.idle_link, most recently used first */
    h2o_linklist_t waiting; /* calls waiting for a connection, in order */
    gw_timer idle_timer;    /* closes connections idle longer than keepalive_ms */
    gw_timer kick;          /* starts waiting calls once a connection is free */
    int kicking;            /* on_kick is starting waiting calls (they are in line already) */
} gw_upstream_pool;

typedef struct gw_upstream_conn {
    gw_upstream_pool *pool;
    h2o_socket_t *sock;                    /* NULL while the host name resolves */
    h2o_hostinfo_getaddr_req_t *resolving; /* a pending name lookup */
    struct gw_upstream_call *call;         /* the call it serves; NULL while idle */
    h2o_linklist_t idle_link;
    uint64_t idle_since_ns;
    int reused; /* served a call before: a failure before any response byte may be a stale keep-alive */
} gw_upstream_conn;

enum { PHASE_HEAD, PHASE_BODY, PHASE_DONE };

struct gw_upstream_call {
    struct gw_worker *w;
    gw_upstream_pool *pool;
    const bff_upstream *upstream; /* valid while the snapshot that started the call is: the caller holds it */
    gw_upstream_conn *conn;       /* while it holds one */
    h2o_linklist_t waiting;       /* in pool->waiting while it waits for a connection */
    gw_timer deadline;
    h2o_iovec_t reqbufs[2];
    char *head;
    char *body;
    int to_head;   /* a HEAD request: no body comes back */
    int force_new; /* the retry after a stale kept-alive connection: not another pooled one */
    int broken;    /* the connection reported an error: never pooled again */
    size_t max_body;
    int retry_allowed;
    /* the response */
    int writing;   /* the request is still being written */
    int got_bytes; /* a response byte arrived */
    int phase;
    gw_h1_body body_kind;
    uint64_t body_left; /* GW_H1_BODY_LENGTH */
    gw_h1_chunked chunked;
    int keep_alive;
    fn_buf body_buf;
    int status;
    int too_large;
    h2o_iovec_t content_type;
    char content_type_buf[128];
    gw_upstream_cb cb;
    void *data;
    /* The outcome, delivered from the loop (never inside a socket callback or gw_upstream_start). */
    gw_timer later;
    int timed_out;
    const char *error; /* static text, or error_buf */
    char error_buf[96];
};

static void try_acquire(gw_upstream_call *call);
static void send_request(gw_upstream_call *call);
static void on_read(h2o_socket_t *sock, const char *err);

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

static void pool_free(gw_upstream_pool *pool)
{
    if (pool->ssl != NULL)
        SSL_CTX_free(pool->ssl);
    free(pool->name);
    free(pool->host);
    free(pool->ca_file);
    free(pool->host_line);
    free(pool);
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static gw_upstream_pool *pool_for(struct gw_worker *w, const bff_upstream *up)
{
    for (size_t i = 0; i < w->nupstream_pools; ++i) {
        gw_upstream_pool *pool = w->upstream_pools[i];
        if (pool->port == up->port && pool->https == up->https && pool->keepalive_ms == up->keepalive_ms &&
            strcmp(pool->name, up->name) == 0 && strcmp(pool->host, up->host) == 0 &&
            same_text(pool->ca_file, up->ca_file))
            return pool;
    }
    gw_upstream_pool **grown = realloc(w->upstream_pools, (w->nupstream_pools + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    w->upstream_pools = grown;
    gw_upstream_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->w = w;
    h2o_linklist_init_anchor(&pool->idle);
    h2o_linklist_init_anchor(&pool->waiting);
    pool->port = up->port;
    pool->https = up->https;
    pool->keepalive_ms = up->keepalive_ms;
    snprintf(pool->port_text, sizeof(pool->port_text), "%u", (unsigned)up->port);
    /* Host: an IPv6 literal in brackets; the port unless it is the scheme's */
    size_t cap = strlen(up->host) + 32;
    if ((pool->host_line = malloc(cap)) != NULL) {
        int v6 = strchr(up->host, ':') != NULL;
        int default_port = up->port == (up->https ? 443 : 80);
        pool->host_line_len =
            (size_t)snprintf(pool->host_line, cap, "host: %s%s%s%s%s\r\n", v6 ? "[" : "", up->host, v6 ? "]" : "",
                             default_port ? "" : ":", default_port ? "" : pool->port_text);
    }
    if (pool->host_line == NULL || (pool->name = strdup(up->name)) == NULL || (pool->host = strdup(up->host)) == NULL ||
        (up->ca_file != NULL && (pool->ca_file = strdup(up->ca_file)) == NULL) ||
        (up->https && (pool->ssl = client_tls(up->ca_file)) == NULL)) {
        pool_free(pool);
        return NULL;
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

static int can_start(gw_upstream_pool *pool, const gw_upstream_call *call)
{
    return !h2o_linklist_is_empty(&pool->idle) || pool->open < share_of(pool->w, call->upstream);
}

static void on_kick(gw_timer *timer)
{
    gw_upstream_pool *pool = H2O_STRUCT_FROM_MEMBER(gw_upstream_pool, kick, timer);
    pool->kicking = 1;
    while (!h2o_linklist_is_empty(&pool->waiting)) {
        gw_upstream_call *call = H2O_STRUCT_FROM_MEMBER(gw_upstream_call, waiting, pool->waiting.next);
        if (!can_start(pool, call))
            break;
        h2o_linklist_unlink(&call->waiting);
        try_acquire(call);
    }
    pool->kicking = 0;
}

/* A connection went idle or closed: waiting calls start from the loop. */
static void kick_waiting(gw_upstream_pool *pool)
{
    if (!h2o_linklist_is_empty(&pool->waiting) && !gw_timer_active(&pool->kick))
        gw_timer_start(pool->w, &pool->kick, 0, on_kick);
}

/* ---- connections ---- */

static void conn_close(gw_upstream_conn *conn)
{
    gw_upstream_pool *pool = conn->pool;
    if (h2o_linklist_is_linked(&conn->idle_link))
        h2o_linklist_unlink(&conn->idle_link);
    if (conn->resolving != NULL)
        h2o_hostinfo_getaddr_cancel(conn->resolving);
    if (conn->sock != NULL) {
        conn->sock->data = NULL;
        h2o_socket_close(conn->sock);
    }
    --pool->open;
    free(conn);
    kick_waiting(pool);
}

static void on_idle_timer(gw_timer *timer)
{
    gw_upstream_pool *pool = H2O_STRUCT_FROM_MEMBER(gw_upstream_pool, idle_timer, timer);
    uint64_t now = fn_now_ns(), keep = pool->keepalive_ms * 1000000ULL;
    while (!h2o_linklist_is_empty(&pool->idle)) {
        gw_upstream_conn *oldest = H2O_STRUCT_FROM_MEMBER(gw_upstream_conn, idle_link, pool->idle.prev);
        if (oldest->idle_since_ns + keep > now) {
            gw_timer_start(pool->w, &pool->idle_timer, (oldest->idle_since_ns + keep - now + 999999) / 1000000,
                           on_idle_timer);
            return;
        }
        conn_close(oldest);
    }
}

/* The call is done with its connection: kept for the next call when the response allows it, else closed. */
static void conn_release(gw_upstream_call *call, int reusable)
{
    gw_upstream_conn *conn = call->conn;
    if (conn == NULL)
        return;
    call->conn = NULL;
    conn->call = NULL;
    gw_upstream_pool *pool = conn->pool;
    if (!reusable || pool->keepalive_ms == 0 || conn->sock == NULL) {
        conn_close(conn);
        return;
    }
    conn->reused = 1;
    conn->idle_since_ns = fn_now_ns();
    h2o_linklist_insert(pool->idle.next, &conn->idle_link);
    if (!gw_timer_active(&pool->idle_timer))
        gw_timer_start(pool->w, &pool->idle_timer, pool->keepalive_ms, on_idle_timer);
    kick_waiting(pool);
}

/* ---- one call ---- */

static void call_free(gw_upstream_call *call)
{
    gw_timer_stop(&call->deadline);
    gw_timer_stop(&call->later);
    if (h2o_linklist_is_linked(&call->waiting))
        h2o_linklist_unlink(&call->waiting);
    conn_release(call, 0);
    fn_buf_release(&call->body_buf);
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
                              .body = h2o_iovec_init(call->body_buf.data, call->body_buf.len),
                              .content_type = call->content_type};
    gw_upstream_cb cb = call->cb;
    void *data = call->data;
    cb(data, &res); /* the result points into the call: freed after the callback */
    call_free(call);
}

/* Ends the call: its connection is kept (a complete response that allows it) or closed; the outcome is
 * delivered from a 0 ms timer. `error` must be static text or call->error_buf. */
static void finish(gw_upstream_call *call, int status, const char *error, int timed_out)
{
    conn_release(call, error == NULL && call->keep_alive && !call->broken);
    call->phase = PHASE_DONE;
    call->status = error != NULL ? 0 : status;
    call->error = error;
    call->timed_out = timed_out;
    gw_timer_stop(&call->deadline);
    gw_timer_start(call->w, &call->later, 0, on_later);
}

static void fail(gw_upstream_call *call, const char *error)
{
    call->keep_alive = 0;
    finish(call, 0, error, 0);
}

/* The connection failed before any response byte: a GET or HEAD that met a kept-alive connection the upstream
 * had closed gets one more try, on a new connection, while time remains. */
static void failed_before_response(gw_upstream_call *call, const char *error)
{
    gw_upstream_conn *conn = call->conn;
    if (conn != NULL && conn->reused && call->retry_allowed && gw_timer_active(&call->deadline)) {
        call->retry_allowed = 0;
        call->force_new = 1; /* other pooled connections may be just as stale */
        conn_release(call, 0);
        try_acquire(call);
        return;
    }
    fail(call, error);
}

static void too_large(gw_upstream_call *call)
{
    snprintf(call->error_buf, sizeof(call->error_buf), "the response is larger than %zu bytes (max_body_bytes)",
             call->max_body);
    call->too_large = 1;
    fail(call, call->error_buf);
}

/* The response is complete (with `leftover` bytes after it, which no request asked for). */
static void complete(gw_upstream_call *call, size_t leftover)
{
    if (leftover > 0)
        call->keep_alive = 0;
    call->phase = PHASE_DONE;
    if (call->writing)
        return; /* finished when the write completes (on_written) */
    finish(call, call->status, NULL, 0);
}

/* Parses what the socket has read. Returns when it needs more bytes or the call has ended. */
static void parse_input(gw_upstream_call *call)
{
    h2o_buffer_t **in = &call->conn->sock->input;
    while (call->phase != PHASE_DONE) {
        if (call->phase == PHASE_HEAD) {
            if ((*in)->size == 0)
                return; /* (after a 1xx head that filled the buffer) */
            gw_h1_head head;
            const char *err = NULL;
            ssize_t n = gw_h1_parse_head((*in)->bytes, (*in)->size, call->to_head, &head, &err);
            if (n == 0)
                return;
            if (n < 0) {
                snprintf(call->error_buf, sizeof(call->error_buf), "invalid response: %s", err);
                fail(call, call->error_buf);
                return;
            }
            if (head.status < 200) {
                h2o_buffer_consume(in, (size_t)n);
                continue; /* 100 Continue and the like: the real head follows */
            }
            call->status = head.status;
            call->keep_alive = head.keep_alive;
            call->body_kind = head.body;
            /* Copied before the head is consumed: h2o frees a buffer that is consumed whole. */
            if (head.content_type != NULL) {
                size_t len = head.content_type_len < sizeof(call->content_type_buf) ? head.content_type_len
                                                                                    : sizeof(call->content_type_buf);
                memcpy(call->content_type_buf, head.content_type, len);
                call->content_type = h2o_iovec_init(call->content_type_buf, len);
            }
            h2o_buffer_consume(in, (size_t)n);
            if (head.body == GW_H1_BODY_NONE) {
                complete(call, (*in)->size);
                return;
            }
            if (head.body == GW_H1_BODY_LENGTH) {
                if (head.content_length > call->max_body) {
                    too_large(call);
                    return;
                }
                call->body_left = head.content_length;
                if (fn_buf_reserve(&call->body_buf, (size_t)head.content_length + 1) != 0) {
                    fail(call, "out of memory");
                    return;
                }
                if (call->body_left == 0) {
                    complete(call, (*in)->size);
                    return;
                }
            }
            call->phase = PHASE_BODY;
        }
        if ((*in)->size == 0)
            return;
        size_t take = (*in)->size;
        switch (call->body_kind) {
        case GW_H1_BODY_LENGTH:
            if (take > call->body_left)
                take = (size_t)call->body_left;
            if (fn_buf_append(&call->body_buf, (*in)->bytes, take) != 0) {
                fail(call, "out of memory");
                return;
            }
            call->body_left -= take;
            break;
        case GW_H1_BODY_CHUNKED: {
            const char *err = NULL;
            ssize_t n = gw_h1_chunked_feed(&call->chunked, (*in)->bytes, take, &call->body_buf, &err);
            if (n < 0) {
                snprintf(call->error_buf, sizeof(call->error_buf), "invalid response: %s", err);
                fail(call, call->error_buf);
                return;
            }
            take = (size_t)n;
            break;
        }
        default: /* until the upstream closes */
            if (fn_buf_append(&call->body_buf, (*in)->bytes, take) != 0) {
                fail(call, "out of memory");
                return;
            }
            break;
        }
        h2o_buffer_consume(in, take);
        if (call->body_buf.len > call->max_body) {
            too_large(call);
            return;
        }
        if ((call->body_kind == GW_H1_BODY_LENGTH && call->body_left == 0) ||
            (call->body_kind == GW_H1_BODY_CHUNKED && call->chunked.done)) {
            complete(call, (*in)->size);
            return;
        }
        if ((*in)->size == 0)
            return;
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    gw_upstream_conn *conn = sock->data;
    gw_upstream_call *call = conn->call;
    if (call == NULL) { /* idle: the upstream closed it, or sent what nobody asked for */
        conn_close(conn);
        return;
    }
    if (call->phase == PHASE_DONE) /* complete, waiting for its write to end: anything more is unexpected */
        call->keep_alive = 0;
    if (err != NULL)
        call->broken = 1; /* whatever arrived with the error, this connection is done */
    if (sock->input->size > 0)
        call->got_bytes = 1;
    if (call->phase != PHASE_DONE)
        parse_input(call);
    if (call->phase == PHASE_DONE) {
        if (err != NULL && call->conn != NULL)
            h2o_socket_read_stop(sock); /* until the write ends, then the connection closes */
        return;
    }
    if (err == NULL)
        return;
    if (call->phase == PHASE_BODY && call->body_kind == GW_H1_BODY_CLOSE) { /* the end of the body */
        call->keep_alive = 0;
        complete(call, 0);
    } else if (!call->got_bytes) {
        failed_before_response(call, "the connection closed before the response");
    } else {
        fail(call, "the connection closed in the middle of the response");
    }
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    gw_upstream_conn *conn = sock->data;
    gw_upstream_call *call = conn != NULL ? conn->call : NULL;
    if (call == NULL)
        return;
    call->writing = 0;
    if (err != NULL) {
        call->broken = 1;
        if (call->phase != PHASE_DONE && !call->got_bytes)
            failed_before_response(call, "cannot send the request");
        else if (call->phase != PHASE_DONE)
            fail(call, "cannot send the request");
        else
            finish(call, call->status, NULL, 0); /* the whole response came before the write failed */
        return;
    }
    if (call->phase == PHASE_DONE)
        finish(call, call->status, NULL, 0);
}

static void send_request(gw_upstream_call *call)
{
    call->phase = PHASE_HEAD;
    call->got_bytes = 0;
    call->broken = 0;
    call->status = 0;
    call->keep_alive = 0;
    call->body_left = 0;
    memset(&call->chunked, 0, sizeof(call->chunked));
    call->body_buf.len = 0;
    call->content_type = h2o_iovec_init(NULL, 0);
    call->writing = 1;
    h2o_socket_write(call->conn->sock, call->reqbufs, call->reqbufs[1].len > 0 ? 2 : 1, on_written);
}

/* ---- connecting ---- */

static void conn_ready(gw_upstream_conn *conn)
{
    h2o_socket_read_start(conn->sock, on_read);
    send_request(conn->call);
}

static void conn_failed(gw_upstream_conn *conn, const char *what, const char *err)
{
    gw_upstream_call *call = conn->call;
    snprintf(call->error_buf, sizeof(call->error_buf), "%s: %s", what, err);
    fail(call, call->error_buf);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    gw_upstream_conn *conn = sock->data;
    if (err != NULL)
        conn_failed(conn, "TLS handshake", err);
    else
        conn_ready(conn);
}

static void on_connected(h2o_socket_t *sock, const char *err)
{
    gw_upstream_conn *conn = sock->data;
    if (err != NULL) {
        conn_failed(conn, "cannot connect", err);
        return;
    }
    if (conn->pool->https)
        h2o_socket_ssl_handshake(sock, conn->pool->ssl, conn->pool->host, on_handshake);
    else
        conn_ready(conn);
}

static void conn_connect(gw_upstream_conn *conn, struct sockaddr *addr, socklen_t len)
{
    if ((conn->sock = h2o_socket_connect(conn->pool->w->ctx.loop, addr, len, on_connected)) == NULL) {
        conn_failed(conn, "cannot connect", "socket error");
        return;
    }
    conn->sock->data = conn;
}

static void on_resolved(h2o_hostinfo_getaddr_req_t *req, const char *err, struct addrinfo *res, void *data)
{
    (void)req;
    gw_upstream_conn *conn = data;
    conn->resolving = NULL;
    if (err != NULL) {
        conn_failed(conn, "cannot resolve the host", err);
        return;
    }
    struct addrinfo *ai = h2o_hostinfo_select_one(res);
    conn_connect(conn, ai->ai_addr, ai->ai_addrlen);
}

/* Opens a connection for the call: address literals connect at once, names resolve off the loop first. */
static void conn_open(gw_upstream_call *call)
{
    gw_upstream_pool *pool = call->pool;
    gw_upstream_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        fail(call, "out of memory");
        return;
    }
    conn->pool = pool;
    conn->call = call;
    call->conn = conn;
    ++pool->open;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    uint16_t port = (uint16_t)atoi(pool->port_text);
    if (inet_pton(AF_INET, pool->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        conn_connect(conn, (struct sockaddr *)sin, sizeof(*sin));
    } else if (inet_pton(AF_INET6, pool->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        conn_connect(conn, (struct sockaddr *)sin6, sizeof(*sin6));
    } else {
        conn->resolving = h2o_hostinfo_getaddr(
            &pool->w->ctx.receivers.hostinfo_getaddr, h2o_iovec_init(pool->host, strlen(pool->host)),
            h2o_iovec_init(pool->port_text, strlen(pool->port_text)), AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP,
            AI_ADDRCONFIG | AI_NUMERICSERV, on_resolved, conn);
    }
}

/* Gives the call a connection: an idle one, a new one within the worker's share, or a place in line. */
static void try_acquire(gw_upstream_call *call)
{
    gw_upstream_pool *pool = call->pool;
    if (!can_start(pool, call) || (!h2o_linklist_is_empty(&pool->waiting) && !pool->kicking)) {
        h2o_linklist_insert(&pool->waiting, &call->waiting); /* in line, in order */
        return;
    }
    if (call->force_new) { /* a retry: a new connection, making room by closing the oldest idle one if need be */
        if (pool->open >= share_of(pool->w, call->upstream) && !h2o_linklist_is_empty(&pool->idle))
            conn_close(H2O_STRUCT_FROM_MEMBER(gw_upstream_conn, idle_link, pool->idle.prev));
        call->force_new = 0;
        conn_open(call);
        return;
    }
    if (!h2o_linklist_is_empty(&pool->idle)) {
        gw_upstream_conn *conn = H2O_STRUCT_FROM_MEMBER(gw_upstream_conn, idle_link, pool->idle.next);
        h2o_linklist_unlink(&conn->idle_link);
        conn->call = call;
        call->conn = conn;
        send_request(call);
        return;
    }
    conn_open(call);
}

static void on_deadline(gw_timer *timer)
{
    gw_upstream_call *call = H2O_STRUCT_FROM_MEMBER(gw_upstream_call, deadline, timer);
    if (h2o_linklist_is_linked(&call->waiting))
        h2o_linklist_unlink(&call->waiting);
    call->keep_alive = 0; /* a half-read response: the connection cannot be reused */
    finish(call, 0, "timeout", 1);
}

void gw_upstream_cancel(gw_upstream_call *call)
{
    call_free(call); /* closes its connection, if it holds one */
}

static char *put(char *at, const char *s, size_t n)
{
    memcpy(at, s, n);
    return at + n;
}

static char *put_header(char *at, const char *name, size_t nlen, const char *value, size_t vlen)
{
    at = put(at, name, nlen);
    at = put(at, ": ", 2);
    at = put(at, value, vlen);
    return put(at, "\r\n", 2);
}

/* "METHOD base+target HTTP/1.1", host, content-length and type, the upstream's and the call's headers. Built with
 * copies only: it is on every call's path. */
static char *build_head(const gw_upstream_pool *pool, const gw_upstream_request *req, size_t *len)
{
    const bff_upstream *up = req->upstream;
    size_t mlen = strlen(req->method), blen = strlen(up->base_path);
    size_t cap = mlen + blen + req->target.len + pool->host_line_len + 96;
    for (size_t i = 0; i < up->nheaders; ++i)
        cap += strlen(up->header_names[i]) + strlen(up->header_values[i]) + 4;
    for (size_t i = 0; i < req->nheaders; ++i)
        cap += req->headers[2 * i].len + req->headers[2 * i + 1].len + 4;
    char *head = malloc(cap);
    if (head == NULL)
        return NULL;
    char *at = put(head, req->method, mlen);
    *at++ = ' ';
    at = put(at, up->base_path, blen);
    at = put(at, req->target.base, req->target.len);
    at = put(at, H2O_STRLIT(" HTTP/1.1\r\n"));
    at = put(at, pool->host_line, pool->host_line_len);
    int has_body = req->body.len > 0;
    int sends_length = has_body || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0 ||
                       strcmp(req->method, "PATCH") == 0;
    if (sends_length) {
        at = put(at, H2O_STRLIT("content-length: "));
        char digits[24];
        size_t n = 0, v = req->body.len;
        do
            digits[n++] = (char)('0' + v % 10);
        while ((v /= 10) != 0 && n < sizeof(digits));
        while (n > 0)
            *at++ = digits[--n];
        at = put(at, "\r\n", 2);
    }
    if (has_body)
        at = put(at, H2O_STRLIT("content-type: application/json\r\n"));
    for (size_t i = 0; i < up->nheaders; ++i)
        at = put_header(at, up->header_names[i], strlen(up->header_names[i]), up->header_values[i],
                        strlen(up->header_values[i]));
    for (size_t i = 0; i < req->nheaders; ++i)
        at = put_header(at, req->headers[2 * i].base, req->headers[2 * i].len, req->headers[2 * i + 1].base,
                        req->headers[2 * i + 1].len);
    at = put(at, "\r\n", 2);
    *len = (size_t)(at - head);
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
    call->head = call->pool != NULL ? build_head(call->pool, req, &head_len) : NULL;
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
    call->to_head = strcmp(req->method, "HEAD") == 0;
    call->max_body = req->upstream->max_body_bytes;
    call->retry_allowed = strcmp(req->method, "GET") == 0 || call->to_head;
    call->cb = cb;
    call->data = data;
    gw_timer_start(w, &call->deadline, req->timeout_ms, on_deadline);
    try_acquire(call);
    return call;
}

void gw_upstreams_dispose(struct gw_worker *w)
{
    for (size_t i = 0; i < w->nupstream_pools; ++i) {
        gw_upstream_pool *pool = w->upstream_pools[i];
        gw_timer_stop(&pool->kick);
        gw_timer_stop(&pool->idle_timer);
        while (!h2o_linklist_is_empty(&pool->idle))
            conn_close(H2O_STRUCT_FROM_MEMBER(gw_upstream_conn, idle_link, pool->idle.next));
        gw_timer_stop(&pool->kick); /* conn_close kicks; nothing waits by now */
        pool_free(pool);
    }
    free(w->upstream_pools);
    w->upstream_pools = NULL;
    w->nupstream_pools = 0;
}
