/* test_shape: unwrap, allow, deny, limit and rename, through arrays, in order, on shared values; config errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bff/shape.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
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

static bff_shape *compile(const char *json)
{
    json_t *def = parse(json);
    cfg_errors errs = {0};
    bff_shape *shape = bff_shape_compile(def, "web.json", "routes[2].shape", &errs);
    json_decref(def); /* a shape keeps nothing of its definition */
    if (shape == NULL || errs.count != 0)
        fail_msg("compiling %s: %s", json, errs.count > 0 ? errs.items[0] : "?");
    return shape;
}

/* Shapes `value` with `def` and checks the result. */
static void expect_shape(const char *def, const char *value, const char *expected)
{
    bff_shape *shape = compile(def);
    json_t *out = bff_shape_apply(shape, parse(value));
    assert_json(out, expected);
    json_decref(out);
    bff_shape_free(shape);
}

/* Compiling `def` fails with exactly these errors (NULL-terminated). */
static void expect_errors(const char *def, ...)
{
    json_t *json = parse(def);
    cfg_errors errs = {0};
    bff_shape *shape = bff_shape_compile(json, "web.json", "routes[2].shape", &errs);
    json_decref(json);
    assert_null(shape);
    va_list ap;
    va_start(ap, def);
    size_t n = 0;
    for (const char *e = va_arg(ap, const char *); e != NULL; e = va_arg(ap, const char *), ++n) {
        if (n >= errs.count)
            fail_msg("%s: missing error %s", def, e);
        if (strcmp(errs.items[n], e) != 0)
            fail_msg("%s: expected\n  %s\ngot\n  %s", def, e, errs.items[n]);
    }
    va_end(ap);
    if (errs.count != n)
        fail_msg("%s: %zu errors, expected %zu; extra: %s", def, errs.count, n, errs.items[n]);
    cfg_errors_release(&errs);
}

static void test_unwrap(void **state)
{
    (void)state;
    expect_shape("{\"unwrap\": \"/data\"}", "{\"data\": {\"a\": 1}, \"meta\": 2}", "{\"a\": 1}");
    expect_shape("{\"unwrap\": \"/data/1\"}", "{\"data\": [\"x\", \"y\"]}", "\"y\"");
    expect_shape("{\"unwrap\": \"/nope\"}", "{\"data\": 1}", "null");
    expect_shape("{\"unwrap\": \"/data/x\"}", "{\"data\": 5}", "null");
    expect_shape("{\"unwrap\": \"\"}", "{\"data\": 1}", "{\"data\": 1}");
    expect_shape("{}", "[1, {\"a\": 2}]", "[1, {\"a\": 2}]");
}

static void test_allow(void **state)
{
    (void)state;
    expect_shape("{\"allow\": [\"/id\", \"/user/name\"]}",
                 "{\"id\": 1, \"user\": {\"name\": \"A\", \"email\": \"e\"}, \"x\": 3}",
                 "{\"id\": 1, \"user\": {\"name\": \"A\"}}");
    /* a subtree is kept whole; overlapping paths are fine */
    expect_shape("{\"allow\": [\"/user\", \"/user/name\"]}", "{\"user\": {\"name\": \"A\", \"e\": [1]}, \"x\": 3}",
                 "{\"user\": {\"name\": \"A\", \"e\": [1]}}");
    expect_shape("{\"allow\": [\"\"]}", "{\"a\": 1, \"b\": [2]}", "{\"a\": 1, \"b\": [2]}");
    /* a value that is not an object where the path expects one is kept as it is */
    expect_shape("{\"allow\": [\"/user/name\"]}", "{\"user\": \"bob\", \"x\": 1}", "{\"user\": \"bob\"}");
    expect_shape("{\"allow\": [\"/a\"]}", "\"text\"", "\"text\"");
    /* paths that do not exist keep nothing; objects on the way stay, emptied */
    expect_shape("{\"allow\": [\"/id\", \"/nope/deeper\", \"/user/nope\"]}", "{\"id\": 1, \"user\": {\"a\": 1}}",
                 "{\"id\": 1, \"user\": {}}");
    expect_shape("{\"allow\": [\"/a~1b\", \"/m~0n\"]}", "{\"a/b\": 1, \"m~n\": 2, \"c\": 3}",
                 "{\"a/b\": 1, \"m~n\": 2}");
    /* in an object, "0" is a member name */
    expect_shape("{\"allow\": [\"/o/0\"]}", "{\"o\": {\"0\": 1, \"1\": 2}}", "{\"o\": {\"0\": 1}}");
}

