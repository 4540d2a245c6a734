/* Unit tests for bff/route_table: pattern validation, matching priority, methods, scale. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bff/route_table.h"

static int value_a, value_b, value_c, value_d, value_e;

static void add_ok(bff_route_table *table, unsigned methods, const char *pattern, void *value)
{
    char err[256] = "";
    int rc = bff_route_table_add(table, methods, pattern, value, err, sizeof(err));
    if (rc != 0)
        fail_msg("adding \"%s\" failed: %d %s", pattern, rc, err);
}

static int match(const bff_route_table *table, unsigned method, const char *path, bff_route_match *out)
{
    return bff_route_table_match(table, method, path, strlen(path), out);
}

static void assert_param(const bff_route_match *m, size_t i, const char *name, const char *value)
{
    assert_true(i < m->nparams);
    assert_string_equal(m->params[i].name, name);
    assert_int_equal(m->params[i].name_len, strlen(name));
    assert_int_equal(m->params[i].value_len, strlen(value));
    if (m->params[i].value_len > 0)
        assert_memory_equal(m->params[i].value, value, m->params[i].value_len);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static bff_route_table *new_table(void)
{
    bff_route_table *table = bff_route_table_new();
    assert_non_null(table);
    return table;
}

static void test_literal_match(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/", &value_a);
    add_ok(table, BFF_METHOD_GET, "/products", &value_b);
    add_ok(table, BFF_METHOD_GET, "/products/list", &value_c);
    assert_int_equal(bff_route_table_size(table), 3);

    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_string_equal(m.pattern, "/");
    assert_int_equal(m.nparams, 0);

    assert_int_equal(match(table, BFF_METHOD_GET, "/products", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_string_equal(m.pattern, "/products");

    assert_int_equal(match(table, BFF_METHOD_GET, "/products/list", &m), 1);
    assert_ptr_equal(m.value, &value_c);
    assert_int_equal(m.nparams, 0);

    assert_int_equal(match(table, BFF_METHOD_GET, "/product", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/productsx", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/products/list/more", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/other", &m), 0);
    /* Only the first len bytes count. */
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, "/products/list", 9, &m), 1);
    assert_ptr_equal(m.value, &value_b);
    bff_route_table_free(&table);
}

