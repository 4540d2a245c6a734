/* Unit tests for c_runtime: loading shared objects through the ABI, invocation, refusals and bfg_fini. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "c_runtime.h"
#include "fn.h"
#include "tests/unit/tmpdir.h"

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must name the directory holding the built fixture objects"
#endif

static char temp_dir[64];
static char marker_path[128];

static int group_setup(void **state)
{
    (void)state;
    if (test_tmpdir_make(temp_dir, sizeof(temp_dir), "c") != 0)
        return -1;
    snprintf(marker_path, sizeof(marker_path), "%s/fini-marker", temp_dir);
    return setenv("BFG_FIXTURE_FINI_MARKER", marker_path, 1);
}

static int group_teardown(void **state)
{
    (void)state;
    unsetenv("BFG_FIXTURE_FINI_MARKER");
    return test_tmpdir_remove(temp_dir);
}

static void fixture_path(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.so", FIXTURE_DIR, name);
}

static fn_function *load_ok(const char *object, const char *symbol)
{
    char path[512], err[1024] = "";
    fixture_path(object, path, sizeof(path));
    fn_function *fn = NULL;
    int rc = fn_c_load(object, path, symbol, 0, 2, &fn, err, sizeof(err));
    if (rc != 0)
        fail_msg("loading %s failed: %d %s", path, rc, err);
    assert_non_null(fn);
    return fn;
}

/* Loads a fixture expected to be refused; asserts the message names the object and returns it in err. */
static int load_refused(const char *object, const char *symbol, char *err, size_t cap)
{
    char path[512];
    fixture_path(object, path, sizeof(path));
    fn_function *fn = NULL;
    err[0] = '\0';
    int rc = fn_c_load(object, path, symbol, 0, 1, &fn, err, cap);
    assert_true(rc < 0);
    assert_null(fn);
    if (strstr(err, path) == NULL)
        fail_msg("\"%s\" does not name %s", err, path);
    return rc;
}

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", text, part);
}

#define S(lit)                                                                                                         \
    {                                                                                                                  \
        lit, sizeof(lit) - 1                                                                                           \
    }

static const bfg_pair event_params[] = {{S("id"), S("42")}};
static const bfg_pair event_query[] = {{S("tag"), S("a")}, {S("tag"), S("b\"q")}};
static const bfg_pair event_headers[] = {{S("accept"), S("*/*")}, {S("x-trace"), S("t1")}};

static int invoke(fn_function *fn, unsigned thread, fn_response *res)
{
    bfg_event ev = {
        .abi_version = BFG_ABI_VERSION,
        .method = S("GET"),
        .path = S("/items/42"),
        .route = S("/items/{id}"),
        .frontend = S("web"),
        .request_id = S("req-c"),
        .body = S("payload"),
        .params = event_params,
        .nparams = 1,
        .query = event_query,
        .nquery = 2,
        .headers = event_headers,
        .nheaders = 2,
    };
    fn_call call = {.event = &ev, .thread = thread, .limits = {1000, 0}, .start_ns = fn_now_ns()};
    fn_response_init(res);
    return fn_invoke(fn, &call, res);
}

static const char *find_header(const fn_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; ++i) {
        if (strcmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    }
    return NULL;
}

static void assert_pair(json_t *list, size_t i, const char *name, const char *value)
{
    json_t *pair = json_array_get(list, i);
    assert_int_equal(json_array_size(pair), 2);
    assert_string_equal(json_string_value(json_array_get(pair, 0)), name);
    assert_string_equal(json_string_value(json_array_get(pair, 1)), value);
}

static int marker_exists(void)
{
    return access(marker_path, F_OK) == 0;
}

