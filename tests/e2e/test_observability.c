/* test_observability: metrics, logs and admin endpoints of the real binary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static e2e_server srv;
static int admin_port;

static const char gateway_json[] =
    "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 2,\n"
    "            \"admin\": {\"port\": @ADMIN@}, \"log_file\": \"gateway.log\"},\n"
    " \"functions\": {\"ok\": {\"lua\": \"ok.lua\"}, \"boom\": {\"lua\": \"boom.lua\"}, \"loop\": {\"lua\": "
    "\"loop.lua\"},\n"
    "               \"bomb\": {\"lua\": \"bomb.lua\"}, \"slow\": {\"lua\": \"slow.lua\"}},\n"
    " \"frontends\": [\"api.json\"]}\n";

static const char api_json[] =
    "{\"name\": \"api\", \"routes\": [\n"
    "  {\"path\": \"/ok\", \"function\": \"ok\", \"rate_limit\": {\"rps\": 1, \"burst\": 3}},\n"
    "  {\"path\": \"/boom\", \"function\": \"boom\"},\n"
    "  {\"path\": \"/loop\", \"function\": \"loop\", \"timeout_ms\": 100},\n"
    "  {\"path\": \"/bomb\", \"function\": \"bomb\", \"memory_mb\": 4},\n"
    "  {\"path\": \"/slow\", \"function\": \"slow\"},\n"
    "  {\"path\": \"/say\", \"function\": \"ok\"}\n"
    "]}\n";

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    e2e_pick_admin_port(&srv);
    admin_port = srv.admin_port;
    e2e_write(&srv, "gateway.json", gateway_json);
    e2e_write(&srv, "api.json", api_json);
    e2e_write(&srv, "ok.lua",
              "return { handler = function(e, ctx) ctx.log('info', 'hi', { n = 1 }) return { ok = true } end }\n");
    e2e_write(&srv, "boom.lua", "return { handler = function() error('boom') end }\n");
    e2e_write(&srv, "loop.lua", "return { handler = function() while true do end end }\n");
    e2e_write(&srv, "bomb.lua", "return { handler = function() local t = {} for i = 1, 1e9 do t[i] = i end end }\n");
    e2e_write(&srv, "slow.lua", "return { handler = function(e, ctx) ctx.sleep(600) return { slow = true } end }\n");
    int rc = e2e_start(&srv, NULL);
    admin_port = srv.admin_port; /* bound by the server (the config says 0) */
    return rc;
}

static int group_teardown(void **state)
{
    if (srv.pid > 0)
        e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    curl_global_cleanup();
    return 0;
}

static long get_status(const char *path, char **request_id)
{
    e2e_response res;
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", path, NULL, NULL, 0, &res), 0);
    long status = res.status;
    if (request_id != NULL)
        *request_id = e2e_header(&res, "x-request-id");
    e2e_response_release(&res);
    return status;
}

static char *admin_get(const char *path, long *status)
{
    e2e_server admin = srv;
    admin.port = admin_port;
    e2e_response res;
    assert_int_equal(e2e_request(&admin, E2E_HTTP1, "GET", path, NULL, NULL, 0, &res), 0);
    *status = res.status;
    char *body = strdup(res.body);
    e2e_response_release(&res);
    return body;
}

/* The value of the sample whose line starts with `prefix` (metric name and labels), or -1. */
static double metric(const char *text, const char *prefix)
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, prefix, strlen(prefix)) == 0 && line[strlen(prefix)] == ' ')
            return atof(line + strlen(prefix) + 1);
        line = strchr(line, '\n');
        if (line != NULL)
            ++line;
    }
    return -1;
}

static void test_counters_move_for_each_outcome(void **state)
{
    assert_int_equal(get_status("/ok", NULL), 200);
    assert_int_equal(get_status("/ok", NULL), 200);
    assert_int_equal(get_status("/ok", NULL), 200);
    assert_int_equal(get_status("/ok", NULL), 429); /* burst of 3 used up */
    assert_int_equal(get_status("/boom", NULL), 500);
    assert_int_equal(get_status("/loop", NULL), 504);
    assert_int_equal(get_status("/bomb", NULL), 500);
    long status;
    char *m = admin_get("/metrics", &status);
    assert_int_equal(status, 200);
    assert_true(metric(m, "bffgate_requests_total{frontend=\"api\",route=\"/ok\",code=\"2xx\"}") == 3);
    assert_true(metric(m, "bffgate_requests_total{frontend=\"api\",route=\"/ok\",code=\"4xx\"}") == 1);
    assert_true(metric(m, "bffgate_throttled_total{frontend=\"api\",route=\"/ok\",limit=\"rate_limit\"}") == 1);
    assert_true(metric(m, "bffgate_function_errors_total{frontend=\"api\",route=\"/boom\"}") == 1);
    assert_true(metric(m, "bffgate_timeouts_total{frontend=\"api\",route=\"/loop\"}") == 1);
    assert_true(metric(m, "bffgate_memory_limit_total{frontend=\"api\",route=\"/bomb\"}") == 1);
    assert_true(metric(m, "bffgate_invocations_total{frontend=\"api\",route=\"/ok\"}") == 3);
    assert_true(metric(m, "bffgate_route_duration_seconds_count{frontend=\"api\",route=\"/ok\"}") == 4);
    assert_true(metric(m, "bffgate_route_duration_seconds_bucket{frontend=\"api\",route=\"/ok\",le=\"+Inf\"}") == 4);
    assert_true(metric(m, "bffgate_inflight{frontend=\"api\",route=\"/ok\"}") == 0);
    assert_true(metric(m, "bffgate_function_invocations_total{function=\"ok\",outcome=\"ok\"}") == 3);
    assert_true(metric(m, "bffgate_function_invocations_total{function=\"boom\",outcome=\"error\"}") == 1);
    assert_true(metric(m, "bffgate_function_duration_seconds_count{function=\"ok\"}") == 3);
    assert_true(metric(m, "bffgate_lua_memory_bytes") > 0);
    assert_true(metric(m, "process_resident_memory_bytes") > 0);
    assert_true(metric(m, "process_open_fds") > 0);
    assert_non_null(strstr(m, "# TYPE bffgate_route_duration_seconds histogram"));
    free(m);
}

