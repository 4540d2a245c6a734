/* test_compose: composed routes against the real binary and a real upstream server: fan-out, sequences,
 * optional and required calls, deadlines, cancellation, per-frontend shapes, bad upstream answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <jwt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "upstream.h"

#define FN_DEPTH_LEVELS 4 /* FN_SUBCALL_DEPTH_MAX: the route's invocation (depth 0) and three nested calls */

static e2e_server srv;
static e2e_server tls_up; /* a second bffgate serving HTTPS: the TLS upstream */
static e2e_upstream *up;

static const char gateway_fmt[] =
    "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 2,\n"
    "            \"admin\": {\"address\": \"127.0.0.1\", \"port\": @ADMIN@}},\n"
    " \"functions\": {\"wrap\": {\"lua\": \"wrap.lua\"}, \"items\": {\"lua\": \"items.lua\"},\n"
    "               \"fanout\": {\"lua\": \"fanout.lua\"}, \"slowfetch\": {\"lua\": \"slowfetch.lua\"},\n"
    "               \"recursive\": {\"lua\": \"recursive.lua\"}, \"sleeper\": {\"lua\": \"sleeper.lua\"},\n"
    "               \"badfetch\": {\"lua\": \"badfetch.lua\"}, \"luacallc\": {\"lua\": \"luacallc.lua\"},\n"
    "               \"sleepy\": {\"c\": \"" FIXTURE_DIR "/slow.so\", \"symbol\": \"sleepy\"}},\n"
    " \"upstreams\": {\"svc\": {\"url\": \"http://127.0.0.1:%d\", \"timeout_ms\": 2000, \"max_body_bytes\": 65536},\n"
    "               \"small\": {\"url\": \"http://127.0.0.1:%d/\", \"max_connections\": 2},\n"
    "               \"cached\": {\"url\": \"http://127.0.0.1:%d\", \"cache\": {\"ttl_ms\": 300, \"per_user\": "
    "false}},\n"
    "               \"collapsing\": {\"url\": \"http://127.0.0.1:%d\", \"collapse\": true},\n"
    "               \"brief\": {\"url\": \"http://127.0.0.1:%d\", \"keepalive_ms\": 100},\n"
    /* connect() fails at once (a broadcast address): h2o reports it inside the call's start */
    "               \"bad\": {\"url\": \"http://255.255.255.255:80\", \"collapse\": true},\n"
    "               \"bad_nopool\": {\"url\": \"http://255.255.255.255:80\", \"keepalive_ms\": 0},\n"
    "               \"tls\": {\"url\": \"https://localhost:%d/api\", \"ca_file\": \"%s/ca.pem\"},\n"
    "               \"tls_untrusted\": {\"url\": \"https://localhost:%d/api\"}},\n"
    " \"frontends\": [\"web.json\", \"mobile.json\", \"secure.json\"]}\n";

/* Claims mapped into a call, and a route cache kept apart per user. */
static const char secure_json[] =
    "{\"name\": \"secure\", \"match\": {\"path_prefix\": \"/secure\"},\n"
    " \"auth\": {\"jwt\": {\"keys\": [{\"alg\": \"HS256\", \"secret_env\": \"BFFGATE_COMPOSE_SECRET\"}]}},\n"
    " \"routes\": [{\"path\": \"/me\", \"cache\": {\"ttl_ms\": 5000},\n"
    "   \"steps\": [{\"name\": \"me\", \"upstream\": \"svc\", \"path\": \"/json/me/${/request/claims/sub}\"}]}]}\n";

#define COMPOSE_SECRET "compose-secret-0123456789abcdefghij"

/* The calls every frontend makes; each frontend shapes the result its own way. */
#define HOME_STEPS                                                                                                     \
    "\"steps\": [[{\"name\": \"profile\", \"upstream\": \"svc\", \"path\": \"/json/users/${/request/params/id}\"},\n"  \
    "             {\"name\": \"catalog\", \"function\": \"items\", \"input\": {\"n\": 30}}]],\n"                       \
    " \"response\": {\"user\": \"${/profile}\", \"items\": \"${/catalog/items}\"}"