static void test_load_and_invoke_good(void **state)
{
    (void)state;
    fn_function *fn = load_ok("good", "echo");
    assert_int_equal(fn->kind, FN_KIND_C);
    assert_string_equal(fn->name, "good");
    assert_int_equal(fn->nthreads, 2);
    assert_int_equal(strlen(fn->version), 16);

    fn_response res;
    int rc = invoke(fn, 1, &res);
    if (rc != 0)
        fail_msg("invoke: %d %s", rc, res.error);
    assert_int_equal(res.status, 201);
    assert_string_equal(find_header(&res, "content-type"), "application/json"); /* name lower-cased */
    assert_true(res.has_content_type);
    assert_string_equal(find_header(&res, "x-fixture"), "good");

    json_error_t jerr;
    json_t *body = json_loadb(res.body.data, res.body.len, 0, &jerr);
    if (body == NULL)
        fail_msg("body is not JSON: %s: %.*s", jerr.text, (int)res.body.len, res.body.data);
    assert_string_equal(json_string_value(json_object_get(body, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(body, "path")), "/items/42");
    assert_string_equal(json_string_value(json_object_get(body, "id")), "42");
    assert_string_equal(json_string_value(json_object_get(body, "body")), "payload");
    json_t *params = json_object_get(body, "params");
    assert_int_equal(json_array_size(params), 1);
    assert_pair(params, 0, "id", "42");
    json_t *query = json_object_get(body, "query");
    assert_int_equal(json_array_size(query), 2);
    assert_pair(query, 0, "tag", "a");
    assert_pair(query, 1, "tag", "b\"q");
    json_t *headers = json_object_get(body, "headers");
    assert_int_equal(json_array_size(headers), 2);
    assert_pair(headers, 0, "accept", "*/*");
    assert_pair(headers, 1, "x-trace", "t1");
    /* bfg_init ran exactly once, at load. */
    assert_int_equal(json_integer_value(json_object_get(body, "init")), 1);
    json_decref(body);
    fn_response_release(&res);
    fn_function_release(&fn);
    assert_null(fn);
}

static void test_missing_abi_symbol_refused(void **state)
{
    (void)state;
    char err[1024];
    assert_int_equal(load_refused("noabi", "handler", err, sizeof(err)), -EINVAL);
    assert_contains(err, "no bfg_abi_version symbol");
}

static void test_other_abi_version_refused(void **state)
{
    (void)state;
    char err[1024], want[128];
    assert_int_equal(load_refused("badver", "handler", err, sizeof(err)), -EINVAL);
    assert_contains(err, "ABI version 999");
    snprintf(want, sizeof(want), "speaks version %u", BFG_ABI_VERSION);
    assert_contains(err, want);
}

static void test_missing_handler_refused(void **state)
{
    (void)state;
    char err[1024];
    unlink(marker_path);
    assert_int_equal(load_refused("good", "no_such_handler", err, sizeof(err)), -EINVAL);
    assert_contains(err, "no handler symbol \"no_such_handler\"");
    /* bfg_init never ran, so neither does bfg_fini. */
    assert_false(marker_exists());
}

static void test_init_failure_refused(void **state)
{
    (void)state;
    char err[1024];
    unlink(marker_path);
    assert_int_equal(load_refused("initfail", "handler", err, sizeof(err)), -EINVAL);
    assert_contains(err, "bfg_init failed with 1");
    /* A refused init is not followed by bfg_fini. */
    assert_false(marker_exists());
}

static void test_not_an_object_refused(void **state)
{
    (void)state;
    char path[256], err[1024] = "";
    snprintf(path, sizeof(path), "%s/text.so", temp_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an ELF object\n", f);
    fclose(f);
    fn_function *fn = NULL;
    assert_int_equal(fn_c_load("text", path, "handler", 0, 1, &fn, err, sizeof(err)), -EINVAL);
    assert_null(fn);
    assert_contains(err, path);
    assert_contains(err, "not a complete 64-bit ELF shared object");

    snprintf(path, sizeof(path), "%s/absent.so", temp_dir);
    assert_int_equal(fn_c_load("absent", path, "handler", 0, 1, &fn, err, sizeof(err)), -ENOENT);
    assert_null(fn);
    assert_contains(err, path);
    assert_contains(err, "cannot read the C object");
}

static void test_header_with_crlf_refused(void **state)
{
    (void)state;
    fn_function *fn = load_ok("badheader", "handler");
    fn_response res;
    assert_int_equal(invoke(fn, 0, &res), -EINVAL);
    assert_contains(res.error, "x-split");
    assert_contains(res.error, "CR, LF");
    /* The accessor reported the refusal to the handler. */
    assert_int_equal(res.body.len, 7);
    assert_memory_equal(res.body.data, "refused", 7);
    assert_int_equal(res.nheaders, 0);
    fn_response_release(&res);
    fn_function_release(&fn);
}

static void test_refused_status_is_an_error(void **state)
{
    (void)state;
    fn_function *fn = load_ok("good", "bad_status");
    fn_response res;
    assert_int_equal(invoke(fn, 0, &res), -EINVAL);
    assert_contains(res.error, "status 700");
    fn_response_release(&res);
    fn_function_release(&fn);
}

static void test_nonzero_return_is_an_error(void **state)
{
    (void)state;
    fn_function *fn = load_ok("fails", "handler");
    fn_response res;
    assert_int_equal(invoke(fn, 0, &res), -EINVAL);
    assert_contains(res.error, "returned 7");
    fn_response_release(&res);
    fn_function_release(&fn);
}

static void test_fini_called_on_last_release(void **state)
{
    (void)state;
    unlink(marker_path);
    fn_function *fn = load_ok("good", "echo");
    fn_function *second = fn_function_acquire(fn);
    assert_false(marker_exists());

    fn_function_release(&fn);
    assert_false(marker_exists()); /* a reference is still held */
    fn_response res;
    assert_int_equal(invoke(second, 0, &res), 0);
    fn_response_release(&res);

    fn_function_release(&second);
    assert_null(second);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fn_read_file(marker_path, &text, &len), 0);
    assert_string_equal(text, "fini 1");
    free(text);
    unlink(marker_path);
    fn_function_release(&second); /* NULL-safe */
    assert_false(marker_exists());
}

static int invoke_alloc(fn_function *fn, const char *bytes, size_t limit, fn_response *res)
{
    bfg_event ev = {.abi_version = BFG_ABI_VERSION, .body = {bytes, strlen(bytes)}};
    fn_call call = {.event = &ev, .limits = {1000, limit}, .start_ns = fn_now_ns()};
    fn_response_init(res);
    return fn_invoke(fn, &call, res);
}

static void test_alloc_counts_against_the_memory_limit(void **state)
{
    (void)state;
    fn_function *fn = load_ok("alloc", "grab");
    fn_response res;
    /* Under the limit: allocated (and the block it never frees is freed after it returns: ASan checks). */
    assert_int_equal(invoke_alloc(fn, "524288", 1 << 20, &res), 0);
    assert_string_equal(res.body.data, "{\"allocated\":true}");
    fn_response_release(&res);
    /* Over the limit: refused. */
    assert_int_equal(invoke_alloc(fn, "2097152", 1 << 20, &res), 0);
    assert_string_equal(res.body.data, "{\"allocated\":false}");
    fn_response_release(&res);
    /* Counting is per invocation: the earlier unfreed block does not count against the next call. */
    assert_int_equal(invoke_alloc(fn, "1000000", 1 << 20, &res), 0);
    assert_string_equal(res.body.data, "{\"allocated\":true}");
    fn_response_release(&res);
    /* No limit configured: anything malloc can give. */
    assert_int_equal(invoke_alloc(fn, "4194304", 0, &res), 0);
    assert_string_equal(res.body.data, "{\"allocated\":true}");
    fn_response_release(&res);
    fn_function_release(&fn);
}

static void test_truncated_object_refused(void **state)
{
    (void)state;
    /* An object caught while being written: its segments reach past the end of the file. Loading it would
     * SIGBUS the process when a missing page is touched; it must be refused instead. */
    char good[512], cut[512];
    fixture_path("good", good, sizeof(good));
    snprintf(cut, sizeof(cut), "%s/truncated.so", temp_dir);
    FILE *in = fopen(good, "rb"), *out = fopen(cut, "wb");
    assert_non_null(in);
    assert_non_null(out);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *data = malloc((size_t)size);
    assert_int_equal(fread(data, 1, (size_t)size, in), (size_t)size);
    fwrite(data, 1, (size_t)size / 2, out);
    fclose(in);
    fclose(out);
    free(data);
    fn_function *fn = NULL;
    char err[512];
    assert_int_equal(fn_c_load("cut", cut, "handler", 0, 1, &fn, err, sizeof(err)), -EINVAL);
    assert_null(fn);
    assert_contains(err, "not a complete 64-bit ELF shared object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_object_refused),   cmocka_unit_test(test_alloc_counts_against_the_memory_limit),
        cmocka_unit_test(test_load_and_invoke_good),       cmocka_unit_test(test_missing_abi_symbol_refused),
        cmocka_unit_test(test_other_abi_version_refused),  cmocka_unit_test(test_missing_handler_refused),
        cmocka_unit_test(test_init_failure_refused),       cmocka_unit_test(test_not_an_object_refused),
        cmocka_unit_test(test_header_with_crlf_refused),   cmocka_unit_test(test_refused_status_is_an_error),
        cmocka_unit_test(test_nonzero_return_is_an_error), cmocka_unit_test(test_fini_called_on_last_release),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
