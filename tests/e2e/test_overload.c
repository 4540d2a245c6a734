/* test_overload: server.overload against the real binary: past the in-flight or memory mark, new requests get
 * 503 with Retry-After at once while admitted ones finish; the marks change with a reload. And the edge limits
 * on connections: slow clients are cut at request_timeout_ms, max_connections pauses accepting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static const char gateway_fmt[] =
    "{\n"
    "  \"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 1,\n"
    "             \"admin\": {\"address\": \"127.0.0.1\", \"port\": @ADMIN@},\n"
    "             \"request_timeout_ms\": 1500, \"max_connections\": 8, \"http2_reset_budget\": 20,\n"
    "             \"max_header_count\": 20, \"max_header_bytes\": 4096,\n"
    "             \"overload\": %s},\n"
    "  \"functions\": {\"sleeper\": {\"lua\": \"sleeper.lua\"}},\n"
    "  \"frontends\": [\"api.json\"]\n"
    "}\n";

static const char api_json[] = "{\"name\": \"api\", \"routes\": [\n"
                               "  {\"path\": \"/sleep\", \"function\": \"sleeper\", \"timeout_ms\": 5000}\n"
                               "]}\n";

static const char sleeper_lua[] = "return { handler = function(event, ctx)\n"
                                  "  local ms = tonumber(event.query.ms) or 0\n"
                                  "  if ms > 0 then ctx.sleep(ms) end\n"
                                  "  return { slept = ms }\n"
                                  "end }\n";

static e2e_server srv;

static void write_gateway(const char *overload)
{
    char text[1024];
    snprintf(text, sizeof(text), gateway_fmt, overload);
    e2e_write(&srv, "gateway.json", text);
}

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    e2e_pick_admin_port(&srv);
    write_gateway("{\"max_inflight\": 2, \"retry_after_s\": 3}");
    e2e_write(&srv, "api.json", api_json);
    e2e_write(&srv, "sleeper.lua", sleeper_lua);
    return e2e_start(&srv, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

typedef struct call {
    const char *path;
    e2e_response res;
    int rc;
} call;

static void *run_call(void *arg)
{
    call *c = arg;
    c->rc = e2e_request(&srv, E2E_HTTP1, "GET", c->path, NULL, NULL, 0, &c->res);
    return NULL;
}

static long status_of(const char *path, e2e_response *res)
{
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", path, NULL, NULL, 0, res), 0);
    return res->status;
}

static void assert_refused(const e2e_response *res, const char *mark, const char *retry_after)
{
    if (res->status != 503)
        fail_msg("expected 503, got %ld: %s", res->status, res->body);
    char want[128];
    snprintf(want, sizeof(want), "\"limit\":\"%s\"", mark);
    if (strstr(res->body, want) == NULL || strstr(res->body, "\"error\":\"the gateway is overloaded\"") == NULL)
        fail_msg("the body does not name %s: %s", mark, res->body);
    char *ra = e2e_header(res, "retry-after");
    assert_non_null(ra);
    assert_string_equal(ra, retry_after);
    free(ra);
}

static double metric(const char *sample)
{
    return e2e_metric(&srv, sample);
}

static void reload(void)
{
    e2e_response res;
    assert_int_equal(e2e_admin_request(&srv, "POST", "/admin/reload", &res), 0);
    if (res.status != 200)
        fail_msg("reload: %ld %s", res.status, res.body);
    e2e_response_release(&res);
}

/* Waits up to 2 s for `path` to answer `status`; returns the last status. */
static long wait_status(const char *path, long status, int admin)
{
    long got = 0;
    for (int i = 0; i < 100 && got != status; ++i) {
        e2e_response res;
        int rc = admin ? e2e_admin_request(&srv, "GET", path, &res)
                       : e2e_request(&srv, E2E_HTTP1, "GET", path, NULL, NULL, 0, &res);
        got = rc == 0 ? res.status : -1;
        e2e_response_release(&res);
        if (got != status)
            usleep(20000);
    }
    return got;
}

