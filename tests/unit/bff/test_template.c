/* test_template: JSON Pointers (RFC 6901), template compilation, evaluation, interpolation, encodings, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bff/template.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v == NULL)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}

static void assert_json(const json_t *v, const char *expected)
{
    json_t *e = parse(expected);
    if (v == NULL || !json_equal(v, e)) {
        char *got = v != NULL ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        print_error("expected %s, got %s\n", expected, got != NULL ? got : "NULL");
        free(got);
        json_decref(e);
        fail();
    }
    json_decref(e);
}

static bff_template *compile(const char *json)
{
    json_t *def = parse(json);
    char err[512] = "";
    bff_template *t = bff_template_compile(def, err, sizeof(err));
    json_decref(def); /* a template keeps nothing of its definition */
    if (t == NULL)
        fail_msg("compiling %s: %s", json, err);
    return t;
}

static void expect_compile_error(const char *json, const char *expected)
{
    json_t *def = parse(json);
    char err[512] = "";
    bff_template *t = bff_template_compile(def, err, sizeof(err));
    json_decref(def);
    if (t != NULL) {
        bff_template_free(t);
        fail_msg("%s compiled; expected: %s", json, expected);
    }
    if (strcmp(err, expected) != 0)
        fail_msg("%s: expected\n  %s\ngot\n  %s", json, expected, err);
}

static const char *context_json =
    "{\"request\": {\"params\": {\"id\": \"42\", \"odd\": \"a b/c?d\", \"uni\": \"\\u00e9~-._\"},"
    "  \"query\": {\"q\": \"x\"}, \"headers\": {\"x-evil\": \"v\\r\\nInjected: 1\", \"x-lf\": \"a\\nb\"},"
    "  \"body\": {\"n\": 3}, \"claims\": {\"sub\": \"u1\"}},"
    " \"profile\": {\"id\": 7, \"neg\": -12, \"name\": \"Ann\", \"score\": 0.1, \"big\": 1e20, \"small\": 1.5e-7,"
    "  \"ratio\": 2.0, \"third\": 0.3333333333333333, \"vip\": true, \"banned\": false, \"tags\": [\"a\", \"b\"],"
    "  \"addr\": {\"city\": \"Oslo\"}, \"nothing\": null, \"nul\": \"a\\u0000b\", \"a/b\": \"slash\", \"m~n\": "
    "\"tilde\"}}";

static json_t *context(void)
{
    return parse(context_json);
}

/* Evaluates template `json` against the test context and checks the JSON result. */
static void expect_eval(const char *json, const char *expected)
{
    json_t *ctx = context();
    bff_template *t = compile(json);
    char err[256] = "";
    json_t *v = bff_template_eval(t, ctx, err, sizeof(err));
    if (v == NULL)
        fail_msg("%s: %s", json, err);
    assert_json(v, expected);
    json_decref(v);
    bff_template_free(t);
    json_decref(ctx);
}

static void expect_eval_error(const char *json, const char *expected)
{
    json_t *ctx = context();
    bff_template *t = compile(json);
    char err[256] = "";
    json_t *v = bff_template_eval(t, ctx, err, sizeof(err));
    assert_null(v);
    assert_string_equal(err, expected);
    bff_template_free(t);
    json_decref(ctx);
}

/* Evaluates string template `json` as text with `enc`; expected NULL means an error with `error`. */
static void expect_text(const char *json, bff_template_encoding enc, const char *expected, const char *error)
{
    json_t *ctx = context();
    bff_template *t = compile(json);
    char err[256] = "";
    size_t len = 12345;
    char *s = bff_template_eval_string(t, ctx, enc, &len, err, sizeof(err));
    if (expected != NULL) {
        if (s == NULL)
            fail_msg("%s: %s", json, err);
        assert_string_equal(s, expected);
        assert_int_equal(len, strlen(expected));
    } else {
        if (s != NULL)
            fail_msg("%s gave \"%s\"; expected the error: %s", json, s, error);
        assert_string_equal(err, error);
    }
    free(s);
    bff_template_free(t);
    json_decref(ctx);
}

/* ---- JSON Pointers ---- */

static const json_t *pointer(const json_t *doc, const char *ptr)
{
    return bff_json_pointer(doc, ptr, strlen(ptr));
}

