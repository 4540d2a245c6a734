/* server: sockets, h2o configuration, worker threads and their drain on shutdown. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../functions/fn.h"
#include "../functions/fn_log.h"
#include "request.h"
#include "upstream.h"
#include "worker.h"

/* While draining, an idle HTTP/1 keep-alive connection is closed after this long. */
#define DRAIN_IDLE_TIMEOUT_MS 200
#define ACCEPT_CHECK_MS 20 /* how often a worker paused at max_connections looks again */

struct gw_server {
    gw_server_config cfg; /* a copy; the TLS paths are not used after start */
    h2o_globalconf_t globalconf;
    SSL_CTX *ssl[GW_MAX_LISTENERS];
    unsigned ports[GW_MAX_LISTENERS];
    unsigned nworkers;
    gw_worker *workers;
    /* Start handshake: each worker builds its loop and context on its own thread, then counts itself ready. */
    pthread_mutex_t ready_lock;
    pthread_cond_t ready_cond;
    unsigned nready;
};

/* Kept reachable until exit (see gw_server_free); volatile so the store is not optimised away. */
static gw_worker *volatile retired_workers;

typedef struct stop_message {
    h2o_multithread_message_t super;
} stop_message;

int gw_listen_socket(const gw_listen *l, unsigned port, int reuseport, unsigned *bound_port, char *err, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, l->address, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, l->address, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*sin6);
    } else {
        snprintf(err, cap, "listen address \"%s\" is not numeric", l->address);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) ||
        (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, cap, "cannot listen on %s port %u: %s", l->address, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (bound_port != NULL) {
        struct sockaddr_storage got;
        socklen_t gotlen = sizeof(got);
        getsockname(fd, (struct sockaddr *)&got, &gotlen);
        *bound_port = got.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&got)->sin_port)
                                               : ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
    }
    return fd;
}

static SSL_CTX *tls_context(const gw_listen *l, char *err, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, cap, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_certificate) != 1) {
        snprintf(err, cap, "%s: cannot load the TLS certificate chain: %s", l->tls_certificate,
                 ERR_reason_error_string(ERR_get_error()));
        goto Error;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, cap, "%s: cannot load the TLS key, or it does not match the certificate: %s", l->tls_key,
                 ERR_reason_error_string(ERR_get_error()));
        goto Error;
    }
#if H2O_USE_ALPN
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
#endif
    return ctx;
Error:
    SSL_CTX_free(ctx);
    return NULL;
}

static void on_accept(h2o_socket_t *listener, const char *err);

/* Client connections open in the process, counted against server.max_connections (when it is set). */
static atomic_size_t open_connections;
static atomic_uint_fast64_t accept_pauses;

size_t gw_server_open_connections(void)
{
    return atomic_load_explicit(&open_connections, memory_order_relaxed);
}

uint64_t gw_server_accept_pauses(void)
{
    return atomic_load_explicit(&accept_pauses, memory_order_relaxed);
}

static void set_accepting(gw_worker *w, int on)
{
    for (size_t i = 0; i < w->nlisteners; ++i) {
        if (w->listeners[i] == NULL)
            continue;
        if (on)
            h2o_socket_read_start(w->listeners[i], on_accept);
        else
            h2o_socket_read_stop(w->listeners[i]);
    }
}

static void on_accept_check(gw_timer *timer)
{
    gw_worker *w = H2O_STRUCT_FROM_MEMBER(gw_worker, accept_check, timer);
    if (w->stopping)
        return;
    if (gw_server_open_connections() < w->server->cfg.max_connections) {
        w->accept_paused = 0;
        set_accepting(w, 1);
    } else {
        gw_timer_start(w, &w->accept_check, ACCEPT_CHECK_MS, on_accept_check);
    }
}

/* What the gateway keeps per client connection, beyond h2o: found from a request through its socket's
 * on_close.data, freed when h2o closes the socket. */
typedef struct gw_conn {
    gw_worker *w;
    int counted;         /* in open_connections */
    int cut;             /* shut down for cancelling too many requests */
    double reset_tokens; /* HTTP/2 cancellations left in the budget */
    uint64_t refill_ns;
} gw_conn;

static atomic_uint_fast64_t reset_cuts;

uint64_t gw_server_reset_cuts(void)
{
    return atomic_load_explicit(&reset_cuts, memory_order_relaxed);
}

static void on_connection_closed(void *data)
{
    gw_conn *conn = data;
    if (conn->counted)
        atomic_fetch_sub_explicit(&open_connections, 1, memory_order_relaxed);
    free(conn);
}