static const char web_json[] =
    "{\"name\": \"web\", \"match\": {\"path_prefix\": \"/web\"},\n"
    " \"routes\": [\n"
    "  {\"path\": \"/fanout\", \"steps\": [[\n"
    "     {\"name\": \"a\", \"upstream\": \"svc\", \"path\": \"/delay/50/a\"},\n"
    "     {\"name\": \"b\", \"upstream\": \"svc\", \"path\": \"/delay/50/b\"},\n"
    "     {\"name\": \"c\", \"upstream\": \"svc\", \"path\": \"/delay/50/c\"}]]},\n"
    "  {\"path\": \"/sequence/{id}\", \"method\": \"POST\", \"steps\": [\n"
    "     {\"name\": \"profile\", \"upstream\": \"svc\", \"path\": \"/json/p/${/request/params/id}\",\n"
    "      \"query\": {\"q\": \"${/request/body/q}\"}},\n"
    "     {\"name\": \"wrapped\", \"function\": \"wrap\", \"input\": {\"profile\": \"${/profile}\"}},\n"
    "     {\"name\": \"saved\", \"upstream\": \"svc\", \"method\": \"POST\", \"path\": \"/json/save\",\n"
    "      \"headers\": {\"x-user\": \"u-${/request/params/id}\"}, \"body\": \"${/wrapped}\"}]},\n"
    "  {\"path\": \"/partial\", \"call_status\": true, \"steps\": [[\n"
    "     {\"name\": \"ok\", \"upstream\": \"svc\", \"path\": \"/json/ok\"},\n"
    "     {\"name\": \"broken\", \"upstream\": \"svc\", \"path\": \"/status/503\", \"optional\": true,\n"
    "      \"fallback\": {\"items\": []}}]]},\n"
    "  {\"path\": \"/required\", \"steps\": [[\n"
    "     {\"name\": \"ok\", \"upstream\": \"svc\", \"path\": \"/delay/300/ok\"},\n"
    "     {\"name\": \"broken\", \"upstream\": \"svc\", \"path\": \"/status/500\"}]]},\n"
    "  {\"path\": \"/slow\", \"timeout_ms\": 200, \"steps\": [{\"name\": \"slow\", \"upstream\": \"svc\", \"path\": "
    "\"/delay/3000/x\"}]},\n"
    "  {\"path\": \"/hang\", \"steps\": [{\"name\": \"hang\", \"upstream\": \"svc\", \"path\": \"/hang\"}]},\n"
    "  {\"path\": \"/call-timeout\", \"steps\": [{\"name\": \"hang\", \"upstream\": \"svc\", \"path\": \"/hang\", "
    "\"timeout_ms\": 150}]},\n"
    "  {\"path\": \"/bad/{what}\", \"steps\": [{\"name\": \"bad\", \"upstream\": \"svc\", \"path\": "
    "\"/${/request/params/what}\"}]},\n"
    "  {\"path\": \"/bad/{what}/{n}\", \"steps\": [{\"name\": \"bad\", \"upstream\": \"svc\", \"path\": "
    "\"/${/request/params/what}/${/request/params/n}\"}]},\n"
    "  {\"path\": \"/brief\", \"steps\": [{\"name\": \"b\", \"upstream\": \"brief\", \"path\": \"/json/brief\"}]},\n"
    "  {\"path\": \"/text\", \"steps\": [{\"name\": \"t\", \"upstream\": \"svc\", \"path\": \"/text\"}]},\n"
    "  {\"path\": \"/trace\", \"steps\": [{\"name\": \"t\", \"upstream\": \"svc\", \"path\": \"/json/trace\"}]},\n"
    "  {\"path\": \"/limited\", \"steps\": [{\"name\": \"t\", \"upstream\": \"small\", \"path\": \"/delay/100/l\"}]},\n"
    "  {\"path\": \"/home/{id}\", " HOME_STEPS ", \"shape\": {\"limit\": {\"/items\": 20}}},\n"
    "  {\"path\": \"/lua/fanout\", \"function\": \"fanout\"},\n"
    "  {\"path\": \"/lua/slow\", \"function\": \"slowfetch\", \"timeout_ms\": 200},\n"
    "  {\"path\": \"/lua/recursive\", \"function\": \"recursive\"},\n"
    "  {\"path\": \"/collapsed\", \"steps\": [{\"name\": \"c\", \"upstream\": \"collapsing\", \"path\": "
    "\"/delay/200/co\"}]},\n"
    "  {\"path\": \"/not-collapsed\", \"steps\": [{\"name\": \"c\", \"upstream\": \"svc\", \"path\": "
    "\"/delay/200/co\"}]},\n"
    "  {\"path\": \"/unreachable\", \"steps\": [[{\"name\": \"a\", \"upstream\": \"bad\", \"path\": \"/x\"},\n"
    "     {\"name\": \"b\", \"upstream\": \"bad_nopool\", \"path\": \"/x\", \"optional\": true}]]},\n"
    "  {\"path\": \"/lua/unreachable\", \"function\": \"badfetch\", \"timeout_ms\": 300},\n"
    "  {\"path\": \"/abandon\", \"concurrency\": 1, \"queue_max\": 0, \"steps\": [{\"name\": \"s\", \"function\": "
    "\"sleepy\",\n"
    "     \"timeout_ms\": 50, \"optional\": true, \"fallback\": \"late\"}]},\n"
    "  {\"path\": \"/tls\", \"steps\": [{\"name\": \"t\", \"upstream\": \"tls\", \"path\": \"/hello\"}]},\n"
    "  {\"path\": \"/tls-untrusted\", \"steps\": [{\"name\": \"t\", \"upstream\": \"tls_untrusted\", \"path\": "
    "\"/hello\"}]},\n"
    "  {\"path\": \"/lua-abandon\", \"function\": \"luacallc\", \"concurrency\": 1, \"queue_max\": 0},\n"
    "  {\"path\": \"/cached-upstream\", \"steps\": [{\"name\": \"c\", \"upstream\": \"cached\", \"path\": "
    "\"/json/cu\"}]},\n"
    "  {\"path\": \"/cached-route\", \"cache\": {\"ttl_ms\": 400}, \"steps\": [{\"name\": \"c\", \"upstream\": "
    "\"svc\",\n"
    "     \"path\": \"/json/cr\", \"query\": {\"q\": \"${/request/query/q}\"}}]}\n"
    " ]}\n";

static const char mobile_json[] =
    "{\"name\": \"mobile\", \"match\": {\"path_prefix\": \"/mobile\"},\n"
    " \"routes\": [\n"
    "  {\"path\": \"/home/{id}\", " HOME_STEPS ",\n"
    "   \"shape\": {\"deny\": [\"/user/method\", \"/user/body\", \"/user/query\"], \"limit\": {\"/items\": 5},\n"
    "             \"rename\": {\"/user/path\": \"href\"}}}\n"
    " ]}\n";

/* Takes the whole profile object and returns it inside another: objects, not strings, pass between calls. */
static const char wrap_lua[] = "return { handler = function(event, ctx)\n"
                               "  local p = event.json.profile\n"
                               "  return { kind = type(p), path = p.path, wrapped = p }\n"
                               "end }\n";

static const char items_lua[] = "return { handler = function(event, ctx)\n"
                                "  local items = {}\n"
                                "  for i = 1, event.json.n do items[i] = { id = i } end\n"
                                "  return { items = items }\n"
                                "end }\n";