static void test_pointer_rfc6901_examples(void **state)
{
    (void)state;
    json_t *doc = parse("{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, \"e^f\": 3, \"g|h\": 4,"
                        " \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8, \"~1\": 9}");
    assert_ptr_equal(pointer(doc, ""), doc);
    assert_json(pointer(doc, "/foo"), "[\"bar\", \"baz\"]");
    assert_json(pointer(doc, "/foo/0"), "\"bar\"");
    assert_json(pointer(doc, "/foo/1"), "\"baz\"");
    assert_json(pointer(doc, "/"), "0");
    assert_json(pointer(doc, "/a~1b"), "1");
    assert_json(pointer(doc, "/c%d"), "2");
    assert_json(pointer(doc, "/e^f"), "3");
    assert_json(pointer(doc, "/g|h"), "4");
    assert_json(pointer(doc, "/i\\j"), "5");
    assert_json(pointer(doc, "/k\"l"), "6");
    assert_json(pointer(doc, "/ "), "7");
    assert_json(pointer(doc, "/m~0n"), "8");
    assert_json(pointer(doc, "/~01"), "9"); /* "~01" is "~1", not "/" */
    json_decref(doc);
}

static void test_pointer_indices_and_misses(void **state)
{
    (void)state;
    json_t *doc = parse("{\"a\": [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22], \"o\": {\"0\": \"zero\"}}");
    assert_json(pointer(doc, "/a/12"), "22");
    assert_json(pointer(doc, "/a/0"), "10");
    assert_null(pointer(doc, "/a/01"));                      /* leading zero */
    assert_null(pointer(doc, "/a/-"));                       /* past the end: names no element */
    assert_null(pointer(doc, "/a/13"));                      /* out of range */
    assert_null(pointer(doc, "/a/+1"));                      /* not decimal digits only */
    assert_null(pointer(doc, "/a/1x"));                      /* not decimal digits only */
    assert_null(pointer(doc, "/a/"));                        /* an empty segment is no index */
    assert_null(pointer(doc, "/a/99999999999999999999999")); /* too large */
    assert_json(pointer(doc, "/o/0"), "\"zero\"");           /* in an object, "0" is a key */
    assert_null(pointer(doc, "/a/0/x"));                     /* through a number */
    assert_null(pointer(doc, "/missing"));
    assert_null(pointer(doc, "a"));     /* invalid: no leading "/" */
    assert_null(pointer(doc, "/m~2n")); /* invalid escape */
    assert_null(pointer(doc, "/a~"));   /* "~" at the end */
    assert_null(bff_json_pointer(NULL, "/a", 2));

    /* the length is honoured: "/a/1" cut to "/a" */
    assert_ptr_equal(bff_json_pointer(doc, "/a/1", 2), json_object_get(doc, "a"));
    json_decref(doc);
}

static void test_pointer_long_escaped_segment(void **state)
{
    (void)state;
    /* A key longer than the lookup's stack buffer, with escapes: unescaped on the heap. */
    char key[401], ptr[512];
    memset(key, 'k', 400);
    key[400] = '\0';
    key[100] = '/';
    key[200] = '~';
    json_t *doc = json_object();
    json_object_set_new(doc, key, json_integer(5));
    snprintf(ptr, sizeof(ptr), "/%.100s~1%.99s~0%s", key, key + 101, key + 201);
    assert_json(pointer(doc, ptr), "5");
    json_decref(doc);
}

static void test_pointer_valid(void **state)
{
    (void)state;
    assert_true(bff_json_pointer_valid("", 0));
    assert_true(bff_json_pointer_valid("/", 1));
    assert_true(bff_json_pointer_valid("/a~0b~1c", 8));
    assert_true(bff_json_pointer_valid("//", 2));
    assert_false(bff_json_pointer_valid("a", 1));
    assert_false(bff_json_pointer_valid("/~", 2));
    assert_false(bff_json_pointer_valid("/~2", 3));
    assert_false(bff_json_pointer_valid("~0", 2));
    assert_true(bff_json_pointer_valid("/~0~", 3)); /* only the first 3 bytes count */
}

/* ---- evaluation ---- */

