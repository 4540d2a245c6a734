/* test_cli: the invoke, routes and openapi subcommands of the real binary, invoke checked against the real server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static const char gateway_json[] =
    "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 1},\n"
    " \"defaults\": {\"timeout_ms\": 2000},\n"
    " \"functions\": {\n"
    "   \"echo\": {\"lua\": \"fn/echo.lua\"},\n"
    "   \"boom\": {\"lua\": \"fn/boom.lua\"},\n"
    "   \"badheader\": {\"lua\": \"fn/badheader.lua\"},\n"
    "   \"loop\": {\"lua\": \"fn/loop.lua\"},\n"
    "   \"bomb\": {\"lua\": \"fn/bomb.lua\"},\n"
    "   \"hello_c\": {\"c\": \"hello.so\", \"symbol\": \"hello\"}\n"
    " },\n"
    " \"frontends\": [\"frontends/*.json\"]}\n";

static const char web_json[] = "{\"name\": \"web\", \"match\": {\"path_prefix\": \"/web\"},\n"
                               " \"routes\": [\n"
                               "  {\"method\": \"GET\", \"path\": \"/items/{id}\", \"function\": \"echo\"},\n"
                               "  {\"method\": [\"GET\", \"POST\"], \"path\": \"/echo\", \"function\": \"echo\"},\n"
                               "  {\"path\": \"/files/{dir}/{rest*}\", \"function\": \"echo\"},\n"
                               "  {\"path\": \"/boom\", \"function\": \"boom\"},\n"
                               "  {\"path\": \"/badheader\", \"function\": \"badheader\"},\n"
                               "  {\"path\": \"/loop\", \"function\": \"loop\", \"timeout_ms\": 100},\n"
                               "  {\"path\": \"/bomb\", \"function\": \"bomb\", \"memory_mb\": 2},\n"
                               "  {\"path\": \"/c\", \"function\": \"hello_c\"}\n"
                               " ]}\n";

static const char mobile_json[] =
    "{\"name\": \"mobile\", \"match\": {\"header\": {\"name\": \"X-Client\", \"value\": \"app\"}},\n"
    " \"routes\": [{\"method\": \"DELETE\", \"path\": \"/items/{id}\", \"function\": \"echo\", \"concurrency\": 7}]}\n";

static const char echo_lua[] =
    "return { handler = function(event, ctx)\n"
    "  return { statusCode = 201, headers = { ['x-echo'] = 'yes' }, body = {\n"
    "    frontend = event.frontend, route = event.route, method = event.method, path = event.path,\n"
    "    params = event.pathParameters, query = event.query, multi = event.multiValueQuery, body = event.body,\n"
    "    json = event.json, requestId = event.requestId, ctxRequestId = ctx.requestId,\n"
    "    client = event.headers['x-client'], fn = ctx.functionName } }\n"
    "end }\n";

static e2e_server srv;
static char config[400];
static const char *const lib_args[] = {"--lib-path", EXAMPLES_DIR, NULL};

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    e2e_write(&srv, "gateway.json", gateway_json);
    e2e_write(&srv, "frontends/web.json", web_json);
    e2e_write(&srv, "frontends/mobile.json", mobile_json);
    e2e_write(&srv, "fn/echo.lua", echo_lua);
    e2e_write(&srv, "fn/boom.lua", "return { handler = function() error('database password is hunter2') end }\n");
    e2e_write(&srv, "fn/badheader.lua",
              "return { handler = function() return { statusCode = 200, headers = { ['x-evil'] = 'a\\r\\nb' },"
              " body = 'x' } end }\n");
    e2e_write(&srv, "fn/loop.lua", "return { handler = function() while true do end end }\n");
    e2e_write(&srv, "fn/bomb.lua", "return { handler = function() local t = {} for i = 1, 1e9 do t[i] = i end end }\n");
    snprintf(config, sizeof(config), "%s/gateway.json", srv.dir);
    if (e2e_start(&srv, lib_args) != 0) {
        char *log = e2e_log(&srv);
        fprintf(stderr, "bffgate did not start:\n%s\n", log);
        free(log);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    int rc = e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = calloc(1, (size_t)n + 1);
    if (fread(text, 1, (size_t)n, f) != (size_t)n)
        text[0] = '\0';
    fclose(f);
    return text;
}

/* Runs bffgate with args (NULL-terminated) and stdin text (may be NULL: /dev/null), keeping stdout and stderr
 * apart (e2e_run merges them): invoke promises one JSON object on stdout and its REPORT on stderr. */