static void test_allow_through_arrays(void **state)
{
    (void)state;
    expect_shape("{\"allow\": [\"/items/title\"]}",
                 "{\"items\": [{\"title\": \"a\", \"p\": 1}, {\"p\": 2}, \"str\", [{\"title\": \"n\", \"z\": 1}]],"
                 " \"total\": 3}",
                 "{\"items\": [{\"title\": \"a\"}, {}, \"str\", [{\"title\": \"n\"}]]}");
    /* the root is an array */
    expect_shape("{\"allow\": [\"/id\"]}", "[{\"id\": 1, \"x\": 2}, {\"id\": 2}]", "[{\"id\": 1}, {\"id\": 2}]");
    /* an index keeps that element only */
    expect_shape("{\"allow\": [\"/items/1\"]}", "{\"items\": [1, 2, 3]}", "{\"items\": [2]}");
    expect_shape("{\"allow\": [\"/items/0/title\"]}", "{\"items\": [{\"title\": \"a\", \"x\": 1}, {\"title\": \"b\"}]}",
                 "{\"items\": [{\"title\": \"a\"}]}");
    /* an index and a name together: element 0 whole, the others filtered */
    expect_shape("{\"allow\": [\"/items/0\", \"/items/title\"]}",
                 "{\"items\": [{\"title\": \"a\", \"x\": 1}, {\"title\": \"b\", \"x\": 2}]}",
                 "{\"items\": [{\"title\": \"a\", \"x\": 1}, {\"title\": \"b\"}]}");
    /* an index is used by the array itself: it does not name members of the other elements */
    expect_shape("{\"allow\": [\"/items/0\", \"/items/title\"]}",
                 "{\"items\": [{\"title\": \"a\", \"0\": 1}, {\"title\": \"b\", \"0\": 2}]}",
                 "{\"items\": [{\"title\": \"a\", \"0\": 1}, {\"title\": \"b\"}]}");
    /* nested arrays by index */
    expect_shape("{\"allow\": [\"/m/1/0\"]}", "{\"m\": [[1, 2], [3, 4]]}", "{\"m\": [[3]]}");
    /* several names through the same array */
    expect_shape("{\"allow\": [\"/items/id\", \"/items/tags/0\"]}",
                 "{\"items\": [{\"id\": 1, \"tags\": [\"a\", \"b\"], \"x\": 0}, {\"id\": 2, \"tags\": []}]}",
                 "{\"items\": [{\"id\": 1, \"tags\": [\"a\"]}, {\"id\": 2, \"tags\": []}]}");
}

static void test_deny(void **state)
{
    (void)state;
    expect_shape("{\"deny\": [\"/user/email\"]}", "{\"user\": {\"name\": \"A\", \"email\": \"e\"}}",
                 "{\"user\": {\"name\": \"A\"}}");
    expect_shape("{\"deny\": [\"/items/secret\"]}",
                 "{\"items\": [{\"id\": 1, \"secret\": 2}, {\"id\": 2}, 7, [{\"secret\": 3, \"k\": 1}]]}",
                 "{\"items\": [{\"id\": 1}, {\"id\": 2}, 7, [{\"k\": 1}]]}");
    expect_shape("{\"deny\": [\"/items/0\"]}", "{\"items\": [\"a\", \"b\"]}", "{\"items\": [\"b\"]}");
    expect_shape("{\"deny\": [\"/items/5\"]}", "{\"items\": [\"a\", \"b\"]}", "{\"items\": [\"a\", \"b\"]}");
    expect_shape("{\"deny\": [\"/token\"]}", "[{\"token\": 1, \"a\": 2}, {\"a\": 3}]", "[{\"a\": 2}, {\"a\": 3}]");
    /* nothing there: no effect */
    expect_shape("{\"deny\": [\"/nope\", \"/user/nope/x\", \"/user/name/x\"]}", "{\"user\": {\"name\": \"A\"}}",
                 "{\"user\": {\"name\": \"A\"}}");
    expect_shape("{\"deny\": [\"/a\"]}", "42", "42");
    expect_shape("{\"deny\": []}", "{\"a\": 1}", "{\"a\": 1}");
}

