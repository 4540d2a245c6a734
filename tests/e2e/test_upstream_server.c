/* test_upstream_server: the scripted upstream server of the e2e tests, exercised with libcurl (no bffgate). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "upstream.h"

typedef struct fixture {
    e2e_upstream *upstream;
    CURL *curl; /* one handle for the whole test, so libcurl reuses its connections */
} fixture;

/* One call. method NULL means GET, or POST when there is a body. */
typedef struct call {
    const char *method;
    const char *path;
    const char *const *headers; /* NULL-terminated "Name: value", or NULL */
    const char *body;           /* NULL: none */
    long timeout_ms;            /* 0: 5 s */
    size_t stop_after;          /* if not 0: stop reading once this many body bytes arrived */
    bool chunked_upload;        /* send the body with Transfer-Encoding: chunked */
} call;

typedef struct reply {
    CURLcode code;
    long status;
    char *headers;
    size_t headers_len;
    char *body;
    size_t body_len;
    size_t stop_after;
    long elapsed_ms;
} reply;

typedef struct upload {
    const char *data;
    size_t left;
} upload;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    assert_non_null(*buf);
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    append(&r->headers, &r->headers_len, data, size * n);
    return size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    append(&r->body, &r->body_len, data, size * n);
    if (r->stop_after != 0 && r->body_len >= r->stop_after)
        return 0; /* libcurl fails the transfer with CURLE_WRITE_ERROR and closes the connection */
    return size * n;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    upload *up = arg;
    size_t len = size * n < up->left ? size * n : up->left;
    if (len > 7)
        len = 7; /* small pieces: several chunks */
    memcpy(buf, up->data, len);
    up->data += len;
    up->left -= len;
    return len;
}

