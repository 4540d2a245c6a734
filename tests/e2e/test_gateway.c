/* test_gateway: end-to-end tests of the real bffgate binary over HTTP/1.1, HTTP/2 (h2c and TLS) with libcurl. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static const char gateway_json[] =
    "{\n"
    "  \"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}],\n"
    "             \"threads\": 2, \"max_body_bytes\": 4096, \"drain_timeout_ms\": 5000},\n"
    "  \"defaults\": {\"timeout_ms\": 2000},\n"
    "  \"functions\": {\n"
    "    \"echo\": {\"lua\": \"fn/echo.lua\"},\n"
    "    \"boom\": {\"lua\": \"fn/boom.lua\"},\n"
    "    \"badheader\": {\"lua\": \"fn/badheader.lua\"},\n"
    "    \"forever\": {\"lua\": \"fn/forever.lua\"},\n"
    "    \"spin\": {\"lua\": \"fn/spin.lua\"},\n"
    "    \"hello_c\": {\"c\": \"hello.so\", \"symbol\": \"hello\"}\n"
    "  },\n"
    "  \"frontends\": [\"frontends/*.json\"]\n"
    "}\n";

static const char web_json[] = "{\"name\": \"web\", \"match\": {\"path_prefix\": \"/web\"},\n"
                               " \"routes\": [\n"
                               "  {\"method\": \"GET\", \"path\": \"/items/{id}\", \"function\": \"echo\"},\n"
                               "  {\"method\": [\"GET\", \"POST\"], \"path\": \"/echo\", \"function\": \"echo\"},\n"
                               "  {\"path\": \"/files/{rest*}\", \"function\": \"echo\"},\n"
                               "  {\"path\": \"/boom\", \"function\": \"boom\"},\n"
                               "  {\"path\": \"/badheader\", \"function\": \"badheader\"},\n"
                               "  {\"path\": \"/forever\", \"function\": \"forever\", \"timeout_ms\": 100},\n"
                               "  {\"path\": \"/spin\", \"function\": \"spin\"},\n"
                               "  {\"path\": \"/c\", \"function\": \"hello_c\"}\n"
                               " ]}\n";

static const char mobile_json[] = "{\"name\": \"mobile\", \"match\": {\"path_prefix\": \"/m\"},\n"
                                  " \"routes\": [{\"method\": \"GET\", \"path\": \"/items/{id}\", \"function\": "
                                  "\"echo\"}]}\n";

static const char tv_json[] =
    "{\"name\": \"tv\", \"match\": {\"header\": {\"name\": \"X-Client\", \"value\": \"tv\"}},\n"
    " \"routes\": [{\"path\": \"/home\", \"function\": \"echo\"}]}\n";

static const char host_json[] = "{\"name\": \"partner\", \"match\": {\"host\": \"api.partner.test\"},\n"
                                " \"routes\": [{\"path\": \"/home\", \"function\": \"echo\"}]}\n";

static const char echo_lua[] =
    "local M = {}\n"
    "function M.handler(event, ctx)\n"
    "  local shape = { frontend = event.frontend, route = event.route, method = event.method, path = event.path,\n"
    "    params = event.pathParameters, query = event.query, multi = event.multiValueQuery,\n"
    "    body = event.body, json = event.json, requestId = event.requestId, ctxRequestId = ctx.requestId,\n"
    "    ua = event.headers['user-agent'], fn = ctx.functionName }\n"
    "  if event.frontend == 'mobile' then return { id = event.pathParameters.id, compact = true } end\n"
    "  return shape\n"
    "end\n"
    "return M\n";

static const char boom_lua[] = "local M = {}\n"
                               "function M.handler(event, ctx)\n"
                               "  error('secret database password is hunter2')\n"
                               "end\n"
                               "return M\n";

static const char badheader_lua[] = "return { handler = function(event, ctx)\n"
                                    "  return { statusCode = 200, headers = { ['x-evil'] = 'a\\r\\nset-cookie: x=1' },"
                                    " body = 'x' }\n"
                                    "end }\n";

static const char forever_lua[] = "return { handler = function(event, ctx)\n"
                                  "  while true do pcall(function() while true do end end) end\n"
                                  "end }\n";

static const char spin_lua[] = "return { handler = function(event, ctx)\n"
                               "  local t = os.clock() + 0.4\n"
                               "  while os.clock() < t do end\n"
                               "  return { done = true }\n"
                               "end }\n";

static e2e_server shared;

static void write_base_tree(e2e_server *srv)
{
    e2e_write(srv, "gateway.json", gateway_json);
    e2e_write(srv, "frontends/web.json", web_json);
    e2e_write(srv, "frontends/mobile.json", mobile_json);
    e2e_write(srv, "frontends/tv.json", tv_json);
    e2e_write(srv, "frontends/zpartner.json", host_json);
    e2e_write(srv, "fn/echo.lua", echo_lua);
    e2e_write(srv, "fn/boom.lua", boom_lua);
    e2e_write(srv, "fn/badheader.lua", badheader_lua);
    e2e_write(srv, "fn/forever.lua", forever_lua);
    e2e_write(srv, "fn/spin.lua", spin_lua);
}

static const char *const lib_args[] = {"--lib-path", EXAMPLES_DIR, NULL};

static int start_base(e2e_server *srv)
{
    e2e_init(srv);
    e2e_pick_port(srv);
    write_base_tree(srv);
    if (e2e_start(srv, lib_args) != 0) {
        char *log = e2e_log(srv);
        fprintf(stderr, "bffgate did not start:\n%s\n", log);
        free(log);
        return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    return start_base(&shared);
}

static int group_teardown(void **state)
{
    int rc = e2e_stop(&shared, SIGTERM);
    e2e_cleanup(&shared);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static void get(e2e_http http, const char *path, e2e_response *res)
{
    assert_int_equal(e2e_request(&shared, http, "GET", path, NULL, NULL, 0, res), 0);
}

/* The server still answers a normal request (after something bad happened). */
static void assert_still_serving(void)
{
    e2e_response res;
    get(E2E_HTTP1, "/web/items/1", &res);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
}

