/* Unit tests for ctx.call, ctx.fetch, ctx.all and ctx.encode, driven through a fake host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "fn.h"
#include "lua_runtime.h"
#include "tests/unit/tmpdir.h"

static char temp_dir[64];

static int group_setup(void **state)
{
    (void)state;
    return test_tmpdir_make(temp_dir, sizeof(temp_dir), "luacalls");
}

static int group_teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(temp_dir);
}

static fn_function *load_ok(const char *name, const char *source)
{
    char path[256], err[1024] = "";
    snprintf(path, sizeof(path), "%s/%s.lua", temp_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(source, 1, strlen(source), f), strlen(source));
    assert_int_equal(fclose(f), 0);
    fn_function *fn = NULL;
    int rc = fn_lua_load(name, path, 1, 1, &fn, err, sizeof(err));
    if (rc != 0)
        fail_msg("loading %s failed: %d %s", name, rc, err);
    return fn;
}

static void assert_stats(const fn_function *fn, size_t idle, size_t discarded)
{
    fn_lua_pool_stats st;
    fn_lua_pool_stats_get(fn, 0, &st);
    assert_int_equal(st.idle, idle);
    assert_int_equal(st.discarded, discarded);
}

/* ---- the fake host: records what the runtime asks for; the test plays the event loop ---- */

typedef struct fake_host {
    fn_host host; /* first: the ops get &fake->host back */
    fn_host_ops ops;
    int fail_start; /* subcalls_start answers NULL (out of memory) */
    int starts;
    const fn_call *call;
    const fn_subcall *calls;
    fn_subcall_result *results;
    size_t n;
    fn_host_cb done;
    void *data;
    char batch_handle;
    int cancels;
    void *cancelled;
    int timer_starts, timer_stops;
    fn_host_cb timer_cb;
    void *timer_data;
    char timer_handle;
    int posts;
} fake_host;

static void *fake_timer_start(fn_host *host, uint64_t ms, fn_host_cb cb, void *data)
{
    fake_host *fake = (fake_host *)host;
    (void)ms;
    assert_null(fake->timer_cb);
    ++fake->timer_starts;
    fake->timer_cb = cb;
    fake->timer_data = data;
    return &fake->timer_handle;
}

static void fake_timer_stop(fn_host *host, void *timer)
{
    fake_host *fake = (fake_host *)host;
    assert_ptr_equal(timer, &fake->timer_handle);
    ++fake->timer_stops;
    fake->timer_cb = NULL;
}

static int fake_post(fn_host *host, fn_host_cb cb, void *data)
{
    fake_host *fake = (fake_host *)host;
    ++fake->posts;
    (void)cb;
    (void)data;
    return 0;
}

static void *fake_subcalls_start(fn_host *host, const fn_call *call, const fn_subcall *calls,
                                 fn_subcall_result *results, size_t n, fn_host_cb done, void *data)
{
    fake_host *fake = (fake_host *)host;
    ++fake->starts;
    if (fake->fail_start)
        return NULL;
    assert_null(fake->done); /* one batch at a time */
    fake->call = call;
    fake->calls = calls;
    fake->results = results;
    fake->n = n;
    fake->done = done;
    fake->data = data;
    return &fake->batch_handle;
}

static void fake_subcalls_cancel(fn_host *host, void *batch)
{
    fake_host *fake = (fake_host *)host;
    ++fake->cancels;
    fake->cancelled = batch;
    fake->done = NULL;
}

/* One invocation and everything it points at; it must not move while the invocation is pending. */
typedef struct run {
    fake_host fake;
    bfg_event ev;
    fn_call call;
    fn_response res;
    fn_task *task;
    int dones;
    int done_rc;
} run;

static void on_done(void *data, int rc)
{
    run *r = data;
    ++r->dones;
    r->done_rc = rc;
}

/* `mode` becomes event.path: the handlers below switch on it. */
static void run_init(run *r, const char *mode, uint64_t timeout_ms, uint64_t memory_bytes)
{
    memset(r, 0, sizeof(*r));
    r->fake.ops =
        (fn_host_ops){fake_timer_start, fake_timer_stop, fake_post, fake_subcalls_start, fake_subcalls_cancel};
    r->fake.host.ops = &r->fake.ops;
    r->ev = (bfg_event){
        .abi_version = BFG_ABI_VERSION,
        .method = {"GET", 3},
        .path = {mode, strlen(mode)},
        .request_id = {"req-1", 5},
    };
    r->call = (fn_call){
        .event = &r->ev,
        .limits = {timeout_ms, memory_bytes},
        .start_ns = fn_now_ns(),
        .host = &r->fake.host,
    };
    fn_response_init(&r->res);
}

/* A handler preempted at the end of its time slice waits on a timer: play it until the handler makes
 * its next batch of calls or ends. */