static void test_whole_reference_every_type(void **state)
{
    (void)state;
    expect_eval("\"${/profile/name}\"", "\"Ann\"");
    expect_eval("\"${/profile/id}\"", "7");
    expect_eval("\"${/profile/score}\"", "0.1");
    expect_eval("\"${/profile/vip}\"", "true");
    expect_eval("\"${/profile/banned}\"", "false");
    expect_eval("\"${/profile/tags}\"", "[\"a\", \"b\"]");
    expect_eval("\"${/profile/addr}\"", "{\"city\": \"Oslo\"}");
    expect_eval("\"${/profile/nothing}\"", "null");
    expect_eval("\"${/profile/missing}\"", "null");
    expect_eval("\"${/nowhere/at/all}\"", "null");
    expect_eval("\"${/profile/tags/1}\"", "\"b\"");
    expect_eval("\"${/profile/a~1b}\"", "\"slash\"");
    expect_eval("\"${/profile/m~0n}\"", "\"tilde\"");
    expect_eval("\"${/request/body}\"", "{\"n\": 3}");
}

static void test_whole_reference_shares_context(void **state)
{
    (void)state;
    json_t *ctx = context();
    bff_template *t = compile("\"${/profile/addr}\"");
    json_t *addr = json_object_get(json_object_get(ctx, "profile"), "addr");
    char err[256];
    json_t *v = bff_template_eval(t, ctx, err, sizeof(err));
    assert_ptr_equal(v, addr); /* the value itself, not a copy */
    json_decref(ctx);
    assert_json(v, "{\"city\": \"Oslo\"}"); /* still alive: the result holds a reference */
    json_decref(v);
    bff_template_free(t);
}

static void test_interpolation_every_type(void **state)
{
    (void)state;
    expect_eval("\"user-${/request/params/id}\"", "\"user-42\"");
    expect_eval("\"n=${/profile/id}\"", "\"n=7\"");
    expect_eval("\"n=${/profile/neg}\"", "\"n=-12\"");
    expect_eval("\"s=${/profile/score}\"", "\"s=0.1\"");
    expect_eval("\"s=${/profile/big}\"", "\"s=1e20\"");
    expect_eval("\"s=${/profile/small}\"", "\"s=1.5e-7\"");
    expect_eval("\"s=${/profile/ratio}\"", "\"s=2.0\"");
    expect_eval("\"s=${/profile/third}\"", "\"s=0.3333333333333333\"");
    expect_eval("\"vip=${/profile/vip}\"", "\"vip=true\"");
    expect_eval("\"banned=${/profile/banned}\"", "\"banned=false\"");
    expect_eval("\"tags=${/profile/tags}\"", "\"tags=[\\\"a\\\",\\\"b\\\"]\"");
    expect_eval("\"addr=${/profile/addr}\"", "\"addr={\\\"city\\\":\\\"Oslo\\\"}\"");
    expect_eval("\"${/profile/name}${/profile/id}\"", "\"Ann7\""); /* two references, no text */
    expect_eval("\"${/profile/name} \"", "\"Ann \"");              /* a reference and text is a string */
    expect_eval("\"${/request/params/uni}!\"", "\"\\u00e9~-._!\"");
    expect_eval("\"[${/profile/nul}]\"", "\"[a\\u0000b]\"");
}

static void test_interpolation_long_text(void **state)
{
    (void)state;
    /* More than the evaluator's stack buffer. */
    char big[1200];
    memset(big, 'x', 1000);
    big[1000] = '\0';
    json_t *ctx = json_pack("{s:s}", "long", big);
    bff_template *t = compile("\"${/long}-${/long}\"");
    char err[256];
    json_t *v = bff_template_eval(t, ctx, err, sizeof(err));
    assert_non_null(v);
    assert_int_equal(json_string_length(v), 2001);
    assert_int_equal(json_string_value(v)[1000], '-');
    assert_int_equal(json_string_value(v)[2000], 'x');
    json_decref(v);
    bff_template_free(t);
    json_decref(ctx);
}

static void test_interpolation_missing_is_an_error(void **state)
{
    (void)state;
    expect_eval_error("\"x-${/profile/zzz}\"", "reference ${/profile/zzz} is missing");
    expect_eval_error("\"x-${/profile/nothing}\"", "reference ${/profile/nothing} is missing");
    expect_eval_error("\"${/profile/id}/${/nowhere/x}\"", "reference ${/nowhere/x} is missing");
    /* inside an object or array, the error ends the whole evaluation */
    expect_eval_error("{\"a\": 1, \"b\": [\"ok\", {\"c\": \"id-${/x/y}\"}]}", "reference ${/x/y} is missing");
}