static void test_admin_routes_and_readyz(void **state)
{
    long status;
    char *body = admin_get("/readyz", &status);
    assert_int_equal(status, 200);
    free(body);
    body = admin_get("/admin/routes", &status);
    assert_int_equal(status, 200);
    json_error_t err;
    json_t *doc = json_loads(body, 0, &err);
    assert_non_null(doc);
    json_t *routes = json_object_get(json_array_get(json_object_get(doc, "frontends"), 0), "routes");
    assert_int_equal(json_array_size(routes), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(routes, 0), "path")), "/ok");
    json_t *limits = json_object_get(json_array_get(routes, 0), "limits");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(limits, "rate_limit"), "burst")), 3);
    json_decref(doc);
    free(body);
}

static void test_log_lines_are_json_with_request_ids(void **state)
{
    char *id = NULL;
    e2e_response res;
    const char *const h[] = {"X-Request-Id: trace-obs-1", NULL};
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/boom", h, NULL, 0, &res), 0);
    e2e_response_release(&res);
    get_status("/say", &id);
    usleep(200000);
    char path[400];
    snprintf(path, sizeof(path), "%s/gateway.log", srv.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    int lines = 0, access_for_id = 0, report_for_id = 0, function_log = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        json_error_t err;
        json_t *rec = json_loads(line, 0, &err);
        if (rec == NULL)
            fail_msg("not JSON: %s", line);
        ++lines;
        const char *kind = json_string_value(json_object_get(rec, "log"));
        const char *rid = json_string_value(json_object_get(rec, "requestId"));
        if (kind != NULL && strcmp(kind, "access") == 0 && rid != NULL && strcmp(rid, "trace-obs-1") == 0) {
            ++access_for_id;
            assert_int_equal(json_integer_value(json_object_get(rec, "status")), 500);
            assert_string_equal(json_string_value(json_object_get(rec, "route")), "/boom");
        }
        if (kind != NULL && strcmp(kind, "report") == 0 && rid != NULL && strcmp(rid, "trace-obs-1") == 0) {
            ++report_for_id;
            assert_string_equal(json_string_value(json_object_get(rec, "outcome")), "error");
            assert_string_equal(json_string_value(json_object_get(rec, "function")), "boom");
        }
        if (id != NULL && rid != NULL && strcmp(rid, id) == 0 && json_object_get(rec, "fields") != NULL)
            ++function_log;
        json_decref(rec);
    }
    fclose(f);
    free(id);
    assert_true(lines > 5);
    assert_int_equal(access_for_id, 1);
    assert_int_equal(report_for_id, 1);
    assert_int_equal(function_log, 1);
}

static void test_sigusr1_reopens_the_log(void **state)
{
    char from[400], to[400];
    snprintf(from, sizeof(from), "%s/gateway.log", srv.dir);
    snprintf(to, sizeof(to), "%s/gateway.log.1", srv.dir);
    assert_int_equal(rename(from, to), 0); /* what logrotate does */
    kill(srv.pid, SIGUSR1);
    usleep(100000);
    char *id = NULL;
    get_status("/boom", &id);
    usleep(200000);
    char *log = NULL;
    FILE *f = fopen(from, "r");
    assert_non_null(f); /* a new file was opened */
    char line[8192];
    int found = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        found |= id != NULL && strstr(line, id) != NULL;
    fclose(f);
    free(log);
    free(id);
    assert_true(found);
}

static void *slow_call(void *arg)
{
    long *status = arg;
    *status = get_status("/slow", NULL);
    return NULL;
}

static void test_readyz_is_503_while_draining(void **state)
{
    long slow_status = 0;
    pthread_t t;
    pthread_create(&t, NULL, slow_call, &slow_status);
    usleep(150000);
    kill(srv.pid, SIGTERM);
    usleep(100000);
    long status;
    char *body = admin_get("/readyz", &status);
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "draining"));
    free(body);
    pthread_join(t, NULL);
    assert_int_equal(slow_status, 200); /* the in-flight request finished */
    assert_int_equal(e2e_stop(&srv, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_move_for_each_outcome),      cmocka_unit_test(test_admin_routes_and_readyz),
        cmocka_unit_test(test_log_lines_are_json_with_request_ids), cmocka_unit_test(test_sigusr1_reopens_the_log),
        cmocka_unit_test(test_readyz_is_503_while_draining),
    };
    return cmocka_run_group_tests_name("e2e/observability", tests, group_setup, group_teardown);
}