static void test_http1_path_params_and_query(void **state)
{
    e2e_response res;
    get(E2E_HTTP1, "/web/items/a%20b?x=1&y=two&x=3&plus=a+b", &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.http_version, 11);
    assert_non_null(strstr(res.body, "\"params\":{\"id\":\"a b\"}"));
    assert_non_null(strstr(res.body, "\"x\":\"3\"")); /* single-value form: the last value */
    assert_non_null(strstr(res.body, "\"x\":[\"1\",\"3\"]"));
    assert_non_null(strstr(res.body, "\"plus\":\"a b\""));
    assert_non_null(strstr(res.body, "\"route\":\"/items/{id}\""));
    assert_non_null(strstr(res.body, "\"frontend\":\"web\""));
    assert_non_null(strstr(res.body, "\"fn\":\"echo\""));
    char *ct = e2e_header(&res, "content-type");
    assert_string_equal(ct, "application/json");
    free(ct);
    char *id = e2e_header(&res, "x-request-id");
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);
    char want[80];
    snprintf(want, sizeof(want), "\"requestId\":\"%s\"", id);
    assert_non_null(strstr(res.body, want));
    free(id);
    e2e_response_release(&res);
}

static void test_http2_prior_knowledge(void **state)
{
    e2e_response res;
    get(E2E_HTTP2_PRIOR, "/web/items/7", &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.http_version, 2);
    assert_non_null(strstr(res.body, "\"id\":\"7\""));
    e2e_response_release(&res);
}

static void test_http2_upgrade(void **state)
{
    e2e_response res;
    get(E2E_HTTP2_UPGRADE, "/web/items/8", &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.http_version, 2);
    assert_non_null(strstr(res.headers, "101"));
    assert_non_null(strstr(res.body, "\"id\":\"8\""));
    e2e_response_release(&res);
}