static void test_inflight_mark_refuses_new_requests_only(void **state)
{
    (void)state;
    double refused_before = metric("bffgate_overload_refused_total{mark=\"max_inflight\"}");
    call slow[2] = {{.path = "/sleep?ms=800"}, {.path = "/sleep?ms=800"}};
    pthread_t t[2];
    for (int i = 0; i < 2; ++i)
        pthread_create(&t[i], NULL, run_call, &slow[i]);
    /* Both are in flight once the mark refuses a third. */
    e2e_response res;
    int refused = 0;
    for (int i = 0; i < 50 && !refused; ++i) {
        if (status_of("/sleep", &res) == 503) {
            assert_refused(&res, "max_inflight", "3");
            refused = 1;
        } else {
            usleep(10000);
        }
        e2e_response_release(&res);
    }
    assert_true(refused);
    /* What is not routed is still answered, and readiness does not change with in-flight work. */
    assert_int_equal(status_of("/nowhere", &res), 404);
    e2e_response_release(&res);
    assert_int_equal(wait_status("/readyz", 200, 1), 200);
    for (int i = 0; i < 2; ++i) {
        pthread_join(t[i], NULL);
        assert_int_equal(slow[i].rc, 0);
        assert_int_equal(slow[i].res.status, 200); /* admitted requests finish */
        e2e_response_release(&slow[i].res);
    }
    assert_int_equal(status_of("/sleep", &res), 200);
    e2e_response_release(&res);
    assert_true(metric("bffgate_overload_refused_total{mark=\"max_inflight\"}") >= refused_before + 1);
}

