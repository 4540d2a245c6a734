/* test_json_parse: the direct JSON parser against jansson (the same texts accepted and refused, the same
 * values), on tricky cases and on random texts; and what the Lua values look like. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/lua_json.h"

static lua_State *L;

static int setup(void **state)
{
    (void)state;
    L = luaL_newstate();
    luaL_openlibs(L);
    fn_lua_json_open(L);
    return L == NULL;
}

static int teardown(void **state)
{
    (void)state;
    lua_close(L);
    return 0;
}

typedef struct parse_args {
    const char *text;
    size_t len;
    int rc;
    char err[256];
} parse_args;

static int protected_parse(lua_State *S)
{
    parse_args *a = lua_touserdata(S, 1);
    lua_settop(S, 0);
    a->rc = fn_json_parse(S, a->text, a->len, 1, a->err, sizeof(a->err));
    return a->rc == 0 ? 1 : 0;
}

/* Parses into Lua and encodes back to JSON text; returns the text (malloc'd) or NULL when refused. */
static char *through_lua(const char *text, size_t len)
{
    parse_args a = {text, len, 0, ""};
    lua_pushcfunction(L, protected_parse);
    lua_pushlightuserdata(L, &a);
    assert_int_equal(lua_pcall(L, 1, 1, 0), LUA_OK);
    if (a.rc != 0) {
        lua_pop(L, 1);
        return NULL;
    }
    fn_buf out = FN_BUF_INIT;
    char err[256];
    int rc = fn_lua_encode_json(L, -1, &out, err, sizeof(err));
    lua_pop(L, 1);
    if (rc != 0) { /* values the encoder refuses (NaN cannot come from JSON; deep nesting is checked) */
        fn_buf_release(&out);
        return strdup("<unencodable>");
    }
    char *stolen = fn_buf_steal(&out);
    return stolen != NULL ? stolen : strdup("");
}

/* Through jansson: the same flags the gateway used (any value, \u0000 allowed as json.decode did). */
static char *through_jansson(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v == NULL)
        return NULL;
    /* Re-parse our own encoding for comparison: objects compare regardless of key order. */
    char *out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    return out;
}

/* Both accept or both refuse; accepted values are equal (compared as jansson values). */
static void agree(const char *text, size_t len)
{
    char *ours = through_lua(text, len);
    char *theirs = through_jansson(text, len);
    int check_only = fn_json_parse(NULL, text, len, 1, (char[64]){0}, 64) == 0;
    if ((ours == NULL) != (theirs == NULL) || check_only != (ours != NULL))
        fail_msg("disagree on %.*s: ours %s, check-only %s, jansson %s", (int)(len > 80 ? 80 : len), text,
                 ours != NULL ? "accepts" : "refuses", check_only ? "accepts" : "refuses",
                 theirs != NULL ? "accepts" : "refuses");
    if (ours != NULL && strcmp(ours, "<unencodable>") != 0) {
        json_error_t jerr;
        json_t *a = json_loads(ours, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        json_t *b = json_loads(theirs, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (a == NULL || b == NULL || !json_equal(a, b))
            fail_msg("different values for %.*s: ours %s, jansson %s", (int)(len > 80 ? 80 : len), text, ours, theirs);
        json_decref(a);
        json_decref(b);
    }
    free(ours);
    free(theirs);
}

static void test_tricky_texts(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "0",
        "-0",
        "1",
        "-1",
        "123456789",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "1.5",
        "-1.5e10",
        "1e400",
        "-1e400",
        "1e-400",
        "0.0",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "1E5",
        "true",
        "false",
        "null",
        "tru",
        "nul",
        "TRUE",
        "\"\"",
        "\"a\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\\ude00\"",
        "\"\\u0000\"",
        "\"\\x\"",
        "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
        "\"a\nb\"",
        "\"\xc3\xa9\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"unterminated",
        "[]",
        "[1,2,3]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{}",
        "{\"a\":1}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":1,\"a\":2}",
        "{\"a\":{\"b\":[1,{\"c\":null}]}}",
        " \t\n\r[1] \n",
        "[1] x",
        "",
        " ",
        "[",
        "{\"a\":",
        "[[[[[[]]]]]]",
        "\"\\u12\"",
        "\"\\uZZZZ\"",
        "[1e5, -0.0, 3.25]",
        "{\"\":0}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
        agree(cases[i], strlen(cases[i]));
    /* NUL bytes in the text itself, and nesting at and past the limit. */
    agree("\"a\0b\"", 5);
    char deep[2 * FN_JSON_MAX_DEPTH + 8];
    for (int n = FN_JSON_MAX_DEPTH - 1; n <= FN_JSON_MAX_DEPTH + 1; ++n) {
        size_t len = 0;
        for (int i = 0; i < n; ++i)
            deep[len++] = '[';
        for (int i = 0; i < n; ++i)
            deep[len++] = ']';
        char *ours = through_lua(deep, len);
        if (n <= FN_JSON_MAX_DEPTH)
            assert_non_null(ours);
        else
            assert_null(ours);
        free(ours);
    }
}

static void test_random_texts(void **state)
{
    (void)state;
    static const char alphabet[] = "[]{}\":,-0123456789.eE+truefalsnl \\u\xc3\xa9";
    unsigned seed = 12345;
    char text[48];
    for (int i = 0; i < 200000; ++i) {
        size_t len = (size_t)(seed % 16) + 1;
        for (size_t k = 0; k < len; ++k) {
            seed = seed * 1103515245u + 12345u;
            text[k] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        seed = seed * 1103515245u + 12345u;
        agree(text, len);
    }
}

static void test_lua_values(void **state)
{
    (void)state;
    int rc =
        luaL_dostring(L, "v = json.decode('{\"n\":3,\"f\":1.5,\"s\":\"\\\\u00e9\",\"a\":[],\"z\":null,\"t\":true}')\n"
                         "assert(math.type(v.n) == 'integer' and v.n == 3)\n"
                         "assert(math.type(v.f) == 'float' and v.f == 1.5)\n"
                         "assert(v.s == '\\xc3\\xa9')\n"
                         "assert(json.encode(v.a) == '[]')\n"
                         "assert(v.z == json.null and v.t == true)\n"
                         "ok = true");
    if (rc != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    lua_getglobal(L, "ok");
    assert_true(lua_toboolean(L, -1));
    lua_pop(L, 1);
    char err[128];
    assert_int_equal(fn_json_parse(NULL, "[1, 2,\n  x]", 11, 1, err, sizeof(err)), -1);
    assert_string_equal(err, "line 2, column 3: invalid character 'x'");
    assert_int_equal(fn_json_parse(NULL, "\"\\u0000\"", 8, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\\u0000 is not allowed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tricky_texts),
        cmocka_unit_test(test_random_texts),
        cmocka_unit_test(test_lua_values),
    };
    return cmocka_run_group_tests_name("unit/functions/json_parse", tests, setup, teardown);
}