static void test_trailing_slash_is_a_different_path(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/products", &value_a);
    add_ok(table, BFF_METHOD_GET, "/items/{id}", &value_b);

    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/products", &m), 1);
    assert_int_equal(match(table, BFF_METHOD_GET, "/products/", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/items/7", &m), 1);
    assert_int_equal(match(table, BFF_METHOD_GET, "/items/7/", &m), 0);
    /* A parameter never matches an empty segment. */
    assert_int_equal(match(table, BFF_METHOD_GET, "/items/", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/items//", &m), 0);
    bff_route_table_free(&table);
}

static void test_params_values_and_names(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/users/{user_id}/orders/{orderId}", &value_a);
    add_ok(table, BFF_METHOD_GET, "/u/{name}", &value_b);

    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/users/42/orders/A-7", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_string_equal(m.pattern, "/users/{user_id}/orders/{orderId}");
    assert_int_equal(m.nparams, 2);
    assert_param(&m, 0, "user_id", "42");
    assert_param(&m, 1, "orderId", "A-7");

    /* Values point into the path and are not decoded. */
    const char *path = "/u/a%20b";
    assert_int_equal(match(table, BFF_METHOD_GET, path, &m), 1);
    assert_ptr_equal(m.params[0].value, path + 3);
    assert_param(&m, 0, "name", "a%20b");

    assert_int_equal(match(table, BFF_METHOD_GET, "/users/42/orders", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/users/42/orders/7/x", &m), 0);
    bff_route_table_free(&table);
}

static void test_pattern_and_names_are_copied(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "/copy/{key}");
    add_ok(table, BFF_METHOD_GET, pattern, &value_a);
    memset(pattern, 'X', sizeof(pattern) - 1);

    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/copy/v", &m), 1);
    assert_string_equal(m.pattern, "/copy/{key}");
    assert_param(&m, 0, "key", "v");
    bff_route_table_free(&table);
}

static void test_wildcard_zero_one_many(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/files/{path*}", &value_a);

    struct {
        const char *path;
        const char *rest;
    } cases[] = {
        {"/files", ""}, {"/files/", ""}, {"/files/a", "a"}, {"/files/a/b/c.txt", "a/b/c.txt"}, {"/files//x", "/x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bff_route_match m;
        assert_int_equal(match(table, BFF_METHOD_GET, cases[i].path, &m), 1);
        assert_ptr_equal(m.value, &value_a);
        assert_int_equal(m.nparams, 1);
        assert_param(&m, 0, "path", cases[i].rest);
    }
    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/filesx", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/", &m), 0);
    bff_route_table_free(&table);
}

static void test_wildcard_after_params_and_at_root(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/", &value_a);
    add_ok(table, BFF_METHOD_GET, "/{all*}", &value_b);
    add_ok(table, BFF_METHOD_GET, "/t/{tenant}/{rest*}", &value_c);

    bff_route_match m;
    /* The root route beats the root wildcard at zero segments. */
    assert_int_equal(match(table, BFF_METHOD_GET, "/", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_int_equal(match(table, BFF_METHOD_GET, "//", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_param(&m, 0, "all", "/");
    assert_int_equal(match(table, BFF_METHOD_GET, "/x/y", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_param(&m, 0, "all", "x/y");

    assert_int_equal(match(table, BFF_METHOD_GET, "/t/acme/a/b", &m), 1);
    assert_ptr_equal(m.value, &value_c);
    assert_int_equal(m.nparams, 2);
    assert_param(&m, 0, "tenant", "acme");
    assert_param(&m, 1, "rest", "a/b");
    assert_int_equal(match(table, BFF_METHOD_GET, "/t/acme", &m), 1);
    assert_ptr_equal(m.value, &value_c);
    assert_param(&m, 1, "rest", "");
    /* "/t/" has an empty segment the parameter refuses: only the root wildcard is left. */
    assert_int_equal(match(table, BFF_METHOD_GET, "/t/", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_param(&m, 0, "all", "t/");
    bff_route_table_free(&table);
}

static void test_literal_over_param_over_wildcard(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/a/{x}", &value_b);
    add_ok(table, BFF_METHOD_GET, "/a/{rest*}", &value_c);
    add_ok(table, BFF_METHOD_GET, "/a/b", &value_a);
    add_ok(table, BFF_METHOD_GET, "/a", &value_d);

    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/a/b", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/a/c", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_param(&m, 0, "x", "c");
    assert_int_equal(match(table, BFF_METHOD_GET, "/a/c/d", &m), 1);
    assert_ptr_equal(m.value, &value_c);
    assert_param(&m, 0, "rest", "c/d");
    /* At zero segments the node's own route beats its wildcard. */
    assert_int_equal(match(table, BFF_METHOD_GET, "/a", &m), 1);
    assert_ptr_equal(m.value, &value_d);
    assert_int_equal(match(table, BFF_METHOD_GET, "/a/", &m), 1);
    assert_ptr_equal(m.value, &value_c);
    bff_route_table_free(&table);
}

static void test_backtracking(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/a/b/c", &value_a);
    add_ok(table, BFF_METHOD_GET, "/a/{x}/d", &value_b);

    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/a/b/d", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_int_equal(m.nparams, 1);
    assert_param(&m, 0, "x", "b");
    assert_int_equal(match(table, BFF_METHOD_GET, "/a/b/c", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/a/b/e", &m), 0);

    /* Backing out of several levels, and of a parameter whose capture must be dropped. */
    add_ok(table, BFF_METHOD_GET, "/p/q/r/s", &value_c);
    add_ok(table, BFF_METHOD_GET, "/{first}/q/r/t", &value_d);
    assert_int_equal(match(table, BFF_METHOD_GET, "/p/q/r/t", &m), 1);
    assert_ptr_equal(m.value, &value_d);
    assert_param(&m, 0, "first", "p");

    add_ok(table, BFF_METHOD_GET, "/{k}/{l}/end", &value_e);
    add_ok(table, BFF_METHOD_GET, "/{k}/lit/{c}/{d}", &value_a);
    assert_int_equal(match(table, BFF_METHOD_GET, "/1/lit/end", &m), 1);
    assert_ptr_equal(m.value, &value_e);
    assert_int_equal(m.nparams, 2);
    assert_param(&m, 0, "k", "1");
    assert_param(&m, 1, "l", "lit");

    /* Backtracking from a parameter branch to a wildcard. */
    add_ok(table, BFF_METHOD_GET, "/w/{x}/leaf", &value_b);
    add_ok(table, BFF_METHOD_GET, "/w/{rest*}", &value_c);
    assert_int_equal(match(table, BFF_METHOD_GET, "/w/1/other", &m), 1);
    assert_ptr_equal(m.value, &value_c);
    assert_int_equal(m.nparams, 1);
    assert_param(&m, 0, "rest", "1/other");
    bff_route_table_free(&table);
}

static void test_404_vs_405(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET | BFF_METHOD_POST, "/items", &value_a);
    add_ok(table, BFF_METHOD_DELETE, "/items/{id}", &value_b);

    bff_route_match m;
    memset(&m, 0xA5, sizeof(m));
    m.value = &value_e;
    m.nparams = 3;
    assert_int_equal(match(table, BFF_METHOD_GET, "/nothing", &m), 0);
    assert_int_equal(m.allowed, 0);
    assert_ptr_equal(m.value, &value_e); /* untouched except allowed */
    assert_int_equal(m.nparams, 3);

    assert_int_equal(match(table, BFF_METHOD_DELETE, "/items", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_GET | BFF_METHOD_HEAD | BFF_METHOD_POST);
    char list[64];
    bff_method_list(m.allowed, list, sizeof(list));
    assert_string_equal(list, "GET, HEAD, POST");

    assert_int_equal(match(table, BFF_METHOD_GET, "/items/9", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_DELETE);

    assert_int_equal(match(table, BFF_METHOD_POST, "/items", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_int_equal(m.allowed, BFF_METHOD_GET | BFF_METHOD_HEAD | BFF_METHOD_POST);

    /* A method the gateway does not route (0), or several bits, is a 405 on an existing path. */
    assert_int_equal(match(table, 0, "/items", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_GET | BFF_METHOD_HEAD | BFF_METHOD_POST);
    assert_int_equal(match(table, BFF_METHOD_GET | BFF_METHOD_POST, "/items", &m), -1);
    assert_int_equal(match(table, 0, "/nothing", &m), 0);
    assert_int_equal(m.allowed, 0);

    /* Malformed paths are 404s. */
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, "", 0, &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "items", &m), 0);
    assert_int_equal(m.allowed, 0);
    bff_route_table_free(&table);
}

static void test_method_falls_through_to_other_shapes(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/users/{id}", &value_a);
    add_ok(table, BFF_METHOD_DELETE, "/users/me", &value_b);

    bff_route_match m;
    /* The literal has no GET, so the parameter route answers. */
    assert_int_equal(match(table, BFF_METHOD_GET, "/users/me", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_param(&m, 0, "id", "me");
    assert_int_equal(match(table, BFF_METHOD_DELETE, "/users/me", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_int_equal(m.allowed, BFF_METHOD_DELETE);
    /* A 405 lists the methods of every route that matches the path. */
    assert_int_equal(match(table, BFF_METHOD_POST, "/users/me", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_GET | BFF_METHOD_HEAD | BFF_METHOD_DELETE);
    assert_int_equal(match(table, BFF_METHOD_POST, "/users/7", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_GET | BFF_METHOD_HEAD);
    bff_route_table_free(&table);
}

static void test_head_falls_back_to_get(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/page", &value_a);
    add_ok(table, BFF_METHOD_GET, "/explicit", &value_b);
    add_ok(table, BFF_METHOD_HEAD, "/explicit", &value_c);
    add_ok(table, BFF_METHOD_POST, "/form", &value_d);
    add_ok(table, BFF_METHOD_HEAD, "/head-only", &value_e);

    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_HEAD, "/page", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_int_equal(m.allowed, BFF_METHOD_GET | BFF_METHOD_HEAD);
    assert_int_equal(match(table, BFF_METHOD_HEAD, "/explicit", &m), 1);
    assert_ptr_equal(m.value, &value_c);
    assert_int_equal(match(table, BFF_METHOD_GET, "/explicit", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    /* No GET, no fallback, and no HEAD in allowed. */
    assert_int_equal(match(table, BFF_METHOD_HEAD, "/form", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_POST);
    /* HEAD does not stand in for GET. */
    assert_int_equal(match(table, BFF_METHOD_GET, "/head-only", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_HEAD);
    bff_route_table_free(&table);
}

static void test_pattern_errors_einval(void **state)
{
    (void)state;
    struct {
        const char *pattern;
        const char *reason;
        const char *probe; /* a path the pattern would match if it had been added, or NULL */
    } cases[] = {
        {"", "must start with '/'", NULL},
        {"products", "pattern \"products\" must start with '/'", "/products"},
        {"//", "segment 1 \"\": empty segment", "//"},
        {"/a//b", "segment 2 \"\": empty segment", "/a//b"},
        {"/products/", "segment 2 \"\": empty segment", "/products/"},
        {"/products/{id", "segment 2 \"{id\": unterminated parameter", "/products/{id"},
        {"/{}", "segment 1 \"{}\": empty parameter name", "/x"},
        {"/{*}", "segment 1 \"{*}\": empty parameter name", "/x"},
        {"/{1a}", "segment 1 \"{1a}\": invalid parameter name", "/x"},
        {"/{a-b}", "invalid parameter name", "/x"},
        {"/{a{b}", "invalid parameter name", "/x"},
        {"/{id}.json", "segment 1 \"{id}.json\": text after the parameter's '}'", "/x.json"},
        {"/x{id}", "segment 1 \"x{id}\": '{' or '}' inside a literal", "/x{id}"},
        {"/a/b}", "segment 2 \"b}\": '{' or '}' inside a literal", "/a/b}"},
        {"/{p*}/x", "segment 1 \"{p*}\": a wildcard must be the last segment", "/q/x"},
        {"/{a}/{a}", "segment 2 \"{a}\": duplicate parameter name", "/x/y"},
        {"/{a}/{a*}", "segment 2 \"{a*}\": duplicate parameter name", "/x/y"},
    };
    bff_route_table *table = new_table();
    add_ok(table, BFF_METHOD_GET, "/keep", &value_a);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        int rc = bff_route_table_add(table, BFF_METHOD_GET, cases[i].pattern, &value_b, err, sizeof(err));
        if (rc != -EINVAL || strstr(err, cases[i].reason) == NULL)
            fail_msg("pattern \"%s\": rc %d, err \"%s\", want -EINVAL and \"%s\"", cases[i].pattern, rc, err,
                     cases[i].reason);
        assert_int_equal(bff_route_table_size(table), 1);
        bff_route_match m;
        if (cases[i].probe != NULL)
            assert_int_equal(match(table, BFF_METHOD_GET, cases[i].probe, &m), 0);
    }

    char err[256] = "";
    assert_int_equal(bff_route_table_add(table, 0, "/ok", &value_b, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "methods"));
    assert_int_equal(bff_route_table_add(table, 1u << BFF_METHOD_COUNT, "/ok", &value_b, err, sizeof(err)), -EINVAL);
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_GET, NULL, &value_b, err, sizeof(err)), -EINVAL);
    assert_int_equal(bff_route_table_add(NULL, BFF_METHOD_GET, "/ok", &value_b, err, sizeof(err)), -EINVAL);
    /* No error buffer, or a tiny one, is fine; the message is cut and NUL-terminated. */
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_GET, "/{", NULL, NULL, 0), -EINVAL);
    char tiny[8];
    memset(tiny, 'Z', sizeof(tiny));
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_GET, "/{", NULL, tiny, sizeof(tiny)), -EINVAL);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_int_equal(bff_route_table_size(table), 1);
    bff_route_table_free(&table);
}

static void test_pattern_error_eexist(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    char err[256] = "";
    add_ok(table, BFF_METHOD_GET, "/a/{id}", &value_a);
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_GET, "/a/{x}", &value_b, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "/a/{id}"));
    assert_non_null(strstr(err, "GET"));

    /* Same shape, another method: fine. One taken method refuses the whole call. */
    add_ok(table, BFF_METHOD_POST, "/a/{x}", &value_b);
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_PUT | BFF_METHOD_POST, "/a/{y}", &value_c, err, sizeof(err)),
                     -EEXIST);
    assert_non_null(strstr(err, "POST"));
    assert_int_equal(bff_route_table_size(table), 2);

    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_PUT, "/a/1", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_GET | BFF_METHOD_HEAD | BFF_METHOD_POST);
    assert_int_equal(match(table, BFF_METHOD_POST, "/a/1", &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_param(&m, 0, "x", "1");
    assert_int_equal(match(table, BFF_METHOD_GET, "/a/1", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_param(&m, 0, "id", "1");

    add_ok(table, BFF_METHOD_GET, "/w/{p*}", &value_a);
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_GET, "/w/{q*}", &value_b, err, sizeof(err)), -EEXIST);
    add_ok(table, BFF_METHOD_GET, "/", &value_a);
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_GET, "/", &value_b, err, sizeof(err)), -EEXIST);
    add_ok(table, BFF_METHOD_GET, "/a/lit", &value_c);  /* a literal is another shape */
    add_ok(table, BFF_METHOD_HEAD, "/a/{z}", &value_d); /* an explicit HEAD beside GET */
    assert_int_equal(bff_route_table_size(table), 6);
    bff_route_table_free(&table);
}

static void build_params_pattern(char *buf, size_t cap, int nparams, bool wildcard)
{
    size_t used = 0;
    for (int i = 0; i < nparams; i++)
        used += (size_t)snprintf(buf + used, cap - used, "/{p%d}", i);
    snprintf(buf + used, cap - used, wildcard ? "/{rest*}" : "/end");
}

static void test_pattern_error_e2big(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    char pattern[512], err[256] = "";

    build_params_pattern(pattern, sizeof(pattern), BFF_ROUTE_MAX_PARAMS + 1, false);
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_GET, pattern, &value_a, err, sizeof(err)), -E2BIG);
    assert_non_null(strstr(err, "17 parameters"));
    build_params_pattern(pattern, sizeof(pattern), BFF_ROUTE_MAX_PARAMS, true);
    assert_int_equal(bff_route_table_add(table, BFF_METHOD_GET, pattern, &value_a, err, sizeof(err)), -E2BIG);
    assert_int_equal(bff_route_table_size(table), 0);

    build_params_pattern(pattern, sizeof(pattern), BFF_ROUTE_MAX_PARAMS, false);
    add_ok(table, BFF_METHOD_GET, pattern, &value_a);
    build_params_pattern(pattern, sizeof(pattern), BFF_ROUTE_MAX_PARAMS - 1, true);
    add_ok(table, BFF_METHOD_GET, pattern, &value_b);

    char path[512];
    size_t used = 0;
    for (int i = 0; i < BFF_ROUTE_MAX_PARAMS; i++)
        used += (size_t)snprintf(path + used, sizeof(path) - used, "/v%d", i);
    snprintf(path + used, sizeof(path) - used, "/end");
    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, path, &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_int_equal(m.nparams, BFF_ROUTE_MAX_PARAMS);
    for (int i = 0; i < BFF_ROUTE_MAX_PARAMS; i++) {
        char name[8], value[8];
        snprintf(name, sizeof(name), "p%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_param(&m, (size_t)i, name, value);
    }
    /* Fifteen parameters and a wildcard: the wildcard is the sixteenth. */
    memcpy(path + used, "/x/y", 5);
    assert_int_equal(match(table, BFF_METHOD_GET, path, &m), 1);
    assert_ptr_equal(m.value, &value_b);
    assert_int_equal(m.nparams, BFF_ROUTE_MAX_PARAMS);
    assert_param(&m, BFF_ROUTE_MAX_PARAMS - 1, "rest", "v15/x/y");
    bff_route_table_free(&table);
}

static void test_many_siblings_hashed(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    static int values[40];
    char pattern[32];
    add_ok(table, BFF_METHOD_GET, "/s/{other}", &value_a);
    for (int i = 0; i < 40; i++) {
        snprintf(pattern, sizeof(pattern), "/s/l%d", i);
        add_ok(table, BFF_METHOD_GET, pattern, &values[i]);
        /* Every sibling added so far still matches, across the switch to a hash table and its growth. */
        for (int j = 0; j <= i; j++) {
            bff_route_match m;
            char path[32];
            snprintf(path, sizeof(path), "/s/l%d", j);
            assert_int_equal(match(table, BFF_METHOD_GET, path, &m), 1);
            assert_ptr_equal(m.value, &values[j]);
        }
    }
    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/s/l40", &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_param(&m, 0, "other", "l40");
    bff_route_table_free(&table);
}

enum { MANY_ROUTES = 10000 };

static void many_route_path(int i, char *pattern, char *path, size_t cap)
{
    switch (i % 4) {
    case 0:
        snprintf(pattern, cap, "/api/v1/res%d/{id}/items/{item}", i);
        snprintf(path, cap, "/api/v1/res%d/id%d/items/it%d", i, i, i);
        break;
    case 1:
        snprintf(pattern, cap, "/api/v1/res%d", i);
        snprintf(path, cap, "/api/v1/res%d", i);
        break;
    case 2:
        snprintf(pattern, cap, "/files/f%d/{path*}", i);
        snprintf(path, cap, "/files/f%d/a/b%d", i, i);
        break;
    default:
        snprintf(pattern, cap, "/api/v1/res%d/{id}", i);
        snprintf(path, cap, "/api/v1/res%d/id%d", i, i);
        break;
    }
}

static void test_ten_thousand_routes(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    static int values[MANY_ROUTES];
    char pattern[96], path[96];
    for (int i = 0; i < MANY_ROUTES; i++) {
        many_route_path(i, pattern, path, sizeof(pattern));
        add_ok(table, (i % 3 == 0) ? BFF_METHOD_GET | BFF_METHOD_POST : BFF_METHOD_GET, pattern, &values[i]);
    }
    assert_int_equal(bff_route_table_size(table), MANY_ROUTES);

    for (int i = 0; i < MANY_ROUTES; i++) {
        bff_route_match m;
        many_route_path(i, pattern, path, sizeof(pattern));
        if (match(table, BFF_METHOD_GET, path, &m) != 1 || m.value != &values[i])
            fail_msg("route %d (%s) did not match its own value for %s", i, pattern, path);
        assert_string_equal(m.pattern, pattern);
        char want[32];
        switch (i % 4) {
        case 0:
            assert_int_equal(m.nparams, 2);
            snprintf(want, sizeof(want), "it%d", i);
            assert_param(&m, 1, "item", want);
            break;
        case 1:
            assert_int_equal(m.nparams, 0);
            break;
        case 2:
            snprintf(want, sizeof(want), "a/b%d", i);
            assert_param(&m, 0, "path", want);
            break;
        default:
            snprintf(want, sizeof(want), "id%d", i);
            assert_param(&m, 0, "id", want);
            break;
        }
    }
    bff_route_match m;
    assert_int_equal(match(table, BFF_METHOD_GET, "/api/v1/res10000", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_GET, "/api/v1/res1/x", &m), 0);
    assert_int_equal(match(table, BFF_METHOD_DELETE, "/api/v1/res3/x", &m), -1);
    assert_int_equal(m.allowed, BFF_METHOD_GET | BFF_METHOD_HEAD | BFF_METHOD_POST);
    bff_route_table_free(&table);
}

enum { HOSTILE_SEGMENTS = 10000 };

static char *repeat_segment(const char *segment, int count, size_t *len)
{
    size_t seg_len = strlen(segment);
    char *buf = malloc(seg_len * (size_t)count + 1);
    assert_non_null(buf);
    for (int i = 0; i < count; i++)
        memcpy(buf + seg_len * (size_t)i, segment, seg_len);
    buf[seg_len * (size_t)count] = '\0';
    *len = seg_len * (size_t)count;
    return buf;
}

static void test_hostile_long_path(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    /* Many branch points: each level of /a/... has a literal and a parameter child. */
    add_ok(table, BFF_METHOD_GET, "/a/a/a/a/a/a/a/a/z", &value_a);
    add_ok(table, BFF_METHOD_GET, "/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/z", &value_b);
    add_ok(table, BFF_METHOD_GET, "/a/{q1}/a/{q2}/a/{q3}/a/{q4}/z", &value_c);
    add_ok(table, BFF_METHOD_GET, "/{r1}/a/{r2}/a/{r3}/a/{r4}/a/z", &value_d);
    size_t deep_len;
    char *deep = repeat_segment("/a", 200, &deep_len);
    add_ok(table, BFF_METHOD_GET, deep, &value_e);

    size_t len;
    char *path = repeat_segment("/a", HOSTILE_SEGMENTS, &len);
    bff_route_match m;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < 100; i++)
        assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, path, len, &m), 0);
    /* The 200-segment literal route matches exactly its own path. */
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, path, deep_len, &m), 1);
    assert_ptr_equal(m.value, &value_e);
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, path, 16, &m), 0);
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, path, 18, &m), 0);

    /* Empty segments and a slash-only path of the same size. */
    char *slashes = repeat_segment("/", HOSTILE_SEGMENTS * 2, &len);
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, slashes, len, &m), 0);

    /* With a root wildcard every long path matches it, in one piece. */
    add_ok(table, BFF_METHOD_GET, "/{all*}", &value_a);
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, path, strlen(path), &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_int_equal(m.params[0].value_len, strlen(path) - 1);
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, slashes, len, &m), 1);
    assert_int_equal(m.params[0].value_len, len - 1);
    double elapsed = seconds_since(&start);
    if (elapsed > 2.0)
        fail_msg("hostile paths took %.3f s", elapsed);

    free(slashes);
    free(path);
    free(deep);
    bff_route_table_free(&table);
}