static void test_frontends_shape_differently(void **state)
{
    e2e_response web, mobile;
    get(E2E_HTTP1, "/web/items/5", &web);
    get(E2E_HTTP2_PRIOR, "/m/items/5", &mobile);
    assert_int_equal(web.status, 200);
    assert_int_equal(mobile.status, 200);
    assert_non_null(strstr(web.body, "\"frontend\":\"web\""));
    assert_non_null(strstr(mobile.body, "\"id\":\"5\""));
    assert_non_null(strstr(mobile.body, "\"compact\":true"));
    assert_null(strstr(mobile.body, "\"frontend\""));
    e2e_response_release(&web);
    e2e_response_release(&mobile);
}

static void test_frontend_by_header_and_host(void **state)
{
    e2e_response res;
    const char *const tv[] = {"X-Client: tv", NULL};
    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "GET", "/home", tv, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"frontend\":\"tv\""));
    e2e_response_release(&res);

    const char *const host[] = {"Host: API.partner.test:8443", NULL};
    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "GET", "/home", host, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"frontend\":\"partner\""));
    e2e_response_release(&res);

    get(E2E_HTTP1, "/home", &res); /* neither header nor host: no frontend */
    assert_int_equal(res.status, 404);
    assert_non_null(strstr(res.body, "\"error\":\"no frontend serves this path\""));
    e2e_response_release(&res);
}

static void test_wildcard(void **state)
{
    e2e_response res;
    get(E2E_HTTP1, "/web/files/a/b/c.txt", &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"rest\":\"a/b/c.txt\""));
    e2e_response_release(&res);
}

static void test_404_and_405(void **state)
{
    e2e_response res;
    get(E2E_HTTP1, "/web/nothing/here", &res);
    assert_int_equal(res.status, 404);
    assert_non_null(strstr(res.body, "\"error\":\"no route matches this path\""));
    assert_non_null(strstr(res.body, "\"requestId\":"));
    e2e_response_release(&res);

    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "DELETE", "/web/echo", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 405);
    char *allow = e2e_header(&res, "allow");
    assert_string_equal(allow, "GET, HEAD, POST");
    free(allow);
    assert_non_null(strstr(res.body, "\"error\":\"method not allowed\""));
    e2e_response_release(&res);
}

static void test_json_body_reaches_lua(void **state)
{
    e2e_response res;
    const char *const h[] = {"Content-Type: application/json; charset=utf-8", NULL};
    const char body[] = "{\"items\":[1,2,{\"a\":null}]}";
    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "POST", "/web/echo", h, body, strlen(body), &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"json\":{\"items\":[1,2,{\"a\":null}]}"));
    e2e_response_release(&res);
}

static void test_invalid_json_is_400(void **state)
{
    e2e_response res;
    const char *const h[] = {"Content-Type: application/json", NULL};
    const char body[] = "{\"items\": [1, 2";
    assert_int_equal(e2e_request(&shared, E2E_HTTP2_PRIOR, "POST", "/web/echo", h, body, strlen(body), &res), 0);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.body, "\"error\":\"invalid JSON body: line 1"));
    e2e_response_release(&res);
    assert_still_serving();
}

static void test_oversize_body_is_413(void **state)
{
    e2e_response res;
    size_t len = 10000; /* the config allows 4096 */
    char *body = malloc(len);
    memset(body, 'x', len);
    /* HTTP/1.1: h2o answers 413 from the Content-Length, before the body is sent (the client waits for
     * 100-continue), then closes the connection. */
    const char *const expect[] = {"Expect: 100-continue", NULL};
    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "POST", "/web/echo", expect, body, len, &res), 0);
    assert_int_equal(res.status, 413);
    e2e_response_release(&res);
    /* HTTP/2: h2o 2.2 refuses the stream (RST_STREAM REFUSED_STREAM) once the body passes the limit;
     * the request fails and the connection and server live on. */
    assert_int_not_equal(e2e_request(&shared, E2E_HTTP2_PRIOR, "POST", "/web/echo", NULL, body, len, &res), 0);
    e2e_response_release(&res);
    free(body);
    /* At the limit it is accepted. */
    body = malloc(4096);
    memset(body, 'y', 4096);
    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "POST", "/web/echo", NULL, body, 4096, &res), 0);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
    assert_int_equal(e2e_request(&shared, E2E_HTTP2_PRIOR, "POST", "/web/echo", NULL, body, 4096, &res), 0);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
    free(body);
    assert_still_serving();
}