static int run_split(const char *const *args, const char *input, char **out, char **err)
{
    char out_path[] = "/tmp/bffgate-cli-out-XXXXXX", err_path[] = "/tmp/bffgate-cli-err-XXXXXX";
    char in_path[] = "/tmp/bffgate-cli-in-XXXXXX";
    int ofd = mkstemp(out_path), efd = mkstemp(err_path), ifd = mkstemp(in_path);
    assert_true(ofd >= 0 && efd >= 0 && ifd >= 0);
    if (input != NULL)
        assert_int_equal(write(ifd, input, strlen(input)), (ssize_t)strlen(input));
    lseek(ifd, 0, SEEK_SET);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = BFFGATE_BIN;
    for (size_t i = 0; args[i] != NULL && n < 31; ++i)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ifd, STDIN_FILENO);
        dup2(ofd, STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        execv(BFFGATE_BIN, (char *const *)argv);
        _exit(127);
    }
    close(ofd);
    close(efd);
    close(ifd);
    int status = 0;
    waitpid(pid, &status, 0);
    *out = read_file(out_path);
    *err = read_file(err_path);
    unlink(out_path);
    unlink(err_path);
    unlink(in_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Event files live outside the config tree, which the running server watches for changes. */
static void write_temp(const char *text, char path[64])
{
    snprintf(path, 64, "/tmp/bffgate-cli-event-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

typedef struct invoke_result {
    int exit_status;
    json_t *answer; /* the whole stdout, parsed */
    char *out, *err;
} invoke_result;

/* bffgate invoke [extra...] CONFIG FUNCTION [EVENT]: the event text goes through a file (or stdin with "-"). */
static void invoke(const char *function, const char *event, int use_stdin, const char *const *extra, invoke_result *r)
{
    const char *args[24];
    size_t n = 0;
    args[n++] = "invoke";
    args[n++] = "-L";
    args[n++] = EXAMPLES_DIR;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; ++i)
        args[n++] = extra[i];
    args[n++] = config;
    args[n++] = function;
    char event_path[64];
    if (event != NULL && !use_stdin) {
        write_temp(event, event_path);
        args[n++] = event_path;
    } else if (event != NULL) {
        args[n++] = "-";
    }
    args[n] = NULL;
    r->exit_status = run_split(args, use_stdin ? event : NULL, &r->out, &r->err);
    if (event != NULL && !use_stdin)
        unlink(event_path);
    json_error_t jerr;
    r->answer = json_loads(r->out, 0, &jerr); /* the whole of stdout must be one JSON object */
    if (r->exit_status == 0 && r->answer == NULL)
        fprintf(stderr, "stdout is not one JSON object (%s):\n%s\nstderr:\n%s\n", jerr.text, r->out, r->err);
}

static void invoke_result_release(invoke_result *r)
{
    json_decref(r->answer);
    free(r->out);
    free(r->err);
}

static const char *answer_header(const invoke_result *r, const char *name)
{
    return json_string_value(json_object_get(json_object_get(r->answer, "headers"), name));
}

static int answer_status(const invoke_result *r)
{
    return (int)json_integer_value(json_object_get(r->answer, "statusCode"));
}

/* The REPORT line's duration in milliseconds. */
static double report_ms(const invoke_result *r)
{
    const char *d = strstr(r->err, " duration=");
    assert_non_null(d);
    return strtod(d + 10, NULL);
}

static void assert_report(const invoke_result *r, const char *function, const char *outcome)
{
    char want[128];
    snprintf(want, sizeof(want), "REPORT function=%s version=", function);
    const char *line = strstr(r->err, want);
    if (line == NULL)
        fprintf(stderr, "no REPORT for %s in:\n%s\n", function, r->err);
    assert_non_null(line);
    snprintf(want, sizeof(want), "outcome=%s\n", outcome);
    assert_non_null(strstr(line, want));
    assert_non_null(strstr(line, "ms peakMemory="));
    assert_true(strstr(line, "start=warm") != NULL || strstr(line, "start=cold") != NULL);
    assert_null(strstr(r->out, "REPORT")); /* not on stdout */
}

typedef struct same_as_server {
    const char *method, *path;         /* the HTTP request */
    const char *const *headers;        /* its headers */
    const char *body;                  /* its body, or NULL */
    const char *function, *event;      /* the same request as an invoke event */
    const char *const *function_heads; /* headers the function (or the gateway's error) sets */
} same_as_server;

static const char *const xid_client[] = {"X-Request-Id: cmp-1", "X-Client: web-test", NULL};
static const char *const xid_json[] = {"X-Request-Id: cmp-2", "Content-Type: application/json", NULL};
static const char *const xid_3[] = {"X-Request-Id: cmp-3", NULL};
static const char *const echo_heads[] = {"x-echo", "content-type", "x-request-id", NULL};
static const char *const error_heads[] = {"content-type", "x-request-id", NULL};

static const same_as_server cases[] = {
    {"GET", "/web/items/a%20b?x=1&x=3&y=two", xid_client, NULL, "echo",
     "{\"method\": \"GET\", \"path\": \"/web/items/a%20b\", \"route\": \"/items/{id}\", \"frontend\": \"web\",\n"
     " \"pathParameters\": {\"id\": \"a b\"}, \"query\": {\"x\": [\"1\", \"3\"], \"y\": \"two\"},\n"
     " \"headers\": {\"X-Client\": \"web-test\", \"X-Request-Id\": \"cmp-1\"}}",
     echo_heads},
    {"POST", "/web/echo", xid_json, "{\"a\":[1,2],\"b\":\"c\"}", "echo",
     "{\"method\": \"POST\", \"path\": \"/web/echo\", \"route\": \"/echo\", \"frontend\": \"web\",\n"
     " \"json\": {\"a\": [1, 2], \"b\": \"c\"}, \"requestId\": \"cmp-2\"}",
     echo_heads},
    {"GET", "/web/files/docs/a/b.txt", xid_3, NULL, "echo",
     "{\"path\": \"/web/files/docs/a/b.txt\", \"route\": \"/files/{dir}/{rest*}\", \"frontend\": \"web\",\n"
     " \"pathParameters\": {\"dir\": \"docs\", \"rest\": \"a/b.txt\"}, \"requestId\": \"cmp-3\"}",
     echo_heads},
    {"GET", "/web/boom", xid_3, NULL, "boom",
     "{\"path\": \"/web/boom\", \"route\": \"/boom\", \"frontend\": \"web\", \"requestId\": \"cmp-3\"}", error_heads},
    {"GET", "/web/badheader", xid_3, NULL, "badheader",
     "{\"path\": \"/web/badheader\", \"route\": \"/badheader\", \"frontend\": \"web\", \"requestId\": \"cmp-3\"}",
     error_heads},
    {"GET", "/web/loop", xid_3, NULL, "loop",
     "{\"path\": \"/web/loop\", \"route\": \"/loop\", \"frontend\": \"web\", \"requestId\": \"cmp-3\"}", error_heads},
    {"GET", "/web/bomb", xid_3, NULL, "bomb",
     "{\"path\": \"/web/bomb\", \"route\": \"/bomb\", \"frontend\": \"web\", \"requestId\": \"cmp-3\"}", error_heads},
    {"GET", "/web/c", xid_3, NULL, "hello_c",
     "{\"path\": \"/web/c\", \"route\": \"/c\", \"frontend\": \"web\", \"requestId\": \"cmp-3\"}", error_heads},
};

/* The server and invoke give the same status, the same body (as JSON: Lua tables have no key order) and the same
 * function-set headers for the same request. */
static void test_invoke_matches_server(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        const same_as_server *c = &cases[i];
        e2e_response res;
        assert_int_equal(e2e_request(&srv, E2E_HTTP1, c->method, c->path, c->headers, c->body,
                                     c->body != NULL ? strlen(c->body) : 0, &res),
                         0);
        invoke_result r;
        invoke(c->function, c->event, 0, NULL, &r);
        if (r.exit_status != 0 || r.answer == NULL)
            fprintf(stderr, "case %s %s:\n%s\n%s\n", c->method, c->path, r.out, r.err);
        assert_int_equal(r.exit_status, 0);
        assert_non_null(r.answer);
        if (answer_status(&r) != res.status)
            fprintf(stderr, "case %s %s: server %ld, invoke %d\n%s\n", c->method, c->path, res.status,
                    answer_status(&r), r.err);
        assert_int_equal(answer_status(&r), res.status);

        json_error_t jerr;
        json_t *server_body = json_loadb(res.body, res.body_len, 0, &jerr);
        assert_non_null(server_body);
        json_t *invoke_json = json_object_get(r.answer, "json");
        if (!json_equal(server_body, invoke_json)) {
            char *text = json_dumps(invoke_json, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(stderr, "case %s %s:\nserver: %.*s\ninvoke: %s\n", c->method, c->path, (int)res.body_len, res.body,
                    text != NULL ? text : "(none)");
            free(text);
        }
        assert_true(json_equal(server_body, invoke_json));
        /* "body" is the text, "json" its parse */
        json_t *reparsed = json_loads(json_string_value(json_object_get(r.answer, "body")), 0, NULL);
        assert_true(json_equal(reparsed, invoke_json));
        json_decref(reparsed);
        json_decref(server_body);

        for (size_t h = 0; c->function_heads[h] != NULL; ++h) {
            char *want = e2e_header(&res, c->function_heads[h]);
            assert_non_null(want);
            const char *got = answer_header(&r, c->function_heads[h]);
            assert_non_null(got);
            assert_string_equal(got, want);
            free(want);
        }
        e2e_response_release(&res);
        invoke_result_release(&r);
    }
}

static void test_invoke_uses_the_routes_limits(void **state)
{
    /* The event names web's /loop, whose timeout is 100 ms (the defaults say 2000). */
    invoke_result r;
    invoke("loop", "{\"path\": \"/web/loop\", \"route\": \"/loop\", \"frontend\": \"web\"}", 0, NULL, &r);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(answer_status(&r), 504);
    assert_report(&r, "loop", "timeout");
    double ms = report_ms(&r);
    assert_true(ms >= 90 && ms < 1000);
    invoke_result_release(&r);
}

static void test_invoke_c_function(void **state)
{
    invoke_result r; /* no event: an empty GET / */
    invoke("hello_c", NULL, 0, NULL, &r);
    assert_int_equal(r.exit_status, 0);
    assert_non_null(r.answer);
    assert_int_equal(answer_status(&r), 200);
    assert_string_equal(answer_header(&r, "content-type"), "application/json");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.answer, "json"), "message")),
                        "hello from C");
    assert_int_equal(strlen(answer_header(&r, "x-request-id")), 32); /* a fresh id, as the gateway makes */
    assert_report(&r, "hello_c", "ok");
    invoke_result_release(&r);

    /* Without --lib-path (and BFFGATE_LIB_PATH) the object is not found: a config error. */
    const char *const args[] = {"invoke", config, "hello_c", NULL};
    char *out;
    unsetenv("BFFGATE_LIB_PATH");
    assert_int_equal(e2e_run(args, &out), 1);
    assert_non_null(strstr(out, "hello.so"));
    free(out);
}