static int settle(run *r, int rc)
{
    while (rc == FN_PENDING && r->fake.done == NULL && r->dones == 0 && r->fake.timer_cb != NULL) {
        fn_host_cb cb = r->fake.timer_cb;
        r->fake.timer_cb = NULL;
        cb(r->fake.timer_data);
    }
    return r->dones > 0 ? r->done_rc : rc;
}

static int run_start(run *r, fn_function *fn)
{
    return settle(r, fn_start(fn, &r->call, &r->res, on_done, r, &r->task));
}

/* Asserts the invocation is waiting for a batch of n calls made for this very invocation. */
static void expect_batch(run *r, int rc, size_t n)
{
    if (rc != FN_PENDING)
        fail_msg("expected a pending invocation, got %d (%s)", rc, r->res.error);
    assert_non_null(r->task);
    assert_non_null(r->fake.done);
    assert_int_equal(r->fake.n, n);
    assert_ptr_equal(r->fake.call, &r->call);
    assert_int_equal(r->dones, 0);
}

static void set_result(run *r, size_t i, int ok, int status, json_t *value, const char *error)
{
    fn_subcall_result *res = &r->fake.results[i];
    res->ok = ok;
    res->status = status;
    res->value = value; /* the runtime's from here on */
    snprintf(res->error, sizeof(res->error), "%s", error != NULL ? error : "");
}

/* Delivers the batch as the host would, then plays any timers. Returns the invocation's outcome so far. */
static int complete_batch(run *r)
{
    fn_host_cb done = r->fake.done;
    void *data = r->fake.data;
    assert_non_null(done);
    r->fake.done = NULL;
    done(data);
    return settle(r, FN_PENDING);
}

/* The invocation ended once with rc 0: its body parsed as JSON (the caller decrefs). */
static json_t *expect_success(run *r)
{
    assert_int_equal(r->dones, 1);
    if (r->done_rc != 0)
        fail_msg("invocation failed: %d %s", r->done_rc, r->res.error);
    json_error_t jerr;
    json_t *v = json_loadb(r->res.body.data != NULL ? r->res.body.data : "", r->res.body.len, 0, &jerr);
    if (v == NULL)
        fail_msg("body is not JSON (%s): %.*s", jerr.text, (int)r->res.body.len, r->res.body.data);
    return v;
}

static void assert_json_text(const char *text, const char *want)
{
    assert_non_null(text);
    json_error_t jerr;
    json_t *got = json_loads(text, JSON_DECODE_ANY, &jerr);
    json_t *expected = json_loads(want, JSON_DECODE_ANY, &jerr);
    assert_non_null(got);
    assert_non_null(expected);
    if (!json_equal(got, expected))
        fail_msg("JSON %s, expected %s", text, want);
    json_decref(got);
    json_decref(expected);
}