static void perform(fixture *f, const call *c, reply *r)
{
    char url[512];
    struct curl_slist *list = NULL;
    upload up = {c->body, c->body ? strlen(c->body) : 0};
    memset(r, 0, sizeof(*r));
    r->stop_after = c->stop_after;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e2e_upstream_port(f->upstream), c->path);
    for (const char *const *h = c->headers; h != NULL && *h != NULL; h++)
        list = curl_slist_append(list, *h);
    if (c->chunked_upload)
        list = curl_slist_append(list, "Transfer-Encoding: chunked");

    curl_easy_reset(f->curl); /* keeps the connection cache */
    curl_easy_setopt(f->curl, CURLOPT_URL, url);
    curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(f->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(f->curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(f->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms ? c->timeout_ms : 5000L);
    curl_easy_setopt(f->curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (c->chunked_upload) {
        curl_easy_setopt(f->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(f->curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(f->curl, CURLOPT_READDATA, &up);
    } else if (c->body != NULL) {
        curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(f->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->body));
    }
    if (c->method != NULL)
        curl_easy_setopt(f->curl, CURLOPT_CUSTOMREQUEST, c->method);
    long long start = now_ms();
    r->code = curl_easy_perform(f->curl);
    r->elapsed_ms = (long)(now_ms() - start);
    curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(list);
}

static void reply_release(reply *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static void get(fixture *f, const char *path, reply *r)
{
    call c = {.path = path};
    perform(f, &c, r);
}

static bool has_header(const reply *r, const char *line)
{
    return r->headers != NULL && strcasestr(r->headers, line) != NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->upstream = e2e_upstream_start();
    assert_non_null(f->upstream);
    f->curl = curl_easy_init();
    assert_non_null(f->curl);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    curl_easy_cleanup(f->curl);
    e2e_upstream_stop(f->upstream);
    free(f);
    return 0;
}

static void test_json_echo(void **state)
{
    fixture *f = *state;
    reply r;
    get(f, "/json/a/b?x=1&y=%20", &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "content-type: application/json\r\n"));
    assert_true(has_header(&r, "content-length: "));
    assert_string_equal(r.body,
                        "{\"path\": \"/json/a/b\", \"method\": \"GET\", \"query\": \"x=1&y=%20\", \"body\": null}");
    reply_release(&r);

    call json = {.path = "/json/post", .body = "{\"a\": [1, 2.5e3, \"q\\\"\", null, true]}"};
    perform(f, &json, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "{\"path\": \"/json/post\", \"method\": \"POST\", \"query\": \"\", \"body\": {\"a\": [1, "
                        "2.5e3, \"q\\\"\", null, true]}}");
    reply_release(&r);

    call text = {.method = "PUT", .path = "/json", .body = "{\"a\": 1} trailing \"quote\"\n"};
    perform(f, &text, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "{\"path\": \"/json\", \"method\": \"PUT\", \"query\": \"\", \"body\": \"{\\\"a\\\": 1} "
                        "trailing \\\"quote\\\"\\n\"}");
    reply_release(&r);
    assert_int_equal(e2e_upstream_requests(f->upstream), 3);
    assert_int_equal(e2e_upstream_aborted(f->upstream), 0);
}

static void test_last_request(void **state)
{
    fixture *f = *state;
    reply r;
    const char *headers[] = {"X-Request-Id: abc-123",
                             "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                             "Content-Type: application/json", NULL};
    call c = {.path = "/json/orders?id=7", .headers = headers, .body = "{\"id\": 7}"};
    perform(f, &c, &r);
    assert_int_equal(r.status, 200);
    reply_release(&r);
    get(f, "/text", &r);
    reply_release(&r);

    char *text = e2e_upstream_last_request(f->upstream, "/json/orders");
    assert_non_null(text);
    assert_true(strncmp(text, "POST /json/orders?id=7\n", 23) == 0);
    assert_non_null(strstr(text, "\nx-request-id: abc-123\n"));
    assert_non_null(strstr(text, "\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n"));
    assert_non_null(strstr(text, "\ncontent-length: 9\n"));
    size_t len = strlen(text);
    assert_true(len > 11 && strcmp(text + len - 11, "\n\n{\"id\": 7}") == 0);
    free(text);

    text = e2e_upstream_last_request(f->upstream, "/");
    assert_non_null(text);
    assert_true(strncmp(text, "GET /text\n", 10) == 0); /* the newest */
    free(text);
    assert_null(e2e_upstream_last_request(f->upstream, "/nothing"));
}

static void test_keep_alive_reuses_one_connection(void **state)
{
    fixture *f = *state;
    reply r;
    get(f, "/json/1", &r);
    assert_int_equal(r.status, 200);
    reply_release(&r);
    call post = {.path = "/json/2", .body = "x"};
    perform(f, &post, &r);
    assert_int_equal(r.status, 200);
    reply_release(&r);
    get(f, "/status/404", &r);
    assert_int_equal(r.status, 404);
    reply_release(&r);
    assert_int_equal(e2e_upstream_requests(f->upstream), 3);
    assert_int_equal(e2e_upstream_connections(f->upstream), 1);
    assert_int_equal(e2e_upstream_open_connections(f->upstream), 1);

    curl_easy_cleanup(f->curl); /* closes the connection */
    f->curl = curl_easy_init();
    unsigned open = 1;
    for (int i = 0; i < 400 && (open = e2e_upstream_open_connections(f->upstream)) != 0; i++)
        usleep(5000);
    assert_int_equal(open, 0);
    assert_int_equal(e2e_upstream_aborted(f->upstream), 0); /* closing an idle connection aborts nothing */
}

static void test_connection_close(void **state)
{
    fixture *f = *state;
    reply r;
    get(f, "/close/x", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "connection: close\r\n"));
    assert_string_equal(r.body, "{\"path\": \"/close/x\", \"method\": \"GET\", \"query\": \"\", \"body\": null}");
    reply_release(&r);

    const char *close_header[] = {"Connection: close", NULL};
    call asked = {.path = "/json/y", .headers = close_header};
    perform(f, &asked, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "connection: close\r\n"));
    reply_release(&r);

    get(f, "/json/z", &r);
    assert_int_equal(r.status, 200);
    assert_false(has_header(&r, "connection: close"));
    reply_release(&r);
    assert_int_equal(e2e_upstream_connections(f->upstream), 3);
    assert_int_equal(e2e_upstream_requests(f->upstream), 3);
}

static void test_status_invalid_text_not_found(void **state)
{
    fixture *f = *state;
    reply r;
    get(f, "/status/503", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"status\": 503}");
    reply_release(&r);
    get(f, "/status/204", &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 204);
    assert_null(r.body);
    assert_false(has_header(&r, "content-length"));
    reply_release(&r);
    get(f, "/status/abc", &r);
    assert_int_equal(r.status, 400);
    reply_release(&r);

    get(f, "/invalid", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "content-type: application/json\r\n"));
    assert_string_equal(r.body, "{\"oops\": ");
    reply_release(&r);

    get(f, "/text", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "content-type: text/plain\r\n"));
    assert_string_equal(r.body, "hello");
    reply_release(&r);

    get(f, "/nope?x=1", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"error\": \"not found\", \"path\": \"/nope\"}");
    reply_release(&r);
    get(f, "/jsonx", &r); /* a prefix only matches a whole segment */
    assert_int_equal(r.status, 404);
    reply_release(&r);
    assert_int_equal(e2e_upstream_connections(f->upstream), 1);
}