static void test_lua_error_is_500_without_details(void **state)
{
    e2e_response res;
    const char *const h[] = {"X-Request-Id: trace-abc.123", NULL};
    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "GET", "/web/boom", h, NULL, 0, &res), 0);
    assert_int_equal(res.status, 500);
    assert_string_equal(res.body, "{\"error\":\"the function failed\",\"requestId\":\"trace-abc.123\"}");
    assert_null(strstr(res.headers, "hunter2"));
    char *id = e2e_header(&res, "x-request-id");
    assert_string_equal(id, "trace-abc.123");
    free(id);
    e2e_response_release(&res);
    /* The message goes to the log, with the request id. */
    usleep(50000);
    char *log = e2e_log(&shared);
    char *line = strstr(log, "hunter2");
    assert_non_null(line);
    assert_non_null(strstr(log, "\"requestId\":\"trace-abc.123\""));
    free(log);
    assert_still_serving();
}

static void test_malformed_request_id_is_replaced(void **state)
{
    e2e_response res;
    const char *const h[] = {"X-Request-Id: bad id with spaces", NULL};
    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "GET", "/web/items/1", h, NULL, 0, &res), 0);
    char *id = e2e_header(&res, "x-request-id");
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);
    free(id);
    e2e_response_release(&res);
}

static void test_crlf_header_from_function_is_refused(void **state)
{
    e2e_response res;
    get(E2E_HTTP1, "/web/badheader", &res);
    assert_int_equal(res.status, 500);
    assert_null(strstr(res.headers, "set-cookie"));
    assert_null(strstr(res.headers, "x-evil"));
    assert_non_null(strstr(res.body, "\"error\":\"the function failed\""));
    e2e_response_release(&res);
    assert_still_serving();
}

static void test_timeout_is_504_and_uncatchable(void **state)
{
    e2e_response res;
    get(E2E_HTTP2_PRIOR, "/web/forever", &res);
    assert_int_equal(res.status, 504);
    assert_non_null(strstr(res.body, "\"error\":\"the route did not finish before its timeout\""));
    assert_non_null(strstr(res.body, "\"limit\":\"timeout_ms\""));
    e2e_response_release(&res);
    assert_still_serving();
}

static void test_c_function(void **state)
{
    e2e_response res;
    get(E2E_HTTP1, "/web/c", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"message\":\"hello from C\"}");
    char *len = e2e_header(&res, "content-length");
    assert_string_equal(len, "26");
    free(len);
    e2e_response_release(&res);
}

