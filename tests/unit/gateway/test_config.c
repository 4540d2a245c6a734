/* Unit tests for gw_config_load: every class of config error is reported with file, JSON path and reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bff/route_table.h"
#include "functions/fn.h"
#include "functions/fn_log.h"
#include "gateway/gw_config.h"
#include "tests/unit/tmpdir.h"

#ifndef EXAMPLES_DIR
#error "EXAMPLES_DIR must name the directory holding the built example C objects (hello.so)"
#endif

/*
 * Each test runs in its own directory under a temporary root, as the current directory, and loads
 * "gateway.json" by that relative name, so messages read exactly as an operator sees them:
 * `frontends/web.json: routes[0].function: unknown function "prfile"`.
 */
static char root_dir[64];
static char saved_cwd[PATH_MAX];

static int group_setup(void **state)
{
    (void)state;
    if (getcwd(saved_cwd, sizeof(saved_cwd)) == NULL)
        return -1;
    return test_tmpdir_make(root_dir, sizeof(root_dir), "config");
}

static int group_teardown(void **state)
{
    (void)state;
    if (chdir(saved_cwd) != 0)
        return -1;
    return test_tmpdir_remove(root_dir);
}

static int test_setup(void **state)
{
    (void)state;
    static unsigned counter;
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/t%u", root_dir, ++counter);
    if (mkdir(dir, 0700) != 0 || chdir(dir) != 0)
        return -1;
    if (mkdir("frontends", 0700) != 0 || mkdir("functions", 0700) != 0)
        return -1;
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    return chdir(saved_cwd);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static const char profile_lua[] = "return { handler = function(event, ctx)\n"
                                  "  return { id = event.pathParameters.id, fe = event.frontend }\n"
                                  "end }\n";

static const char base_gateway[] = "{\n"
                                   "  \"server\": { \"threads\": 1 },\n"
                                   "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                                   "  \"frontends\": [\"frontends/*.json\"]\n"
                                   "}\n";

static const char base_web[] = "{\n"
                               "  \"name\": \"web\",\n"
                               "  \"match\": { \"path_prefix\": \"/web\" },\n"
                               "  \"routes\": [\n"
                               "    { \"method\": \"GET\", \"path\": \"/profile/{id}\", \"function\": \"profile\" }\n"
                               "  ]\n"
                               "}\n";

/* Writes a config: NULL parts take the valid baseline. */
static void write_config(const char *gateway, const char *web)
{
    write_file("gateway.json", gateway != NULL ? gateway : base_gateway);
    write_file("frontends/web.json", web != NULL ? web : base_web);
    write_file("functions/profile.lua", profile_lua);
}

typedef struct loaded {
    int rc;
    gw_server_config server;
    bff_snapshot *snap;
    cfg_errors errs;
} loaded;

static void load(loaded *out, unsigned threads_override, const char *const *lib_path, size_t nlib_path)
{
    memset(out, 0, sizeof(*out));
    out->rc =
        gw_config_load("gateway.json", threads_override, lib_path, nlib_path, &out->server, &out->snap, &out->errs);
}

static void print_errors(const cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; ++i)
        print_message("  error: %s\n", errs->items[i] != NULL ? errs->items[i] : "(lost)");
}

/* Loads a config expected to fail; asserts nothing is left behind. */
static void load_fails(loaded *out)
{
    load(out, 1, NULL, 0);
    if (out->rc != -1) {
        print_errors(&out->errs);
        fail_msg("the config loaded (rc %d) but should have failed", out->rc);
    }
    assert_null(out->snap);
    assert_int_equal(out->server.nlisten, 0);
    assert_true(out->errs.count > 0);
}

static void load_ok(loaded *out, unsigned threads_override, const char *const *lib_path, size_t nlib_path)
{
    load(out, threads_override, lib_path, nlib_path);
    if (out->rc != 0 || out->errs.count != 0) {
        print_errors(&out->errs);
        fail_msg("the config failed to load (rc %d, %zu errors)", out->rc, out->errs.count);
    }
    assert_non_null(out->snap);
}

static void release(loaded *l)
{
    bff_snapshot_release(&l->snap);
    gw_server_config_release(&l->server);
    cfg_errors_release(&l->errs);
}

/* Asserts one error line is exactly `want`. */
static void assert_error(const cfg_errors *errs, const char *want)
{
    for (size_t i = 0; i < errs->count; ++i) {
        if (errs->items[i] != NULL && strcmp(errs->items[i], want) == 0)
            return;
    }
    print_errors(errs);
    fail_msg("no error reads \"%s\"", want);
}

/* Asserts one error line starts with `prefix` and contains `part`. */
static void assert_error_like(const cfg_errors *errs, const char *prefix, const char *part)
{
    for (size_t i = 0; i < errs->count; ++i) {
        const char *e = errs->items[i];
        if (e != NULL && strncmp(e, prefix, strlen(prefix)) == 0 && strstr(e, part) != NULL)
            return;
    }
    print_errors(errs);
    fail_msg("no error starts with \"%s\" and contains \"%s\"", prefix, part);
}

/* Writes `gateway`/`web`, loads, expects exactly the given error and nothing else. */
static void expect_only_error(const char *gateway, const char *web, const char *want)
{
    write_config(gateway, web);
    loaded l;
    load_fails(&l);
    assert_error(&l.errs, want);
    if (l.errs.count != 1) {
        print_errors(&l.errs);
        fail_msg("expected 1 error, got %zu", l.errs.count);
    }
    release(&l);
}

static const char *web_with_route(const char *route, char *buf, size_t cap)
{
    snprintf(buf, cap, "{ \"name\": \"web\", \"routes\": [ %s ] }\n", route);
    return buf;
}

/* ---- authentication ---- */