/* Calls from Lua: two upstream calls and a function in parallel, then one at a time. */
static const char fanout_lua[] =
    "return { handler = function(event, ctx)\n"
    "  local r = ctx.all({\n"
    "    { fetch = \"svc\", path = \"/delay/50/a\" },\n"
    "    { fetch = \"svc\", path = \"/delay/50/b\", query = { x = \"1 2&3\" }, headers = { [\"X-From\"] = \"lua\" } "
    "},\n"
    "    { call = \"items\", input = { n = 3 } },\n"
    "  })\n"
    "  local s = ctx.fetch(\"svc\", { path = \"/status/503\" })\n"
    "  local posted = ctx.fetch(\"svc\", { method = \"POST\", path = \"/json/\" .. ctx.encode(\"a b\"), body = { k = 1 "
    "} })\n"
    "  local missing = ctx.call(\"nope\")\n"
    "  return { a = r[1].body.path, ok_a = r[1].ok, bq = r[2].body.query, n = #r[3].body.items,\n"
    "           status = s.status, ok_503 = s.ok, posted = posted.body.body.k, posted_path = posted.body.path,\n"
    "           missing = missing.error, ok_missing = missing.ok }\n"
    "end }\n";

/* A call that outlives the route's deadline: the function times out, the call is cancelled. */
static const char slowfetch_lua[] = "return { handler = function(event, ctx)\n"
                                    "  local r = ctx.fetch(\"svc\", { path = \"/delay/3000/x\" })\n"
                                    "  return { late = r.ok }\n"
                                    "end }\n";

/* Calls itself: nesting stops at FN_SUBCALL_DEPTH_MAX. */
static const char recursive_lua[] = "return { handler = function(event, ctx)\n"
                                    "  local d = (event.json and event.json.d or 0) + 1\n"
                                    "  local r = ctx.call(\"recursive\", { d = d })\n"
                                    "  return { d = d, inner = r.ok and r.body or r.error }\n"
                                    "end }\n";

static const char sleeper_lua[] = "return { handler = function(event, ctx) ctx.sleep(2000) return {} end }\n";

/* A fetch that cannot connect, next to a call that outlives the route: the route's deadline cancels both. */
static const char badfetch_lua[] =
    "return { handler = function(event, ctx)\n"
    "  local r = ctx.all({ { fetch = \"bad\", path = \"/x\" }, { call = \"sleeper\" } })\n"
    "  return { a = r[1].error }\n"
    "end }\n";

/* A CA and a certificate for "localhost" signed by it, then a bffgate serving HTTPS with it. */
static int start_tls_upstream(void)
{
    e2e_init(&tls_up);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd %s && printf 'subjectAltName=DNS:localhost\\n' > san.ext && "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=bffgate test CA' "
             "2>/dev/null && "
             "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj '/CN=localhost' 2>/dev/null && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 "
             "-extfile san.ext 2>/dev/null",
             tls_up.dir);
    if (system(cmd) != 0)
        return -1;
    e2e_write(&tls_up, "gateway.json",
              "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@, \"tls\": {\"certificate\": "
              "\"srv.pem\", \"key\": \"srv.key\"}}]},\n"
              " \"functions\": {\"hello\": {\"lua\": \"hello.lua\"}}, \"frontends\": [\"api.json\"]}\n");
    e2e_write(&tls_up, "api.json",
              "{\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, \"routes\": [{\"path\": \"/hello\", "
              "\"function\": \"hello\"}]}\n");
    e2e_write(&tls_up, "hello.lua", "return { handler = function(event, ctx) return { secure = true } end }\n");
    return e2e_start(&tls_up, NULL);
}

/* Calls a C function that outlives its 50 ms timeout: the Lua function answers at once, the C call sleeps on. */
static const char luacallc_lua[] = "return { handler = function(event, ctx)\n"
                                   "  local r = ctx.call(\"sleepy\", nil, { timeout_ms = 50 })\n"
                                   "  return { late = r.error }\n"
                                   "end }\n";

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    up = e2e_upstream_start();
    if (up == NULL || start_tls_upstream() != 0)
        return -1;
    e2e_init(&srv);
    e2e_pick_port(&srv);
    char gateway[4096];
    int port = e2e_upstream_port(up);
    snprintf(gateway, sizeof(gateway), gateway_fmt, port, port, port, port, port, tls_up.port, tls_up.dir, tls_up.port);
    setenv("BFFGATE_COMPOSE_SECRET", COMPOSE_SECRET, 1);
    e2e_write(&srv, "secure.json", secure_json);
    e2e_write(&srv, "gateway.json", gateway);
    e2e_write(&srv, "web.json", web_json);
    e2e_write(&srv, "mobile.json", mobile_json);
    e2e_write(&srv, "wrap.lua", wrap_lua);
    e2e_write(&srv, "items.lua", items_lua);
    e2e_write(&srv, "fanout.lua", fanout_lua);
    e2e_write(&srv, "slowfetch.lua", slowfetch_lua);
    e2e_write(&srv, "recursive.lua", recursive_lua);
    e2e_write(&srv, "sleeper.lua", sleeper_lua);
    e2e_write(&srv, "badfetch.lua", badfetch_lua);
    e2e_write(&srv, "luacallc.lua", luacallc_lua);
    if (e2e_start(&srv, NULL) != 0) {
        char *log = e2e_log(&srv);
        fprintf(stderr, "bffgate did not start:\n%s\n", log != NULL ? log : "");
        free(log);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    int rc = e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    e2e_stop(&tls_up, SIGTERM);
    e2e_cleanup(&tls_up);
    e2e_upstream_stop(up);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static json_t *request_json(const char *method, const char *path, const char *const *headers, const char *body,
                            e2e_response *res)
{
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, method, path, headers, body, body != NULL ? strlen(body) : 0, res),
                     0);
    json_error_t jerr;
    json_t *v = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        fail_msg("%s %s: not JSON (status %ld): %s", method, path, res->status, res->body);
    return v;
}