static void test_delay(void **state)
{
    fixture *f = *state;
    reply r;
    get(f, "/delay/150/items?q=1", &r);
    assert_int_equal(r.status, 200);
    assert_true(r.elapsed_ms >= 145);
    assert_string_equal(r.body,
                        "{\"path\": \"/delay/150/items\", \"method\": \"GET\", \"query\": \"q=1\", \"body\": null}");
    reply_release(&r);
    assert_int_equal(e2e_upstream_aborted(f->upstream), 0);
}

static void test_delay_client_gone_is_aborted(void **state)
{
    fixture *f = *state;
    reply r;
    call c = {.path = "/delay/5000/x", .timeout_ms = 200};
    long long start = now_ms();
    perform(f, &c, &r);
    assert_int_equal(r.code, CURLE_OPERATION_TIMEDOUT);
    reply_release(&r);
    /* Seen while waiting, long before the 5 s delay is over. */
    assert_int_equal(e2e_upstream_wait(f->upstream, e2e_upstream_aborted, 1, 2000), 1);
    assert_int_equal(e2e_upstream_open_connections(f->upstream), 0);
    assert_true(now_ms() - start < 2500);
    assert_int_equal(e2e_upstream_requests(f->upstream), 1);
}

static void test_hang_client_gone_is_aborted(void **state)
{
    fixture *f = *state;
    reply r;
    call c = {.path = "/hang", .timeout_ms = 200};
    perform(f, &c, &r);
    assert_int_equal(r.code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.status, 0);
    reply_release(&r);
    assert_int_equal(e2e_upstream_wait(f->upstream, e2e_upstream_aborted, 1, 2000), 1);
    assert_int_equal(e2e_upstream_open_connections(f->upstream), 0);

    /* Each abandoned call counts once. */
    call again = {.path = "/hang", .timeout_ms = 100};
    perform(f, &again, &r);
    reply_release(&r);
    assert_int_equal(e2e_upstream_wait(f->upstream, e2e_upstream_aborted, 2, 2000), 2);
}

static void test_hang_until_stop(void **state)
{
    fixture *f = *state;
    /* A raw client that never closes: stop must still finish promptly. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)e2e_upstream_port(f->upstream)),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    const char req[] = "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    assert_int_equal(e2e_upstream_wait(f->upstream, e2e_upstream_requests, 1, 2000), 1);
    long long start = now_ms();
    e2e_upstream_stop(f->upstream);
    assert_true(now_ms() - start < 1000);
    char byte;
    assert_int_equal(recv(fd, &byte, 1, 0), 0); /* closed by the server, no response */
    close(fd);
    f->upstream = e2e_upstream_start();
    assert_non_null(f->upstream);
}