static void test_very_deep_pattern(void **state)
{
    (void)state;
    bff_route_table *table = new_table();
    size_t len;
    char *pattern = repeat_segment("/seg", HOSTILE_SEGMENTS, &len);
    add_ok(table, BFF_METHOD_GET, pattern, &value_a);
    bff_route_match m;
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, pattern, len, &m), 1);
    assert_ptr_equal(m.value, &value_a);
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, pattern, len - 4, &m), 0);
    free(pattern);
    bff_route_table_free(&table); /* frees 10,000 nested nodes without recursing */
    assert_null(table);
}

static void test_method_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        unsigned bit;
    } methods[] = {
        {"GET", BFF_METHOD_GET},         {"HEAD", BFF_METHOD_HEAD},   {"POST", BFF_METHOD_POST},
        {"PUT", BFF_METHOD_PUT},         {"PATCH", BFF_METHOD_PATCH}, {"DELETE", BFF_METHOD_DELETE},
        {"OPTIONS", BFF_METHOD_OPTIONS},
    };
    assert_int_equal(sizeof(methods) / sizeof(methods[0]), BFF_METHOD_COUNT);
    for (size_t i = 0; i < BFF_METHOD_COUNT; i++) {
        assert_int_equal(bff_method_from_name(methods[i].name, strlen(methods[i].name)), methods[i].bit);
        assert_string_equal(bff_method_name(methods[i].bit), methods[i].name);
    }
    assert_int_equal(bff_method_from_name("GETX", 3), BFF_METHOD_GET); /* only len bytes count */
    assert_int_equal(bff_method_from_name("GETX", 4), 0);
    assert_int_equal(bff_method_from_name("GE", 2), 0);
    assert_int_equal(bff_method_from_name("get", 3), 0); /* methods are case-sensitive */
    assert_int_equal(bff_method_from_name("TRACE", 5), 0);
    assert_int_equal(bff_method_from_name("", 0), 0);
    assert_int_equal(bff_method_from_name(NULL, 3), 0);
    assert_null(bff_method_name(0));
    assert_null(bff_method_name(BFF_METHOD_GET | BFF_METHOD_POST));
    assert_null(bff_method_name(1u << BFF_METHOD_COUNT));

    char buf[128];
    assert_int_equal(bff_method_list((1u << BFF_METHOD_COUNT) - 1, buf, sizeof(buf)),
                     strlen("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"));
    assert_string_equal(buf, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    assert_int_equal(bff_method_list(BFF_METHOD_OPTIONS | BFF_METHOD_GET, buf, sizeof(buf)), 12);
    assert_string_equal(buf, "GET, OPTIONS");
    assert_int_equal(bff_method_list(BFF_METHOD_DELETE | (1u << 12), buf, sizeof(buf)), 6);
    assert_string_equal(buf, "DELETE");
    assert_int_equal(bff_method_list(0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    /* Truncated to fit, always NUL-terminated. */
    assert_int_equal(bff_method_list(BFF_METHOD_GET | BFF_METHOD_HEAD, buf, 6), 5);
    assert_string_equal(buf, "GET, ");
    assert_int_equal(bff_method_list(BFF_METHOD_GET, buf, 1), 0);
    assert_string_equal(buf, "");
    buf[0] = 'Q';
    assert_int_equal(bff_method_list(BFF_METHOD_GET, buf, 0), 0);
    assert_int_equal(buf[0], 'Q');
}

static void test_release_and_null_safety(void **state)
{
    (void)state;
    bff_route_table_free(NULL);
    bff_route_table *table = NULL;
    bff_route_table_free(&table);
    assert_null(table);
    assert_int_equal(bff_route_table_size(NULL), 0);
    bff_route_match m;
    m.allowed = 99;
    assert_int_equal(bff_route_table_match(NULL, BFF_METHOD_GET, "/", 1, &m), 0);
    assert_int_equal(m.allowed, 0);

    table = new_table();
    add_ok(table, BFF_METHOD_GET, "/x/{y}", &value_a);
    assert_int_equal(bff_route_table_match(table, BFF_METHOD_GET, "/x/1", 4, NULL), 0);
    bff_route_table_free(&table);
    assert_null(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_match),
        cmocka_unit_test(test_trailing_slash_is_a_different_path),
        cmocka_unit_test(test_params_values_and_names),
        cmocka_unit_test(test_pattern_and_names_are_copied),
        cmocka_unit_test(test_wildcard_zero_one_many),
        cmocka_unit_test(test_wildcard_after_params_and_at_root),
        cmocka_unit_test(test_literal_over_param_over_wildcard),
        cmocka_unit_test(test_backtracking),
        cmocka_unit_test(test_404_vs_405),
        cmocka_unit_test(test_method_falls_through_to_other_shapes),
        cmocka_unit_test(test_head_falls_back_to_get),
        cmocka_unit_test(test_pattern_errors_einval),
        cmocka_unit_test(test_pattern_error_eexist),
        cmocka_unit_test(test_pattern_error_e2big),
        cmocka_unit_test(test_many_siblings_hashed),
        cmocka_unit_test(test_ten_thousand_routes),
        cmocka_unit_test(test_hostile_long_path),
        cmocka_unit_test(test_very_deep_pattern),
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_release_and_null_safety),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
