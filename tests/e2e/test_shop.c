/* test_shop: the default deployment (config/) served by the real binary: the composed home screens of
 * the example shop, shaped for web and mobile, with its optional cart call. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static e2e_server srv;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = calloc(1, (size_t)n + 1);
    if (text != NULL && fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* Replaces every `from` with `to` (a new string). */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t flen = strlen(from), tlen = strlen(to), count = 0;
    for (const char *p = strstr(text, from); p != NULL; p = strstr(p + flen, from))
        ++count;
    char *out = malloc(strlen(text) + count * (tlen + 1) + 1), *w = out;
    for (const char *p = text;;) {
        const char *hit = strstr(p, from);
        if (hit == NULL) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, to, tlen);
        w += tlen;
        p = hit + flen;
    }
    return out;
}

/* The shipped config, with its ports moved: 8080 (the gateway, which its home screens call back as
 * their upstream) to a free port, the admin listener to any port. */
static int copy_config(void)
{
    static const char *const files[] = {
        "gateway.json",         "frontends/web.json",    "frontends/mobile.json", "frontends/internal.json",
        "functions/hello.lua",  "functions/catalog.lua", "functions/product.lua", "functions/cart.lua",
        "functions/assets.lua", "functions/users.lua",   "functions/carts.lua",   "functions/recommend.lua"};
    char port[16];
    snprintf(port, sizeof(port), "%d", srv.port);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); ++i) {
        char path[512];
        snprintf(path, sizeof(path), "%s/config/%s", SOURCE_ROOT, files[i]);
        char *text = read_file(path);
        if (text == NULL)
            return -1;
        char *moved = replace_all(text, "8080", port);
        char *admin = replace_all(moved, "9901", "@ADMIN@");
        e2e_write(&srv, files[i], admin);
        free(text);
        free(moved);
        free(admin);
    }
    return 0;
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    if (copy_config() != 0)
        return -1;
    const char *const args[] = {"--lib-path", EXAMPLES_DIR, NULL};
    return e2e_start(&srv, args);
}

static int group_teardown(void **state)
{
    int rc = e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static json_t *get_json(const char *path, e2e_response *res)
{
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", path, NULL, NULL, 0, res), 0);
    json_error_t jerr;
    json_t *v = json_loadb(res->body, res->body_len, 0, &jerr);
    if (v == NULL)
        fail_msg("%s: not JSON (status %ld): %s", path, res->status, res->body);
    return v;
}

static void test_web_home_is_composed_and_complete(void **state)
{
    e2e_response res;
    json_t *v = get_json("/web/home/u1", &res);
    assert_int_equal(res.status, 200);
    assert_null(e2e_header(&res, "x-bffgate-partial"));
    json_t *user = json_object_get(v, "user");
    assert_string_equal(json_string_value(json_object_get(user, "name")), "Ada");
    assert_string_equal(json_string_value(json_object_get(user, "email")), "ada@example.com");
    assert_null(json_object_get(user, "cartId")); /* denied on web */
    /* Gold users get every product; web shows at most 20. */
    assert_int_equal(json_array_size(json_object_get(v, "recommendations")), 20);
    assert_int_equal(json_array_size(json_object_get(v, "cart")), 2);
    json_t *calls = json_object_get(v, "_calls");
    assert_string_equal(json_string_value(json_object_get(json_object_get(calls, "cart"), "status")), "ok");
    json_decref(v);
    e2e_response_release(&res);
}

static void test_mobile_home_gets_its_own_shape(void **state)
{
    e2e_response res;
    json_t *v = get_json("/mobile/home/u1", &res);
    assert_int_equal(res.status, 200);
    json_t *user = json_object_get(v, "user");
    assert_string_equal(json_string_value(json_object_get(user, "name")), "Ada");
    assert_null(json_object_get(user, "email")); /* only what mobile allows */
    json_t *recs = json_object_get(v, "recs");   /* renamed */
    assert_int_equal(json_array_size(recs), 5);
    assert_null(json_object_get(json_array_get(recs, 0), "score"));
    assert_null(json_object_get(v, "_calls"));
    json_decref(v);
    e2e_response_release(&res);
}

static void test_unavailable_cart_gives_a_partial_home(void **state)
{
    e2e_response res;
    json_t *v = get_json("/mobile/home/u3", &res);
    assert_int_equal(res.status, 200);
    char *partial = e2e_header(&res, "x-bffgate-partial");
    assert_non_null(partial);
    assert_string_equal(partial, "cart");
    free(partial);
    assert_int_equal(json_array_size(json_object_get(v, "cart")), 0); /* the fallback */
    json_decref(v);
    e2e_response_release(&res);
}

static void test_unknown_user_is_502_naming_the_call(void **state)
{
    e2e_response res;
    json_t *v = get_json("/web/home/nobody", &res);
    assert_int_equal(res.status, 502);
    assert_string_equal(json_string_value(json_object_get(v, "call")), "user");
    json_decref(v);
    e2e_response_release(&res);
}

static void test_the_rest_of_the_shop_still_serves(void **state)
{
    e2e_response res;
    json_t *v = get_json("/mobile/products", &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(json_array_size(json_object_get(v, "items")), 3);
    json_decref(v);
    e2e_response_release(&res);
    v = get_json("/mobile/quote/2?qty=3", &res);
    assert_int_equal(res.status, 200);
    json_decref(v);
    e2e_response_release(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_web_home_is_composed_and_complete),
        cmocka_unit_test(test_mobile_home_gets_its_own_shape),
        cmocka_unit_test(test_unavailable_cart_gives_a_partial_home),
        cmocka_unit_test(test_unknown_user_is_502_naming_the_call),
        cmocka_unit_test(test_the_rest_of_the_shop_still_serves),
    };
    return cmocka_run_group_tests_name("e2e/shop", tests, group_setup, group_teardown);
}