static void test_invoke_event_from_stdin(void **state)
{
    invoke_result r;
    invoke("echo",
           "{\"method\": \"PUT\", \"path\": \"/x\", \"headers\": {\"Content-Type\": \"text/plain\"}, \"body\": "
           "\"plain\", \"requestId\": \"from-stdin\"}",
           1, NULL, &r);
    assert_int_equal(r.exit_status, 0);
    json_t *got = json_object_get(r.answer, "json");
    assert_string_equal(json_string_value(json_object_get(got, "method")), "PUT");
    assert_string_equal(json_string_value(json_object_get(got, "body")), "plain");
    assert_null(json_object_get(got, "json")); /* not a JSON content type: not decoded */
    assert_string_equal(json_string_value(json_object_get(got, "requestId")), "from-stdin");
    assert_string_equal(json_string_value(json_object_get(got, "fn")), "echo");
    assert_int_equal(answer_status(&r), 201);
    invoke_result_release(&r);
}

static void test_invoke_bad_event(void **state)
{
    char *out;
    char event[64];
    write_temp("{\"method\": \"GET\", \"pathParams\": {\"id\": \"1\"}}", event);
    const char *const args[] = {"invoke", "-L", EXAMPLES_DIR, config, "echo", event, NULL};
    assert_int_equal(e2e_run(args, &out), 1);
    unlink(event);
    assert_non_null(strstr(out, "\"pathParams\""));
    assert_null(strstr(out, "REPORT")); /* the function did not run */
    free(out);

    static const char *const bad_events[] = {
        "{\"query\": {\"k\": 1}}",         /* not a string */
        "{\"method\": \"FETCH\"}",         /* not a routed method */
        "{\"path\": \"/a?b=1\"}",          /* the query goes in \"query\" */
        "{\"body\": \"x\", \"json\": {}}", /* both */
        "{\"headers\": {\"Content-Type\": \"application/json\"}, \"body\": \"{oops\"}", /* the gateway's 400 */
        "[1, 2]",                                                                       /* not an object */
        "{\"method\": ",                                                                /* not JSON */
    };
    for (size_t i = 0; i < sizeof(bad_events) / sizeof(bad_events[0]); ++i) {
        invoke_result r;
        invoke("echo", bad_events[i], 0, NULL, &r);
        if (r.exit_status != 1)
            fprintf(stderr, "event %s: exit %d\n%s%s\n", bad_events[i], r.exit_status, r.out, r.err);
        assert_int_equal(r.exit_status, 1);
        assert_string_equal(r.out, "");
        assert_non_null(strstr(r.err, "bffgate invoke: "));
        invoke_result_release(&r);
    }

    const char *const unknown[] = {"invoke", "-L", EXAMPLES_DIR, config, "nosuch", NULL};
    assert_int_equal(e2e_run(unknown, &out), 1);
    assert_non_null(strstr(out, "\"nosuch\""));
    assert_non_null(strstr(out, "hello_c")); /* the known ones are listed */
    free(out);
}