void gw_server_note_cancel(h2o_req_t *req)
{
    if (req == NULL || req->version < 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->on_close.cb != on_connection_closed)
        return;
    gw_conn *conn = sock->on_close.data;
    uint64_t budget = conn->w->server->cfg.http2_reset_budget;
    if (budget == 0 || conn->cut)
        return;
    /* A token bucket: `budget` cancellations at once, regained at budget / 10 per second. */
    uint64_t now = fn_now_ns();
    conn->reset_tokens += (double)(now - conn->refill_ns) / 1e9 * (double)budget / 10.0;
    if (conn->reset_tokens > (double)budget)
        conn->reset_tokens = (double)budget;
    conn->refill_ns = now;
    if ((conn->reset_tokens -= 1.0) >= 0.0)
        return;
    /* HTTP/2 Rapid Reset (CVE-2023-44487; h2o 2.2.5 has no defence): each HEADERS starts work that its
     * RST_STREAM throws away, and the stream cap never fills. The connection is shut down; h2o sees it end and
     * disposes its streams. */
    conn->cut = 1;
    atomic_fetch_add_explicit(&reset_cuts, 1, memory_order_relaxed);
    char addr[INET6_ADDRSTRLEN] = "?";
    struct sockaddr_storage ss;
    if (h2o_socket_getpeername(sock, (struct sockaddr *)&ss) != 0) {
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
    }
    fn_log_msg(FN_LOG_WARN,
               "closing an HTTP/2 connection from %s: it cancelled requests faster than server.http2_reset_budget "
               "(%llu) allows",
               addr, (unsigned long long)budget);
    shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
}

/* At the limit, this worker stops taking connections (the kernel's backlog holds new ones) and checks back
 * every ACCEPT_CHECK_MS; open connections are not touched. */
static void pause_accepting(gw_worker *w)
{
    w->accept_paused = 1;
    atomic_fetch_add_explicit(&accept_pauses, 1, memory_order_relaxed);
    set_accepting(w, 0);
    gw_timer_start(w, &w->accept_check, ACCEPT_CHECK_MS, on_accept_check);
    uint64_t now = fn_now_ns();
    if (w->accept_paused_logged_ns == 0 || now - w->accept_paused_logged_ns > 10000000000ULL) {
        w->accept_paused_logged_ns = now;
        fn_log_msg(FN_LOG_WARN, "worker %u: %zu connections open (server.max_connections): not accepting for now",
                   w->index, gw_server_open_connections());
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_accept_ctx_t *accept_ctx = listener->data;
    gw_worker *w = (gw_worker *)accept_ctx->ctx; /* the context is the worker's first member */
    if (w->accept_paused)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return;
    gw_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        h2o_socket_close(sock);
        return;
    }
    conn->w = w;
    conn->reset_tokens = (double)w->server->cfg.http2_reset_budget;
    conn->refill_ns = fn_now_ns();
    sock->on_close.cb = on_connection_closed;
    sock->on_close.data = conn;
    size_t max = w->server->cfg.max_connections;
    if (max > 0) {
        conn->counted = 1;
        if (atomic_fetch_add_explicit(&open_connections, 1, memory_order_relaxed) + 1 >= max)
            pause_accepting(w);
    }
    h2o_accept(accept_ctx, sock);
}

static void close_listeners(gw_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; ++i) {
        if (w->listeners[i] != NULL) {
            h2o_socket_read_stop(w->listeners[i]);
            h2o_socket_close(w->listeners[i]);
            w->listeners[i] = NULL;
        } else if (w->fds[i] >= 0) {
            close(w->fds[i]);
        }
        w->fds[i] = -1;
    }
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gw_worker *w = H2O_STRUCT_FROM_MEMBER(gw_worker, control, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        stop_message *msg = H2O_STRUCT_FROM_MEMBER(stop_message, super.link, messages->next);
        h2o_linklist_unlink(&msg->super.link);
        free(msg);
        if (!w->stopping) {
            w->stopping = 1;
            close_listeners(w);
            /* GOAWAY for HTTP/2; HTTP/1 connections stop keep-alive after their current response,
             * and idle ones time out quickly from now on. */
            h2o_context_request_shutdown(&w->ctx);
            w->ctx.http1.req_timeout.timeout = DRAIN_IDLE_TIMEOUT_MS;
        }
    }
}

static int has_connections(gw_worker *w)
{
    return !h2o_linklist_is_empty(&w->ctx.http1._conns) || !h2o_linklist_is_empty(&w->ctx.http2._conns);
}