static void test_limit(void **state)
{
    (void)state;
    expect_shape("{\"limit\": {\"/items\": 2}}", "{\"items\": [1, 2, 3, 4, 5]}", "{\"items\": [1, 2]}");
    expect_shape("{\"limit\": {\"\": 1}}", "[1, 2, 3]", "[1]");
    expect_shape("{\"limit\": {\"/items\": 0}}", "{\"items\": [1, 2]}", "{\"items\": []}");
    expect_shape("{\"limit\": {\"/items\": 5}}", "{\"items\": [1, 2]}", "{\"items\": [1, 2]}");
    expect_shape("{\"limit\": {\"/items\": 1}}", "{\"items\": {\"a\": 1, \"b\": 2}}",
                 "{\"items\": {\"a\": 1, \"b\": 2}}");
    expect_shape("{\"limit\": {\"/nope\": 1}}", "{\"items\": [1, 2]}", "{\"items\": [1, 2]}");
    /* through arrays: each group's members */
    expect_shape("{\"limit\": {\"/groups/members\": 1}}",
                 "{\"groups\": [{\"members\": [1, 2]}, {\"members\": [3]}, {\"other\": [4, 5]}]}",
                 "{\"groups\": [{\"members\": [1]}, {\"members\": [3]}, {\"other\": [4, 5]}]}");
    /* the root and a member at once */
    expect_shape("{\"limit\": {\"\": 2, \"/t\": 1}}", "[{\"t\": [1, 2]}, {\"t\": [3, 4]}, {\"t\": [5]}]",
                 "[{\"t\": [1]}, {\"t\": [3]}]");
    expect_shape("{\"limit\": {\"/m/1\": 1}}", "{\"m\": [[1, 2], [3, 4]]}", "{\"m\": [[1, 2], [3]]}");
}

static void test_rename(void **state)
{
    (void)state;
    expect_shape("{\"rename\": {\"/user/name\": \"userName\"}}", "{\"user\": {\"name\": \"A\", \"id\": 1}}",
                 "{\"user\": {\"userName\": \"A\", \"id\": 1}}");
    expect_shape("{\"rename\": {\"/items/title\": \"name\"}}",
                 "{\"items\": [{\"title\": \"a\"}, {\"x\": 1}, [{\"title\": \"b\"}]]}",
                 "{\"items\": [{\"name\": \"a\"}, {\"x\": 1}, [{\"name\": \"b\"}]]}");
    /* the new name replaces a member that already has it */
    expect_shape("{\"rename\": {\"/a\": \"b\"}}", "{\"a\": 1, \"b\": 2}", "{\"b\": 1}");
    expect_shape("{\"rename\": {\"/a\": \"a\"}}", "{\"a\": 1}", "{\"a\": 1}");
    /* a parent and its child: both by their original names */
    expect_shape("{\"rename\": {\"/user\": \"account\", \"/user/name\": \"userName\"}}",
                 "{\"user\": {\"name\": \"A\"}}", "{\"account\": {\"userName\": \"A\"}}");
    expect_shape("{\"rename\": {\"/nope\": \"x\", \"/items/0\": \"first\", \"/n/deep\": \"x\"}}",
                 "{\"items\": [1], \"n\": 5}", "{\"items\": [1], \"n\": 5}");
}