static void assert_json_field(json_t *obj, const char *key, const char *want)
{
    char *text = json_dumps(json_object_get(obj, key), JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        fail_msg("field %s is missing", key);
    assert_json_text(text, want);
    free(text);
}

static const char *header_of(const fn_subcall *c, const char *name)
{
    for (size_t i = 0; i < c->nheaders; ++i) {
        if (strcmp(c->headers[2 * i], name) == 0)
            return c->headers[2 * i + 1];
    }
    return NULL;
}

/* ---- ctx.fetch ---- */

static const char fetch_source[] =
    "local function result(r) return { ok = r.ok, status = r.status, body = r.body, error = r.error } end\n"
    "return { handler = function(event, ctx)\n"
    "  if event.path == 'full' then\n"
    "    local q = { x = '1 2&3', dir = 'a/b', n = 5, f = 1.5, ['k y'] = 'v' }\n"
    "    local r = ctx.fetch('users', { method = 'POST', path = '/v1/items/a-b', query = q,\n"
    "      headers = { ['X-Trace'] = 'Abc Def', Accept = 'application/json' },\n"
    "      body = { name = 'shoe', n = 2 }, timeout_ms = 2500 })\n"
    "    local out = result(r)\n"
    "    out.ntype, out.ftype = math.type(q.n), math.type(q.f)\n"
    "    return out\n"
    "  end\n"
    "  if event.path == 'bare' then return result(ctx.fetch('users')) end\n"
    "  if event.path == 'pcall' then\n"
    "    local ok, err = pcall(ctx.fetch, 'users', { path = '/good', headers = { ['bad name'] = 'v' } })\n"
    "    local r = ctx.fetch('other', { path = '/next' })\n"
    "    return { caught = not ok and err or 'no error', status = r.status }\n"
    "  end\n"
    "  if event.path == 'twice' then\n"
    "    local a = ctx.call('one')\n"
    "    local b = ctx.fetch('two', { method = 'PUT', path = '/t', body = { prev = a.body } })\n"
    "    return { a = a.body, b = b.body }\n"
    "  end\n"
    "  error('unknown mode ' .. event.path)\n"
    "end }\n";

static void test_fetch_builds_the_subcall(void **state)
{
    (void)state;
    fn_function *fn = load_ok("fetch_full", fetch_source);
    run r;
    run_init(&r, "full", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);

    const fn_subcall *c = &r.fake.calls[0];
    assert_int_equal(c->kind, FN_SUBCALL_UPSTREAM);
    assert_string_equal(c->target, "users");
    assert_string_equal(c->method, "POST");
    assert_int_equal(c->timeout_ms, 2500);
    assert_json_text(c->body, "{\"name\":\"shoe\",\"n\":2}");

    /* The path as given, then the query with every value percent-encoded (in table order). */
    const char *prefix = "/v1/items/a-b?";
    assert_non_null(c->path);
    assert_memory_equal(c->path, prefix, strlen(prefix));
    char query[256];
    snprintf(query, sizeof(query), "%s", c->path + strlen(prefix));
    static const char *const want[] = {"x=1%202%263", "dir=a%2Fb", "n=5", "f=1.5", "k%20y=v"};
    int seen[5] = {0};
    size_t params = 0;
    for (char *save = NULL, *p = strtok_r(query, "&", &save); p != NULL; p = strtok_r(NULL, "&", &save)) {
        ++params;
        int found = 0;
        for (size_t i = 0; i < 5; ++i) {
            if (strcmp(p, want[i]) == 0) {
                ++seen[i];
                found = 1;
            }
        }
        if (!found)
            fail_msg("unexpected query parameter \"%s\" in %s", p, c->path);
    }
    assert_int_equal(params, 5);
    for (size_t i = 0; i < 5; ++i)
        assert_int_equal(seen[i], 1);

    /* Header names lower-cased, values as given. */
    assert_int_equal(c->nheaders, 2);
    assert_non_null(header_of(c, "x-trace"));
    assert_string_equal(header_of(c, "x-trace"), "Abc Def");
    assert_non_null(header_of(c, "accept"));
    assert_string_equal(header_of(c, "accept"), "application/json");

    set_result(&r, 0, 1, 200, json_pack("{s:s,s:[i,i]}", "id", "u1", "tags", 1, 2), NULL);
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "ok", "true");
    assert_json_field(body, "status", "200");
    assert_json_field(body, "body", "{\"id\":\"u1\",\"tags\":[1,2]}");
    assert_null(json_object_get(body, "error"));
    /* Numbers in the query table stay numbers. */
    assert_json_field(body, "ntype", "\"integer\"");
    assert_json_field(body, "ftype", "\"float\"");
    json_decref(body);
    assert_int_equal(r.fake.starts, 1);
    assert_int_equal(r.fake.cancels, 0);
    fn_response_release(&r.res);
    assert_stats(fn, 1, 0);
    fn_function_release(&fn);
}

static void test_fetch_error_status_keeps_the_body(void **state)
{
    (void)state;
    fn_function *fn = load_ok("fetch_503", fetch_source);
    run r;
    run_init(&r, "full", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);
    set_result(&r, 0, 1, 503, json_pack("{s:b}", "down", 1), NULL);
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "ok", "false");
    assert_json_field(body, "status", "503");
    assert_json_field(body, "body", "{\"down\":true}");
    assert_json_field(body, "error", "\"status 503\"");
    json_decref(body);
    fn_response_release(&r.res);

    /* A failure without a response: no body, the host's reason. */
    run_init(&r, "full", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);
    set_result(&r, 0, 0, 0, NULL, "unreachable");
    complete_batch(&r);
    body = expect_success(&r);
    assert_json_field(body, "ok", "false");
    assert_json_field(body, "status", "0");
    assert_json_field(body, "error", "\"unreachable\"");
    assert_null(json_object_get(body, "body"));
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

static void test_fetch_defaults(void **state)
{
    (void)state;
    fn_function *fn = load_ok("fetch_bare", fetch_source);
    run r;
    run_init(&r, "bare", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);
    const fn_subcall *c = &r.fake.calls[0];
    assert_int_equal(c->kind, FN_SUBCALL_UPSTREAM);
    assert_string_equal(c->target, "users");
    assert_null(c->method);
    assert_string_equal(c->path, "/");
    assert_int_equal(c->nheaders, 0);
    assert_null(c->body);
    assert_int_equal(c->timeout_ms, 0);
    set_result(&r, 0, 1, 204, NULL, NULL);
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "ok", "true");
    assert_json_field(body, "status", "204");
    assert_null(json_object_get(body, "body"));
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