static void test_head_falls_back_to_get(void **state)
{
    e2e_response res;
    assert_int_equal(e2e_request(&shared, E2E_HTTP1, "HEAD", "/web/c", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 0);
    e2e_response_release(&res);
}

static void test_tls_alpn_h2(void **state)
{
    e2e_server srv;
    e2e_init(&srv);
    e2e_pick_port(&srv);
    write_base_tree(&srv);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2 -keyout %s/key.pem -out "
             "%s/cert.pem >/dev/null 2>&1",
             srv.dir, srv.dir);
    assert_int_equal(system(cmd), 0);
    e2e_write(&srv, "gateway.json",
              "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@,"
              " \"tls\": {\"certificate\": \"cert.pem\", \"key\": \"key.pem\"}}], \"threads\": 1},"
              " \"functions\": {\"echo\": {\"lua\": \"fn/echo.lua\"}, \"boom\": {\"lua\": \"fn/boom.lua\"},"
              " \"badheader\": {\"lua\": \"fn/badheader.lua\"}, \"forever\": {\"lua\": \"fn/forever.lua\"},"
              " \"spin\": {\"lua\": \"fn/spin.lua\"}, \"hello_c\": {\"c\": \"hello.so\", \"symbol\": \"hello\"}},"
              " \"frontends\": [\"frontends/web.json\"]}");
    assert_int_equal(e2e_start(&srv, lib_args), 0);
    e2e_response res;
    assert_int_equal(e2e_request(&srv, E2E_HTTPS, "GET", "/web/items/9", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.http_version, 2);
    assert_non_null(strstr(res.body, "\"id\":\"9\""));
    e2e_response_release(&res);
    assert_int_equal(e2e_stop(&srv, SIGTERM), 0);
    e2e_cleanup(&srv);
}

typedef struct slow_call {
    e2e_server *srv;
    e2e_response res;
    int rc;
} slow_call;

static void *slow_request(void *arg)
{
    slow_call *call = arg;
    call->rc = e2e_request(call->srv, E2E_HTTP1, "GET", "/web/spin", NULL, NULL, 0, &call->res);
    return NULL;
}

static void test_sigterm_drains_in_flight_requests(void **state)
{
    e2e_server srv;
    assert_int_equal(start_base(&srv), 0);
    slow_call call = {.srv = &srv};
    pthread_t t;
    pthread_create(&t, NULL, slow_request, &call);
    usleep(150000); /* the request is now running (it takes 400 ms) */
    kill(srv.pid, SIGTERM);
    pthread_join(t, NULL);
    assert_int_equal(call.rc, 0);
    assert_int_equal(call.res.status, 200);
    assert_string_equal(call.res.body, "{\"done\":true}");
    e2e_response_release(&call.res);
    assert_int_equal(e2e_stop(&srv, 0), 0); /* exits 0 on its own */
    char *log = e2e_log(&srv);
    assert_non_null(strstr(log, "SIGTERM: draining"));
    assert_non_null(strstr(log, "\"msg\":\"stopped\""));
    free(log);
    /* And no longer accepts. */
    e2e_response res;
    assert_int_not_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/items/1", NULL, NULL, 0, &res), 0);
    e2e_response_release(&res);
    e2e_cleanup(&srv);
}

static void test_help_and_version(void **state)
{
    char *out;
    const char *const help[] = {"--help", NULL};
    assert_int_equal(e2e_run(help, &out), 0);
    assert_non_null(strstr(out, "Usage: bffgate"));
    assert_non_null(strstr(out, "--check"));
    free(out);
    const char *const version[] = {"--version", NULL};
    assert_int_equal(e2e_run(version, &out), 0);
    assert_non_null(strstr(out, "bffgate 0."));
    free(out);
    const char *const bad[] = {"--threads", "0", NULL};
    assert_int_equal(e2e_run(bad, &out), 2);
    free(out);
}

int main(void)
{
    const struct CMUnitTest shared_tests[] = {
        cmocka_unit_test(test_http1_path_params_and_query),
        cmocka_unit_test(test_http2_prior_knowledge),
        cmocka_unit_test(test_http2_upgrade),
        cmocka_unit_test(test_frontends_shape_differently),
        cmocka_unit_test(test_frontend_by_header_and_host),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_404_and_405),
        cmocka_unit_test(test_json_body_reaches_lua),
        cmocka_unit_test(test_invalid_json_is_400),
        cmocka_unit_test(test_oversize_body_is_413),
        cmocka_unit_test(test_lua_error_is_500_without_details),
        cmocka_unit_test(test_malformed_request_id_is_replaced),
        cmocka_unit_test(test_crlf_header_from_function_is_refused),
        cmocka_unit_test(test_timeout_is_504_and_uncatchable),
        cmocka_unit_test(test_c_function),
        cmocka_unit_test(test_head_falls_back_to_get),
    };
    const struct CMUnitTest own_server_tests[] = {
        cmocka_unit_test(test_tls_alpn_h2),
        cmocka_unit_test(test_sigterm_drains_in_flight_requests),
        cmocka_unit_test(test_help_and_version),
    };
    int failed = cmocka_run_group_tests_name("e2e/shared-server", shared_tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("e2e/own-server", own_server_tests, NULL, NULL);
    return failed;
}