static void test_parallel_group_takes_the_slowest_call_not_the_sum(void **state)
{
    /* The best of three tries: a loaded machine may delay one try, but in sequence no try could take less
     * than 150 ms. */
    double best = 1e9;
    for (int attempt = 0; attempt < 3 && best >= 100; ++attempt) {
        e2e_response res;
        double start = now_ms();
        json_t *v = request_json("GET", "/web/fanout", NULL, NULL, &res);
        double took = now_ms() - start;
        assert_int_equal(res.status, 200);
        /* The last step is a group: the response is an object of its calls' results. */
        assert_string_equal(json_string_value(json_object_get(json_object_get(v, "a"), "path")), "/delay/50/a");
        assert_string_equal(json_string_value(json_object_get(json_object_get(v, "c"), "path")), "/delay/50/c");
        if (took < best)
            best = took;
        json_decref(v);
        e2e_response_release(&res);
    }
    if (best >= 100)
        fail_msg("three 50 ms calls in one group took %.1f ms at best (in sequence they take 150)", best);
}

static void test_sequence_passes_whole_objects(void **state)
{
    e2e_response res;
    const char *const h[] = {"Content-Type: application/json", NULL};
    json_t *v = request_json("POST", "/web/sequence/42", h, "{\"q\": \"a b&c\"}", &res);
    assert_int_equal(res.status, 200);
    /* The last call echoes the body it was sent: the Lua function's result, which held the first call's object. */
    json_t *body = json_object_get(v, "body");
    assert_string_equal(json_string_value(json_object_get(body, "kind")), "table");
    assert_string_equal(json_string_value(json_object_get(body, "path")), "/json/p/42");
    json_t *wrapped = json_object_get(body, "wrapped");
    assert_true(json_is_object(wrapped));
    assert_string_equal(json_string_value(json_object_get(wrapped, "query")), "q=a%20b%26c");
    assert_string_equal(json_string_value(json_object_get(v, "method")), "POST");
    json_decref(v);
    e2e_response_release(&res);
    char *last = e2e_upstream_last_request(up, "/json/save");
    assert_non_null(last);
    assert_non_null(strstr(last, "\nx-user: u-42\n"));
    assert_non_null(strstr(last, "\ncontent-type: application/json\n"));
    free(last);
}