/* A bad call caught by pcall leaves nothing behind: the next batch holds only the next call. */
static void test_caught_argument_error_then_fetch(void **state)
{
    (void)state;
    fn_function *fn = load_ok("fetch_pcall", fetch_source);
    run r;
    run_init(&r, "pcall", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);
    assert_int_equal(r.fake.starts, 1);
    const fn_subcall *c = &r.fake.calls[0];
    assert_string_equal(c->target, "other");
    assert_string_equal(c->path, "/next");
    assert_int_equal(c->nheaders, 0);
    set_result(&r, 0, 1, 200, json_true(), NULL);
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "status", "200");
    const char *caught = json_string_value(json_object_get(body, "caught"));
    assert_non_null(caught);
    assert_non_null(strstr(caught, "is not a header name"));
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

/* Two calls one after the other: the second batch is fresh and sees the first's result. */
static void test_sequential_calls(void **state)
{
    (void)state;
    fn_function *fn = load_ok("fetch_twice", fetch_source);
    run r;
    run_init(&r, "twice", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);
    assert_int_equal(r.fake.calls[0].kind, FN_SUBCALL_FUNCTION);
    assert_string_equal(r.fake.calls[0].target, "one");
    set_result(&r, 0, 1, 200, json_pack("{s:i}", "v", 1), NULL);
    expect_batch(&r, complete_batch(&r), 1);
    assert_int_equal(r.fake.starts, 2);
    const fn_subcall *c = &r.fake.calls[0];
    assert_int_equal(c->kind, FN_SUBCALL_UPSTREAM);
    assert_string_equal(c->target, "two");
    assert_string_equal(c->method, "PUT");
    assert_string_equal(c->path, "/t");
    assert_json_text(c->body, "{\"prev\":{\"v\":1}}");
    assert_int_equal(r.fake.results[0].ok, 0); /* no stale result from the first batch */
    assert_null(r.fake.results[0].value);
    set_result(&r, 0, 1, 200, json_string("done"), NULL);
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "a", "{\"v\":1}");
    assert_json_field(body, "b", "\"done\"");
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

/* ---- ctx.call ---- */

static const char call_source[] =
    "local function result(r) return { ok = r.ok, status = r.status, body = r.body, error = r.error } end\n"
    "return { handler = function(event, ctx)\n"
    "  if event.path == 'input' then return result(ctx.call('pricing', { sku = 'a1', qty = 2 })) end\n"
    "  if event.path == 'noinput' then return result(ctx.call('pricing', nil, { timeout_ms = 150 })) end\n"
    "  error('unknown mode ' .. event.path)\n"
    "end }\n";

static void test_call_with_input(void **state)
{
    (void)state;
    fn_function *fn = load_ok("call_input", call_source);
    run r;
    run_init(&r, "input", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);
    const fn_subcall *c = &r.fake.calls[0];
    assert_int_equal(c->kind, FN_SUBCALL_FUNCTION);
    assert_string_equal(c->target, "pricing");
    assert_json_text(c->body, "{\"sku\":\"a1\",\"qty\":2}");
    assert_null(c->method);
    assert_null(c->path);
    assert_int_equal(c->nheaders, 0);
    assert_int_equal(c->timeout_ms, 0);
    set_result(&r, 0, 1, 200, json_pack("{s:f}", "price", 9.5), NULL);
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "ok", "true");
    assert_json_field(body, "status", "200");
    assert_json_field(body, "body", "{\"price\":9.5}");
    assert_null(json_object_get(body, "error"));
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

static void test_call_without_input_and_failed(void **state)
{
    (void)state;
    fn_function *fn = load_ok("call_noinput", call_source);
    run r;
    run_init(&r, "noinput", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);
    const fn_subcall *c = &r.fake.calls[0];
    assert_int_equal(c->kind, FN_SUBCALL_FUNCTION);
    assert_string_equal(c->target, "pricing");
    assert_null(c->body);
    assert_int_equal(c->timeout_ms, 150);
    set_result(&r, 0, 0, 0, NULL, "timeout");
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "ok", "false");
    assert_json_field(body, "status", "0");
    assert_json_field(body, "error", "\"timeout\"");
    assert_null(json_object_get(body, "body"));
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

/* ---- ctx.all ---- */

static const char all_source[] =
    "local function result(r) return { ok = r.ok, status = r.status, body = r.body, error = r.error } end\n"
    "return { handler = function(event, ctx)\n"
    "  if event.path == 'mixed' then\n"
    "    local rs = ctx.all({ { call = 'pricing', input = { sku = 'a1' } },\n"
    "                         { fetch = 'users', method = 'DELETE', path = '/u/7', timeout_ms = 300 },\n"
    "                         { call = 'stock', timeout_ms = 40 } })\n"
    "    return { n = #rs, first = result(rs[1]), second = result(rs[2]), third = result(rs[3]) }\n"
    "  end\n"
    "  if event.path == 'max' then\n"
    "    local list = {}\n"
    "    for i = 1, 32 do list[i] = { call = 'f' .. i } end\n"
    "    local rs = ctx.all(list)\n"
    "    local sum = 0\n"
    "    for i, r in ipairs(rs) do sum = sum + r.body end\n"
    "    return { n = #rs, sum = sum }\n"
    "  end\n"
    "  error('unknown mode ' .. event.path)\n"
    "end }\n";