static void test_memory_mark_refuses_and_fails_readiness_until_lifted(void **state)
{
    (void)state;
    /* Any process is over 1 MiB: the mark trips at the next sample (every 100 ms). */
    write_gateway("{\"max_memory_mb\": 1}");
    reload();
    assert_int_equal(wait_status("/sleep", 503, 0), 503);
    e2e_response res;
    assert_int_equal(status_of("/sleep", &res), 503);
    assert_refused(&res, "max_memory_mb", "1");
    e2e_response_release(&res);
    assert_int_equal(e2e_admin_request(&srv, "GET", "/readyz", &res), 0);
    assert_int_equal(res.status, 503);
    assert_non_null(strstr(res.body, "overloaded"));
    e2e_response_release(&res);
    assert_true(metric("bffgate_overload_memory_over") == 1);
    char *log = e2e_log(&srv);
    assert_non_null(strstr(log, "is over max_memory_mb (1): new requests get 503"));
    free(log);

    write_gateway("{}");
    reload();
    assert_int_equal(wait_status("/sleep", 200, 0), 200);
    assert_int_equal(wait_status("/readyz", 200, 1), 200);
    assert_true(metric("bffgate_overload_memory_over") == 0);
}

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void raw_send(int fd, const char *text)
{
    assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* Whether fd has something to read (data, or the server's close) within ms. */
static int readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* Whether the server closes fd within ms (reading and dropping what it sends). */
static int closed_within(int fd, int ms)
{
    char buf[4096];
    while (readable_within(fd, ms)) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return 1;
    }
    return 0;
}

static void test_slow_clients_are_cut_and_others_stay_served(void **state)
{
    (void)state;
    /* slowloris: a head that never ends; a slow body: 1 byte of 100 now and then */
    int loris = raw_connect(), body = raw_connect();
    raw_send(loris, "GET /sleep HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n");
    raw_send(body, "POST /sleep HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[");
    int loris_closed = 0, body_closed = 0;
    for (int i = 0; i < 40 && !(loris_closed && body_closed); ++i) {
        e2e_response res;
        assert_int_equal(status_of("/sleep", &res), 200); /* served all along, on the same worker thread */
        e2e_response_release(&res);
        if (!loris_closed) {
            send(loris, "X-B: 2\r\n", 8, MSG_NOSIGNAL); /* a header line now and then: still cut */
            loris_closed = closed_within(loris, 100);
        }
        if (!body_closed) {
            send(body, "1", 1, MSG_NOSIGNAL);
            body_closed = closed_within(body, 100);
        }
    }
    close(loris);
    close(body);
    if (!loris_closed || !body_closed)
        fail_msg("not cut after 4 s (request_timeout_ms is 1500): slow head %d, slow body %d", loris_closed,
                 body_closed);
}

static void test_max_connections_pauses_accepting(void **state)
{
    (void)state;
    double pauses_before = metric("bffgate_accept_paused_total");
    int idle[8];
    for (int i = 0; i < 8; ++i)
        idle[i] = raw_connect();
    /* The ninth connects (the kernel's backlog) but is not taken: its request gets no answer yet. */
    int ninth = raw_connect();
    raw_send(ninth, "GET /sleep HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_false(readable_within(ninth, 300));
    for (int i = 0; i < 8; ++i)
        close(idle[i]);
    /* Room again: it is taken and answered; the open connections were never touched. */
    assert_true(readable_within(ninth, 3000));
    char buf[256] = "";
    ssize_t n = recv(ninth, buf, sizeof(buf) - 1, 0);
    assert_true(n > 12);
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
    close(ninth);
    assert_true(metric("bffgate_accept_paused_total") >= pauses_before + 1);
}

/* A raw HTTP/2 client (prior knowledge), enough for Rapid Reset: HEADERS that start requests, RST_STREAMs that
 * cancel them at once, the way CVE-2023-44487 does it. */
static void h2_frame(int fd, uint8_t type, uint8_t flags, uint32_t stream, const void *payload, size_t len)
{
    uint8_t head[9] = {(uint8_t)(len >> 16),    (uint8_t)(len >> 8),     (uint8_t)len,           type,           flags,
                       (uint8_t)(stream >> 24), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8), (uint8_t)stream};
    /* Best effort: once the server has shut the connection down, sends fail; what is read says what happened. */
    if (send(fd, head, 9, MSG_NOSIGNAL) == 9 && len > 0)
        (void)!send(fd, payload, len, MSG_NOSIGNAL);
}

static int h2_connect(void)
{
    int fd = raw_connect();
    raw_send(fd, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    h2_frame(fd, 4 /* SETTINGS */, 0, 0, NULL, 0);
    return fd;
}

/* GET `path` on `stream`: HPACK :method GET and :scheme http from the static table, :path and :authority as
 * literals with indexed names. */
static void h2_get(int fd, uint32_t stream, const char *path)
{
    uint8_t block[256];
    size_t n = 0, plen = strlen(path);
    block[n++] = 0x82; /* :method GET */
    block[n++] = 0x86; /* :scheme http */
    block[n++] = 0x04; /* :path, literal */
    block[n++] = (uint8_t)plen;
    memcpy(block + n, path, plen);
    n += plen;
    block[n++] = 0x01; /* :authority, literal */
    block[n++] = 9;
    memcpy(block + n, "127.0.0.1", 9);
    n += 9;
    h2_frame(fd, 1 /* HEADERS */, 0x5 /* END_STREAM | END_HEADERS */, stream, block, n);
}

static void h2_reset(int fd, uint32_t stream)
{
    uint8_t code[4] = {0, 0, 0, 8}; /* CANCEL */
    h2_frame(fd, 3 /* RST_STREAM */, 0, stream, code, 4);
}

/* Reads frames until a HEADERS frame for `stream` (1), the server closing the connection (0) or ms passing (-1). */
static int h2_wait_headers(int fd, uint32_t stream, int ms)
{
    uint8_t buf[65536];
    size_t have = 0;
    for (;;) {
        while (have >= 9) {
            size_t len = ((size_t)buf[0] << 16) | ((size_t)buf[1] << 8) | buf[2];
            if (have < 9 + len)
                break;
            uint32_t id =
                ((uint32_t)(buf[5] & 0x7f) << 24) | ((uint32_t)buf[6] << 16) | ((uint32_t)buf[7] << 8) | buf[8];
            if (buf[3] == 1 && id == stream)
                return 1;
            memmove(buf, buf + 9 + len, have - 9 - len);
            have -= 9 + len;
        }
        if (!readable_within(fd, ms))
            return -1;
        ssize_t r = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (r <= 0)
            return 0;
        have += (size_t)r;
    }
}

static void test_rapid_reset_shuts_the_connection(void **state)
{
    (void)state;
    double cuts = metric("bffgate_http2_reset_cuts_total");
    /* Within the budget (20): a client may cancel what it no longer needs, and is still served. */
    int fd = h2_connect();
    for (uint32_t s = 1; s <= 19; s += 2) {
        h2_get(fd, s, "/sleep?ms=2000");
        h2_reset(fd, s);
    }
    h2_get(fd, 21, "/sleep");
    assert_int_equal(h2_wait_headers(fd, 21, 3000), 1);
    close(fd);
    assert_true(metric("bffgate_http2_reset_cuts_total") == cuts);

    /* Past it: the connection is shut down; the server goes on serving others. */
    fd = h2_connect();
    for (uint32_t s = 1; s <= 2 * 200; s += 2) {
        h2_get(fd, s, "/sleep?ms=2000");
        h2_reset(fd, s);
    }
    h2_get(fd, 403, "/sleep");
    assert_int_equal(h2_wait_headers(fd, 403, 3000), 0);
    close(fd);
    assert_true(metric("bffgate_http2_reset_cuts_total") == cuts + 1);
    e2e_response res;
    assert_int_equal(status_of("/sleep", &res), 200);
    e2e_response_release(&res);
    char *log = e2e_log(&srv);
    assert_non_null(strstr(log, "it cancelled requests faster than server.http2_reset_budget (20) allows"));
    free(log);
}

static void test_header_limits_answer_431(void **state)
{
    (void)state;
    char big[6000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char field[6100];
    snprintf(field, sizeof(field), "X-Big: %s", big);
    const char *bytes[] = {field, NULL};
    const char *many[32];
    char names[30][16];
    for (int i = 0; i < 30; ++i) {
        snprintf(names[i], sizeof(names[i]), "X-F%d: v", i);
        many[i] = names[i];
    }
    many[30] = NULL;
    /* HTTP/2 and HTTP/1 (under h2o's own caps of 100 fields and a 408 KiB head) */
    static const e2e_http versions[] = {E2E_HTTP2_PRIOR, E2E_HTTP1};
    for (int v = 0; v < 2; ++v) {
        e2e_response res;
        assert_int_equal(e2e_request(&srv, versions[v], "GET", "/sleep", bytes, NULL, 0, &res), 0);
        assert_int_equal(res.status, 431);
        assert_non_null(strstr(res.body, "\"limit\":\"max_header_bytes\""));
        e2e_response_release(&res);
        assert_int_equal(e2e_request(&srv, versions[v], "GET", "/sleep", many, NULL, 0, &res), 0);
        assert_int_equal(res.status, 431);
        assert_non_null(strstr(res.body, "\"limit\":\"max_header_count\""));
        e2e_response_release(&res);
    }
    e2e_response res;
    assert_int_equal(status_of("/sleep", &res), 200);
    e2e_response_release(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inflight_mark_refuses_new_requests_only),
        cmocka_unit_test(test_memory_mark_refuses_and_fails_readiness_until_lifted),
        cmocka_unit_test(test_slow_clients_are_cut_and_others_stay_served),
        cmocka_unit_test(test_max_connections_pauses_accepting),
        cmocka_unit_test(test_rapid_reset_shuts_the_connection),
        cmocka_unit_test(test_header_limits_answer_431),
    };
    return cmocka_run_group_tests_name("e2e/overload", tests, group_setup, group_teardown);
}
