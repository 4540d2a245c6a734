/* Unit tests for gateway/framing: request heads whose body length can be read two ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/framing.h"

static const char *conflict(const char *head)
{
    return gw_framing_conflict(head, strlen(head));
}

static void test_unambiguous_heads_pass(void **state)
{
    (void)state;
    assert_null(conflict("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_null(conflict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
    assert_null(conflict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
    /* the same length twice is one length */
    assert_null(conflict("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length:  5 \r\n\r\n"));
    /* only the head counts: a body that looks like fields does not */
    assert_null(conflict("POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nTransfer-Encoding: chunked\r\n\r\n"));
    /* a field whose name merely starts like one */
    assert_null(conflict("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length-X: 9\r\n\r\nx"));
}

static void test_ambiguous_heads_are_named(void **state)
{
    (void)state;
    assert_string_equal(conflict("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"),
                        "both Content-Length and Transfer-Encoding");
    assert_string_equal(conflict("POST / HTTP/1.1\nTRANSFER-ENCODING: chunked\ncontent-length: 0\n\n"),
                        "both Content-Length and Transfer-Encoding");
    assert_string_equal(conflict("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"),
                        "Content-Length fields that disagree");
    assert_string_equal(conflict("POST / HTTP/1.1\r\nContent-Length: 2, 3\r\n\r\n"), "a Content-Length list");
    /* a head cut short by the scan limit is still judged on what it holds */
    const char *t = "POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked";
    assert_non_null(gw_framing_conflict(t, strlen(t)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unambiguous_heads_pass),
        cmocka_unit_test(test_ambiguous_heads_are_named),
    };
    return cmocka_run_group_tests_name("unit/gateway/framing", tests, NULL, NULL);
}
