/* admin: a one-thread h2o server for operators: the status page, /healthz, /metrics, /admin/stats, /admin/reload. */
#include "admin.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>

#include "../functions/fn_log.h"
#include "live.h"
#include "metrics.h"
#include "overload.h"
#include "reload.h"
#include "respond.h"
#include "server.h"
#include "status_page.h"

static struct {
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_socket_t *listener;
    pthread_t thread;
    atomic_int stopping;
    atomic_int draining;
    unsigned port; /* bound (resolved when the config asked for port 0) */
    int running;
    time_t started_at;
} A;

static void send_json(h2o_req_t *req, int status, fn_buf *body)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    gw_respond(req, status, body->data, body->len);
    fn_buf_release(body);
}

static int is(h2o_req_t *req, const char *method, const char *path)
{
    return h2o_memis(req->method.base, req->method.len, method, strlen(method)) &&
           h2o_memis(req->path_normalized.base, req->path_normalized.len, path, strlen(path));
}

/* {"version": N, "frontends": [{"name", "match": {...}, "routes": [{"methods", "path", "function", "limits"}]}]} */
static void routes_json(fn_buf *out)
{
    bff_snapshot *snap = gw_live_acquire();
    char num[320];
    snprintf(num, sizeof(num), "{\"version\":%llu,\"frontends\":[",
             snap != NULL ? (unsigned long long)snap->version : 0ULL);
    fn_buf_append_str(out, num);
    for (size_t f = 0; snap != NULL && f < snap->nfrontends; ++f) {
        const bff_frontend *fe = &snap->frontends[f];
        if (f > 0)
            fn_buf_append_char(out, ',');
        fn_buf_append_str(out, "{\"name\":");
        fn_buf_append_json_string(out, fe->name, strlen(fe->name));
        fn_buf_append_str(out, ",\"match\":{");
        const char *sep = "";
        if (fe->path_prefix != NULL) {
            fn_buf_append_str(out, "\"path_prefix\":");
            fn_buf_append_json_string(out, fe->path_prefix, fe->path_prefix_len);
            sep = ",";
        }
        if (fe->host != NULL) {
            fn_buf_append_str(out, sep);
            fn_buf_append_str(out, "\"host\":");
            fn_buf_append_json_string(out, fe->host, strlen(fe->host));
            sep = ",";
        }
        if (fe->header_name != NULL) {
            fn_buf_append_str(out, sep);
            fn_buf_append_str(out, "\"header\":{\"name\":");
            fn_buf_append_json_string(out, fe->header_name, strlen(fe->header_name));
            fn_buf_append_str(out, ",\"value\":");
            fn_buf_append_json_string(out, fe->header_value, strlen(fe->header_value));
            fn_buf_append_char(out, '}');
        }
        fn_buf_append_str(out, "},\"routes\":[");
        for (size_t r = 0; r < fe->nroutes; ++r) {
            const bff_route *route = &fe->routes[r];
            char methods[128];
            bff_method_list(route->methods, methods, sizeof(methods));
            if (r > 0)
                fn_buf_append_char(out, ',');
            fn_buf_append_str(out, "{\"methods\":");
            fn_buf_append_json_string(out, methods, strlen(methods));
            fn_buf_append_str(out, ",\"path\":");
            fn_buf_append_json_string(out, route->pattern, strlen(route->pattern));
            if (route->fn != NULL) {
                fn_buf_append_str(out, ",\"function\":");
                fn_buf_append_json_string(out, route->fn->name, strlen(route->fn->name));
            } else {
                fn_buf_append_str(out, ",\"steps\":");
                fn_buf_append_json_string(out, route->plan->summary, strlen(route->plan->summary));
            }
            const bff_limits *l = &route->limits;
            snprintf(num, sizeof(num),
                     ",\"limits\":{\"timeout_ms\":%llu,\"concurrency\":%llu,\"queue_max\":%llu,"
                     "\"queue_wait_ms\":%llu,\"memory_mb\":%llu,\"rate_limit\":",
                     (unsigned long long)l->timeout_ms, (unsigned long long)l->concurrency,
                     (unsigned long long)l->queue_max, (unsigned long long)l->queue_wait_ms,
                     (unsigned long long)l->memory_mb);
            fn_buf_append_str(out, num);
            if (l->rate_rps > 0)
                snprintf(num, sizeof(num), "{\"rps\":%g,\"burst\":%g}}}", l->rate_rps, l->rate_burst);
            else
                snprintf(num, sizeof(num), "null}}");
            fn_buf_append_str(out, num);
        }
        fn_buf_append_str(out, "]}");
    }
    fn_buf_append_str(out, "]}");
    bff_snapshot_release(&snap);
}