static void test_reset(void **state)
{
    fixture *f = *state;
    reply r;
    call c = {.path = "/reset", .body = "{\"sent\": true}"};
    perform(f, &c, &r);
    assert_int_equal(r.code, CURLE_RECV_ERROR); /* ECONNRESET; a plain close would be CURLE_GOT_NOTHING */
    reply_release(&r);
    assert_int_equal(e2e_upstream_requests(f->upstream), 1);
    assert_int_equal(e2e_upstream_aborted(f->upstream), 0);
    char *text = e2e_upstream_last_request(f->upstream, "/reset");
    assert_non_null(text);
    assert_non_null(strstr(text, "\n\n{\"sent\": true}"));
    free(text);
}

static void test_huge(void **state)
{
    fixture *f = *state;
    reply r;
    get(f, "/huge/1000000", &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "content-length: 1000000\r\n"));
    assert_int_equal(r.body_len, 1000000);
    assert_int_equal(r.body[0], '"');
    assert_int_equal(r.body[999999], '"');
    assert_int_equal(strspn(r.body + 1, "x"), 999998);
    reply_release(&r);
    assert_int_equal(e2e_upstream_aborted(f->upstream), 0);

    /* More than the socket buffers hold: the server is still sending when the client gives up. */
    call c = {.path = "/huge/67108864", .stop_after = 1};
    perform(f, &c, &r);
    assert_int_equal(r.code, CURLE_WRITE_ERROR);
    reply_release(&r);
    assert_int_equal(e2e_upstream_wait(f->upstream, e2e_upstream_aborted, 1, 3000), 1);
    assert_int_equal(e2e_upstream_open_connections(f->upstream), 0);
}

static void test_drip(void **state)
{
    fixture *f = *state;
    reply r;
    get(f, "/drip/20", &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "content-length: 10\r\n"));
    assert_string_equal(r.body, "\"12345678\"");
    assert_true(r.elapsed_ms >= 195);
    reply_release(&r);

    call c = {.path = "/drip/100", .timeout_ms = 250};
    perform(f, &c, &r);
    assert_int_equal(r.code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.status, 200);
    assert_true(r.body_len >= 1 && r.body_len < 10);
    reply_release(&r);
    assert_int_equal(e2e_upstream_wait(f->upstream, e2e_upstream_aborted, 1, 2000), 1);
}

static void test_chunked(void **state)
{
    fixture *f = *state;
    reply r;
    get(f, "/chunked/100", &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "transfer-encoding: chunked\r\n"));
    assert_false(has_header(&r, "content-length"));
    char expected[1024] = "[";
    for (int i = 0; i < 100; i++)
        snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), i ? ",%d" : "%d", i);
    strcat(expected, "]");
    assert_true(strlen(expected) > 64 * 3); /* several chunks */
    assert_string_equal(r.body, expected);
    reply_release(&r);
    get(f, "/chunked/0", &r);
    assert_string_equal(r.body, "[]");
    reply_release(&r);
    get(f, "/json/after", &r); /* the connection is still in a clean state */
    assert_int_equal(r.status, 200);
    reply_release(&r);
    assert_int_equal(e2e_upstream_connections(f->upstream), 1);
}