static void test_invoke_lua_error(void **state)
{
    invoke_result r;
    invoke("boom", "{\"requestId\": \"err-1\"}", 0, NULL, &r);
    assert_int_equal(r.exit_status, 0); /* the function ran */
    assert_int_equal(answer_status(&r), 500);
    json_t *body = json_object_get(r.answer, "json");
    assert_string_equal(json_string_value(json_object_get(body, "error")), "the function failed");
    assert_string_equal(json_string_value(json_object_get(body, "requestId")), "err-1");
    assert_null(strstr(r.out, "hunter2"));     /* the client never sees the reason */
    assert_non_null(strstr(r.err, "hunter2")); /* the developer does */
    assert_report(&r, "boom", "error");
    invoke_result_release(&r);
}

static void test_invoke_timeout(void **state)
{
    const char *const extra[] = {"--timeout-ms", "50", NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    invoke_result r;
    invoke("loop", NULL, 0, extra, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(answer_status(&r), 504);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.answer, "json"), "limit")), "timeout_ms");
    assert_report(&r, "loop", "timeout");
    double ms = report_ms(&r);
    assert_true(ms >= 45 && ms < 1000);
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 5000);
    invoke_result_release(&r);
}

static void test_invoke_memory_limit(void **state)
{
    const char *const extra[] = {"--memory-mb", "2", NULL};
    invoke_result r;
    invoke("bomb", NULL, 0, extra, &r);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(answer_status(&r), 500);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.answer, "json"), "limit")), "memory_mb");
    assert_report(&r, "bomb", "memory_limit");
    invoke_result_release(&r);

    const char *const bad[] = {"invoke", config, "bomb", "--memory-mb", "0", NULL};
    char *out;
    assert_int_equal(e2e_run(bad, &out), 2);
    assert_non_null(strstr(out, "--memory-mb"));
    free(out);
}