static void test_all_mixed_in_order(void **state)
{
    (void)state;
    fn_function *fn = load_ok("all_mixed", all_source);
    run r;
    run_init(&r, "mixed", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 3);
    const fn_subcall *c = r.fake.calls;
    assert_int_equal(c[0].kind, FN_SUBCALL_FUNCTION);
    assert_string_equal(c[0].target, "pricing");
    assert_json_text(c[0].body, "{\"sku\":\"a1\"}");
    assert_int_equal(c[0].timeout_ms, 0);
    assert_int_equal(c[1].kind, FN_SUBCALL_UPSTREAM);
    assert_string_equal(c[1].target, "users");
    assert_string_equal(c[1].method, "DELETE");
    assert_string_equal(c[1].path, "/u/7");
    assert_null(c[1].body);
    assert_int_equal(c[1].timeout_ms, 300);
    assert_int_equal(c[2].kind, FN_SUBCALL_FUNCTION);
    assert_string_equal(c[2].target, "stock");
    assert_null(c[2].body);
    assert_int_equal(c[2].timeout_ms, 40);

    set_result(&r, 0, 1, 200, json_integer(10), NULL);
    set_result(&r, 1, 1, 404, json_pack("{s:s}", "msg", "gone"), NULL);
    set_result(&r, 2, 0, 0, NULL, "memory limit");
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_int_equal(r.fake.starts, 1);
    assert_json_field(body, "n", "3");
    assert_json_field(body, "first", "{\"ok\":true,\"status\":200,\"body\":10}");
    assert_json_field(body, "second",
                      "{\"ok\":false,\"status\":404,\"body\":{\"msg\":\"gone\"},\"error\":\"status 404\"}");
    assert_json_field(body, "third", "{\"ok\":false,\"status\":0,\"error\":\"memory limit\"}");
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

static void test_all_takes_32(void **state)
{
    (void)state;
    fn_function *fn = load_ok("all_max", all_source);
    run r;
    run_init(&r, "max", 5000, 0);
    expect_batch(&r, run_start(&r, fn), FN_SUBCALLS_MAX);
    for (size_t i = 0; i < FN_SUBCALLS_MAX; ++i) {
        char name[8];
        snprintf(name, sizeof(name), "f%zu", i + 1);
        assert_string_equal(r.fake.calls[i].target, name);
        set_result(&r, i, 1, 200, json_integer((json_int_t)i + 1), NULL);
    }
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "n", "32");
    assert_json_field(body, "sum", "528");
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

/* ---- bad arguments ---- */

static const char bad_source[] =
    "local cases = {\n"
    "  path_no_slash = function(ctx) return ctx.fetch('u', { path = 'items' }) end,\n"
    "  path_space = function(ctx) return ctx.fetch('u', { path = '/a b' }) end,\n"
    "  path_question = function(ctx) return ctx.fetch('u', { path = '/a?b=1' }) end,\n"
    "  path_nul = function(ctx) return ctx.fetch('u', { path = '/a\\0b', query = { x = '1' } }) end,\n"
    "  header_crlf = function(ctx) return ctx.fetch('u', { headers = { ['x-a'] = 'v\\r\\nx-b: 1' } }) end,\n"
    "  header_name_space = function(ctx) return ctx.fetch('u', { headers = { ['x a'] = 'v' } }) end,\n"
    "  header_name_nul = function(ctx) return ctx.fetch('u', { headers = { ['x-a\\0b'] = 'v' } }) end,\n"
    "  header_number = function(ctx) return ctx.fetch('u', { headers = { ['x-a'] = 1 } }) end,\n"
    "  headers_not_table = function(ctx) return ctx.fetch('u', { headers = 'x-a: 1' }) end,\n"
    "  headers_33 = function(ctx)\n"
    "    local h = {} for i = 1, 33 do h['x-' .. i] = 'v' end\n"
    "    return ctx.fetch('u', { headers = h })\n"
    "  end,\n"
    "  all_33 = function(ctx)\n"
    "    local list = {} for i = 1, 33 do list[i] = { call = 'f' } end\n"
    "    return ctx.all(list)\n"
    "  end,\n"
    "  all_empty = function(ctx) return ctx.all({}) end,\n"
    "  all_both = function(ctx) return ctx.all({ { call = 'f' }, { call = 'f', fetch = 'u' } }) end,\n"
    "  all_neither = function(ctx) return ctx.all({ { input = 1 } }) end,\n"
    "  all_not_table = function(ctx) return ctx.all({ 'f' }) end,\n"
    "  query_not_table = function(ctx) return ctx.fetch('u', { query = 'a=1' }) end,\n"
    "  query_table_value = function(ctx) return ctx.fetch('u', { query = { a = {} } }) end,\n"
    "  query_list = function(ctx) return ctx.fetch('u', { query = { 'a' } }) end,\n"
    "  fetch_timeout_zero = function(ctx) return ctx.fetch('u', { timeout_ms = 0 }) end,\n"
    "  fetch_timeout_big = function(ctx) return ctx.fetch('u', { timeout_ms = 600001 }) end,\n"
    "  call_timeout_float = function(ctx) return ctx.call('f', nil, { timeout_ms = 1.5 }) end,\n"
    "  all_timeout_string = function(ctx) return ctx.all({ { call = 'f', timeout_ms = '10' } }) end,\n"
    "  body_function = function(ctx) return ctx.fetch('u', { body = { f = function() end } }) end,\n"
    "  input_function = function(ctx) return ctx.call('f', function() end) end,\n"
    "  method_lower = function(ctx) return ctx.fetch('u', { method = 'get' }) end,\n"
    "  call_options = function(ctx) return ctx.call('f', nil, 5) end,\n"
    "  fetch_no_name = function(ctx) return ctx.fetch() end,\n"
    "  fetch_options = function(ctx) return ctx.fetch('u', '/path') end,\n"
    "  in_coroutine = function(ctx) return coroutine.wrap(function() return ctx.call('f') end)() end,\n"
    "}\n"
    "return { handler = function(event, ctx)\n"
    "  cases[event.path](ctx)\n"
    "  return { reached = true }\n"
    "end }\n";

/* The invocation ends at once with -EINVAL and `want` in its error, without making any call. */
static void expect_refused(fn_function *fn, const char *mode, const char *want)
{
    run r;
    run_init(&r, mode, 5000, 0);
    int rc = run_start(&r, fn);
    if (rc != -EINVAL)
        fail_msg("%s: expected -EINVAL, got %d (%s), %d calls started", mode, rc, r.res.error, r.fake.starts);
    if (strstr(r.res.error, want) == NULL)
        fail_msg("%s: error \"%s\" does not say \"%s\"", mode, r.res.error, want);
    assert_int_equal(r.fake.starts, 0);
    assert_int_equal(r.dones, 0);
    fn_response_release(&r.res);
}

static void test_bad_arguments_raise(void **state)
{
    (void)state;
    fn_function *fn = load_ok("bad", bad_source);
    const char *path_msg = "path must start with '/' and hold only URL path characters";
    expect_refused(fn, "path_no_slash", path_msg);
    expect_refused(fn, "path_space", path_msg);
    expect_refused(fn, "path_question", path_msg);
    expect_refused(fn, "header_crlf", "headers: the value of \"x-a\" holds CR, LF or NUL");
    expect_refused(fn, "header_name_space", "headers: \"x a\" is not a header name");
    expect_refused(fn, "header_number", "headers: names and values must be strings");
    expect_refused(fn, "headers_not_table", "headers must be a table");
    expect_refused(fn, "headers_33", "headers: at most 32");
    expect_refused(fn, "all_33", "ctx.all takes a list of 1 to 32 calls");
    expect_refused(fn, "all_empty", "ctx.all takes a list of 1 to 32 calls");
    expect_refused(fn, "all_both", "ctx.all: item 2 needs exactly one of call");
    expect_refused(fn, "all_neither", "ctx.all: item 1 needs exactly one of call");
    expect_refused(fn, "all_not_table", "ctx.all: item 1 is not a table");
    expect_refused(fn, "query_not_table", "query must be a table");
    expect_refused(fn, "query_table_value", "query: names and values must be strings");
    expect_refused(fn, "query_list", "query: names and values must be strings");
    const char *timeout_msg = "timeout_ms must be an integer of 1..600000";
    expect_refused(fn, "fetch_timeout_zero", timeout_msg);
    expect_refused(fn, "fetch_timeout_big", timeout_msg);
    expect_refused(fn, "call_timeout_float", timeout_msg);
    expect_refused(fn, "all_timeout_string", timeout_msg);
    expect_refused(fn, "body_function", "body: ");
    expect_refused(fn, "input_function", "input: ");
    expect_refused(fn, "method_lower", "method must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS");
    expect_refused(fn, "call_options", "table expected");
    expect_refused(fn, "fetch_no_name", "bad argument #1");
    expect_refused(fn, "fetch_options", "table expected");
    expect_refused(fn, "in_coroutine", "ctx.call cannot be called from inside a coroutine");
    /* Argument errors are the function's own: its state goes back to the pool. */
    assert_stats(fn, 1, 0);
    fn_function_release(&fn);
}

/*
 * A NUL byte is neither a path nor a header-name character (strchr also finds the terminating NUL, which
 * once let it through): the host reads both as C strings and would see "/a" for "/a\0b".
 */
static void test_nul_in_path_or_header_name_refused(void **state)
{
    (void)state;
    fn_function *fn = load_ok("bad_nul", bad_source);
    expect_refused(fn, "path_nul", "path must start with '/' and hold only URL path characters");
    expect_refused(fn, "header_name_nul", "is not a header name");
    fn_function_release(&fn);
}

/* An __index metamethod on the options may raise while the path is being built: nothing may be lost (the
 * path lives in the batch, which the runtime clears; checked under valgrind). */
static void test_raising_options_metatable_does_not_leak(void **state)
{
    (void)state;
    fn_function *fn = load_ok("leak", "return { handler = function(event, ctx)\n"
                                      "  local opts = setmetatable({ path = '/a' }, { __index = function(t, k)\n"
                                      "    if k == 'query' then error('no query here') end\n"
                                      "  end })\n"
                                      "  ctx.fetch('u', opts)\n"
                                      "end }\n");
    run r;
    run_init(&r, "leak", 5000, 0);
    assert_int_equal(run_start(&r, fn), -EINVAL);
    assert_non_null(strstr(r.res.error, "no query here"));
    assert_int_equal(r.fake.starts, 0);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

/* ---- where calls cannot be made ---- */

static const char where_source[] = "return { handler = function(event, ctx)\n"
                                   "  if event.path == 'call' then ctx.call('f') end\n"
                                   "  if event.path == 'fetch' then ctx.fetch('u', { path = '/x' }) end\n"
                                   "  if event.path == 'all' then ctx.all({ { call = 'f' } }) end\n"
                                   "  return { reached = true }\n"
                                   "end }\n";

static void test_calls_need_the_gateway(void **state)
{
    (void)state;
    fn_function *fn = load_ok("nohost", where_source);
    static const char *const modes[] = {"call", "fetch", "all"};
    for (size_t i = 0; i < 3; ++i) {
        char want[64];
        snprintf(want, sizeof(want), "ctx.%s needs the gateway", modes[i]);

        /* No host at all (bffgate invoke, unit tests). */
        run r;
        run_init(&r, modes[i], 5000, 0);
        r.call.host = NULL;
        assert_int_equal(fn_invoke(fn, &r.call, &r.res), -EINVAL);
        assert_non_null(strstr(r.res.error, want));
        fn_response_release(&r.res);

        /* A host that does not offer calls. */
        run_init(&r, modes[i], 5000, 0);
        r.fake.ops.subcalls_start = NULL;
        r.fake.ops.subcalls_cancel = NULL;
        assert_int_equal(run_start(&r, fn), -EINVAL);
        assert_non_null(strstr(r.res.error, want));
        assert_int_equal(r.dones, 0);
        fn_response_release(&r.res);
    }
    fn_function_release(&fn);
}

static void test_depth_limit(void **state)
{
    (void)state;
    fn_function *fn = load_ok("depth", where_source);
    static const char *const modes[] = {"call", "fetch", "all"};
    for (size_t i = 0; i < 3; ++i) {
        char want[64];
        snprintf(want, sizeof(want), "ctx.%s: calls nest at most %d deep", modes[i], FN_SUBCALL_DEPTH_MAX);
        run r;
        run_init(&r, modes[i], 5000, 0);
        r.call.depth = FN_SUBCALL_DEPTH_MAX;
        assert_int_equal(run_start(&r, fn), -EINVAL);
        if (strstr(r.res.error, want) == NULL)
            fail_msg("error \"%s\" does not say \"%s\"", r.res.error, want);
        assert_int_equal(r.fake.starts, 0);
        fn_response_release(&r.res);
    }
    /* One level less may still call. */
    run r;
    run_init(&r, "call", 5000, 0);
    r.call.depth = FN_SUBCALL_DEPTH_MAX - 1;
    expect_batch(&r, run_start(&r, fn), 1);
    set_result(&r, 0, 1, 200, NULL, NULL);
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_json_field(body, "reached", "true");
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

static void test_host_out_of_memory(void **state)
{
    (void)state;
    fn_function *fn = load_ok("hostoom", where_source);
    run r;
    run_init(&r, "call", 5000, 0);
    r.fake.fail_start = 1;
    assert_int_equal(run_start(&r, fn), -ENOMEM);
    assert_int_equal(r.fake.starts, 1);
    assert_int_equal(r.dones, 0);
    assert_non_null(strstr(r.res.error, "out of memory"));
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

/* ---- cancel, deadline, memory ---- */

static void test_cancel_stops_the_batch(void **state)
{
    (void)state;
    fn_function *fn = load_ok("cancel", all_source);
    run r;
    run_init(&r, "mixed", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 3);
    /* One call had ended already: its value is the runtime's to release. */
    set_result(&r, 0, 1, 200, json_pack("{s:[i,i,i]}", "a", 1, 2, 3), NULL);
    assert_int_equal(fn_task_cancel(r.task), 0);
    assert_int_equal(r.fake.cancels, 1);
    assert_ptr_equal(r.fake.cancelled, &r.fake.batch_handle);
    assert_int_equal(r.dones, 0);
    assert_int_equal(r.fake.timer_stops, 0);
    /* The state is discarded: the coroutine cannot be resumed. */
    assert_stats(fn, 0, 1);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

static void sleep_until(uint64_t ns)
{
    while (fn_now_ns() <= ns) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

static void test_deadline_passed_during_calls(void **state)
{
    (void)state;
    fn_function *fn = load_ok("deadline", call_source);
    run r;
    run_init(&r, "input", 1100, 0);
    /* The deadline counts from the route's start, a second ago: 100 ms are left. */
    r.call.start_ns = fn_now_ns() - 1000000000ULL;
    expect_batch(&r, run_start(&r, fn), 1);
    sleep_until(r.call.start_ns + 1100 * 1000000ULL);
    set_result(&r, 0, 1, 200, json_pack("{s:s}", "late", "yes"), NULL);
    complete_batch(&r);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.done_rc, -ETIMEDOUT);
    assert_non_null(strstr(r.res.error, "timeout after 1100 ms"));
    assert_stats(fn, 0, 1);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

static void test_result_over_the_memory_limit(void **state)
{
    (void)state;
    fn_function *fn = load_ok("bigresult", call_source);
    run r;
    run_init(&r, "input", 5000, 256 * 1024);
    expect_batch(&r, run_start(&r, fn), 1);
    json_t *big = json_array();
    for (int i = 0; i < 100000; ++i)
        json_array_append_new(big, json_integer(i));
    set_result(&r, 0, 1, 200, big, NULL);
    complete_batch(&r);
    assert_int_equal(r.dones, 1);
    if (r.done_rc != -ENOMEM)
        fail_msg("expected -ENOMEM, got %d (%s)", r.done_rc, r.res.error);
    assert_non_null(strstr(r.res.error, "memory"));
    assert_stats(fn, 0, 1);
    fn_response_release(&r.res);

    /* The same value fits without the limit. */
    run_init(&r, "input", 5000, 0);
    expect_batch(&r, run_start(&r, fn), 1);
    big = json_array();
    for (int i = 0; i < 100000; ++i)
        json_array_append_new(big, json_integer(i));
    set_result(&r, 0, 1, 200, big, NULL);
    complete_batch(&r);
    json_t *body = expect_success(&r);
    assert_int_equal(json_array_size(json_object_get(body, "body")), 100000);
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

/* ---- ctx.encode ---- */

static void test_encode(void **state)
{
    (void)state;
    fn_function *fn = load_ok("encode", "return { handler = function(event, ctx)\n"
                                        "  return { a = ctx.encode('a b/c?'), u = ctx.encode('\\xC3\\xA9&='),\n"
                                        "           keep = ctx.encode('AZaz09-._~'), empty = ctx.encode(''),\n"
                                        "           n = ctx.encode(12) }\n"
                                        "end }\n");
    run r;
    run_init(&r, "encode", 5000, 0);
    r.call.host = NULL;
    int rc = fn_invoke(fn, &r.call, &r.res);
    if (rc != 0)
        fail_msg("invocation failed: %d %s", rc, r.res.error);
    r.dones = 1;
    json_t *body = expect_success(&r);
    assert_json_field(body, "a", "\"a%20b%2Fc%3F\"");
    assert_json_field(body, "u", "\"%C3%A9%26%3D\"");
    assert_json_field(body, "keep", "\"AZaz09-._~\"");
    assert_json_field(body, "empty", "\"\"");
    assert_json_field(body, "n", "\"12\"");
    json_decref(body);
    fn_response_release(&r.res);
    fn_function_release(&fn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_builds_the_subcall),
        cmocka_unit_test(test_fetch_error_status_keeps_the_body),
        cmocka_unit_test(test_fetch_defaults),
        cmocka_unit_test(test_caught_argument_error_then_fetch),
        cmocka_unit_test(test_sequential_calls),
        cmocka_unit_test(test_call_with_input),
        cmocka_unit_test(test_call_without_input_and_failed),
        cmocka_unit_test(test_all_mixed_in_order),
        cmocka_unit_test(test_all_takes_32),
        cmocka_unit_test(test_bad_arguments_raise),
        cmocka_unit_test(test_nul_in_path_or_header_name_refused),
        cmocka_unit_test(test_raising_options_metatable_does_not_leak),
        cmocka_unit_test(test_calls_need_the_gateway),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_host_out_of_memory),
        cmocka_unit_test(test_cancel_stops_the_batch),
        cmocka_unit_test(test_deadline_passed_during_calls),
        cmocka_unit_test(test_result_over_the_memory_limit),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
