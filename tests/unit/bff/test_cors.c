/* test_cors: a frontend's CORS config: exact origins, subdomain patterns, "*", methods, config errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bff/cors.h"
#include "bff/route_table.h"

static bff_cors *load(const char *json, cfg_errors *errs)
{
    json_error_t jerr;
    json_t *def = json_loads(json, 0, &jerr);
    assert_non_null(def);
    bff_cors *c = bff_cors_load(def, "web.json", errs);
    json_decref(def);
    return c;
}

static int allowed(const bff_cors *c, const char *origin)
{
    return bff_cors_origin_allowed(c, origin, strlen(origin));
}

static void test_exact_origins(void **state)
{
    (void)state;
    cfg_errors errs = {0};
    bff_cors *c = load("{\"origins\": [\"https://Shop.Example\", \"http://localhost:8080\"]}", &errs);
    assert_non_null(c);
    assert_int_equal(errs.count, 0);
    assert_true(allowed(c, "https://shop.example"));
    assert_true(allowed(c, "https://SHOP.example")); /* case-insensitive */
    assert_true(allowed(c, "http://localhost:8080"));
    assert_false(allowed(c, "http://shop.example"));      /* another scheme */
    assert_false(allowed(c, "https://shop.example:444")); /* another port */
    assert_false(allowed(c, "https://shop.example.evil"));
    assert_false(allowed(c, "https://evilshop.example"));
    assert_false(allowed(c, "http://localhost:808"));
    assert_false(allowed(c, "null"));
    assert_false(allowed(c, ""));
    assert_int_equal(c->max_age_s, 600); /* the default */
    bff_cors_free(c);
}

static void test_subdomain_patterns(void **state)
{
    (void)state;
    cfg_errors errs = {0};
    bff_cors *c = load("{\"origins\": [\"https://*.shop.example\", \"http://*.dev.test:3000\"]}", &errs);
    assert_non_null(c);
    assert_true(allowed(c, "https://m.shop.example"));
    assert_true(allowed(c, "https://a.b.shop.example"));
    assert_true(allowed(c, "https://M.Shop.Example"));
    assert_true(allowed(c, "http://app.dev.test:3000"));
    assert_false(allowed(c, "https://shop.example"));        /* not the bare domain */
    assert_false(allowed(c, "https://.shop.example"));       /* an empty label */
    assert_false(allowed(c, "https://evilshop.example"));    /* not a subdomain */
    assert_false(allowed(c, "http://m.shop.example"));       /* another scheme */
    assert_false(allowed(c, "https://m.shop.example:8443")); /* another port */
    assert_false(allowed(c, "http://app.dev.test:30000"));
    assert_false(allowed(c, "https://a/b.shop.example")); /* not a host */
    assert_false(allowed(c, "https://a@b.shop.example"));
    bff_cors_free(c);
}

static void test_any_origin_and_methods(void **state)
{
    (void)state;
    cfg_errors errs = {0};
    bff_cors *c =
        load("{\"origins\": [\"*\"], \"methods\": [\"GET\", \"POST\"], \"allow_headers\": [\"authorization\", "
             "\"x-client\"], \"max_age_s\": 60}",
             &errs);
    assert_non_null(c);
    assert_true(allowed(c, "https://anything.example"));
    assert_int_equal(c->methods, BFF_METHOD_GET | BFF_METHOD_POST);
    assert_string_equal(c->allow_headers, "authorization, x-client");
    assert_int_equal(c->max_age_s, 60);
    bff_cors_free(c);
    c = load("{\"origins\": [\"https://shop.example:8443\"], \"allow_headers\": [\"*\"]}", &errs);
    assert_non_null(c);
    assert_string_equal(c->allow_headers, "*");
    assert_true(allowed(c, "https://shop.example:8443"));
    bff_cors_free(c);
}

static void expect_error(const char *json, const char *message)
{
    cfg_errors errs = {0};
    bff_cors *c = load(json, &errs);
    assert_null(c);
    int found = 0;
    for (size_t i = 0; i < errs.count; ++i)
        found |= strstr(errs.items[i], message) != NULL;
    if (!found)
        fail_msg("no error containing \"%s\" (first: %s)", message, errs.count > 0 ? errs.items[0] : "none");
    cfg_errors_release(&errs);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("{}", "web.json: cors.origins: missing required key");
    expect_error("{\"origins\": []}", "cors.origins: must be a non-empty list");
    expect_error("{\"origins\": [\"https://shop.example/app\"]}", "web.json: cors.origins[0]: must be \"*\"");
    expect_error("{\"origins\": [\"ftp://shop.example\"]}", "cors.origins[0]");
    expect_error("{\"origins\": [\"https://*\"]}", "cors.origins[0]");
    expect_error("{\"origins\": [\"https://a.*.example\"]}", "cors.origins[0]");
    expect_error("{\"origins\": [\"https://shop.example:\"]}", "cors.origins[0]");
    expect_error("{\"origins\": [42]}", "cors.origins[0]");
    expect_error("{\"origins\": [\"https://shop.example:443\"]}", "no default port");
    expect_error("{\"origins\": [\"http://shop.example:80\"]}", "cors.origins[0]");
    expect_error("{\"origins\": [\"http:///\"]}", "cors.origins[0]");
    expect_error("{\"origins\": [\"https://sh op.example\"]}", "cors.origins[0]");
    expect_error("{\"origins\": [\"https://x\"], \"credentials\": true, \"allow_headers\": [\"*\"]}",
                 "cors.allow_headers[0]: must be a header name (or \"*\" without credentials)");
    expect_error("{\"origins\": [\"*\"], \"credentials\": true}", "cannot be combined with the origin \"*\"");
    expect_error("{\"origins\": [\"*\"], \"methods\": [\"FETCH\"]}", "cors.methods[0]: unknown method");
    expect_error("{\"origins\": [\"*\"], \"methods\": []}", "cors.methods: must be a non-empty list");
    expect_error("{\"origins\": [\"*\"], \"allow_headers\": [\"x y\"]}",
                 "cors.allow_headers[0]: must be a header name");
    expect_error("{\"origins\": [\"*\"], \"max_age_s\": 100000}", "cors.max_age_s");
    expect_error("{\"origins\": [\"*\"], \"origin\": \"x\"}", "cors.origin: unknown key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_origins),
        cmocka_unit_test(test_subdomain_patterns),
        cmocka_unit_test(test_any_origin_and_methods),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests_name("unit/bff/cors", tests, NULL, NULL);
}