/* The line of `text` that holds every one of the words, or NULL. */
static const char *line_with(const char *text, const char *const *words)
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        int all = 1;
        for (size_t i = 0; words[i] != NULL && all; ++i) {
            const char *hit = strstr(line, words[i]);
            all = hit != NULL && hit < line + len;
        }
        if (all)
            return line;
        line = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

static void test_routes_lists_every_route(void **state)
{
    const char *const args[] = {"routes", "-L", EXAMPLES_DIR, config, NULL};
    char *out, *err;
    assert_int_equal(run_split(args, NULL, &out, &err), 0);
    static const char *const rows[][5] = {
        {"GET ", "/items/{id} ", "echo ", "2000ms", NULL}, {"GET,POST ", "/echo ", "echo ", NULL},
        {"GET ", "/files/{dir}/{rest*} ", "echo ", NULL},  {"GET ", "/boom ", "boom ", NULL},
        {"GET ", "/badheader ", "badheader ", NULL},       {"GET ", "/loop ", "loop ", "100ms", NULL},
        {"GET ", "/bomb ", "bomb ", "2MB", NULL},          {"GET ", "/c ", "hello_c ", NULL},
        {"DELETE ", "/items/{id} ", "echo ", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); ++i) {
        if (line_with(out, rows[i]) == NULL)
            fprintf(stderr, "no row for %s%s in:\n%s\n", rows[i][0], rows[i][1], out);
        assert_non_null(line_with(out, rows[i]));
    }
    const char *const web[] = {"frontend web", "path_prefix /web", NULL};
    const char *const mobile[] = {"frontend mobile", "header x-client: app", NULL};
    assert_non_null(line_with(out, web));
    assert_non_null(line_with(out, mobile));
    /* aligned: the PATH column starts at the same place on every route line */
    const char *const h1[] = {"/echo ", NULL}, *const h2[] = {"/files/{dir}/{rest*} ", NULL};
    const char *l1 = line_with(out, h1), *l2 = line_with(out, h2);
    assert_int_equal(strstr(l1, "/echo") - l1, strstr(l2, "/files") - l2);
    assert_non_null(strstr(out, "2 frontends, 9 routes, 6 functions"));
    free(out);
    free(err);
}