static void test_order_of_operations(void **state)
{
    (void)state;
    expect_shape("{\"unwrap\": \"/data\", \"allow\": [\"/user\", \"/items/title\", \"/items/id\"],"
                 " \"deny\": [\"/user/email\"], \"limit\": {\"/items\": 2},"
                 " \"rename\": {\"/user/name\": \"userName\", \"/items/title\": \"name\"}}",
                 "{\"data\": {\"user\": {\"name\": \"A\", \"email\": \"e\", \"age\": 3}, \"items\": [{\"id\": 1,"
                 " \"title\": \"t1\", \"x\": 0}, {\"id\": 2, \"title\": \"t2\"}, {\"id\": 3, \"title\": \"t3\"}],"
                 " \"other\": 1}, \"meta\": {}}",
                 "{\"user\": {\"userName\": \"A\", \"age\": 3}, \"items\": [{\"id\": 1, \"name\": \"t1\"},"
                 " {\"id\": 2, \"name\": \"t2\"}]}");
    /* paths after unwrap are relative to the unwrapped value */
    expect_shape("{\"unwrap\": \"/data\", \"allow\": [\"/a\"]}", "{\"data\": {\"a\": 1, \"b\": 2}, \"a\": 9}",
                 "{\"a\": 1}");
    /* deny, limit and allow use the original names: rename runs last */
    expect_shape("{\"deny\": [\"/user/name\"], \"rename\": {\"/user/name\": \"n\"}}",
                 "{\"user\": {\"name\": \"A\", \"id\": 1}}", "{\"user\": {\"id\": 1}}");
    expect_shape("{\"limit\": {\"/items\": 1}, \"rename\": {\"/items\": \"list\"}}", "{\"items\": [1, 2]}",
                 "{\"list\": [1]}");
    expect_shape("{\"allow\": [\"/a\"], \"rename\": {\"/a\": \"b\"}}", "{\"a\": 1, \"b\": 2}", "{\"b\": 1}");
    /* deny runs after allow: a denied member inside an allowed subtree goes */
    expect_shape("{\"allow\": [\"/user\"], \"deny\": [\"/user/email\"]}",
                 "{\"user\": {\"name\": \"A\", \"email\": \"e\"}, \"x\": 1}", "{\"user\": {\"name\": \"A\"}}");
    /* limit runs after deny: deny by index first, then cut */
    expect_shape("{\"deny\": [\"/items/0\"], \"limit\": {\"/items\": 1}}", "{\"items\": [1, 2, 3]}",
                 "{\"items\": [2]}");
}

/* Shapes a value that another holder also references; that holder must still see the original. */
static void expect_shared_untouched(const char *def, const char *value, const char *expected)
{
    bff_shape *shape = compile(def);
    json_t *held = parse(value);
    json_t *original = json_deep_copy(held);
    json_t *out = bff_shape_apply(shape, json_incref(held));
    assert_json(out, expected);
    assert_true(json_equal(held, original));
    json_decref(out);
    json_decref(held);
    json_decref(original);
    bff_shape_free(shape);
}

static void test_shared_values_are_not_modified(void **state)
{
    (void)state;
    const char *value = "{\"data\": {\"user\": {\"name\": \"A\", \"email\": \"e\"}, \"items\": [{\"t\": 1, \"s\": 2},"
                        " {\"t\": 3, \"s\": 4}, {\"t\": 5}]}}";
    expect_shared_untouched(
        "{\"deny\": [\"/data/user/email\", \"/data/items/s\"]}", value,
        "{\"data\": {\"user\": {\"name\": \"A\"}, \"items\": [{\"t\": 1}, {\"t\": 3}, {\"t\": 5}]}}");
    expect_shared_untouched("{\"limit\": {\"/data/items\": 1}}", value,
                            "{\"data\": {\"user\": {\"name\": \"A\", \"email\": \"e\"}, \"items\": [{\"t\": 1, "
                            "\"s\": 2}]}}");
    expect_shared_untouched("{\"rename\": {\"/data/items/t\": \"title\"}}", value,
                            "{\"data\": {\"user\": {\"name\": \"A\", \"email\": \"e\"}, \"items\": [{\"title\": 1, "
                            "\"s\": 2}, {\"title\": 3, \"s\": 4}, {\"title\": 5}]}}");
    expect_shared_untouched("{\"unwrap\": \"/data\", \"allow\": [\"/items/t\"], \"deny\": [\"/items/0\"]}", value,
                            "{\"items\": [{\"t\": 3}, {\"t\": 5}]}");
    expect_shared_untouched("{\"unwrap\": \"/data/user\", \"deny\": [\"/email\"], \"rename\": {\"/name\": \"n\"}}",
                            value, "{\"n\": \"A\"}");
    expect_shared_untouched("{\"limit\": {\"\": 1}}", "[1, 2]", "[1]");
}

