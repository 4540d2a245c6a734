/* test_isolated: C functions in worker processes ("isolated": true) against the real binary: a function that
 * segfaults, aborts, spins past its deadline or leaks costs its request a 502/504 and its worker, never the
 * gateway; workers are reused while healthy and replaced when not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FN(name, symbol, extra)                                                                                        \
    "    \"" name "\": {\"c\": \"" FIXTURE_DIR "/crashy.so\", \"symbol\": \"" symbol "\", \"isolated\": true" extra "}"

static const char gateway_json[] =
    "{\n"
    "  \"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 2,\n"
    "             \"admin\": {\"address\": \"127.0.0.1\", \"port\": @ADMIN@}},\n"
    "  \"functions\": {\n" FN("pid", "pid", ", \"processes\": 2") ",\n" FN("segv", "segv", "") ",\n" FN(
        "abort", "aborts",
        "") ",\n" FN("spin", "spin",
                     "") ",\n" FN("leak", "leak",
                                  ", \"memory_mb\": 48") ",\n" FN("inject", "header_injection",
                                                                  "") "\n"
                                                                      "  },\n"
                                                                      "  \"frontends\": [\"api.json\"]\n"
                                                                      "}\n";

static const char api_json[] = "{\"name\": \"api\", \"routes\": [\n"
                               "  {\"path\": \"/pid\", \"function\": \"pid\"},\n"
                               "  {\"path\": \"/segv\", \"function\": \"segv\"},\n"
                               "  {\"path\": \"/abort\", \"function\": \"abort\"},\n"
                               "  {\"path\": \"/spin\", \"function\": \"spin\", \"timeout_ms\": 300},\n"
                               "  {\"path\": \"/leak\", \"function\": \"leak\"},\n"
                               "  {\"path\": \"/inject\", \"function\": \"inject\"}\n"
                               "]}\n";

static e2e_server srv;

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    e2e_pick_admin_port(&srv);
    e2e_write(&srv, "gateway.json", gateway_json);
    e2e_write(&srv, "api.json", api_json);
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

static long get(const char *path, e2e_response *res)
{
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", path, NULL, NULL, 0, res), 0);
    return res->status;
}

/* The pid of the worker that served /pid. */
static long worker_pid(void)
{
    e2e_response res;
    assert_int_equal(get("/pid", &res), 200);
    const char *at = strstr(res.body, "\"pid\":");
    assert_non_null(at);
    long pid = strtol(at + 6, NULL, 10);
    e2e_response_release(&res);
    return pid;
}

static double metric(const char *sample)
{
    return e2e_metric(&srv, sample);
}

static void expect_failure(const char *path, long status, const char *log_text)
{
    e2e_response res;
    long got = get(path, &res);
    if (got != status)
        fail_msg("%s: expected %ld, got %ld: %s", path, status, got, res.body);
    assert_non_null(strstr(res.body, "\"error\":"));
    e2e_response_release(&res);
    int found = log_text == NULL;
    for (int i = 0; i < 100 && !found; ++i) { /* log lines are written in batches per worker thread */
        char *log = e2e_log(&srv);
        found = strstr(log, log_text) != NULL;
        free(log);
        if (!found)
            usleep(20000);
    }
    if (!found)
        fail_msg("%s: the log does not say \"%s\"", path, log_text);
}

static void test_calls_run_in_reused_worker_processes(void **state)
{
    (void)state;
    long first = worker_pid();
    assert_true(first > 0);
    assert_true(first != (long)srv.pid); /* not the gateway */
    /* Sequential calls reuse the idle worker (a pool of up to 2). */
    for (int i = 0; i < 5; ++i)
        assert_int_equal(worker_pid(), first);
}

static void test_a_crash_costs_its_request_not_the_gateway(void **state)
{
    (void)state;
    double crashes = metric("bffgate_c_isolated_crashes_total");
    /* Sanitizer builds catch the fault in the worker and exit with a report instead of dying of the signal. */
    const char *sanitize = getenv("BFFGATE_SANITIZE");
    int sanitized = sanitize != NULL && sanitize[0] != '\0' && strcmp(sanitize, "none") != 0;
    expect_failure("/segv", 502,
                   sanitized ? "the isolated C function's process" : "killed by signal 11 (Segmentation fault)");
    expect_failure("/abort", 502, sanitized ? "the isolated C function's process" : "killed by signal 6 (Aborted)");
    assert_true(metric("bffgate_c_isolated_crashes_total") == crashes + 2);
    /* The gateway serves on; the crashed functions get new workers and fail the same way again. */
    assert_true(worker_pid() > 0);
    expect_failure("/segv", 502, NULL);
    assert_true(kill(srv.pid, 0) == 0);
}