static void test_openapi(void **state)
{
    const char *const args[] = {"openapi", "-L", EXAMPLES_DIR, config, "web", NULL};
    char *out, *err;
    assert_int_equal(run_split(args, NULL, &out, &err), 0);
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    if (doc == NULL)
        fprintf(stderr, "not JSON: %s\n%s\n", jerr.text, out);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *info = json_object_get(doc, "info");
    assert_string_equal(json_string_value(json_object_get(info, "title")), "bffgate web");
    assert_non_null(json_string_value(json_object_get(info, "version")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(doc, "servers"), 0), "url")),
                        "/web");

    json_t *paths = json_object_get(doc, "paths");
    static const char *const want[][3] = {
        {"/items/{id}", "get", NULL}, {"/echo", "get", "post"},    {"/files/{dir}/{rest}", "get", NULL},
        {"/boom", "get", NULL},       {"/badheader", "get", NULL}, {"/loop", "get", NULL},
        {"/bomb", "get", NULL},       {"/c", "get", NULL},
    };
    assert_int_equal(json_object_size(paths), sizeof(want) / sizeof(want[0]));
    json_t *ids = json_object();
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); ++i) {
        json_t *item = json_object_get(paths, want[i][0]);
        if (item == NULL)
            fprintf(stderr, "no path %s\n", want[i][0]);
        assert_non_null(item);
        assert_int_equal(json_object_size(item), want[i][2] != NULL ? 2 : 1);
        for (int m = 1; m < 3 && want[i][m] != NULL; ++m) {
            json_t *op = json_object_get(item, want[i][m]);
            assert_non_null(op);
            const char *id = json_string_value(json_object_get(op, "operationId"));
            assert_non_null(id);
            assert_null(json_object_get(ids, id)); /* unique */
            json_object_set_new(ids, id, json_true());
            json_t *responses = json_object_get(op, "responses");
            assert_non_null(
                json_object_get(json_object_get(json_object_get(responses, "200"), "content"), "application/json"));
            static const char *const errors[] = {"429", "500", "504"};
            for (int e = 0; e < 3; ++e) {
                json_t *schema =
                    json_object_get(json_object_get(json_object_get(json_object_get(responses, errors[e]), "content"),
                                                    "application/json"),
                                    "schema");
                assert_string_equal(json_string_value(json_object_get(schema, "$ref")), "#/components/schemas/Error");
            }
        }
    }
    assert_non_null(json_object_get(ids, "GET_echo_1"));
    json_decref(ids);

    json_t *params = json_object_get(json_object_get(json_object_get(paths, "/items/{id}"), "get"), "parameters");
    assert_int_equal(json_array_size(params), 1);
    json_t *id = json_array_get(params, 0);
    assert_string_equal(json_string_value(json_object_get(id, "name")), "id");
    assert_string_equal(json_string_value(json_object_get(id, "in")), "path");
    assert_true(json_is_true(json_object_get(id, "required")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(id, "schema"), "type")), "string");
    params = json_object_get(json_object_get(json_object_get(paths, "/files/{dir}/{rest}"), "get"), "parameters");
    assert_int_equal(json_array_size(params), 2);
    json_t *rest = json_array_get(params, 1);
    assert_string_equal(json_string_value(json_object_get(rest, "name")), "rest");
    assert_non_null(strstr(json_string_value(json_object_get(rest, "description")), "segments"));
    assert_null(json_object_get(json_object_get(json_object_get(paths, "/boom"), "get"), "parameters"));

    json_t *error = json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Error");
    json_t *props = json_object_get(error, "properties");
    assert_non_null(json_object_get(props, "error"));
    assert_non_null(json_object_get(props, "requestId"));
    assert_non_null(json_object_get(props, "limit"));
    json_decref(doc);
    free(out);
    free(err);

    /* mobile selects by header, not path: its server URL is "/" */
    const char *const mobile[] = {"openapi", "-L", EXAMPLES_DIR, config, "mobile", NULL};
    assert_int_equal(run_split(mobile, NULL, &out, &err), 0);
    doc = json_loads(out, 0, &jerr);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(doc, "servers"), 0), "url")),
                        "/");
    assert_non_null(json_object_get(json_object_get(json_object_get(doc, "paths"), "/items/{id}"), "delete"));
    json_decref(doc);
    free(out);
    free(err);

    const char *const unknown[] = {"openapi", "-L", EXAMPLES_DIR, config, "tv", NULL};
    assert_int_equal(run_split(unknown, NULL, &out, &err), 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "\"tv\""));
    assert_non_null(strstr(err, "web"));
    assert_non_null(strstr(err, "mobile"));
    free(out);
    free(err);
}