static void test_shared_inner_values(void **state)
{
    (void)state;
    /* The root is ours alone, but a member is also held elsewhere. */
    bff_shape *shape = compile("{\"deny\": [\"/user/email\", \"/items/s\"], \"limit\": {\"/list\": 1}}");
    json_t *value = parse("{\"user\": {\"name\": \"A\", \"email\": \"e\"}, \"items\": [{\"s\": 1}], \"list\": [1, 2]}");
    json_t *user = json_incref(json_object_get(value, "user"));
    json_t *item = json_incref(json_array_get(json_object_get(value, "items"), 0));
    json_t *list = json_incref(json_object_get(value, "list"));
    json_t *out = bff_shape_apply(shape, value);
    assert_json(out, "{\"user\": {\"name\": \"A\"}, \"items\": [{}], \"list\": [1]}");
    assert_json(user, "{\"name\": \"A\", \"email\": \"e\"}");
    assert_json(item, "{\"s\": 1}");
    assert_json(list, "[1, 2]");
    json_decref(out);
    json_decref(user);
    json_decref(item);
    json_decref(list);
    bff_shape_free(shape);

    /* The same object twice in one value: changing one place must not change the other. */
    shape = compile("{\"deny\": [\"/a/secret\"]}");
    json_t *shared = parse("{\"secret\": 1, \"k\": 2}");
    value = json_pack("{s:O, s:O}", "a", shared, "b", shared);
    out = bff_shape_apply(shape, value);
    assert_json(out, "{\"a\": {\"k\": 2}, \"b\": {\"secret\": 1, \"k\": 2}}");
    assert_json(shared, "{\"secret\": 1, \"k\": 2}");
    json_decref(out);
    json_decref(shared);
    bff_shape_free(shape);
}

