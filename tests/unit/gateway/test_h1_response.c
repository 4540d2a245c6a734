/* Unit tests for gateway/h1_response: response heads and chunked bodies, whole and byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/h1_response.h"

static ssize_t parse(const char *text, int to_head, gw_h1_head *h, const char **err)
{
    *err = NULL;
    return gw_h1_parse_head(text, strlen(text), to_head, h, err);
}

static void test_content_length_keep_alive(void **state)
{
    (void)state;
    const char *t = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"a\": true}x";
    gw_h1_head h;
    const char *err;
    ssize_t n = parse(t, 0, &h, &err);
    assert_int_equal(n, (ssize_t)(strstr(t, "\r\n\r\n") + 4 - t));
    assert_int_equal(h.status, 200);
    assert_int_equal(h.minor_version, 1);
    assert_true(h.keep_alive);
    assert_int_equal(h.body, GW_H1_BODY_LENGTH);
    assert_int_equal(h.content_length, 12);
    assert_int_equal(h.content_type_len, strlen("application/json"));
    assert_memory_equal(h.content_type, "application/json", h.content_type_len);
}

static void test_incomplete_heads_need_more(void **state)
{
    (void)state;
    const char *t = "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n";
    gw_h1_head h;
    const char *err = NULL;
    for (size_t len = 0; len < strlen(t); ++len)
        assert_int_equal(gw_h1_parse_head(t, len, 0, &h, &err), 0);
    assert_int_equal(gw_h1_parse_head(t, strlen(t), 0, &h, &err), (ssize_t)strlen(t));
    assert_int_equal(h.body, GW_H1_BODY_NONE);
}

static void test_bodies_by_kind(void **state)
{
    (void)state;
    gw_h1_head h;
    const char *err;
    /* LF line endings, HTTP/1.0: closes unless it says keep-alive */
    assert_true(parse("HTTP/1.0 200 OK\nContent-Length: 2\n\n", 0, &h, &err) > 0);
    assert_false(h.keep_alive);
    assert_true(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n", 0, &h, &err) > 0);
    assert_true(h.keep_alive);
    /* no length: until close */
    assert_true(parse("HTTP/1.1 200 OK\r\n\r\n", 0, &h, &err) > 0);
    assert_int_equal(h.body, GW_H1_BODY_CLOSE);
    assert_false(h.keep_alive);
    /* chunked, last coding; wins over a length but the connection is not reused */
    assert_true(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", 0, &h, &err) > 0);
    assert_int_equal(h.body, GW_H1_BODY_CHUNKED);
    assert_true(h.keep_alive);
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, &h, &err) > 0);
    assert_int_equal(h.body, GW_H1_BODY_CHUNKED);
    assert_false(h.keep_alive);
    /* chunked not last: until close */
    assert_true(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, &h, &err) > 0);
    assert_int_equal(h.body, GW_H1_BODY_CLOSE);
    assert_false(h.keep_alive);
    /* HEAD, 304, 1xx: no body whatever the headers say */
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 1, &h, &err) > 0);
    assert_int_equal(h.body, GW_H1_BODY_NONE);
    assert_true(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", 0, &h, &err) > 0);
    assert_int_equal(h.body, GW_H1_BODY_NONE);
    assert_true(parse("HTTP/1.1 100 Continue\r\n\r\n", 0, &h, &err) > 0);
    assert_int_equal(h.status, 100);
    assert_int_equal(h.body, GW_H1_BODY_NONE);
    /* Connection: close */
    assert_true(parse("HTTP/1.1 200 OK\r\nconnection: upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n", 0, &h, &err) > 0);
    assert_false(h.keep_alive);
    /* the same length twice is fine */
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 0, &h, &err) > 0);
    assert_int_equal(h.content_length, 3);
}

static void test_malformed_heads_are_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"HTTP/2 200 OK\r\n\r\n", "malformed status line"},
        {"HTTP/1.1 20 OK\r\n\r\n", "malformed status line"},
        {"HTTP/1.1 200OK\r\n\r\n", "malformed status line"},
        {"HTTP/1.1 700 Odd\r\n\r\n", "malformed status line"},
        {"http/1.1 200 OK\r\n\r\n", "malformed status line"},
        {"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", "malformed header line"},
        {"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed header line"},
        {"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", "malformed header line"},
        {"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n\r\n", "obsolete header line folding"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "invalid content-length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", "invalid content-length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid content-length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "invalid content-length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "invalid content-length"},
        {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "a control character in a header value"},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", "unexpected protocol switch"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        gw_h1_head h;
        const char *err = NULL;
        ssize_t n = parse(cases[i].text, 0, &h, &err);
        if (n != -1 || err == NULL || strcmp(err, cases[i].err) != 0)
            fail_msg("case %zu (%s): got %zd, %s", i, cases[i].text, n, err != NULL ? err : "(no error)");
    }
    /* a NUL in a value */
    const char with_nul[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";
    gw_h1_head h;
    const char *err = NULL;
    assert_int_equal(gw_h1_parse_head(with_nul, sizeof(with_nul) - 1, 0, &h, &err), -1);
}