static void test_help_lists_subcommands_and_server_mode_stays(void **state)
{
    char *out;
    const char *const help[] = {"--help", NULL};
    assert_int_equal(e2e_run(help, &out), 0);
    assert_non_null(strstr(out, "bffgate invoke CONFIG FUNCTION"));
    assert_non_null(strstr(out, "bffgate routes CONFIG"));
    assert_non_null(strstr(out, "bffgate openapi CONFIG FRONTEND"));
    assert_non_null(strstr(out, "--check"));
    free(out);
    const char *const check[] = {"--check", "-L", EXAMPLES_DIR, config, NULL};
    assert_int_equal(e2e_run(check, &out), 0);
    assert_non_null(strstr(out, "OK (2 frontends, 9 routes, 6 functions)"));
    free(out);
    const char *const usage[] = {"routes", NULL};
    assert_int_equal(e2e_run(usage, &out), 2);
    assert_non_null(strstr(out, "Usage: bffgate routes"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoke_matches_server),
        cmocka_unit_test(test_invoke_uses_the_routes_limits),
        cmocka_unit_test(test_invoke_c_function),
        cmocka_unit_test(test_invoke_event_from_stdin),
        cmocka_unit_test(test_invoke_bad_event),
        cmocka_unit_test(test_invoke_lua_error),
        cmocka_unit_test(test_invoke_timeout),
        cmocka_unit_test(test_invoke_memory_limit),
        cmocka_unit_test(test_routes_lists_every_route),
        cmocka_unit_test(test_openapi),
        cmocka_unit_test(test_help_lists_subcommands_and_server_mode_stays),
    };
    return cmocka_run_group_tests_name("e2e/cli", tests, group_setup, group_teardown);
}