static int on_admin_request(h2o_handler_t *self, h2o_req_t *req)
{
    fn_buf body = FN_BUF_INIT;
    if (is(req, "GET", "/")) {
        /* The page fetches only this listener's own JSON: a strict policy says so to the browser. */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("text/html; charset=utf-8"));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
        gw_add_header(req, H2O_STRLIT("x-content-type-options"), H2O_STRLIT("nosniff"));
        gw_add_header(req, H2O_STRLIT("content-security-policy"),
                      H2O_STRLIT("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                 "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'"));
        gw_respond(req, 200, gw_status_page_html, gw_status_page_html_len);
    } else if (is(req, "GET", "/healthz")) {
        fn_buf_append_str(&body, "{\"status\":\"ok\"}");
        send_json(req, 200, &body);
    } else if (is(req, "GET", "/readyz")) {
        bff_snapshot *snap = gw_live_acquire();
        int draining = atomic_load(&A.draining), overloaded = gw_overload_memory_over();
        int ready = snap != NULL && !draining && !overloaded;
        bff_snapshot_release(&snap);
        fn_buf_append_str(&body, ready        ? "{\"status\":\"ready\"}"
                                 : draining   ? "{\"status\":\"draining\"}"
                                 : overloaded ? "{\"status\":\"overloaded\"}"
                                              : "{\"status\":\"no configuration\"}");
        send_json(req, ready ? 200 : 503, &body);
    } else if (is(req, "GET", "/metrics")) {
        gw_metrics_render(&body);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
        gw_respond(req, 200, body.data, body.len);
        fn_buf_release(&body);
    } else if (is(req, "GET", "/admin/routes")) {
        routes_json(&body);
        send_json(req, 200, &body);
    } else if (is(req, "GET", "/admin/stats")) {
        gw_metrics_stats_json(&body);
        send_json(req, 200, &body);
    } else if (is(req, "GET", "/admin/status")) {
        char head[96];
        snprintf(head, sizeof(head), "{\"uptimeSeconds\":%lld,", (long long)(time(NULL) - A.started_at));
        fn_buf_append_str(&body, head);
        gw_reload_status_json(&body);
        fn_buf_append_char(&body, '}');
        send_json(req, 200, &body);
    } else if (is(req, "POST", "/admin/reload")) {
        /* Builds the new snapshot on this thread: the traffic loops never wait for it. */
        int rc = gw_reload_now("POST /admin/reload", &body);
        send_json(req, rc == 0 ? 200 : 422, &body);
    } else if (is(req, "POST", "/admin/rollback")) {
        int rc = gw_reload_rollback(&body);
        send_json(req, rc == 0 ? 200 : 409, &body);
    } else {
        gw_send_error(req, 404, "no such admin endpoint", NULL, h2o_iovec_init(H2O_STRLIT("admin")));
    }
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        h2o_accept(&A.accept, sock);
}

static void *admin_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    /* The loop, context and listener are made on this thread: h2o ties a socket's buffers to the creating
     * thread's (thread-local) recycling allocator. */
    h2o_context_init(&A.ctx, h2o_evloop_create(), &A.globalconf);
    A.accept.ctx = &A.ctx;
    A.accept.hosts = A.globalconf.hosts;
    A.listener = h2o_evloop_socket_create(A.ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(A.listener, on_accept);
    while (!atomic_load(&A.stopping))
        h2o_evloop_run(A.ctx.loop, 100);
    /* The admin context lives until the process exits (h2o 2.2 asserts on pending timers at dispose). */
    return NULL;
}

int gw_admin_start(const gw_listen *l, char *err, size_t cap)
{
    unsigned bound = 0;
    int fd = gw_listen_socket(l, l->port, 0, &bound, err, cap);
    if (fd < 0)
        return -1;
    h2o_config_init(&A.globalconf);
    A.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("bffgate-admin"));
    A.globalconf.max_request_entity_size = 4096;
    h2o_hostconf_t *host = h2o_config_register_host(&A.globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_admin_request;
    A.started_at = time(NULL);
    atomic_store(&A.stopping, 0);
    int rc = pthread_create(&A.thread, NULL, admin_main, (void *)(intptr_t)fd);
    if (rc != 0) {
        snprintf(err, cap, "cannot start the admin thread: %s", strerror(rc));
        close(fd);
        return -1;
    }
    A.running = 1;
    A.port = bound;
    fn_log_msg(FN_LOG_INFO, "admin listening on %s:%u", l->address, bound);
    return 0;
}

unsigned gw_admin_port(void)
{
    return A.running ? A.port : 0;
}

void gw_admin_set_draining(void)
{
    atomic_store(&A.draining, 1);
}

void gw_admin_stop(void)
{
    if (!A.running)
        return;
    atomic_store(&A.stopping, 1);
    pthread_join(A.thread, NULL);
    A.running = 0;
}