static void test_dollar_escape(void **state)
{
    (void)state;
    bff_template *t = compile("\"cost: $${/x}\"");
    assert_true(bff_template_is_constant(t));
    bff_template_free(t);
    expect_eval("\"cost: $${/x}\"", "\"cost: ${/x}\"");
    expect_eval("\"$${/a}${/profile/id}\"", "\"${/a}7\"");
    expect_eval("\"${/profile/id}$${\"", "\"7${\"");
    expect_eval("\"$$${/x}\"", "\"$${/x}\""); /* "$", then the escape "$${" */
    expect_eval("\"$5 {x} $ }\"", "\"$5 {x} $ }\"");
    expect_eval("\"$\"", "\"$\"");
    expect_eval("\"\"", "\"\"");
}

static void test_objects_and_arrays(void **state)
{
    (void)state;
    expect_eval("{\"user\": \"${/profile/name}\", \"n\": 1, \"list\": [\"${/profile/id}\", \"x-${/profile/id}\","
                " {\"k\": \"${/profile/nothing}\"}], \"lit\": {\"a\": [1, \"b\", null, 2.5, true]}, \"e\": {}}",
                "{\"user\": \"Ann\", \"n\": 1, \"list\": [7, \"x-7\", {\"k\": null}],"
                " \"lit\": {\"a\": [1, \"b\", null, 2.5, true]}, \"e\": {}}");
    expect_eval("[\"${/request/claims/sub}\", [\"${/profile/tags/0}\"], []]", "[\"u1\", [\"a\"], []]");
    expect_eval("{\"${/profile/id}\": \"$${y}\"}", "{\"${/profile/id}\": \"${y}\"}"); /* keys are literal */

    bff_template *t = compile("{\"a\": [1, \"b\"], \"c\": \"$${x}\", \"d\": {\"e\": null}}");
    assert_true(bff_template_is_constant(t));
    char err[64];
    json_t *v1 = bff_template_eval(t, NULL, err, sizeof(err));
    json_t *v2 = bff_template_eval(t, NULL, err, sizeof(err));
    assert_json(v1, "{\"a\": [1, \"b\"], \"c\": \"${x}\", \"d\": {\"e\": null}}");
    assert_json(v2, "{\"a\": [1, \"b\"], \"c\": \"${x}\", \"d\": {\"e\": null}}");
    json_decref(v1);
    json_decref(v2);
    bff_template_free(t);

    t = compile("{\"a\": [1, \"${/profile/id}\"]}");
    assert_false(bff_template_is_constant(t));
    bff_template_free(t);
    t = compile("42");
    assert_true(bff_template_is_constant(t));
    v1 = bff_template_eval(t, NULL, err, sizeof(err));
    assert_json(v1, "42");
    json_decref(v1);
    bff_template_free(t);
    t = compile("\"${/x}\"");
    assert_false(bff_template_is_constant(t));
    bff_template_free(t);
}