static void *worker_main(void *arg)
{
    gw_worker *w = arg;
    gw_server *srv = w->server;
    /* Built here, not by the starting thread: h2o ties a socket's input buffers to the recycling allocator of
     * the thread that creates the socket (a thread-local). The context's message queue is a socket too; made
     * on another thread, every worker's wake-up would allocate from and free to that thread's allocator
     * concurrently, corrupting its free list. */
    h2o_context_init(&w->ctx, h2o_evloop_create(), &srv->globalconf);
    h2o_multithread_register_receiver(w->ctx.queue, &w->control, on_control);
    gw_requests_init(w);
    pthread_mutex_lock(&srv->ready_lock);
    ++srv->nready;
    pthread_cond_broadcast(&srv->ready_cond);
    pthread_mutex_unlock(&srv->ready_lock);
    for (size_t i = 0; i < w->nlisteners; ++i) {
        w->accept[i].ctx = &w->ctx;
        w->accept[i].hosts = srv->globalconf.hosts;
        w->accept[i].ssl_ctx = srv->ssl[i];
        w->listeners[i] = h2o_evloop_socket_create(w->ctx.loop, w->fds[i], H2O_SOCKET_FLAG_DONT_READ);
        w->listeners[i]->data = &w->accept[i];
        h2o_socket_read_start(w->listeners[i], on_accept);
    }
    fn_log_batch_begin();
    while (!w->stopping) {
        h2o_evloop_run(w->ctx.loop, INT32_MAX);
        fn_log_batch_flush();
    }

    uint64_t deadline = fn_now_ns() + srv->cfg.drain_timeout_ms * 1000000ULL;
    while (has_connections(w) && fn_now_ns() < deadline) {
        h2o_evloop_run(w->ctx.loop, 50);
        fn_log_batch_flush();
    }
    fn_log_batch_end();
    h2o_multithread_unregister_receiver(w->ctx.queue, &w->control);
    gw_timer_stop(&w->accept_check);
    gw_requests_dispose(w);
    if (!has_connections(w))
        gw_upstreams_dispose(w); /* with connections left, their calls may still use the pools */
    gw_host_close(w);
    if (gw_host_dispose(w) == 0 && !has_connections(w)) {
        /* h2o 2.2 asserts that no timer is pending at dispose: the second-GOAWAY timer of the HTTP/2
         * graceful shutdown is, even when no HTTP/2 connection was open. Connections still open at the
         * drain deadline keep theirs, and then the context is left to the process exit. */
        if (h2o_timeout_is_linked(&w->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
        h2o_evloop_run(w->ctx.loop, 0);
        h2o_evloop_t *loop = w->ctx.loop;
        h2o_context_dispose(&w->ctx);
        h2o_evloop_destroy(loop);
    }
    /* Last: the loop runs above could still have served a request that refilled the caches. */
    gw_live_cache_release(&w->live);
    bff_jwt_cache_free(w->jwt_cache);
    w->jwt_cache = NULL;
    return NULL;
}

int gw_server_start(const gw_server_config *cfg, gw_server **out, char *err, size_t cap)
{
    gw_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    srv->cfg = *cfg;
    pthread_mutex_init(&srv->ready_lock, NULL);
    pthread_cond_init(&srv->ready_cond, NULL);
    for (size_t i = 0; i < srv->cfg.nlisten; ++i)
        srv->cfg.listen[i].tls_certificate = srv->cfg.listen[i].tls_key = NULL;
    srv->nworkers = cfg->threads;
    srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
    if (srv->workers == NULL) {
        snprintf(err, cap, "out of memory");
        free(srv);
        return -1;
    }
    for (unsigned t = 0; t < srv->nworkers; ++t) {
        for (size_t i = 0; i < GW_MAX_LISTENERS; ++i)
            srv->workers[t].fds[i] = -1;
    }

    h2o_config_init(&srv->globalconf);
    srv->globalconf.max_request_entity_size = (size_t)cfg->max_body_bytes;
    /* HTTP/1: the time to send a whole request (head and body: slow clients are cut) and the keep-alive idle
     * time; HTTP/2: the connection's idle time. */
    srv->globalconf.http1.req_timeout = cfg->request_timeout_ms;
    srv->globalconf.http2.idle_timeout = cfg->request_timeout_ms;
    srv->globalconf.http2.max_concurrent_requests_per_connection = (size_t)cfg->http2_max_streams;
    srv->globalconf.http1.upgrade_to_http2 = 1;
    srv->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("bffgate"));
    /* Upstream calls have their own total deadline (at most 600 s); h2o's idle timeout (30 s by default) must
     * not cut a longer one first. */
    srv->globalconf.proxy.io_timeout = 600000 + 1000;
    h2o_hostconf_t *host = h2o_config_register_host(&srv->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = gw_handle_request;

    for (size_t i = 0; i < cfg->nlisten; ++i) {
        const gw_listen *l = &cfg->listen[i];
        if (l->tls_certificate != NULL && (srv->ssl[i] = tls_context(l, err, cap)) == NULL)
            goto Error;
        unsigned port = l->port;
        for (unsigned t = 0; t < srv->nworkers; ++t) {
            int fd = gw_listen_socket(l, port, 1, t == 0 ? &port : NULL, err, cap);
            if (fd < 0)
                goto Error;
            srv->workers[t].fds[i] = fd;
            srv->workers[t].nlisteners = i + 1;
        }
        srv->ports[i] = port;
    }

    unsigned started = 0;
    int rc = 0;
    for (; started < srv->nworkers; ++started) {
        gw_worker *w = &srv->workers[started];
        w->index = started;
        w->nthreads = srv->cfg.threads;
        w->max_header_count = (size_t)srv->cfg.max_header_count;
        w->max_header_bytes = (size_t)srv->cfg.max_header_bytes;
        w->server = srv;
        if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0)
            break;
    }
    /* Nothing may post to a worker before its context exists. */
    pthread_mutex_lock(&srv->ready_lock);
    while (srv->nready < started)
        pthread_cond_wait(&srv->ready_cond, &srv->ready_lock);
    pthread_mutex_unlock(&srv->ready_lock);
    if (rc != 0) {
        snprintf(err, cap, "cannot start worker thread %u: %s", started, strerror(rc));
        /* Workers already running are stopped and joined; the rest never started. */
        srv->nworkers = started;
        gw_server_stop(srv);
        gw_server_wait(srv);
        goto Error;
    }
    for (size_t i = 0; i < cfg->nlisten; ++i)
        fn_log_msg(FN_LOG_INFO, "listening on %s%s%s:%u (%s) with %u threads",
                   strchr(cfg->listen[i].address, ':') ? "[" : "", cfg->listen[i].address,
                   strchr(cfg->listen[i].address, ':') ? "]" : "", srv->ports[i],
                   srv->ssl[i] != NULL ? "https, h2 and http/1.1" : "http/1.1 and h2c", srv->nworkers);
    *out = srv;
    return 0;
Error:
    gw_server_free(&srv);
    return -1;
}

unsigned gw_server_port(const gw_server *srv, size_t listener)
{
    return listener < srv->cfg.nlisten ? srv->ports[listener] : 0;
}

void gw_server_stop(gw_server *srv)
{
    for (unsigned t = 0; t < srv->nworkers; ++t) {
        stop_message *msg = calloc(1, sizeof(*msg));
        if (msg != NULL)
            h2o_multithread_send_message(&srv->workers[t].control, &msg->super);
    }
}

static void drop_cached_snapshot(void *data)
{
    gw_worker *w = data;
    gw_live_cache_release(&w->live);
}

void gw_server_snapshot_changed(gw_server *srv)
{
    for (unsigned t = 0; t < srv->nworkers; ++t) {
        if (gw_post(&srv->workers[t], drop_cached_snapshot, &srv->workers[t]) != 0)
            fn_log_msg(FN_LOG_WARN, "worker %u keeps the previous snapshot until its next request", t);
    }
}

void gw_server_wait(gw_server *srv)
{
    for (unsigned t = 0; t < srv->nworkers; ++t) {
        if (srv->workers[t].thread != 0) {
            pthread_join(srv->workers[t].thread, NULL);
            srv->workers[t].thread = 0;
        }
    }
}

void gw_server_free(gw_server **psrv)
{
    gw_server *srv = *psrv;
    if (srv == NULL)
        return;
    *psrv = NULL;
    if (srv->workers != NULL) {
        unsigned all = srv->cfg.threads;
        for (unsigned t = 0; t < all; ++t) {
            gw_worker *w = &srv->workers[t];
            close_listeners(w);
            /* Each worker disposes its own h2o context and loop when its drain ends (worker_main). */
            gw_live_cache_release(&w->live);
        }
        /* Not freed: pool threads still finishing abandoned C calls may post to a worker (and find it
         * closed) until the process exits. */
        retired_workers = srv->workers;
    }
    for (size_t i = 0; i < GW_MAX_LISTENERS; ++i) {
        if (srv->ssl[i] != NULL)
            SSL_CTX_free(srv->ssl[i]);
    }
    h2o_config_dispose(&srv->globalconf);
    pthread_cond_destroy(&srv->ready_cond);
    pthread_mutex_destroy(&srv->ready_lock);
    free(srv);
}