static void test_a_function_past_its_deadline_is_killed(void **state)
{
    (void)state;
    double kills = metric("bffgate_c_isolated_kills_total");
    expect_failure("/spin", 504, NULL);
    /* The worker was killed at the deadline (on its pool thread, just after the 504 went out). */
    for (int i = 0; i < 100 && metric("bffgate_c_isolated_kills_total") < kills + 1; ++i)
        usleep(20000);
    assert_true(metric("bffgate_c_isolated_kills_total") == kills + 1);
    expect_failure("/spin", 504, NULL); /* a new worker, killed again */
    assert_true(worker_pid() > 0);
}

static void test_a_leaking_function_is_replaced(void **state)
{
    (void)state;
    const char *sanitize = getenv("BFFGATE_SANITIZE");
    if (sanitize != NULL && sanitize[0] != '\0' && strcmp(sanitize, "none") != 0)
        skip(); /* AddressSanitizer reserves terabytes of address space: an address-space limit cannot bite */
    /* memory_mb 48: a worker survives two 16 MiB leaks, not four. */
    int ok = 0, failed = 0;
    for (int i = 0; i < 6; ++i) {
        e2e_response res;
        long status = get("/leak", &res);
        if (status == 200)
            ++ok;
        else if (status == 502)
            ++failed;
        else
            fail_msg("/leak: %ld %s", status, res.body);
        e2e_response_release(&res);
    }
    assert_true(ok >= 2);
    assert_true(failed >= 1);
    /* after its failure, a fresh worker leaks again from nothing */
    e2e_response res;
    assert_int_equal(get("/leak", &res), 200);
    e2e_response_release(&res);
}

static void test_headers_from_a_worker_are_checked_again(void **state)
{
    (void)state;
    expect_failure("/inject", 500, NULL);
}

static void test_a_broken_isolated_function_is_a_config_error(void **state)
{
    (void)state;
    /* bfg_init is checked in a worker: a missing handler is reported with the file, like in-process. */
    e2e_server bad;
    e2e_init(&bad);
    e2e_pick_port(&bad);
    e2e_write(&bad, "gateway.json",
              "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}]},\n"
              " \"functions\": {\"f\": {\"c\": \"" FIXTURE_DIR "/crashy.so\", \"symbol\": \"nope\", \"isolated\": "
              "true},\n"
              "               \"g\": {\"c\": \"" FIXTURE_DIR "/crashy.so\", \"symbol\": \"pid\", \"memory_mb\": 5}},\n"
              " \"frontends\": [\"api.json\"]}\n");
    e2e_write(&bad, "api.json", "{\"name\": \"api\", \"routes\": []}\n");
    char path[400];
    snprintf(path, sizeof(path), "%s/gateway.json", bad.dir);
    const char *args[] = {"--check", path, NULL};
    char *out = NULL;
    int rc = e2e_run(args, &out);
    assert_int_not_equal(rc, 0);
    if (strstr(out, "functions.f.c: ") == NULL || strstr(out, "no handler symbol \"nope\"") == NULL ||
        strstr(out, "functions.g: \"processes\", \"memory_mb\" and \"cpu_s\" belong to an isolated function") == NULL)
        fail_msg("unexpected output: %s", out);
    free(out);
    e2e_cleanup(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_run_in_reused_worker_processes),
        cmocka_unit_test(test_a_crash_costs_its_request_not_the_gateway),
        cmocka_unit_test(test_a_function_past_its_deadline_is_killed),
        cmocka_unit_test(test_a_leaking_function_is_replaced),
        cmocka_unit_test(test_headers_from_a_worker_are_checked_again),
        cmocka_unit_test(test_a_broken_isolated_function_is_a_config_error),
    };
    return cmocka_run_group_tests_name("e2e/isolated", tests, group_setup, group_teardown);
}