static void test_compile_errors(void **state)
{
    (void)state;
    expect_compile_error("\"${/a~2}\"", "bad reference \"${/a~2}\": \"~\" must be followed by 0 or 1");
    expect_compile_error("\"x${/a~}\"", "bad reference \"${/a~}\": \"~\" must be followed by 0 or 1");
    expect_compile_error("\"user-${/x\"", "unterminated \"${\" in \"user-${/x\"");
    expect_compile_error("\"${\"", "unterminated \"${\" in \"${\"");
    expect_compile_error("\"${a}\"", "bad reference \"${a}\": must be a JSON Pointer starting with \"/\", such as "
                                     "\"${/request/params/id}\"");
    expect_compile_error("\"${}\"", "bad reference \"${}\": must be a JSON Pointer starting with \"/\", such as "
                                    "\"${/request/params/id}\"");
    expect_compile_error("\"${/a${/b}}\"", "bad reference \"${/a${/b}\": \"${\" inside a reference (references do "
                                           "not nest)");
    expect_compile_error("\"${/a\\u0000b}\"", "bad reference \"${/a}\": contains a NUL byte");
    expect_compile_error("{\"user\": {\"ids\": [1, \"${x}\"]}}",
                         "bad reference \"${x}\": must be a JSON Pointer starting with \"/\", such as "
                         "\"${/request/params/id}\" (at user.ids[1])");
    expect_compile_error("[\"ok\", \"${/a~3}\"]",
                         "bad reference \"${/a~3}\": \"~\" must be followed by 0 or 1 (at [1])");
    expect_compile_error("[{\"k\": \"${\"}]", "unterminated \"${\" in \"${\" (at [0].k)");

    /* long text is cut in the message */
    char def[400], expected[400];
    char text[301];
    memset(text, 'a', 300);
    text[300] = '\0';
    snprintf(def, sizeof(def), "\"%s${/x\"", text);
    snprintf(expected, sizeof(expected), "unterminated \"${\" in \"%.200s...\"", text);
    expect_compile_error(def, expected);

    char err[64];
    assert_null(bff_template_compile(NULL, err, sizeof(err)));
    assert_string_equal(err, "no template value");
}

static void test_eval_string_encodings(void **state)
{
    (void)state;
    expect_text("\"/users/${/request/params/odd}\"", BFF_TEMPLATE_PATH, "/users/a%20b%2Fc%3Fd", NULL);
    expect_text("\"${/request/params/odd}\"", BFF_TEMPLATE_QUERY, "a%20b%2Fc%3Fd", NULL);
    expect_text("\"a b/${/request/params/odd}\"", BFF_TEMPLATE_RAW, "a b/a b/c?d", NULL);
    expect_text("\"${/request/params/uni}\"", BFF_TEMPLATE_PATH, "%C3%A9~-._", NULL);
    expect_text("\"${/profile/addr}\"", BFF_TEMPLATE_PATH, "%7B%22city%22%3A%22Oslo%22%7D", NULL);
    expect_text("\"${/profile/addr}\"", BFF_TEMPLATE_RAW, "{\"city\":\"Oslo\"}", NULL);
    expect_text("\"${/profile/tags}\"", BFF_TEMPLATE_HEADER, "[\"a\",\"b\"]", NULL);
    expect_text("\"/items/${/profile/id}\"", BFF_TEMPLATE_PATH, "/items/7", NULL);
    expect_text("\"${/profile/big}\"", BFF_TEMPLATE_QUERY, "1e20", NULL);
    expect_text("\"${/profile/vip}\"", BFF_TEMPLATE_QUERY, "true", NULL);
    expect_text("\"Bearer ${/request/claims/sub}\"", BFF_TEMPLATE_HEADER, "Bearer u1", NULL);
    expect_text("\"${/request/claims/sub}\"", BFF_TEMPLATE_HEADER, "u1", NULL);
    expect_text("\"plain text\"", BFF_TEMPLATE_PATH, "plain text", NULL); /* literal text is not encoded */
    expect_text("\"$${/x}\"", BFF_TEMPLATE_RAW, "${/x}", NULL);
}

static void test_eval_string_errors(void **state)
{
    (void)state;
    expect_text("\"${/request/headers/x-evil}\"", BFF_TEMPLATE_HEADER, NULL,
                "reference ${/request/headers/x-evil} holds CR, LF or NUL, which a header cannot carry");
    expect_text("\"v=${/request/headers/x-lf}\"", BFF_TEMPLATE_HEADER, NULL,
                "reference ${/request/headers/x-lf} holds CR, LF or NUL, which a header cannot carry");
    expect_text("\"v=${/profile/nul}\"", BFF_TEMPLATE_HEADER, NULL,
                "reference ${/profile/nul} holds CR, LF or NUL, which a header cannot carry");
    expect_text("\"a\\r\\nb\"", BFF_TEMPLATE_HEADER, NULL,
                "the template's text holds CR, LF or NUL, which a header cannot carry");
    expect_text("\"a\\n${/profile/id}\"", BFF_TEMPLATE_HEADER, NULL,
                "the template's text holds CR, LF or NUL, which a header cannot carry");
    /* the same values are fine elsewhere: CR LF is percent-encoded in a path */
    expect_text("\"${/request/headers/x-evil}\"", BFF_TEMPLATE_PATH, "v%0D%0AInjected%3A%201", NULL);
    /* a whole-string reference must exist and not be null */
    expect_text("\"${/x}\"", BFF_TEMPLATE_RAW, NULL, "reference ${/x} is missing");
    expect_text("\"${/profile/nothing}\"", BFF_TEMPLATE_PATH, NULL, "reference ${/profile/nothing} is missing");
    expect_text("\"/u/${/x/y}\"", BFF_TEMPLATE_PATH, NULL, "reference ${/x/y} is missing");
    /* only string templates */
    expect_text("{\"a\": \"${/x}\"}", BFF_TEMPLATE_RAW, NULL, "the template is not a string");
    expect_text("5", BFF_TEMPLATE_RAW, NULL, "the template is not a string");
}

