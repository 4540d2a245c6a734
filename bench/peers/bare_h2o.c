/* bare_h2o: the floor of our stack for the peer benchmark: h2o 2.2's evloop on one thread, GET /hello answered
 * with a constant JSON body from memory, 404 for anything else. No Lua, no routing table, no config.
 * Usage: bench_bare_h2o PORT      (listens on 127.0.0.1:PORT, runs until killed) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h2o.h"

static const char hello_body[] = "{\"message\":\"hello, world\"}";

static h2o_globalconf_t globalconf;
static h2o_context_t context;
static h2o_accept_ctx_t accept_ctx;

static int on_hello(h2o_handler_t *self, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    /* h2o_send does not copy: the body goes from this static buffer straight into the socket's write. */
    h2o_iovec_t body = {(char *)hello_body, sizeof(hello_body) - 1};

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
        !h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/hello")))
        return -1; /* falls through to h2o's 404 */
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        h2o_accept(&accept_ctx, sock);
}

static int open_listener(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int on = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end != '\0' || port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&globalconf);
    h2o_hostconf_t *hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_hello;

    h2o_context_init(&context, h2o_evloop_create(), &globalconf);
    accept_ctx.ctx = &context;
    accept_ctx.hosts = globalconf.hosts;

    int fd = open_listener((int)port);
    if (fd < 0) {
        fprintf(stderr, "bench_bare_h2o: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(-fd));
        return 1;
    }
    h2o_socket_t *listener = h2o_evloop_socket_create(context.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(listener, on_accept);

    while (h2o_evloop_run(context.loop, INT32_MAX) == 0)
        ;
    return 1;
}