static void test_optional_failure_gives_a_marked_partial_response(void **state)
{
    e2e_response res;
    json_t *v = request_json("GET", "/web/partial", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    char *partial = e2e_header(&res, "x-bffgate-partial");
    assert_non_null(partial);
    assert_string_equal(partial, "broken");
    free(partial);
    assert_true(json_is_array(json_object_get(json_object_get(v, "broken"), "items"))); /* the fallback */
    json_t *calls = json_object_get(v, "_calls");
    assert_string_equal(json_string_value(json_object_get(json_object_get(calls, "ok"), "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(json_object_get(calls, "broken"), "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(calls, "broken"), "error")), "status 503");
    json_decref(v);
    e2e_response_release(&res);
}

static void test_required_failure_is_502_naming_the_call(void **state)
{
    e2e_response res;
    unsigned aborted = e2e_upstream_aborted(up);
    double start = now_ms();
    json_t *v = request_json("GET", "/web/required", NULL, NULL, &res);
    double took = now_ms() - start;
    assert_int_equal(res.status, 502);
    assert_string_equal(json_string_value(json_object_get(v, "call")), "broken");
    assert_string_equal(json_string_value(json_object_get(v, "error")), "call \"broken\" failed: status 500");
    assert_non_null(json_object_get(v, "requestId"));
    /* The failure ends the route at once: the other call (300 ms) is cancelled, not awaited. */
    assert_true(took < 250);
    assert_true(e2e_upstream_wait(up, e2e_upstream_aborted, aborted + 1, 2000) >= aborted + 1);
    json_decref(v);
    e2e_response_release(&res);
}

static void test_slow_call_is_cut_at_the_route_deadline(void **state)
{
    e2e_response res;
    unsigned aborted = e2e_upstream_aborted(up);
    double start = now_ms();
    json_t *v = request_json("GET", "/web/slow", NULL, NULL, &res);
    double took = now_ms() - start;
    assert_int_equal(res.status, 504);
    assert_true(took >= 190 && took < 1000);
    assert_true(e2e_upstream_wait(up, e2e_upstream_aborted, aborted + 1, 2000) >= aborted + 1);
    json_decref(v);
    e2e_response_release(&res);
    /* A call's own timeout (150 ms, well within the route's): 504 naming it. */
    v = request_json("GET", "/web/call-timeout", NULL, NULL, &res);
    assert_int_equal(res.status, 504);
    assert_string_equal(json_string_value(json_object_get(v, "call")), "hang");
    assert_string_equal(json_string_value(json_object_get(v, "error")), "call \"hang\" failed: timeout");
    json_decref(v);
    e2e_response_release(&res);
}

static size_t discard(char *ptr, size_t size, size_t n, void *data)
{
    return size * n;
}

static void test_disconnecting_client_cancels_upstream_calls(void **state)
{
    unsigned aborted = e2e_upstream_aborted(up);
    CURL *curl = curl_easy_init();
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/web/hang", srv.port);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 150L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    assert_int_equal(curl_easy_perform(curl), CURLE_OPERATION_TIMEDOUT);
    curl_easy_cleanup(curl);
    /* bffgate notices the closed connection and cancels the call: the upstream sees its client go. */
    assert_true(e2e_upstream_wait(up, e2e_upstream_aborted, aborted + 1, 2000) >= aborted + 1);
    usleep(100000);
    char *log = e2e_log(&srv);
    assert_non_null(strstr(log, "\"decision\":\"client_gone\""));
    free(log);
}

static void test_each_frontend_gets_its_own_shape(void **state)
{
    e2e_response res;
    json_t *web = request_json("GET", "/web/home/7", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
    json_t *mobile = request_json("GET", "/mobile/home/7", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
    /* Same calls, different shapes: web gets 20 items and the whole user, mobile 5 and a trimmed user. */
    assert_int_equal(json_array_size(json_object_get(web, "items")), 20);
    assert_int_equal(json_array_size(json_object_get(mobile, "items")), 5);
    json_t *wu = json_object_get(web, "user"), *mu = json_object_get(mobile, "user");
    assert_string_equal(json_string_value(json_object_get(wu, "path")), "/json/users/7");
    assert_non_null(json_object_get(wu, "method"));
    assert_null(json_object_get(mu, "method"));
    assert_null(json_object_get(mu, "path"));
    assert_string_equal(json_string_value(json_object_get(mu, "href")), "/json/users/7");
    json_decref(web);
    json_decref(mobile);
}

static int open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        ++n;
    closedir(d);
    return n;
}

static void expect_bad(const char *path, int status, const char *error)
{
    e2e_response res;
    json_t *v = request_json("GET", path, NULL, NULL, &res);
    if (res.status != status)
        fail_msg("%s: expected %d, got %ld: %s", path, status, res.status, res.body);
    assert_string_equal(json_string_value(json_object_get(v, "error")), error);
    json_decref(v);
    e2e_response_release(&res);
}

static void test_bad_upstream_answers_are_clear_errors(void **state)
{
    int fds_before = 0;
    long rss_before = 0;
    for (int round = 0; round < 20; ++round) {
        if (round == 2) { /* after warming up: buffers and pools have their working sizes */
            fds_before = open_fds(srv.pid);
            rss_before = e2e_rss_kb(srv.pid);
        }
        expect_bad("/web/bad/invalid", 502, "call \"bad\" failed: invalid JSON");
        expect_bad("/web/bad/huge/200000", 502, "call \"bad\" failed: response too large");
        expect_bad("/web/bad/reset", 502, "call \"bad\" failed: unreachable");
        expect_bad("/web/bad/status/404", 502, "call \"bad\" failed: status 404");
        expect_bad("/web/bad/nothing-here", 502, "call \"bad\" failed: status 404");
    }
    /* A parameter is one path segment upstream: what it holds is percent-encoded, so it cannot add a query,
     * a fragment or another segment to the upstream's path. */
    expect_bad("/web/bad/json%20x%3Fy%23z", 502, "call \"bad\" failed: status 404");
    char *last = e2e_upstream_last_request(up, "/json%20");
    assert_non_null(last);
    if (strncmp(last, "GET /json%20x%3Fy%23z\n", 22) != 0)
        fail_msg("the upstream got: %.200s", last);
    free(last);
    /* Text is not an error: it becomes a JSON string. */
    e2e_response res;
    json_t *v = request_json("GET", "/web/text", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(json_string_value(v), "hello");
    json_decref(v);
    e2e_response_release(&res);
    /* Nothing leaks: descriptors (kept-alive connections aside) and memory stay where they were. */
    usleep(200000);
    int fds_after = open_fds(srv.pid);
    long rss_after = e2e_rss_kb(srv.pid);
    if (fds_after > fds_before + 4)
        fail_msg("descriptors grew from %d to %d", fds_before, fds_after);
    /* Under AddressSanitizer freed memory sits in its quarantine: RSS says nothing there (LSan checks leaks). */
    const char *sanitize = getenv("BFFGATE_SANITIZE");
    int sanitized = sanitize != NULL && sanitize[0] != '\0' && strcmp(sanitize, "none") != 0;
    if (!sanitized && rss_after > rss_before + 8192)
        fail_msg("RSS grew from %ld to %ld kB", rss_before, rss_after);
}

static void test_request_id_and_traceparent_are_forwarded(void **state)
{
    e2e_response res;
    const char *const h[] = {"X-Request-Id: compose-test-1",
                             "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL};
    json_t *v = request_json("GET", "/web/trace", h, NULL, &res);
    assert_int_equal(res.status, 200);
    json_decref(v);
    e2e_response_release(&res);
    char *last = e2e_upstream_last_request(up, "/json/trace");
    assert_non_null(last);
    assert_non_null(strstr(last, "\nx-request-id: compose-test-1\n"));
    /* The same trace, a new parent id (this call's span). */
    const char *tp = strstr(last, "\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-");
    if (tp == NULL)
        fail_msg("the upstream got: %s", last);
    assert_null(strstr(last, "00f067aa0ba902b7"));
    /* a whole traceparent: 2 + 32 + 16 + 2 hex digits and the flags kept */
    const char *end = strchr(tp + 1, '\n');
    assert_int_equal(end - (tp + strlen("\ntraceparent: ")), 55);
    assert_memory_equal(end - 3, "-01", 3);
    /* Host names the upstream with its port (not the scheme's default) */
    char host[64];
    snprintf(host, sizeof(host), "\nhost: 127.0.0.1:%d\n", e2e_upstream_port(up));
    if (strstr(last, host) == NULL)
        fail_msg("no %s in: %s", host + 1, last);
    free(last);
    /* Without a traceparent, a new trace starts. */
    v = request_json("GET", "/web/trace", NULL, NULL, &res);
    json_decref(v);
    e2e_response_release(&res);
    last = e2e_upstream_last_request(up, "/json/trace");
    assert_non_null(strstr(last, "\ntraceparent: 00-"));
    free(last);
}

static void test_connections_are_kept_alive_and_capped(void **state)
{
    unsigned conns = e2e_upstream_connections(up);
    e2e_response res;
    for (int i = 0; i < 10; ++i) {
        json_t *v = request_json("GET", "/web/trace", NULL, NULL, &res);
        json_decref(v);
        e2e_response_release(&res);
    }
    /* Ten calls in a row reuse kept-alive connections (one per worker thread at most). */
    assert_true(e2e_upstream_connections(up) - conns <= 2);
}

/* An upstream that sends its body one byte at a time is cut at the call's deadline (a total deadline, not an
 * idle timeout that each byte would reset). */
static void test_dripping_upstream_is_cut_at_the_deadline(void **state)
{
    expect_bad("/web/bad/drip/400", 504, "call \"bad\" failed: timeout");
}

/* The upstream client reads every framing: chunked bodies cut anywhere, answers that close the connection; and
 * it closes the connections it keeps once they have been idle for the upstream's keepalive_ms. */
static void test_upstream_framings_and_idle_connections(void **state)
{
    e2e_response res;
    for (int i = 0; i < 3; ++i) {
        json_t *v = request_json("GET", "/web/bad/chunked/300", NULL, NULL, &res);
        assert_int_equal(res.status, 200);
        assert_true(json_is_array(v));
        assert_int_equal(json_array_size(v), 300);
        assert_int_equal(json_integer_value(json_array_get(v, 299)), 299);
        json_decref(v);
        e2e_response_release(&res);
    }
    for (int i = 0; i < 3; ++i) {
        json_t *v = request_json("GET", "/web/bad/close", NULL, NULL, &res);
        assert_int_equal(res.status, 200);
        assert_string_equal(json_string_value(json_object_get(v, "path")), "/close");
        json_decref(v);
        e2e_response_release(&res);
    }

    /* The upstream counts a connection closed when its own thread sees the close, which can come after the
     * answer reached us: take the count once it has settled. */
    unsigned open_before = e2e_upstream_open_connections(up);
    for (int i = 0; i < 50; ++i) {
        usleep(20000);
        unsigned now = e2e_upstream_open_connections(up);
        if (now == open_before)
            break;
        open_before = now;
    }
    json_t *v = request_json("GET", "/web/brief", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    json_decref(v);
    e2e_response_release(&res);
    assert_true(e2e_upstream_open_connections(up) > open_before);
    int closed = 0;
    for (int i = 0; i < 100 && !closed; ++i) {
        usleep(20000);
        closed = e2e_upstream_open_connections(up) <= open_before;
    }
    if (!closed)
        fail_msg("the idle connection to \"brief\" (keepalive_ms 100) is still open after 2 s");
}

static void test_lua_calls_upstreams_and_functions_in_parallel(void **state)
{
    e2e_response res;
    double start = now_ms();
    json_t *v = request_json("GET", "/web/lua/fanout", NULL, NULL, &res);
    double took = now_ms() - start;
    if (res.status != 200)
        fail_msg("status %ld: %s", res.status, res.body);
    assert_string_equal(json_string_value(json_object_get(v, "a")), "/delay/50/a");
    assert_true(json_is_true(json_object_get(v, "ok_a")));
    assert_string_equal(json_string_value(json_object_get(v, "bq")), "x=1%202%263");
    assert_int_equal(json_integer_value(json_object_get(v, "n")), 3);
    assert_int_equal(json_integer_value(json_object_get(v, "status")), 503);
    assert_true(json_is_false(json_object_get(v, "ok_503")));
    assert_int_equal(json_integer_value(json_object_get(v, "posted")), 1);
    assert_string_equal(json_string_value(json_object_get(v, "posted_path")), "/json/a%20b");
    assert_string_equal(json_string_value(json_object_get(v, "missing")), "no function \"nope\" in the config");
    assert_true(json_is_false(json_object_get(v, "ok_missing")));
    /* The two 50 ms fetches ran at once. */
    if (took >= 100)
        fail_msg("ctx.all with two 50 ms calls took %.1f ms", took);
    json_decref(v);
    e2e_response_release(&res);
    char *last = e2e_upstream_last_request(up, "/delay/50/b");
    assert_non_null(strstr(last, "\nx-from: lua\n"));
    assert_non_null(strstr(last, "\ntraceparent: 00-"));
    free(last);
}

static void test_lua_call_is_bounded_by_the_route_deadline(void **state)
{
    e2e_response res;
    unsigned aborted = e2e_upstream_aborted(up);
    double start = now_ms();
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/lua/slow", NULL, NULL, 0, &res), 0);
    double took = now_ms() - start;
    assert_int_equal(res.status, 504);
    assert_true(took < 1000);
    e2e_response_release(&res);
    assert_true(e2e_upstream_wait(up, e2e_upstream_aborted, aborted + 1, 2000) >= aborted + 1);
}

static void test_lua_calls_nest_only_so_deep(void **state)
{
    e2e_response res;
    json_t *v = request_json("GET", "/web/lua/recursive", NULL, NULL, &res);
    if (res.status != 200) {
        char *log = e2e_log(&srv);
        const char *line = strstr(log, "\"decision\":\"function_error\"");
        if (line != NULL)
            while (line > log && line[-1] != '\n')
                --line;
        fail_msg("status %ld: %s; log: %.600s", res.status, res.body, line != NULL ? line : "(none)");
    }
    /* Depth 1 calls 2, 2 calls 3, 3 calls 4; the fourth level may not call again. */
    json_t *level = v;
    int depth = 0;
    while (json_is_object(level)) {
        ++depth;
        level = json_object_get(level, "inner");
    }
    assert_int_equal(depth, FN_DEPTH_LEVELS);
    if (!json_is_string(level) || strstr(json_string_value(level), "calls nest at most 4 deep") == NULL)
        fail_msg("depth %d, innermost: %s", depth, res.body);
    json_decref(v);
    e2e_response_release(&res);
}

static void test_upstream_cache_serves_until_its_ttl(void **state)
{
    e2e_response res;
    unsigned before = e2e_upstream_requests(up);
    for (int i = 0; i < 3; ++i) {
        json_t *v = request_json("GET", "/web/cached-upstream", NULL, NULL, &res);
        assert_int_equal(res.status, 200);
        assert_string_equal(json_string_value(json_object_get(v, "path")), "/json/cu");
        json_decref(v);
        e2e_response_release(&res);
    }
    assert_int_equal(e2e_upstream_requests(up) - before, 1); /* one call; two answers from the cache */
    usleep(350000);                                          /* past the 300 ms TTL */
    json_t *v = request_json("GET", "/web/cached-upstream", NULL, NULL, &res);
    json_decref(v);
    e2e_response_release(&res);
    assert_int_equal(e2e_upstream_requests(up) - before, 2);
}

static void test_route_cache_by_path_and_query(void **state)
{
    e2e_response res;
    unsigned before = e2e_upstream_requests(up);
    json_t *v = request_json("GET", "/web/cached-route?q=one", NULL, NULL, &res);
    char *c = e2e_header(&res, "x-bffgate-cache");
    assert_string_equal(c, "miss");
    free(c);
    assert_string_equal(json_string_value(json_object_get(v, "query")), "q=one");
    json_decref(v);
    e2e_response_release(&res);
    v = request_json("GET", "/web/cached-route?q=one", NULL, NULL, &res);
    c = e2e_header(&res, "x-bffgate-cache");
    assert_string_equal(c, "hit");
    free(c);
    char *type = e2e_header(&res, "content-type");
    assert_string_equal(type, "application/json");
    free(type);
    assert_string_equal(json_string_value(json_object_get(v, "query")), "q=one");
    json_decref(v);
    e2e_response_release(&res);
    /* Another query is another entry. */
    v = request_json("GET", "/web/cached-route?q=two", NULL, NULL, &res);
    assert_string_equal(json_string_value(json_object_get(v, "query")), "q=two");
    json_decref(v);
    e2e_response_release(&res);
    assert_int_equal(e2e_upstream_requests(up) - before, 2);
}

static char *token_for(const char *sub)
{
    jwt_t *j = NULL;
    jwt_new(&j);
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)COMPOSE_SECRET, (int)strlen(COMPOSE_SECRET));
    jwt_add_grant(j, "sub", sub);
    jwt_add_grant_int(j, "exp", (long)time(NULL) + 300);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

static json_t *get_as(const char *sub, e2e_response *res)
{
    char *t = token_for(sub);
    char header[1024];
    snprintf(header, sizeof(header), "Authorization: Bearer %s", t);
    free(t);
    const char *const h[] = {header, NULL};
    return request_json("GET", "/secure/me", h, NULL, res);
}

static void test_claims_map_into_calls_and_the_cache_is_per_user(void **state)
{
    e2e_response res;
    json_t *v = get_as("alice", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(json_string_value(json_object_get(v, "path")), "/json/me/alice");
    json_decref(v);
    e2e_response_release(&res);
    v = get_as("alice", &res);
    char *c = e2e_header(&res, "x-bffgate-cache");
    assert_string_equal(c, "hit");
    free(c);
    json_decref(v);
    e2e_response_release(&res);
    /* Bob asks the same path: he must not get Alice's cached answer. */
    v = get_as("bob", &res);
    c = e2e_header(&res, "x-bffgate-cache");
    assert_string_equal(c, "miss");
    free(c);
    assert_string_equal(json_string_value(json_object_get(v, "path")), "/json/me/bob");
    json_decref(v);
    e2e_response_release(&res);
    /* And without a token there is no cached answer either: 401. */
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/secure/me", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 401);
    e2e_response_release(&res);
}

typedef struct parallel_get {
    pthread_t thread;
    const char *path;
    long status;
} parallel_get;

static void *run_get(void *arg)
{
    parallel_get *g = arg;
    e2e_response res;
    if (e2e_request(&srv, E2E_HTTP1, "GET", g->path, NULL, NULL, 0, &res) == 0) {
        g->status = res.status;
        e2e_response_release(&res);
    }
    return NULL;
}

/* Returns how many requests the upstream received for `n` concurrent GETs of path. */
static unsigned concurrent_gets(const char *path, int n)
{
    parallel_get g[8];
    unsigned before = e2e_upstream_requests(up);
    for (int i = 0; i < n; ++i) {
        g[i] = (parallel_get){0, path, 0};
        pthread_create(&g[i].thread, NULL, run_get, &g[i]);
    }
    for (int i = 0; i < n; ++i) {
        pthread_join(g[i].thread, NULL);
        assert_int_equal(g[i].status, 200);
    }
    return e2e_upstream_requests(up) - before;
}

static void test_identical_gets_collapse_into_one_request(void **state)
{
    /* Eight clients at once: one upstream request per worker thread (2) instead of eight. */
    unsigned collapsed = concurrent_gets("/web/collapsed", 8);
    assert_true(collapsed >= 1 && collapsed <= 2);
    unsigned plain = concurrent_gets("/web/not-collapsed", 8);
    assert_int_equal(plain, 8);
}

static double metric_value(const char *text, const char *series)
{
    const char *p = strstr(text, series);
    if (p == NULL)
        return -1;
    return strtod(p + strlen(series), NULL);
}

static void test_upstream_calls_are_in_the_metrics(void **state)
{
    e2e_response res;
    assert_int_equal(e2e_admin_request(&srv, "GET", "/metrics", &res), 0);
    assert_int_equal(res.status, 200);
    /* Earlier tests made ok calls, timed-out calls and cache hits. */
    assert_true(metric_value(res.body, "bffgate_upstream_calls_total{upstream=\"svc\",outcome=\"ok\"} ") > 0);
    assert_true(metric_value(res.body, "bffgate_upstream_calls_total{upstream=\"svc\",outcome=\"timeout\"} ") > 0);
    assert_true(metric_value(res.body, "bffgate_upstream_calls_total{upstream=\"svc\",outcome=\"error\"} ") > 0);
    assert_true(metric_value(res.body, "bffgate_upstream_calls_total{upstream=\"cached\",outcome=\"cached\"} ") > 0);
    assert_non_null(strstr(res.body, "bffgate_upstream_duration_seconds_bucket{upstream=\"svc\",le=\"+Inf\"} "));
    /* Upstream series are not routes. */
    assert_null(strstr(res.body, "bffgate_requests_total{frontend=\"\x01"));
    e2e_response_release(&res);
}

static void test_connect_failing_at_once_is_a_clean_error(void **state)
{
    for (int i = 0; i < 3; ++i) {
        e2e_response res;
        json_t *v = request_json("GET", "/web/unreachable", NULL, NULL, &res);
        assert_int_equal(res.status, 502);
        assert_string_equal(json_string_value(json_object_get(v, "call")), "a");
        assert_string_equal(json_string_value(json_object_get(v, "error")), "call \"a\" failed: unreachable");
        json_decref(v);
        e2e_response_release(&res);
        /* From Lua, with the batch cancelled by the route's deadline while the other call sleeps. */
        assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/lua/unreachable", NULL, NULL, 0, &res), 0);
        assert_int_equal(res.status, 504);
        e2e_response_release(&res);
    }
    /* Still serving. */
    e2e_response res;
    json_t *v = request_json("GET", "/web/trace", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    json_decref(v);
    e2e_response_release(&res);
}

static void test_abandoned_c_call_keeps_the_route_slot(void **state)
{
    /* The C call times out after 50 ms (an optional call: 200 with its fallback) but sleeps on for 600 ms on
     * its pool thread; the route (concurrency 1, no queue) stays full until it ends. */
    e2e_response res;
    json_t *v = request_json("GET", "/web/abandon?ms=600", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(json_string_value(v), "late"); /* the only call gave its fallback */
    json_decref(v);
    e2e_response_release(&res);
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/abandon?ms=0", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 429);
    e2e_response_release(&res);
    usleep(800000); /* the abandoned call has ended: the slot is back */
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/abandon?ms=0", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
}

static void test_call_headers_the_gateway_sets_are_refused(void **state)
{
    e2e_server bad;
    e2e_init(&bad);
    e2e_write(&bad, "gateway.json",
              "{\"functions\": {}, \"upstreams\": {\"u\": {\"url\": \"http://127.0.0.1:9\", \"headers\": "
              "{\"Host\": \"x\"}}},\n \"frontends\": [\"web.json\"]}\n");
    e2e_write(&bad, "web.json",
              "{\"name\": \"web\", \"routes\": [{\"path\": \"/a\", \"steps\": [{\"name\": \"a\", \"upstream\": "
              "\"u\", \"headers\": {\"Content-Length\": \"5\", \"x-ok\": \"1\"}}]}]}\n");
    char config[400];
    snprintf(config, sizeof(config), "%s/gateway.json", bad.dir);
    const char *const args[] = {"--check", config, NULL};
    char *out = NULL;
    assert_int_equal(e2e_run(args, &out), 1);
    assert_non_null(strstr(out, "gateway.json: upstreams.u.headers.Host: is set by the gateway itself"));
    assert_non_null(strstr(out, "web.json: routes[0].steps[0].headers.Content-Length: is set by the gateway itself"));
    assert_null(strstr(out, "x-ok"));
    free(out);
    e2e_cleanup(&bad);
}

static void test_https_upstream_with_its_own_ca(void **state)
{
    e2e_response res;
    json_t *v = request_json("GET", "/web/tls", NULL, NULL, &res);
    if (res.status != 200)
        fail_msg("status %ld: %s", res.status, res.body);
    assert_true(json_is_true(json_object_get(v, "secure")));
    json_decref(v);
    e2e_response_release(&res);
    /* The same server without its CA among the trusted ones: the certificate is refused. */
    v = request_json("GET", "/web/tls-untrusted", NULL, NULL, &res);
    assert_int_equal(res.status, 502);
    assert_string_equal(json_string_value(json_object_get(v, "error")), "call \"t\" failed: unreachable");
    json_decref(v);
    e2e_response_release(&res);
}

static void test_c_call_abandoned_by_lua_keeps_the_route_slot(void **state)
{
    /* The same guarantee for a C function called from Lua: the route (concurrency 1, no queue) stays full
     * until the abandoned call has ended. */
    e2e_response res;
    json_t *v = request_json("GET", "/web/lua-abandon?ms=600", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(json_string_value(json_object_get(v, "late")), "timeout"));
    json_decref(v);
    e2e_response_release(&res);
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/lua-abandon?ms=0", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 429);
    e2e_response_release(&res);
    usleep(800000);
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/lua-abandon?ms=0", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_group_takes_the_slowest_call_not_the_sum),
        cmocka_unit_test(test_sequence_passes_whole_objects),
        cmocka_unit_test(test_optional_failure_gives_a_marked_partial_response),
        cmocka_unit_test(test_required_failure_is_502_naming_the_call),
        cmocka_unit_test(test_slow_call_is_cut_at_the_route_deadline),
        cmocka_unit_test(test_disconnecting_client_cancels_upstream_calls),
        cmocka_unit_test(test_each_frontend_gets_its_own_shape),
        cmocka_unit_test(test_bad_upstream_answers_are_clear_errors),
        cmocka_unit_test(test_request_id_and_traceparent_are_forwarded),
        cmocka_unit_test(test_connections_are_kept_alive_and_capped),
        cmocka_unit_test(test_upstream_framings_and_idle_connections),
        cmocka_unit_test(test_dripping_upstream_is_cut_at_the_deadline),
        cmocka_unit_test(test_lua_calls_upstreams_and_functions_in_parallel),
        cmocka_unit_test(test_lua_call_is_bounded_by_the_route_deadline),
        cmocka_unit_test(test_lua_calls_nest_only_so_deep),
        cmocka_unit_test(test_upstream_cache_serves_until_its_ttl),
        cmocka_unit_test(test_route_cache_by_path_and_query),
        cmocka_unit_test(test_claims_map_into_calls_and_the_cache_is_per_user),
        cmocka_unit_test(test_identical_gets_collapse_into_one_request),
        cmocka_unit_test(test_connect_failing_at_once_is_a_clean_error),
        cmocka_unit_test(test_https_upstream_with_its_own_ca),
        cmocka_unit_test(test_abandoned_c_call_keeps_the_route_slot),
        cmocka_unit_test(test_c_call_abandoned_by_lua_keeps_the_route_slot),
        cmocka_unit_test(test_call_headers_the_gateway_sets_are_refused),
        cmocka_unit_test(test_upstream_calls_are_in_the_metrics), /* last: counts what the others did */
    };
    return cmocka_run_group_tests_name("e2e/compose", tests, group_setup, group_teardown);
}