static void test_eval_string_bytes(void **state)
{
    (void)state;
    json_t *ctx = context();
    char err[128];
    size_t len = 0;
    bff_template *t = compile("\"${/profile/nul}\"");
    char *s = bff_template_eval_string(t, ctx, BFF_TEMPLATE_RAW, &len, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 4);
    free(s);
    s = bff_template_eval_string(t, ctx, BFF_TEMPLATE_QUERY, NULL, err, sizeof(err)); /* len is optional */
    assert_string_equal(s, "a%00b");
    free(s);
    bff_template_free(t);

    /* encoded output beyond the stack buffer */
    char spaces[301];
    memset(spaces, ' ', 300);
    spaces[300] = '\0';
    json_t *big = json_pack("{s:s}", "s", spaces);
    t = compile("\"/${/s}\"");
    s = bff_template_eval_string(t, big, BFF_TEMPLATE_PATH, &len, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(len, 901);
    assert_int_equal(strlen(s), 901);
    assert_memory_equal(s, "/%20%20", 7);
    assert_memory_equal(s + 898, "%20", 4);
    free(s);
    bff_template_free(t);
    json_decref(big);
    json_decref(ctx);
}

typedef struct ref_list {
    char items[8][64];
    size_t n;
} ref_list;

static void collect_ref(void *data, const char *pointer)
{
    ref_list *list = data;
    assert_true(list->n < 8);
    snprintf(list->items[list->n++], sizeof(list->items[0]), "%s", pointer);
}

static void test_foreach_ref(void **state)
{
    (void)state;
    bff_template *t = compile("{\"a\": \"${/request/params/id}-${/profile/id}\", \"b\": [\"${/profile/addr/city}\", 1,"
                              " \"$${/not}\", {\"c\": \"${/cart/a~1b}\"}], \"d\": \"${/request}\"}");
    ref_list list = {.n = 0};
    bff_template_foreach_ref(t, collect_ref, &list);
    assert_int_equal(list.n, 5);
    assert_string_equal(list.items[0], "/request/params/id");
    assert_string_equal(list.items[1], "/profile/id");
    assert_string_equal(list.items[2], "/profile/addr/city");
    assert_string_equal(list.items[3], "/cart/a~1b"); /* as written */
    assert_string_equal(list.items[4], "/request");
    bff_template_free(t);

    t = compile("{\"a\": [1, \"$${/no}\"]}");
    list.n = 0;
    bff_template_foreach_ref(t, collect_ref, &list);
    assert_int_equal(list.n, 0);
    bff_template_free(t);
    bff_template_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointer_rfc6901_examples),
        cmocka_unit_test(test_pointer_indices_and_misses),
        cmocka_unit_test(test_pointer_long_escaped_segment),
        cmocka_unit_test(test_pointer_valid),
        cmocka_unit_test(test_whole_reference_every_type),
        cmocka_unit_test(test_whole_reference_shares_context),
        cmocka_unit_test(test_interpolation_every_type),
        cmocka_unit_test(test_interpolation_long_text),
        cmocka_unit_test(test_interpolation_missing_is_an_error),
        cmocka_unit_test(test_dollar_escape),
        cmocka_unit_test(test_objects_and_arrays),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_eval_string_encodings),
        cmocka_unit_test(test_eval_string_errors),
        cmocka_unit_test(test_eval_string_bytes),
        cmocka_unit_test(test_foreach_ref),
    };
    return cmocka_run_group_tests_name("unit/bff/template", tests, NULL, NULL);
}