static void test_auth_key_errors(void **state)
{
    (void)state;
    write_file("not-a-key.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    write_file("jwks.json", "{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}");
    write_config(NULL, "{ \"name\": \"web\", \"auth\": { \"jwt\": { \"keys\": [\n"
                       "  { \"alg\": \"RS256\", \"kid\": \"a\", \"public_key_file\": \"../not-a-key.pem\" },\n"
                       "  { \"alg\": \"HS256\", \"kid\": \"a\", \"secret_file\": \"../jwks.json\" },\n"
                       "  { \"jwks_file\": \"../jwks.json\" },\n"
                       "  { \"jwks_file\": \"../jwks.json\", \"kid\": \"x\" },\n"
                       "  { \"alg\": \"ES256\", \"kid\": \"c\", \"secret_env\": \"X\" } ] } },\n"
                       " \"routes\": [ { \"path\": \"/a\", \"function\": \"profile\",\n"
                       "   \"auth\": { \"jwt\": { \"keys\": [] } },\n"
                       "   \"rate_limit\": { \"rps\": 5, \"by_claim\": \"\" } } ] }\n");
    loaded l;
    load_fails(&l);
    assert_error(&l.errs, "frontends/web.json: auth.jwt.keys[0].public_key_file: not a PEM public key for RS256 (RSA "
                          "of at least 2048 bits)");
    assert_error_like(&l.errs, "frontends/web.json: auth.jwt.keys[2].jwks_file: ../jwks.json: keys[0]", "\"alg\"");
    assert_error(&l.errs, "frontends/web.json: auth.jwt.keys[3]: a \"jwks_file\" key takes no other field (each JWK "
                          "names its alg and kid)");
    assert_error(&l.errs,
                 "frontends/web.json: auth.jwt.keys[4]: an RSA or EC key needs \"public_key_file\" (a PEM public key)");
    assert_error(&l.errs, "frontends/web.json: routes[0].auth.jwt.keys: must be a non-empty list");
    assert_error(&l.errs, "frontends/web.json: routes[0].rate_limit.by_claim: must not be empty");
    release(&l);
}

static void test_route_with_own_jwt_and_rate_claim(void **state)
{
    (void)state;
    write_file("route.secret", "0123456789abcdef0123456789abcdef\n");
    write_config(NULL, "{ \"name\": \"web\", \"routes\": [\n"
                       "  { \"path\": \"/open\", \"function\": \"profile\" },\n"
                       "  { \"path\": \"/own\", \"function\": \"profile\", \"rate_limit\": { \"rps\": 5, "
                       "\"by_claim\": \"sub\" },\n"
                       "    \"auth\": { \"jwt\": { \"keys\": [ { \"alg\": \"HS512\", \"secret_file\": "
                       "\"../route.secret\" } ], \"cookie\": \"s\" },\n"
                       "              \"require\": [ { \"claim\": \"scope\", \"contains\": \"x\" } ] } } ] }\n");
    loaded l;
    load_ok(&l, 1, NULL, 0);
    const bff_frontend *fe = &l.snap->frontends[0];
    assert_null(fe->auth);
    assert_null(fe->routes[0].auth); /* a frontend without auth: its routes are open */
    const bff_route *own = &fe->routes[1];
    assert_non_null(own->auth);
    assert_ptr_equal(own->auth, own->own_auth);
    assert_int_equal(own->auth->jwt.nkeys, 1);
    assert_int_equal(own->auth->jwt.keys[0].alg, BFF_JWT_HS512);
    assert_int_equal(own->auth->jwt.keys[0].len, 32); /* the trailing newline is not part of the secret */
    assert_string_equal(own->auth->cookie, "s");
    assert_int_equal(own->nrules, 1);
    assert_string_equal(own->limits.rate_claim, "sub");
    release(&l);
}

/* ---- syntax ---- */

static void test_malformed_json(void **state)
{
    (void)state;
    write_config("{\n  \"functions\": {\n    \"profile\": { \"lua\": \"functions/profile.lua\" },\n  }\n}\n", NULL);
    loaded l;
    load_fails(&l);
    assert_int_equal(l.errs.count, 1);
    assert_error_like(&l.errs, "gateway.json: line 4, column ", "");
    release(&l);

    /* In a frontend file too, with that file's name. */
    write_config(NULL, "{ \"name\": \"web\",\n  \"routes\": [ { \"path\": \"/a\" \"function\": \"profile\" } ] }\n");
    load_fails(&l);
    assert_error_like(&l.errs, "frontends/web.json: line 2, column ", "");
    release(&l);

    /* Duplicate keys are refused by the parser. */
    write_config("{ \"functions\": {}, \"functions\": {}, \"frontends\": [\"frontends/*.json\"] }\n", NULL);
    load_fails(&l);
    assert_error_like(&l.errs, "gateway.json: line 1, column ", "duplicate");
    release(&l);
}

static void test_root_not_an_object(void **state)
{
    (void)state;
    expect_only_error("[1, 2]\n", NULL, "gateway.json: the top level must be a JSON object");
    expect_only_error(NULL, "[ \"web\" ]\n", "frontends/web.json: the top level must be a JSON object");
}

/* ---- keys ---- */

static void test_unknown_key_top_level(void **state)
{
    (void)state;
    expect_only_error("{ \"bogus\": 1, \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: bogus: unknown key \"bogus\"");
}

static void test_unknown_key_in_server(void **state)
{
    (void)state;
    expect_only_error("{ \"server\": { \"threads\": 1, \"workers\": 4 },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.workers: unknown key \"workers\"");
    expect_only_error("{ \"server\": { \"listen\": [ { \"port\": 0, \"host\": \"x\" } ] },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.listen[0].host: unknown key \"host\"");
    expect_only_error("{ \"server\": { \"overload\": { \"max_inflight\": 10, \"max_rss\": 5 } },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.overload.max_rss: unknown key \"max_rss\"");
}

static void test_edge_and_overload_ranges(void **state)
{
    (void)state;
    expect_only_error("{ \"server\": { \"overload\": { \"retry_after_s\": 0 } },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.overload.retry_after_s: must be between 1 and 3600, got 0");
    expect_only_error("{ \"server\": { \"request_timeout_ms\": 5 },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.request_timeout_ms: must be between 100 and 3600000, got 5");
    expect_only_error("{ \"server\": { \"http2_max_streams\": 0 },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.http2_max_streams: must be between 1 and 1000, got 0");
    expect_only_error("{ \"server\": { \"overload\": [] },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.overload: must be an object");
}

static void test_unknown_key_in_frontend(void **state)
{
    (void)state;
    expect_only_error(NULL,
                      "{ \"name\": \"web\", \"prefix\": \"/web\",\n"
                      "  \"routes\": [ { \"path\": \"/a\", \"function\": \"profile\" } ] }\n",
                      "frontends/web.json: prefix: unknown key \"prefix\"");
}

static void test_unknown_key_in_route(void **state)
{
    (void)state;
    char web[512];
    expect_only_error(
        NULL, web_with_route("{ \"path\": \"/a\", \"function\": \"profile\", \"handler\": \"x\" }", web, sizeof(web)),
        "frontends/web.json: routes[0].handler: unknown key \"handler\"");
}

static void test_unknown_key_in_match(void **state)
{
    (void)state;
    expect_only_error(NULL,
                      "{ \"name\": \"web\", \"match\": { \"path_prefix\": \"/web\", \"method\": \"GET\" },\n"
                      "  \"routes\": [ { \"path\": \"/a\", \"function\": \"profile\" } ] }\n",
                      "frontends/web.json: match.method: unknown key \"method\"");
}

static void test_unknown_key_in_defaults_and_function(void **state)
{
    (void)state;
    write_config("{ \"defaults\": { \"timeout\": 5 },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\", \"symbol\": \"x\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 NULL);
    loaded l;
    load_fails(&l);
    assert_error(&l.errs, "gateway.json: defaults.timeout: unknown key \"timeout\"");
    assert_error(&l.errs, "gateway.json: functions.profile.symbol: unknown key \"symbol\"");
    release(&l);
}

static void test_missing_required_keys(void **state)
{
    (void)state;
    char web[512];
    write_config(NULL, web_with_route("{ \"method\": \"GET\" }", web, sizeof(web)));
    loaded l;
    load_fails(&l);
    assert_error(&l.errs, "frontends/web.json: routes[0].path: missing required key");
    assert_error(&l.errs, "frontends/web.json: routes[0].function: missing required key");
    assert_int_equal(l.errs.count, 2);
    release(&l);

    expect_only_error(NULL, "{ \"routes\": [ { \"path\": \"/a\", \"function\": \"profile\" } ] }\n",
                      "frontends/web.json: name: missing required key");
    expect_only_error(NULL, "{ \"name\": \"web\" }\n", "frontends/web.json: routes: missing required key");
    expect_only_error("{ \"frontends\": [\"frontends/*.json\"] }\n", "{ \"name\": \"web\", \"routes\": [] }\n",
                      "gateway.json: functions: missing required key");
    expect_only_error("{ \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } } }\n", NULL,
                      "gateway.json: frontends: missing required key");
    expect_only_error("{ \"functions\": { \"native\": { \"c\": \"hello.so\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      "{ \"name\": \"web\", \"routes\": [] }\n",
                      "gateway.json: functions.native.symbol: missing required key");
}

/* ---- types and ranges ---- */

static void test_wrong_types(void **state)
{
    (void)state;
    expect_only_error("{ \"server\": { \"threads\": \"4\" },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.threads: must be an integer");
    expect_only_error("{ \"server\": { \"threads\": 1, \"max_body_bytes\": 1.5 },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.max_body_bytes: must be an integer");
    expect_only_error("{ \"server\": [], \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server: must be an object");
    expect_only_error("{ \"functions\": [], \"frontends\": [\"frontends/*.json\"] }\n",
                      "{ \"name\": \"web\", \"routes\": [] }\n", "gateway.json: functions: must be an object");
    expect_only_error("{ \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": \"frontends/*.json\" }\n",
                      NULL, "gateway.json: frontends: must be a non-empty list of frontend files");
    expect_only_error("{ \"functions\": { \"profile\": { \"lua\": 5 } }, \"frontends\": [\"frontends/*.json\"] }\n",
                      "{ \"name\": \"web\", \"routes\": [] }\n",
                      "gateway.json: functions.profile.lua: must be a string");

    char web[512];
    expect_only_error(NULL, web_with_route("{ \"path\": 5, \"function\": \"profile\" }", web, sizeof(web)),
                      "frontends/web.json: routes[0].path: must be a string");
    expect_only_error(
        NULL,
        web_with_route("{ \"path\": \"/a\", \"function\": \"profile\", \"timeout_ms\": \"fast\" }", web, sizeof(web)),
        "frontends/web.json: routes[0].timeout_ms: must be an integer");
    expect_only_error(NULL, web_with_route("\"/a\"", web, sizeof(web)),
                      "frontends/web.json: routes[0]: a route must be an object");
    expect_only_error(NULL, "{ \"name\": \"web\", \"routes\": {} }\n",
                      "frontends/web.json: routes: must be a list of routes");
    expect_only_error(NULL, "{ \"name\": 7, \"routes\": [] }\n", "frontends/web.json: name: must be a string");
    expect_only_error(NULL, "{ \"name\": \"web\", \"match\": \"/web\", \"routes\": [] }\n",
                      "frontends/web.json: match: must be an object");
}

static void test_out_of_range_values(void **state)
{
    (void)state;
    expect_only_error(
        "{ \"server\": { \"threads\": 1, \"listen\": [ { \"address\": \"127.0.0.1\", \"port\": 70000 } ] },\n"
        "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
        "  \"frontends\": [\"frontends/*.json\"] }\n",
        NULL, "gateway.json: server.listen[0].port: must be between 0 and 65535, got 70000");
    expect_only_error("{ \"server\": { \"threads\": 1000 },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.threads: must be between 0 and 256, got 1000");
    expect_only_error("{ \"defaults\": { \"memory_mb\": 0 },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: defaults.memory_mb: must be between 1 and 65536, got 0");

    char web[512];
    expect_only_error(
        NULL, web_with_route("{ \"path\": \"/a\", \"function\": \"profile\", \"timeout_ms\": 0 }", web, sizeof(web)),
        "frontends/web.json: routes[0].timeout_ms: must be between 1 and 600000, got 0");
    expect_only_error(
        NULL, web_with_route("{ \"path\": \"/a\", \"function\": \"profile\", \"concurrency\": -1 }", web, sizeof(web)),
        "frontends/web.json: routes[0].concurrency: must be between 1 and 1000000, got -1");
    expect_only_error(NULL,
                      "{ \"name\": \"web\", \"defaults\": { \"timeout_ms\": 600001 },\n"
                      "  \"routes\": [ { \"path\": \"/a\", \"function\": \"profile\" } ] }\n",
                      "frontends/web.json: defaults.timeout_ms: must be between 1 and 600000, got 600001");
}

/* ---- functions ---- */

static void test_unknown_function(void **state)
{
    (void)state;
    char web[512];
    expect_only_error(NULL, web_with_route("{ \"path\": \"/profile\", \"function\": \"prfile\" }", web, sizeof(web)),
                      "frontends/web.json: routes[0].function: unknown function \"prfile\"");
}

static void test_missing_lua_file(void **state)
{
    (void)state;
    expect_only_error("{ \"functions\": { \"profile\": { \"lua\": \"functions/missing.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL,
                      "gateway.json: functions.profile.lua: functions/missing.lua: cannot read the Lua file: "
                      "No such file or directory");
}

static void test_lua_syntax_error(void **state)
{
    (void)state;
    write_config(NULL, NULL);
    write_file("functions/profile.lua", "return { handler = function(event, ctx)\n  return { id = }\nend }\n");
    loaded l;
    load_fails(&l);
    /* One error: the route naming the broken function does not add "unknown function". */
    assert_int_equal(l.errs.count, 1);
    assert_error_like(&l.errs, "gateway.json: functions.profile.lua: functions/profile.lua:2: ", "near");
    release(&l);
}

static void test_lua_module_without_handler(void **state)
{
    (void)state;
    write_config(NULL, NULL);
    write_file("functions/profile.lua", "return { }\n");
    loaded l;
    load_fails(&l);
    assert_int_equal(l.errs.count, 1);
    assert_error_like(&l.errs,
                      "gateway.json: functions.profile.lua: functions/profile.lua: ", "handler must be a function");
    release(&l);
}

static void test_c_object_missing(void **state)
{
    (void)state;
    expect_only_error("{ \"functions\": { \"native\": { \"c\": \"lib/nope.so\", \"symbol\": \"handler\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      "{ \"name\": \"web\", \"routes\": [ { \"path\": \"/n\", \"function\": \"native\" } ] }\n",
                      "gateway.json: functions.native.c: lib/nope.so: cannot read the C object: "
                      "No such file or directory");
}

static void test_c_symbol_missing(void **state)
{
    (void)state;
    const char *const lib_path[] = {EXAMPLES_DIR};
    write_config("{ \"functions\": { \"native\": { \"c\": \"hello.so\", \"symbol\": \"goodbye\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 "{ \"name\": \"web\", \"routes\": [ { \"path\": \"/n\", \"function\": \"native\" } ] }\n");
    loaded l;
    load(&l, 1, lib_path, 1);
    assert_int_equal(l.rc, -1);
    assert_null(l.snap);
    assert_int_equal(l.errs.count, 1);
    assert_error(&l.errs, "gateway.json: functions.native.c: " EXAMPLES_DIR "/hello.so: no handler symbol \"goodbye\"");
    release(&l);
}

static void test_function_definition_shape(void **state)
{
    (void)state;
    write_config("{ \"functions\": { \"a\": 5, \"b\": {}, \"c\": { \"lua\": \"x.lua\", \"c\": \"x.so\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 "{ \"name\": \"web\", \"routes\": [] }\n");
    loaded l;
    load_fails(&l);
    assert_error(&l.errs, "gateway.json: functions.a: a function must be an object with \"lua\" or \"c\"");
    assert_error(&l.errs,
                 "gateway.json: functions.b: give exactly one of \"lua\" (a Lua file) or \"c\" (a shared object)");
    assert_error(&l.errs,
                 "gateway.json: functions.c: give exactly one of \"lua\" (a Lua file) or \"c\" (a shared object)");
    assert_int_equal(l.errs.count, 3);
    release(&l);
}

/* ---- routes ---- */

static void test_bad_route_pattern(void **state)
{
    (void)state;
    char web[512];
    expect_only_error(NULL,
                      web_with_route("{ \"path\": \"/profile/{id\", \"function\": \"profile\" }", web, sizeof(web)),
                      "frontends/web.json: routes[0].path: segment 2 \"{id\": unterminated parameter");
    expect_only_error(NULL, web_with_route("{ \"path\": \"profile\", \"function\": \"profile\" }", web, sizeof(web)),
                      "frontends/web.json: routes[0].path: pattern \"profile\" must start with '/'");
    expect_only_error(NULL,
                      web_with_route("{ \"path\": \"/a/{rest*}/b\", \"function\": \"profile\" }", web, sizeof(web)),
                      "frontends/web.json: routes[0].path: segment 2 \"{rest*}\": a wildcard must be the last segment");
}

static void test_duplicate_route(void **state)
{
    (void)state;
    expect_only_error(NULL,
                      "{ \"name\": \"web\", \"routes\": [\n"
                      "  { \"path\": \"/profile/{id}\", \"function\": \"profile\" },\n"
                      "  { \"method\": \"POST\", \"path\": \"/profile/{id}\", \"function\": \"profile\" },\n"
                      "  { \"method\": [\"PUT\", \"GET\"], \"path\": \"/profile/{user}\", \"function\": \"profile\" }\n"
                      "] }\n",
                      "frontends/web.json: routes[2].path: GET /profile/{user}: already routed by \"/profile/{id}\" "
                      "(same shape)");
}

static void test_unknown_method(void **state)
{
    (void)state;
    char web[512];
    expect_only_error(
        NULL,
        web_with_route("{ \"method\": \"FETCH\", \"path\": \"/a\", \"function\": \"profile\" }", web, sizeof(web)),
        "frontends/web.json: routes[0].method: unknown method \"FETCH\" (use GET, HEAD, POST, PUT, PATCH, DELETE or "
        "OPTIONS)");
    expect_only_error(
        NULL,
        web_with_route("{ \"method\": [\"GET\", 3], \"path\": \"/a\", \"function\": \"profile\" }", web, sizeof(web)),
        "frontends/web.json: routes[0].method: unknown method (not a string) (use GET, HEAD, POST, PUT, PATCH, DELETE "
        "or "
        "OPTIONS)");
    expect_only_error(
        NULL, web_with_route("{ \"method\": [], \"path\": \"/a\", \"function\": \"profile\" }", web, sizeof(web)),
        "frontends/web.json: routes[0].method: must be a method name or a non-empty list of them");
}

static void test_route_claim_rules_need_jwt(void **state)
{
    (void)state;
    char web[512];
    write_config(NULL,
                 web_with_route("{ \"path\": \"/a\", \"function\": \"profile\", \"auth\": {} }", web, sizeof(web)));
    loaded l;
    load_fails(&l);
    assert_error(&l.errs,
                 "frontends/web.json: routes[0].auth: claim rules need JWT on the frontend (auth.jwt) or the route");
    assert_int_equal(l.errs.count, 1);
    release(&l);
}

/* ---- composition ---- */

static const char compose_gateway_ok[] =
    "{ \"server\": { \"threads\": 2 },\n"
    "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
    "  \"upstreams\": { \"users\": { \"url\": \"http://127.0.0.1:9/api/\", \"max_connections\": 8 } },\n"
    "  \"frontends\": [\"frontends/*.json\"] }\n";

static const char compose_gateway[] =
    "{ \"server\": { \"threads\": 2 },\n"
    "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
    "  \"upstreams\": { \"users\": { \"url\": \"http://127.0.0.1:9/api/\", \"max_connections\": 8 },\n"
    "                   \"secure\": { \"url\": \"https://id.example\", \"ca_file\": \"nothing.pem\" },\n"
    "                   \"odd\": { \"url\": \"http://:80\", \"retries\": 3 } },\n"
    "  \"frontends\": [\"frontends/*.json\"] }\n";

static void test_composition_config_errors(void **state)
{
    (void)state;
    write_config(
        compose_gateway,
        "{ \"name\": \"web\", \"routes\": [\n"
        "  { \"path\": \"/a\", \"steps\": [] },\n"
        "  { \"path\": \"/b\", \"steps\": [ { \"function\": \"profile\" },\n"
        "      [ { \"name\": \"x\", \"function\": \"nope\" }, { \"name\": \"y\", \"upstream\": \"nope\" },\n"
        "        { \"name\": \"z\", \"function\": \"profile\", \"upstream\": \"users\" } ] ] },\n"
        "  { \"path\": \"/c\", \"steps\": [ [ { \"name\": \"a\", \"upstream\": \"users\" },\n"
        "        { \"name\": \"b\", \"upstream\": \"users\", \"path\": \"/u/${/a/id}\" } ],\n"
        "      { \"name\": \"a\", \"function\": \"profile\", \"input\": \"${/later/x}\" },\n"
        "      { \"name\": \"later\", \"upstream\": \"users\", \"path\": \"u\", \"fallback\": 1 },\n"
        "      { \"name\": \"request\", \"upstream\": \"users\", \"path\": \"/${/a~2}\", \"verb\": 1 } ],\n"
        "    \"shape\": { \"allow\": [\"nope\"] } },\n"
        "  { \"path\": \"/d\", \"function\": \"profile\", \"response\": {} },\n"
        "  { \"path\": \"/e\", \"function\": \"profile\", \"steps\": [ { \"name\": \"p\", \"function\": "
        "\"profile\" } ] },\n"
        "  { \"path\": \"/f\", \"steps\": [ { \"name\": \"s\", \"upstream\": \"users\", \"path\": \"/a b\\r\\nX: 1\",\n"
        "      \"query\": { \"q\": \"a\\nb\", \"n m\": \"${/request/params/x}\" } } ] }\n"
        "] }\n");
    loaded l;
    load_fails(&l);
    static const char *const want[] = {
        "gateway.json: upstreams.secure.ca_file: cannot read nothing.pem",
        "gateway.json: upstreams.odd.retries: unknown key \"retries\"",
        "gateway.json: upstreams.odd.url: has no host",
        "frontends/web.json: routes[0].steps: must be a non-empty list of calls and parallel groups (lists of calls)",
        "frontends/web.json: routes[1].steps[0].name: missing required key",
        "frontends/web.json: routes[1].steps[1][0].function: unknown function \"nope\"",
        "frontends/web.json: routes[1].steps[1][1].upstream: unknown upstream \"nope\" (define it under "
        "\"upstreams\" in the entry file)",
        "frontends/web.json: routes[1].steps[1][2]: a call names exactly one of \"function\" or \"upstream\"",
        "frontends/web.json: routes[2].steps[0][1].path: ${/a/id} refers to \"a\", which runs in the same step (move "
        "it to an earlier step)",
        "frontends/web.json: routes[2].steps[1].name: another call of this route is already named \"a\"",
        "frontends/web.json: routes[2].steps[1].input: ${/later/x} refers to \"later\", which is neither "
        "\"request\" nor a call of an earlier step",
        "frontends/web.json: routes[2].steps[2].path: must start with '/' (it is appended to the upstream's URL)",
        "frontends/web.json: routes[2].steps[2].fallback: only an optional call has a fallback (add \"optional\": "
        "true)",
        "frontends/web.json: routes[2].steps[3].name: \"request\" is reserved",
        "frontends/web.json: routes[2].steps[3].verb: unknown key \"verb\"",
        "frontends/web.json: routes[3].response: belongs to a composed route (one with \"steps\")",
        "frontends/web.json: routes[4]: a route has \"function\" or \"steps\", not both",
        "frontends/web.json: routes[5].steps[0].path: must not hold spaces or control characters (they would break "
        "the request line)",
        "frontends/web.json: routes[5].steps[0].query.q: must not hold spaces or control characters (they would break "
        "the request line)",
        "frontends/web.json: routes[5].steps[0].query.n m: must not hold spaces or control characters (they would "
        "break the request line)",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); ++i)
        assert_error(&l.errs, want[i]);
    assert_error_like(&l.errs, "frontends/web.json: routes[2].steps[3].path: bad reference", "~");
    assert_int_equal(l.errs.count, sizeof(want) / sizeof(want[0]) + 2); /* nothing misleading besides */
    assert_error_like(&l.errs, "frontends/web.json: routes[2].shape.allow[0]", "JSON Pointer");
    release(&l);
}

static void test_composition_loads(void **state)
{
    (void)state;
    write_config(
        compose_gateway_ok,
        "{ \"name\": \"web\", \"routes\": [\n"
        "  { \"path\": \"/home/{id}\", \"steps\": [\n"
        "      { \"name\": \"profile\", \"upstream\": \"users\", \"path\": \"/users/${/request/params/id}\",\n"
        "        \"query\": { \"fields\": \"all\" }, \"headers\": { \"X-Tenant\": \"t1\" }, \"timeout_ms\": 200 },\n"
        "      [ { \"name\": \"recs\", \"function\": \"profile\", \"input\": { \"user\": \"${/profile}\" } },\n"
        "        { \"name\": \"cart\", \"upstream\": \"users\", \"method\": \"POST\", \"body\": { \"id\": "
        "\"${/profile/id}\" },\n"
        "          \"optional\": true, \"fallback\": [] } ] ],\n"
        "    \"response\": { \"user\": \"${/profile}\", \"cart\": \"${/cart}\" }, \"call_status\": true,\n"
        "    \"shape\": { \"deny\": [\"/user/email\"], \"limit\": { \"/cart\": 5 } } } ] }\n");
    loaded l;
    load_ok(&l, 1, NULL, 0);
    assert_int_equal(l.snap->nupstreams, 1);
    const bff_upstream *up = &l.snap->upstreams[0];
    assert_string_equal(up->host, "127.0.0.1");
    assert_int_equal(up->port, 9);
    assert_string_equal(up->base_path, "/api"); /* the trailing slash is dropped */
    assert_int_equal(up->max_connections, 8);
    assert_int_equal(up->timeout_ms, BFF_UPSTREAM_DEFAULT_TIMEOUT_MS);
    const bff_route *r = &l.snap->frontends[0].routes[0];
    assert_null(r->fn);
    assert_non_null(r->plan);
    assert_string_equal(r->target, "steps: profile, [recs, cart]");
    assert_int_equal(r->plan->nsteps, 2);
    assert_int_equal(r->plan->ncalls, 3);
    const bff_call *profile = &r->plan->steps[0].calls[0];
    assert_int_equal(profile->kind, BFF_CALL_UPSTREAM);
    assert_ptr_equal(profile->upstream, up);
    assert_string_equal(profile->method, "GET");
    assert_int_equal(profile->timeout_ms, 200);
    assert_int_equal(profile->nquery, 1);
    assert_string_equal(profile->headers[0].name, "x-tenant");
    const bff_call *cart = &r->plan->steps[1].calls[1];
    assert_true(cart->optional);
    assert_true(json_is_array(cart->fallback));
    assert_string_equal(cart->method, "POST");
    assert_true(r->plan->steps[1].group);
    assert_true(r->plan->call_status);
    assert_non_null(r->plan->shape);
    release(&l);
}

/* ---- frontends ---- */

static void test_duplicate_frontend_name(void **state)
{
    (void)state;
    write_config(NULL, NULL);
    write_file("frontends/zz.json", "{ \"name\": \"web\", \"match\": { \"host\": \"example.com\" },\n"
                                    "  \"routes\": [ { \"path\": \"/a\", \"function\": \"profile\" } ] }\n");
    loaded l;
    load_fails(&l);
    assert_int_equal(l.errs.count, 1);
    assert_error(&l.errs, "frontends/zz.json: name: frontend \"web\" is already defined in frontends/web.json");
    release(&l);
}

static void test_frontend_glob_matching_nothing(void **state)
{
    (void)state;
    expect_only_error("{ \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\", \"nothing/*.json\"] }\n",
                      NULL, "gateway.json: frontends[1]: no frontend file matches \"nothing/*.json\"");
    expect_only_error("{ \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\", 4] }\n",
                      NULL, "gateway.json: frontends[1]: must be a file name or glob pattern");
}

static void test_bad_path_prefix(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"web", "/web/", "/web?x", "/{fe}"};
    for (size_t i = 0; i < 4; ++i) {
        char web[512];
        snprintf(web, sizeof(web),
                 "{ \"name\": \"web\", \"match\": { \"path_prefix\": \"%s\" },\n"
                 "  \"routes\": [ { \"path\": \"/a\", \"function\": \"profile\" } ] }\n",
                 prefixes[i]);
        expect_only_error(NULL, web,
                          "frontends/web.json: match.path_prefix: must start with '/', not end with '/' and hold no "
                          "'?' or '{' (e.g. \"/web\")");
    }
}

static void test_header_match_requires_name_and_value(void **state)
{
    (void)state;
    expect_only_error(NULL,
                      "{ \"name\": \"web\", \"match\": { \"header\": { \"name\": \"x-app\" } },\n"
                      "  \"routes\": [ { \"path\": \"/a\", \"function\": \"profile\" } ] }\n",
                      "frontends/web.json: match.header.value: missing required key");
}

/* ---- server ---- */

static void test_listen_address_not_numeric(void **state)
{
    (void)state;
    expect_only_error(
        "{ \"server\": { \"threads\": 1, \"listen\": [ { \"address\": \"localhost\", \"port\": 80 } ] },\n"
        "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
        "  \"frontends\": [\"frontends/*.json\"] }\n",
        NULL, "gateway.json: server.listen[0].address: \"localhost\" is not a numeric IPv4 or IPv6 address");
    expect_only_error("{ \"server\": { \"threads\": 1, \"listen\": [] },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.listen: must be a list of 1 to 8 listeners");
}

static void test_tls_files_must_exist(void **state)
{
    (void)state;
    write_config("{ \"server\": { \"threads\": 1, \"listen\": [ { \"port\": 0,\n"
                 "    \"tls\": { \"certificate\": \"tls/cert.pem\", \"key\": \"tls/key.pem\" } } ] },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 NULL);
    loaded l;
    load_fails(&l);
    assert_error(&l.errs, "gateway.json: server.listen[0].tls.certificate: cannot read \"tls/cert.pem\"");
    assert_error(&l.errs, "gateway.json: server.listen[0].tls.key: cannot read \"tls/key.pem\"");
    assert_int_equal(l.errs.count, 2);
    release(&l);
}

static void test_bad_log_level(void **state)
{
    (void)state;
    expect_only_error("{ \"server\": { \"threads\": 1, \"log_level\": \"verbose\" },\n"
                      "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                      "  \"frontends\": [\"frontends/*.json\"] }\n",
                      NULL, "gateway.json: server.log_level: must be \"debug\", \"info\", \"warn\" or \"error\"");
}

/* ---- all errors at once ---- */

static void test_every_error_is_reported(void **state)
{
    (void)state;
    write_config("{ \"bogus\": true,\n"
                 "  \"server\": { \"threads\": 1, \"log_level\": \"loud\",\n"
                 "              \"listen\": [ { \"address\": \"my-host\", \"port\": 99999 } ] },\n"
                 "  \"defaults\": { \"timeout_ms\": 0 },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" },\n"
                 "                 \"gone\": { \"lua\": \"functions/gone.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 "{ \"name\": \"web\", \"extra\": 1, \"match\": { \"path_prefix\": \"web/\" },\n"
                 "  \"routes\": [\n"
                 "    { \"path\": \"/a\", \"function\": \"prfile\" },\n"
                 "    { \"method\": \"FETCH\", \"path\": \"/b\", \"function\": \"profile\" },\n"
                 "    { \"path\": \"/c/{x\", \"function\": \"profile\" },\n"
                 "    { \"function\": \"profile\", \"steps\": [] }\n"
                 "  ] }\n");
    loaded l;
    load_fails(&l);
    static const char *const want[] = {
        "gateway.json: bogus: unknown key \"bogus\"",
        "gateway.json: server.log_level: must be \"debug\", \"info\", \"warn\" or \"error\"",
        "gateway.json: server.listen[0].address: \"my-host\" is not a numeric IPv4 or IPv6 address",
        "gateway.json: server.listen[0].port: must be between 0 and 65535, got 99999",
        "gateway.json: defaults.timeout_ms: must be between 1 and 600000, got 0",
        "gateway.json: functions.gone.lua: functions/gone.lua: cannot read the Lua file: No such file or directory",
        "frontends/web.json: extra: unknown key \"extra\"",
        "frontends/web.json: match.path_prefix: must start with '/', not end with '/' and hold no '?' or '{' (e.g. "
        "\"/web\")",
        "frontends/web.json: routes[0].function: unknown function \"prfile\"",
        "frontends/web.json: routes[1].method: unknown method \"FETCH\" (use GET, HEAD, POST, PUT, PATCH, DELETE or "
        "OPTIONS)",
        "frontends/web.json: routes[2].path: segment 2 \"{x\": unterminated parameter",
        "frontends/web.json: routes[3]: a route has \"function\" or \"steps\", not both",
        "frontends/web.json: routes[3].path: missing required key",
    };
    size_t n = sizeof(want) / sizeof(want[0]);
    for (size_t i = 0; i < n; ++i)
        assert_error(&l.errs, want[i]);
    if (l.errs.count != n) {
        print_errors(&l.errs);
        fail_msg("expected %zu errors, got %zu", n, l.errs.count);
    }
    release(&l);
}

/* ---- valid configs ---- */

static const bff_frontend *frontend_named(const bff_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->nfrontends; ++i) {
        if (strcmp(snap->frontends[i].name, name) == 0)
            return &snap->frontends[i];
    }
    fail_msg("no frontend %s", name);
    return NULL;
}

static const bff_route *route_with_pattern(const bff_frontend *fe, const char *pattern)
{
    for (size_t i = 0; i < fe->nroutes; ++i) {
        if (strcmp(fe->routes[i].pattern, pattern) == 0)
            return &fe->routes[i];
    }
    fail_msg("frontend %s has no route %s", fe->name, pattern);
    return NULL;
}

static void assert_limits(const bff_limits *limits, uint64_t timeout_ms, uint64_t concurrency, uint64_t memory_mb)
{
    assert_int_equal(limits->timeout_ms, timeout_ms);
    assert_int_equal(limits->concurrency, concurrency);
    assert_int_equal(limits->memory_mb, memory_mb);
}

static const bff_snapshot_function *function_named(const bff_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->nfunctions; ++i) {
        if (strcmp(snap->functions[i].name, name) == 0)
            return &snap->functions[i];
    }
    fail_msg("no function %s", name);
    return NULL;
}

static void test_reload_shares_unchanged_functions(void **state)
{
    (void)state;
    write_config("{ \"server\": { \"threads\": 1 },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" },\n"
                 "                   \"other\": { \"lua\": \"functions/other.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 NULL);
    write_file("functions/other.lua", "return { handler = function() return { v = 1 } end }\n");
    loaded first;
    load_ok(&first, 0, NULL, 0);
    /* Only other.lua changes. */
    write_file("functions/other.lua", "return { handler = function() return { v = 2 } end }\n");
    gw_server_config server;
    bff_snapshot *next = NULL;
    cfg_errors errs = {0};
    assert_int_equal(gw_config_reload("gateway.json", 1, NULL, 0, first.snap, &server, &next, &errs), 0);
    /* The unchanged function is the very same object (its warm states carry over); the changed one is new. */
    assert_ptr_equal(function_named(next, "profile")->fn, function_named(first.snap, "profile")->fn);
    assert_ptr_not_equal(function_named(next, "other")->fn, function_named(first.snap, "other")->fn);
    assert_string_not_equal(function_named(next, "other")->fn->version,
                            function_named(first.snap, "other")->fn->version);
    assert_true(next->version > first.snap->version);
    /* Releasing the old snapshot keeps the shared function alive for the new one. */
    release(&first);
    assert_int_equal(atomic_load(&function_named(next, "profile")->fn->refs), 2); /* the list + the route */
    bff_snapshot_release(&next);
    gw_server_config_release(&server);
    cfg_errors_release(&errs);
}

static void test_admission_and_rate_limit_settings(void **state)
{
    (void)state;
    char web[600];
    /* Errors: each names the file, the path and the reason. */
    expect_only_error(NULL,
                      web_with_route("{ \"path\": \"/a\", \"function\": \"profile\", \"rate_limit\": { \"rps\": 0 } }",
                                     web, sizeof(web)),
                      "frontends/web.json: routes[0].rate_limit.rps: must be between 1 and 10000000, got 0");
    expect_only_error(NULL,
                      web_with_route("{ \"path\": \"/a\", \"function\": \"profile\", \"rate_limit\": { \"rps\": 5, "
                                     "\"per\": \"ip\" } }",
                                     web, sizeof(web)),
                      "frontends/web.json: routes[0].rate_limit.per: unknown key \"per\"");
    expect_only_error(
        NULL, web_with_route("{ \"path\": \"/a\", \"function\": \"profile\", \"queue_wait_ms\": 0 }", web, sizeof(web)),
        "frontends/web.json: routes[0].queue_wait_ms: must be between 1 and 600000, got 0");
    /* Values and inheritance: queue and rate limit from the defaults, overridden or switched off per route. */
    write_config("{ \"server\": { \"threads\": 1 },\n"
                 "  \"defaults\": { \"queue_max\": 7, \"queue_wait_ms\": 250, \"rate_limit\": { \"rps\": 10 } },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 "{ \"name\": \"web\", \"routes\": [\n"
                 "    { \"path\": \"/inherits\", \"function\": \"profile\" },\n"
                 "    { \"path\": \"/own\", \"function\": \"profile\", \"queue_max\": 0,\n"
                 "      \"rate_limit\": { \"rps\": 3, \"burst\": 9 } },\n"
                 "    { \"path\": \"/off\", \"function\": \"profile\", \"rate_limit\": null }\n"
                 "  ] }\n");
    loaded l;
    load_ok(&l, 0, NULL, 0);
    const bff_frontend *fe = frontend_named(l.snap, "web");
    const bff_route *inherits = route_with_pattern(fe, "/inherits"), *own = route_with_pattern(fe, "/own"),
                    *off = route_with_pattern(fe, "/off");
    assert_int_equal(inherits->limits.queue_max, 7);
    assert_int_equal(inherits->limits.queue_wait_ms, 250);
    assert_true(inherits->limits.rate_rps == 10.0 && inherits->limits.rate_burst == 10.0);
    assert_non_null(inherits->ratelimit);
    assert_int_equal(own->limits.queue_max, 0);
    assert_true(own->limits.rate_rps == 3.0 && own->limits.rate_burst == 9.0);
    assert_int_equal(own->admission.queue_max, 0);
    assert_true(off->limits.rate_rps == 0.0);
    assert_null(off->ratelimit);
    release(&l);
}

static void test_limits_inheritance(void **state)
{
    (void)state;
    write_config("{ \"server\": { \"threads\": 1 },\n"
                 "  \"defaults\": { \"timeout_ms\": 1000, \"concurrency\": 10, \"memory_mb\": 32 },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 "{ \"name\": \"web\", \"match\": { \"path_prefix\": \"/web\" },\n"
                 "  \"defaults\": { \"timeout_ms\": 2000 },\n"
                 "  \"routes\": [\n"
                 "    { \"path\": \"/small\", \"function\": \"profile\", \"memory_mb\": 8 },\n"
                 "    { \"path\": \"/plain\", \"function\": \"profile\" },\n"
                 "    { \"path\": \"/all\", \"function\": \"profile\", \"timeout_ms\": 50, \"concurrency\": 2,\n"
                 "      \"memory_mb\": 4 }\n"
                 "  ] }\n");
    write_file("frontends/mobile.json", "{ \"name\": \"mobile\", \"match\": { \"path_prefix\": \"/m\" },\n"
                                        "  \"routes\": [ { \"path\": \"/p\", \"function\": \"profile\" } ] }\n");
    loaded l;
    load_ok(&l, 0, NULL, 0);
    assert_limits(&l.snap->defaults, 1000, 10, 32);
    const bff_frontend *web = frontend_named(l.snap, "web");
    assert_limits(&web->defaults, 2000, 10, 32);
    assert_int_equal(web->nroutes, 3);
    assert_limits(&route_with_pattern(web, "/small")->limits, 2000, 10, 8);
    assert_limits(&route_with_pattern(web, "/plain")->limits, 2000, 10, 32);
    assert_limits(&route_with_pattern(web, "/all")->limits, 50, 2, 4);
    const bff_frontend *mobile = frontend_named(l.snap, "mobile");
    assert_limits(&mobile->defaults, 1000, 10, 32);
    assert_limits(&route_with_pattern(mobile, "/p")->limits, 1000, 10, 32);
    release(&l);

    /* Without any defaults, the built-in ones. */
    write_config(NULL, NULL);
    unlink("frontends/mobile.json");
    load_ok(&l, 0, NULL, 0);
    assert_limits(&l.snap->defaults, BFF_DEFAULT_TIMEOUT_MS, BFF_DEFAULT_CONCURRENCY, BFF_DEFAULT_MEMORY_MB);
    assert_limits(&frontend_named(l.snap, "web")->routes[0].limits, BFF_DEFAULT_TIMEOUT_MS, BFF_DEFAULT_CONCURRENCY,
                  BFF_DEFAULT_MEMORY_MB);
    release(&l);
}

static void test_snapshot_routes_and_functions(void **state)
{
    (void)state;
    write_config(NULL,
                 "{ \"name\": \"web\", \"match\": { \"path_prefix\": \"/web\", \"host\": \"Shop.Example\" },\n"
                 "  \"routes\": [\n"
                 "    { \"path\": \"/profile/{id}\", \"function\": \"profile\" },\n"
                 "    { \"method\": [\"POST\", \"PUT\"], \"path\": \"/profile/{id}\", \"function\": \"profile\" }\n"
                 "  ] }\n");
    loaded l;
    load_ok(&l, 0, NULL, 0);
    assert_true(l.snap->version > 0);
    assert_int_equal(l.snap->nfunctions, 1);
    assert_string_equal(l.snap->functions[0].name, "profile");
    fn_function *fn = l.snap->functions[0].fn;
    assert_int_equal(fn->kind, FN_KIND_LUA);
    assert_string_equal(fn->path, "functions/profile.lua");

    assert_int_equal(l.snap->nfrontends, 1);
    const bff_frontend *web = &l.snap->frontends[0];
    assert_string_equal(web->name, "web");
    assert_string_equal(web->file, "frontends/web.json");
    assert_string_equal(web->path_prefix, "/web");
    assert_string_equal(web->host, "shop.example"); /* lower-cased */
    assert_int_equal(web->nroutes, 2);
    assert_int_equal(web->routes[0].methods, BFF_METHOD_GET);
    assert_int_equal(web->routes[1].methods, BFF_METHOD_POST | BFF_METHOD_PUT);
    assert_ptr_equal(web->routes[0].fn, fn);

    /* Selection and matching lead to the function, which runs. */
    const char *rest = NULL;
    size_t rest_len = 0;
    const char *path = "/web/profile/7";
    assert_ptr_equal(
        bff_snapshot_select(l.snap, "shop.example:8080", 17, path, strlen(path), NULL, NULL, &rest, &rest_len), web);
    assert_int_equal(rest_len, strlen("/profile/7"));
    assert_null(bff_snapshot_select(l.snap, "other.example", 13, path, strlen(path), NULL, NULL, &rest, &rest_len));
    bff_route_match m;
    assert_int_equal(bff_route_table_match(web->table, BFF_METHOD_PUT, rest, rest_len, &m), 1);
    const bff_route *route = m.value;
    assert_ptr_equal(route, &web->routes[1]);

    bfg_pair param = {{"id", 2}, {"7", 1}};
    bfg_event ev = {.abi_version = BFG_ABI_VERSION, .frontend = {"web", 3}, .params = &param, .nparams = 1};
    fn_call call = {
        .event = &ev, .limits = {route->limits.timeout_ms, route->limits.memory_mb << 20}, .start_ns = fn_now_ns()};
    fn_response res;
    fn_response_init(&res);
    int rc = fn_invoke(route->fn, &call, &res);
    if (rc != 0)
        fail_msg("invoke: %s", res.error);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body.data, "\"id\":\"7\""));
    fn_response_release(&res);

    /* The snapshot holds the function: a reference taken survives the snapshot's release. */
    fn_function *kept = fn_function_acquire(fn);
    release(&l);
    assert_string_equal(kept->name, "profile");
    fn_function_release(&kept);
}

static void test_threads_override(void **state)
{
    (void)state;
    write_config("{ \"server\": { \"threads\": 3 },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 NULL);
    loaded l;
    load_ok(&l, 0, NULL, 0);
    assert_int_equal(l.server.threads, 3);
    assert_int_equal(l.snap->functions[0].fn->nthreads, 3);
    release(&l);

    load_ok(&l, 2, NULL, 0);
    assert_int_equal(l.server.threads, 2);
    /* The pools are sized for the overridden count. */
    assert_int_equal(l.snap->functions[0].fn->nthreads, 2);
    release(&l);
}

static void test_default_server_settings(void **state)
{
    (void)state;
    write_config("{ \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 NULL);
    loaded l;
    load_ok(&l, 0, NULL, 0);
    assert_int_equal(l.server.nlisten, 1);
    assert_string_equal(l.server.listen[0].address, "127.0.0.1");
    assert_int_equal(l.server.listen[0].port, GW_DEFAULT_PORT);
    assert_int_equal(l.server.listen[0].port, 8080);
    assert_null(l.server.listen[0].tls_certificate);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(l.server.threads, cpus > 0 ? (unsigned)cpus : 1);
    assert_int_equal(l.server.max_body_bytes, GW_DEFAULT_MAX_BODY_BYTES);
    assert_int_equal(l.server.drain_timeout_ms, GW_DEFAULT_DRAIN_TIMEOUT_MS);
    assert_int_equal(l.server.log_level, FN_LOG_INFO);
    release(&l);

    /* A server section without "listen" keeps the default listener. */
    write_config("{ \"server\": { \"threads\": 1, \"log_level\": \"warn\" },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 NULL);
    load_ok(&l, 0, NULL, 0);
    assert_int_equal(l.server.nlisten, 1);
    assert_string_equal(l.server.listen[0].address, "127.0.0.1");
    assert_int_equal(l.server.listen[0].port, 8080);
    assert_int_equal(l.server.log_level, FN_LOG_WARN);
    release(&l);
}

static void test_explicit_listeners(void **state)
{
    (void)state;
    write_file("cert.pem", "not really a certificate\n");
    write_file("key.pem", "not really a key\n");
    write_config("{ \"server\": { \"threads\": 1, \"max_body_bytes\": 4096, \"drain_timeout_ms\": 0,\n"
                 "  \"listen\": [ { \"address\": \"::1\", \"port\": 0 },\n"
                 "              { \"address\": \"0.0.0.0\", \"port\": 8443,\n"
                 "                \"tls\": { \"certificate\": \"cert.pem\", \"key\": \"key.pem\" } } ] },\n"
                 "  \"functions\": { \"profile\": { \"lua\": \"functions/profile.lua\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 NULL);
    loaded l;
    load_ok(&l, 0, NULL, 0);
    assert_int_equal(l.server.nlisten, 2);
    assert_string_equal(l.server.listen[0].address, "::1");
    assert_int_equal(l.server.listen[0].port, 0);
    assert_string_equal(l.server.listen[1].address, "0.0.0.0");
    assert_int_equal(l.server.listen[1].port, 8443);
    assert_string_equal(l.server.listen[1].tls_certificate, "cert.pem");
    assert_string_equal(l.server.listen[1].tls_key, "key.pem");
    assert_int_equal(l.server.max_body_bytes, 4096);
    assert_int_equal(l.server.drain_timeout_ms, 0);
    release(&l);
    assert_int_equal(l.server.nlisten, 0);
}

static void test_c_object_found_in_lib_path(void **state)
{
    (void)state;
    write_config("{ \"server\": { \"threads\": 1 },\n"
                 "  \"functions\": { \"hello\": { \"c\": \"hello.so\", \"symbol\": \"hello\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 "{ \"name\": \"web\", \"routes\": [ { \"path\": \"/hello\", \"function\": \"hello\" } ] }\n");

    /* Without a lib path, "hello.so" is looked for next to gateway.json, where it is not. */
    loaded l;
    load_fails(&l);
    assert_error(&l.errs, "gateway.json: functions.hello.c: hello.so: cannot read the C object: No such file or "
                          "directory");
    release(&l);

    /* The first lib path directory holding it wins; a directory without it is skipped. */
    const char *const lib_path[] = {"/nonexistent-bffgate-lib", EXAMPLES_DIR};
    load_ok(&l, 0, lib_path, 2);
    fn_function *fn = l.snap->functions[0].fn;
    assert_int_equal(fn->kind, FN_KIND_C);
    assert_string_equal(fn->path, EXAMPLES_DIR "/hello.so");
    bfg_event ev = {.abi_version = BFG_ABI_VERSION};
    fn_call call = {.event = &ev, .limits = {1000, 0}, .start_ns = fn_now_ns()};
    fn_response res;
    fn_response_init(&res);
    assert_int_equal(fn_invoke(l.snap->frontends[0].routes[0].fn, &call, &res), 0);
    assert_int_equal(res.body.len, strlen("{\"message\":\"hello from C\"}"));
    assert_memory_equal(res.body.data, "{\"message\":\"hello from C\"}", res.body.len);
    fn_response_release(&res);
    release(&l);

    /* A name with a '/' is relative to the config file, never searched. */
    write_config("{ \"server\": { \"threads\": 1 },\n"
                 "  \"functions\": { \"hello\": { \"c\": \"./hello.so\", \"symbol\": \"hello\" } },\n"
                 "  \"frontends\": [\"frontends/*.json\"] }\n",
                 "{ \"name\": \"web\", \"routes\": [ { \"path\": \"/hello\", \"function\": \"hello\" } ] }\n");
    load(&l, 0, lib_path, 2);
    assert_int_equal(l.rc, -1);
    assert_error(&l.errs, "gateway.json: functions.hello.c: ./hello.so: cannot read the C object: No such file or "
                          "directory");
    release(&l);
}

/* Files named in a config are relative to the config file's directory, not to the current directory. */
static void test_paths_relative_to_the_config_file(void **state)
{
    (void)state;
    assert_int_equal(mkdir("conf", 0700), 0);
    assert_int_equal(mkdir("conf/frontends", 0700), 0);
    assert_int_equal(mkdir("conf/functions", 0700), 0);
    write_file("conf/gateway.json", base_gateway);
    write_file("conf/frontends/web.json", base_web);
    write_file("conf/functions/profile.lua", profile_lua);
    loaded l;
    memset(&l, 0, sizeof(l));
    l.rc = gw_config_load("conf/gateway.json", 1, NULL, 0, &l.server, &l.snap, &l.errs);
    if (l.rc != 0)
        print_errors(&l.errs);
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.snap->functions[0].fn->path, "conf/functions/profile.lua");
    assert_string_equal(l.snap->frontends[0].file, "conf/frontends/web.json");
    release(&l);

    /* Errors name the files by those resolved paths. */
    write_file("conf/frontends/web.json",
               "{ \"name\": \"web\", \"routes\": [ { \"path\": \"/a\", \"function\": \"x\" } ] }");
    l.rc = gw_config_load("conf/gateway.json", 1, NULL, 0, &l.server, &l.snap, &l.errs);
    assert_int_equal(l.rc, -1);
    assert_error(&l.errs, "conf/frontends/web.json: routes[0].function: unknown function \"x\"");
    release(&l);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_malformed_json),
        T(test_root_not_an_object),
        T(test_unknown_key_top_level),
        T(test_unknown_key_in_server),
        T(test_edge_and_overload_ranges),
        T(test_unknown_key_in_frontend),
        T(test_unknown_key_in_route),
        T(test_unknown_key_in_match),
        T(test_unknown_key_in_defaults_and_function),
        T(test_missing_required_keys),
        T(test_wrong_types),
        T(test_out_of_range_values),
        T(test_unknown_function),
        T(test_missing_lua_file),
        T(test_lua_syntax_error),
        T(test_lua_module_without_handler),
        T(test_c_object_missing),
        T(test_c_symbol_missing),
        T(test_function_definition_shape),
        T(test_bad_route_pattern),
        T(test_duplicate_route),
        T(test_unknown_method),
        T(test_route_claim_rules_need_jwt),
        T(test_composition_config_errors),
        T(test_composition_loads),
        T(test_auth_key_errors),
        T(test_route_with_own_jwt_and_rate_claim),
        T(test_duplicate_frontend_name),
        T(test_frontend_glob_matching_nothing),
        T(test_bad_path_prefix),
        T(test_header_match_requires_name_and_value),
        T(test_listen_address_not_numeric),
        T(test_tls_files_must_exist),
        T(test_bad_log_level),
        T(test_every_error_is_reported),
        T(test_admission_and_rate_limit_settings),
        T(test_reload_shares_unchanged_functions),
        T(test_limits_inheritance),
        T(test_snapshot_routes_and_functions),
        T(test_threads_override),
        T(test_default_server_settings),
        T(test_explicit_listeners),
        T(test_c_object_found_in_lib_path),
        T(test_paths_relative_to_the_config_file),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
