/* admin: a one-thread h2o server for operators: /healthz, /admin/status, /admin/reload. */
#include "admin.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>

#include "../functions/fn_log.h"
#include "reload.h"
#include "respond.h"
#include "server.h"

static struct {
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_socket_t *listener;
    pthread_t thread;
    atomic_int stopping;
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

static int on_admin_request(h2o_handler_t *self, h2o_req_t *req)
{
    fn_buf body = FN_BUF_INIT;
    if (is(req, "GET", "/healthz")) {
        fn_buf_append_str(&body, "{\"status\":\"ok\"}");
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
    (void)arg;
    while (!atomic_load(&A.stopping))
        h2o_evloop_run(A.ctx.loop, 100);
    /* The admin context lives until the process exits (h2o 2.2 asserts on pending timers at dispose). */
    return NULL;
}

int gw_admin_start(const gw_listen *l, char *err, size_t cap)
{
    int fd = gw_listen_socket(l, l->port, 0, NULL, err, cap);
    if (fd < 0)
        return -1;
    h2o_config_init(&A.globalconf);
    A.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("bffgate-admin"));
    A.globalconf.max_request_entity_size = 4096;
    h2o_hostconf_t *host = h2o_config_register_host(&A.globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_admin_request;
    h2o_context_init(&A.ctx, h2o_evloop_create(), &A.globalconf);
    A.accept.ctx = &A.ctx;
    A.accept.hosts = A.globalconf.hosts;
    A.listener = h2o_evloop_socket_create(A.ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(A.listener, on_accept);
    A.started_at = time(NULL);
    atomic_store(&A.stopping, 0);
    int rc = pthread_create(&A.thread, NULL, admin_main, NULL);
    if (rc != 0) {
        snprintf(err, cap, "cannot start the admin thread: %s", strerror(rc));
        return -1;
    }
    A.running = 1;
    fn_log_msg(FN_LOG_INFO, "admin listening on %s:%u", l->address, l->port);
    return 0;
}

void gw_admin_stop(void)
{
    if (!A.running)
        return;
    atomic_store(&A.stopping, 1);
    pthread_join(A.thread, NULL);
    A.running = 0;
}