static void test_no_needless_copies(void **state)
{
    (void)state;
    /* A value held by nobody else is changed in place. */
    bff_shape *shape = compile("{\"deny\": [\"/a\"], \"limit\": {\"/b\": 1}, \"rename\": {\"/c\": \"d\"}}");
    json_t *value = parse("{\"a\": 1, \"b\": [1, 2], \"c\": 3}");
    json_t *b = json_object_get(value, "b");
    json_t *out = bff_shape_apply(shape, value);
    assert_ptr_equal(out, value);
    assert_ptr_equal(json_object_get(out, "b"), b);
    assert_json(out, "{\"b\": [1], \"d\": 3}");
    json_decref(out);

    /* Shared elements are copied only where something changes. */
    json_t *x = parse("{\"secret\": 1}"), *y = parse("{\"k\": 2}");
    json_t *deny = json_pack("{s:[O,O]}", "items", x, y);
    bff_shape *deny_shape = compile("{\"deny\": [\"/items/secret\"]}");
    out = bff_shape_apply(deny_shape, deny);
    assert_json(out, "{\"items\": [{}, {\"k\": 2}]}");
    assert_ptr_not_equal(json_array_get(json_object_get(out, "items"), 0), x);
    assert_ptr_equal(json_array_get(json_object_get(out, "items"), 1), y);
    assert_json(x, "{\"secret\": 1}");
    json_decref(out);
    json_decref(x);
    json_decref(y);
    bff_shape_free(deny_shape);

    /* A shared value the shape does not change is returned as it is. */
    json_t *held = parse("{\"x\": [1], \"y\": {\"z\": 1}}");
    out = bff_shape_apply(shape, json_incref(held));
    assert_ptr_equal(out, held);
    json_decref(out);
    json_decref(held);
    bff_shape_free(shape);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_errors("[1]",
                  "web.json: routes[2].shape: must be an object with \"unwrap\", \"allow\", \"deny\", \"limit\" "
                  "or \"rename\"",
                  NULL);
    expect_errors("{\"alow\": [\"/a\"]}", "web.json: routes[2].shape.alow: unknown key \"alow\"", NULL);
    expect_errors("{\"unwrap\": \"data\"}",
                  "web.json: routes[2].shape.unwrap: must be a JSON Pointer such as \"/data\"", NULL);
    expect_errors("{\"unwrap\": 5}", "web.json: routes[2].shape.unwrap: must be a JSON Pointer such as \"/data\"",
                  NULL);
    expect_errors("{\"allow\": \"/a\"}",
                  "web.json: routes[2].shape.allow: must be a non-empty list of JSON Pointers such as \"/user/name\"",
                  NULL);
    expect_errors("{\"allow\": []}",
                  "web.json: routes[2].shape.allow: must be a non-empty list of JSON Pointers such as \"/user/name\"",
                  NULL);
    expect_errors("{\"allow\": [\"/id\", \"user/name\", \"/a~2\", 3]}",
                  "web.json: routes[2].shape.allow[1]: must be a JSON Pointer such as \"/user/name\"",
                  "web.json: routes[2].shape.allow[2]: must be a JSON Pointer such as \"/user/name\"",
                  "web.json: routes[2].shape.allow[3]: must be a JSON Pointer such as \"/user/name\"", NULL);
    expect_errors("{\"deny\": {}}",
                  "web.json: routes[2].shape.deny: must be a list of JSON Pointers such as \"/user/email\"", NULL);
    expect_errors("{\"deny\": [\"\", \"email\"]}",
                  "web.json: routes[2].shape.deny[0]: cannot deny the root (\"\"); name a member such as "
                  "\"/user/email\"",
                  "web.json: routes[2].shape.deny[1]: must be a JSON Pointer such as \"/user/email\"", NULL);
    expect_errors("{\"limit\": [5]}",
                  "web.json: routes[2].shape.limit: must be an object of JSON Pointers and maximum lengths, such as "
                  "{\"/items\": 5}",
                  NULL);
    expect_errors("{\"limit\": {\"/a\": -1, \"/b\": 1000001, \"/c\": 2.5, \"/d\": \"5\", \"items\": 5, \"/ok\": "
                  "1000000, \"/zero\": 0}}",
                  "web.json: routes[2].shape.limit[\"/a\"]: must be an integer between 0 and 1000000",
                  "web.json: routes[2].shape.limit[\"/b\"]: must be an integer between 0 and 1000000",
                  "web.json: routes[2].shape.limit[\"/c\"]: must be an integer between 0 and 1000000",
                  "web.json: routes[2].shape.limit[\"/d\"]: must be an integer between 0 and 1000000",
                  "web.json: routes[2].shape.limit[\"items\"]: the key must be a JSON Pointer such as \"/items\"",
                  NULL);
    expect_errors("{\"rename\": \"x\"}",
                  "web.json: routes[2].shape.rename: must be an object of JSON Pointers and new names, such as "
                  "{\"/user/name\": \"userName\"}",
                  NULL);
    expect_errors("{\"rename\": {\"/a\": \"\", \"/b\": \"x/y\", \"/c\": 5, \"\": \"root\", \"d\": \"e\", \"/ok\": "
                  "\"fine\"}}",
                  "web.json: routes[2].shape.rename[\"/a\"]: must be a non-empty name without \"/\"",
                  "web.json: routes[2].shape.rename[\"/b\"]: must be a non-empty name without \"/\"",
                  "web.json: routes[2].shape.rename[\"/c\"]: must be a non-empty name without \"/\"",
                  "web.json: routes[2].shape.rename[\"\"]: cannot rename the root (\"\")",
                  "web.json: routes[2].shape.rename[\"d\"]: the key must be a JSON Pointer such as \"/user/name\"",
                  NULL);
    /* every problem is reported, not just the first */
    expect_errors("{\"unwrap\": \"x\", \"deny\": [\"y\"], \"extra\": 1}",
                  "web.json: routes[2].shape.extra: unknown key \"extra\"",
                  "web.json: routes[2].shape.unwrap: must be a JSON Pointer such as \"/data\"",
                  "web.json: routes[2].shape.deny[0]: must be a JSON Pointer such as \"/user/email\"", NULL);

    /* a valid shape with every key compiles cleanly */
    cfg_errors errs = {0};
    json_t *def = parse("{\"unwrap\": \"\", \"allow\": [\"\"], \"deny\": [\"/a\"], \"limit\": {\"\": 0}, "
                        "\"rename\": {\"/b\": \"c\"}}");
    bff_shape *shape = bff_shape_compile(def, "web.json", "routes[2].shape", &errs);
    assert_non_null(shape);
    assert_int_equal(errs.count, 0);
    bff_shape_free(shape);
    bff_shape_free(NULL);
    json_decref(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unwrap),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_allow_through_arrays),
        cmocka_unit_test(test_deny),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_order_of_operations),
        cmocka_unit_test(test_shared_values_are_not_modified),
        cmocka_unit_test(test_shared_inner_values),
        cmocka_unit_test(test_no_needless_copies),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests_name("unit/bff/shape", tests, NULL, NULL);
}