static void test_request_bodies(void **state)
{
    fixture *f = *state;
    reply r;
    call chunked = {
        .path = "/json/chunked", .body = "{\"chunked\": [1, 2, 3], \"more\": \"text\"}", .chunked_upload = true};
    perform(f, &chunked, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_string_equal(r.body, "{\"path\": \"/json/chunked\", \"method\": \"POST\", \"query\": \"\", \"body\": "
                                "{\"chunked\": [1, 2, 3], \"more\": \"text\"}}");
    reply_release(&r);
    char *text = e2e_upstream_last_request(f->upstream, "/json/chunked");
    assert_non_null(strstr(text, "\ntransfer-encoding: chunked\n"));
    free(text);

    /* libcurl waits up to 1 s for "100 Continue" before sending the body anyway. */
    const char *expect[] = {"Expect: 100-continue", NULL};
    call continued = {.path = "/json/expect", .headers = expect, .body = "\"body\""};
    perform(f, &continued, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_true(r.elapsed_ms < 800);
    assert_string_equal(r.body,
                        "{\"path\": \"/json/expect\", \"method\": \"POST\", \"query\": \"\", \"body\": \"body\"}");
    reply_release(&r);
    assert_int_equal(e2e_upstream_connections(f->upstream), 1);
}

static int connect_raw(fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)e2e_upstream_port(f->upstream)),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

/* Reads until the server closes or 2 s pass. */
static char *read_all(int fd)
{
    char *buf = NULL;
    size_t len = 0;
    char piece[4096];
    long long deadline = now_ms() + 2000;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
            break;
        ssize_t n = recv(fd, piece, sizeof(piece), 0);
        if (n <= 0)
            break;
        append(&buf, &len, piece, (size_t)n);
    }
    return buf;
}

static void test_raw_pipelining_and_bad_heads(void **state)
{
    fixture *f = *state;
    /* Two pipelined requests in one write, header names in any case, bare LF line ends in the second. */
    int fd = connect_raw(f);
    const char two[] = "POST /json/one HTTP/1.1\r\nHost: x\r\nCONTENT-LENGTH: 2\r\n\r\n{}"
                       "GET /text HTTP/1.1\nHost: x\nConnection: close\n\n";
    assert_int_equal(send(fd, two, sizeof(two) - 1, 0), (ssize_t)(sizeof(two) - 1));
    char *out = read_all(fd);
    close(fd);
    assert_non_null(out);
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(out, "\"body\": {}}HTTP/1.1 200 OK\r\n"));
    assert_true(strlen(out) > 5 && strcmp(out + strlen(out) - 5, "hello") == 0);
    free(out);
    assert_int_equal(e2e_upstream_requests(f->upstream), 2);

    /* A head over 64 KiB. */
    fd = connect_raw(f);
    size_t big = 70 * 1024;
    char *huge = malloc(big + 64);
    int n = snprintf(huge, 64, "GET /json/big HTTP/1.1\r\nX-Big: ");
    memset(huge + n, 'a', big);
    memcpy(huge + n + big, "\r\n\r\n", 4);
    send(fd, huge, (size_t)n + big + 4, MSG_NOSIGNAL);
    free(huge);
    out = read_all(fd);
    close(fd);
    assert_non_null(out);
    assert_true(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
    free(out);

    /* Garbage. */
    fd = connect_raw(f);
    const char bad[] = "NONSENSE\r\n\r\n";
    send(fd, bad, sizeof(bad) - 1, 0);
    out = read_all(fd);
    close(fd);
    assert_non_null(out);
    assert_true(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
    free(out);
    assert_int_equal(e2e_upstream_requests(f->upstream), 2);
    assert_int_equal(e2e_upstream_connections(f->upstream), 3);
}

static void test_many_connections(void **state)
{
    fixture *f = *state;
    /* Fresh handles: one connection each; finished connection threads are reaped as new ones arrive. */
    for (int i = 0; i < 20; i++) {
        curl_easy_cleanup(f->curl);
        f->curl = curl_easy_init();
        reply r;
        get(f, "/close/n", &r);
        assert_int_equal(r.status, 200);
        reply_release(&r);
    }
    assert_int_equal(e2e_upstream_connections(f->upstream), 20);
    assert_int_equal(e2e_upstream_requests(f->upstream), 20);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_reuses_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_invalid_text_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_client_gone_is_aborted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang_client_gone_is_aborted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang_until_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_pipelining_and_bad_heads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("e2e/upstream_server", tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