static void test_head_size_is_bounded(void **state)
{
    (void)state;
    size_t len = GW_H1_HEAD_MAX + 100;
    char *t = malloc(len);
    memcpy(t, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    memset(t + 24, 'a', len - 24);
    gw_h1_head h;
    const char *err = NULL;
    assert_int_equal(gw_h1_parse_head(t, GW_H1_HEAD_MAX - 1, 0, &h, &err), 0);
    assert_int_equal(gw_h1_parse_head(t, len, 0, &h, &err), -1);
    assert_string_equal(err, "response head too large");
    free(t);
}

/* Feeds `in` in pieces of `step` bytes; returns the decoded text (NULL on error) and the bytes consumed. */
static char *decode(const char *in, size_t len, size_t step, size_t *consumed, const char **err)
{
    gw_h1_chunked d = {0};
    fn_buf out = {0};
    size_t at = 0;
    while (at < len && !d.done) {
        size_t n = len - at < step ? len - at : step;
        ssize_t r = gw_h1_chunked_feed(&d, in + at, n, &out, err);
        if (r < 0) {
            fn_buf_release(&out);
            return NULL;
        }
        at += (size_t)r;
        if ((size_t)r < n)
            assert_true(d.done);
    }
    *consumed = at;
    if (!d.done) {
        fn_buf_release(&out);
        *err = "unfinished";
        return NULL;
    }
    fn_buf_append_char(&out, '\0');
    return fn_buf_steal(&out);
}

static void test_chunked_bodies(void **state)
{
    (void)state;
    const char *t = "5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 200";
    size_t body_end = strstr(t, "HTTP/1.1") - t;
    for (size_t step = 1; step <= strlen(t); ++step) {
        size_t consumed = 0;
        const char *err = NULL;
        char *s = decode(t, strlen(t), step, &consumed, &err);
        if (s == NULL)
            fail_msg("step %zu: %s", step, err);
        assert_string_equal(s, "hello 0123456789");
        assert_int_equal(consumed, body_end);
        free(s);
    }
    /* LF only, upper-case hex, an empty body */
    size_t consumed;
    const char *err;
    char *s = decode("B\nhello world\n0\n\n", 18, 3, &consumed, &err);
    assert_string_equal(s, "hello world");
    free(s);
    s = decode("0\r\n\r\n", 5, 5, &consumed, &err);
    assert_string_equal(s, "");
    free(s);
}

static void test_malformed_chunks_are_errors(void **state)
{
    (void)state;
    static const char *cases[] = {
        "g\r\n",                              /* not hex */
        ";x\r\n",                             /* no size */
        "-1\r\n",                             /* sign */
        "5\r\nhelloXX\r\n",                   /* data longer than its size */
        "1000000000000000\r\n",               /* 16 digits */
        "5\r\nhello\r\n0\r\nX: a\0b\r\n\r\n", /* NUL in a trailer */
        "5\rhello",                           /* CR without LF */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        size_t len = i == 5 ? 23 : strlen(cases[i]); /* case 5 holds a NUL */
        size_t consumed;
        const char *err = NULL;
        char *s = decode(cases[i], len, 1, &consumed, &err);
        if (s != NULL || err == NULL || strcmp(err, "malformed chunked body") != 0)
            fail_msg("case %zu: %s", i, s != NULL ? s : err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_keep_alive),
        cmocka_unit_test(test_incomplete_heads_need_more),
        cmocka_unit_test(test_bodies_by_kind),
        cmocka_unit_test(test_malformed_heads_are_errors),
        cmocka_unit_test(test_head_size_is_bounded),
        cmocka_unit_test(test_chunked_bodies),
        cmocka_unit_test(test_malformed_chunks_are_errors),
    };
    return cmocka_run_group_tests_name("unit/gateway/h1_response", tests, NULL, NULL);
}
