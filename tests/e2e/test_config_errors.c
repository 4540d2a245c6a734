/* test_config_errors: the real binary refuses bad configs with file, JSON path and reason, and exits 1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char good_lua[] = "return { handler = function(event, ctx) return { ok = true } end }\n";
static const char web_json[] = "{\"name\": \"web\", \"routes\": [{\"path\": \"/a\", \"function\": \"a\"}]}\n";

/* Writes a tree with the given entry file (and a valid frontend and Lua file unless replaced later). */
static void tree(e2e_server *srv, const char *gateway)
{
    e2e_init(srv);
    e2e_pick_port(srv);
    e2e_write(srv, "gateway.json", gateway);
    e2e_write(srv, "frontends/web.json", web_json);
    e2e_write(srv, "a.lua", good_lua);
}

/* Runs `bffgate --check` (and a real start) on the tree; both must exit 1 and print every expected text. */
static void expect_refused(e2e_server *srv, const char *const *expected)
{
    char config[300];
    snprintf(config, sizeof(config), "%s/gateway.json", srv->dir);
    const char *const modes[][4] = {{"--check", "--lib-path", FIXTURE_DIR, NULL},
                                    {"--lib-path", FIXTURE_DIR, NULL, NULL}};
    for (size_t m = 0; m < 2; ++m) {
        const char *args[6];
        size_t n = 0;
        for (size_t i = 0; modes[m][i] != NULL; ++i)
            args[n++] = modes[m][i];
        args[n++] = config;
        args[n] = NULL;
        char *out = NULL;
        int rc = e2e_run(args, &out);
        for (size_t i = 0; expected[i] != NULL; ++i) {
            if (strstr(out, expected[i]) == NULL)
                fail_msg("expected \"%s\" in:\n%s", expected[i], out);
        }
        assert_int_equal(rc, 1);
        free(out);
    }
    e2e_cleanup(srv);
}

static void test_malformed_json(void **state)
{
    e2e_server srv;
    tree(&srv, "{\"functions\": {\"a\": {\"lua\": \"a.lua\"}},\n \"frontends\": [\"frontends/web.json\"],,}\n");
    const char *const want[] = {"gateway.json: line 2, column", "1 configuration error", NULL};
    expect_refused(&srv, want);
}

static void test_unknown_keys(void **state)
{
    e2e_server srv;
    tree(&srv, "{\"functions\": {\"a\": {\"lua\": \"a.lua\"}}, \"frontends\": [\"frontends/web.json\"],"
               " \"frontend\": 1, \"server\": {\"thread\": 2}}\n");
    e2e_write(&srv, "frontends/web.json",
              "{\"name\": \"web\", \"routes\": [{\"path\": \"/a\", \"function\": \"a\", \"timeout\": 5}]}\n");
    const char *const want[] = {"gateway.json: frontend: unknown key \"frontend\"",
                                "gateway.json: server.thread: unknown key \"thread\"",
                                "web.json: routes[0].timeout: unknown key \"timeout\"", "3 configuration errors", NULL};
    expect_refused(&srv, want);
}

static void test_missing_function_file(void **state)
{
    e2e_server srv;
    tree(&srv, "{\"functions\": {\"a\": {\"lua\": \"missing.lua\"}}, \"frontends\": [\"frontends/web.json\"]}\n");
    const char *const want[] = {
        "gateway.json: functions.a.lua: ", "missing.lua: cannot read the Lua file: No such file", NULL};
    expect_refused(&srv, want);
}

static void test_lua_syntax_error(void **state)
{
    e2e_server srv;
    tree(&srv, "{\"functions\": {\"a\": {\"lua\": \"a.lua\"}}, \"frontends\": [\"frontends/web.json\"]}\n");
    e2e_write(&srv, "a.lua", "local M = {}\nfunction M.handler(event, ctx)\n  return {\nend\nreturn M\n");
    const char *const want[] = {"gateway.json: functions.a.lua: ", "a.lua:4:", NULL};
    expect_refused(&srv, want);
}

static void test_c_object_without_abi(void **state)
{
    e2e_server srv;
    tree(&srv, "{\"functions\": {\"a\": {\"c\": \"noabi.so\", \"symbol\": \"handle\"}},"
               " \"frontends\": [\"frontends/web.json\"]}\n");
    const char *const want[] = {"gateway.json: functions.a.c: ", "noabi.so: no bfg_abi_version symbol", NULL};
    expect_refused(&srv, want);
}

static void test_unknown_function_reference(void **state)
{
    e2e_server srv;
    tree(&srv, "{\"functions\": {\"a\": {\"lua\": \"a.lua\"}}, \"frontends\": [\"frontends/web.json\"]}\n");
    e2e_write(&srv, "frontends/web.json",
              "{\"name\": \"web\", \"routes\": [{\"path\": \"/a\", \"function\": \"a\"},"
              " {\"path\": \"/b/{id\", \"function\": \"a\"}, {\"path\": \"/c\", \"function\": \"prfile\"}]}\n");
    const char *const want[] = {"web.json: routes[2].function: unknown function \"prfile\"",
                                "web.json: routes[1].path: ", "2 configuration errors", NULL};
    expect_refused(&srv, want);
}

static void test_valid_config_checks_ok(void **state)
{
    e2e_server srv;
    tree(&srv, "{\"functions\": {\"a\": {\"lua\": \"a.lua\"}}, \"frontends\": [\"frontends/web.json\"]}\n");
    char config[300];
    snprintf(config, sizeof(config), "%s/gateway.json", srv.dir);
    const char *const args[] = {"--check", config, NULL};
    char *out = NULL;
    assert_int_equal(e2e_run(args, &out), 0);
    assert_non_null(strstr(out, "OK (1 frontends, 1 routes, 1 functions)"));
    free(out);
    e2e_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_json),         cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_missing_function_file),  cmocka_unit_test(test_lua_syntax_error),
        cmocka_unit_test(test_c_object_without_abi),   cmocka_unit_test(test_unknown_function_reference),
        cmocka_unit_test(test_valid_config_checks_ok),
    };
    return cmocka_run_group_tests_name("e2e/config-errors", tests, NULL, NULL);
}
