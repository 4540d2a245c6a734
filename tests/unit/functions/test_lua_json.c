/* Unit tests for lua_json (JSON <-> Lua conversion, the `json` library) and the fn_buf it writes into. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fn_buf.h"
#include "lua_json.h"

/* ---- helpers ---- */

static int setup_state(void **state)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return -1;
    luaL_openlibs(L);
    fn_lua_json_open(L);
    *state = L;
    return 0;
}

static int teardown_state(void **state)
{
    lua_close(*state);
    return 0;
}

/* Runs a chunk; fails the test with Lua's message when it raises. */
static void run_lua(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK) {
        print_error("Lua error: %s\n", lua_tostring(L, -1));
        fail();
    }
}

/* Pushes the value of a Lua expression. */
static void push_expr(lua_State *L, const char *expr)
{
    char code[4096];
    snprintf(code, sizeof code, "return %s", expr);
    int top = lua_gettop(L);
    run_lua(L, code);
    assert_int_equal(lua_gettop(L), top + 1);
}

/* Encodes the value at the top of the stack with the C API and pops it; asserts the text and that the
 * stack is left as it was. */
static void assert_top_encodes(lua_State *L, const char *expected)
{
    fn_buf buf = FN_BUF_INIT;
    char err[256] = "";
    int top = lua_gettop(L);
    int rc = fn_lua_encode_json(L, -1, &buf, err, sizeof err);
    if (rc != 0)
        print_error("encode error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(lua_gettop(L), top);
    assert_string_equal(buf.data, expected);
    assert_int_equal(buf.len, strlen(expected));
    fn_buf_release(&buf);
    lua_pop(L, 1);
}

static void assert_encodes(lua_State *L, const char *expr, const char *expected)
{
    push_expr(L, expr);
    assert_top_encodes(L, expected);
}

/* Asserts that encoding the expression fails, that err holds `expected`, and that the stack is unchanged. */
static void assert_encode_fails(lua_State *L, const char *expr, const char *expected)
{
    push_expr(L, expr);
    fn_buf buf = FN_BUF_INIT;
    char err[256] = "";
    int top = lua_gettop(L);
    assert_int_equal(fn_lua_encode_json(L, -1, &buf, err, sizeof err), -1);
    assert_int_equal(lua_gettop(L), top);
    if (strstr(err, expected) == NULL) {
        print_error("error \"%s\" does not contain \"%s\"\n", err, expected);
        fail();
    }
    fn_buf_release(&buf);
    lua_pop(L, 1);
}

/* Parses text with jansson and pushes it; asserts success. */
static void push_json_text(lua_State *L, const char *text)
{
    json_error_t jerr;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    assert_non_null(value);
    char err[256] = "";
    int top = lua_gettop(L);
    assert_int_equal(fn_lua_push_json(L, value, err, sizeof err), 0);
    assert_int_equal(lua_gettop(L), top + 1);
    json_decref(value);
}

/* decode with jansson, push, encode: the result must be the same text. */
static void assert_round_trip_exact(lua_State *L, const char *text)
{
    push_json_text(L, text);
    assert_top_encodes(L, text);
}

/* Same, for texts with several object keys (Lua's traversal order is not the text's): compares values. */
static void assert_round_trip_equal(lua_State *L, const char *text)
{
    push_json_text(L, text);
    fn_buf buf = FN_BUF_INIT;
    char err[256] = "";
    assert_int_equal(fn_lua_encode_json(L, -1, &buf, err, sizeof err), 0);
    lua_pop(L, 1);
    json_t *before = json_loads(text, JSON_DECODE_ANY, NULL);
    json_t *after = json_loads(buf.data, JSON_DECODE_ANY, NULL);
    assert_non_null(after);
    if (!json_equal(before, after)) {
        print_error("%s came back as %s\n", text, buf.data);
        fail();
    }
    json_decref(before);
    json_decref(after);
    fn_buf_release(&buf);
}

/* A text of `depth` nested arrays around 1, e.g. depth 2: [[1]]. */
static char *nested_arrays(int depth)
{
    char *text = malloc((size_t)depth * 2 + 2);
    assert_non_null(text);
    memset(text, '[', (size_t)depth);
    text[depth] = '1';
    memset(text + depth + 1, ']', (size_t)depth);
    text[depth * 2 + 1] = '\0';
    return text;
}

/* ---- fn_buf ---- */

static void test_buf_append_keeps_nul(void **state)
{
    (void)state;
    fn_buf buf = FN_BUF_INIT;
    assert_int_equal(fn_buf_append(&buf, "", 0), 0);
    assert_non_null(buf.data);
    assert_string_equal(buf.data, "");
    assert_int_equal(fn_buf_append_str(&buf, "ab"), 0);
    assert_int_equal(fn_buf_append_char(&buf, 'c'), 0);
    assert_int_equal(fn_buf_append(&buf, "d\0e", 3), 0);
    assert_int_equal(buf.len, 6);
    assert_memory_equal(buf.data, "abcd\0e", 7);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fn_buf_append_char(&buf, 'x'), 0);
    assert_int_equal(buf.len, 1006);
    assert_true(buf.cap > buf.len);
    assert_int_equal(buf.data[buf.len], '\0');
    char *stolen = fn_buf_steal(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.len, 0);
    assert_int_equal(buf.cap, 0);
    assert_memory_equal(stolen, "abcd", 4);
    free(stolen);
    fn_buf_release(&buf);
    fn_buf_release(NULL);
}

static void test_buf_reserve_overflow(void **state)
{
    (void)state;
    fn_buf buf = FN_BUF_INIT;
    assert_int_equal(fn_buf_append_str(&buf, "keep"), 0);
    char *data = buf.data;
    size_t cap = buf.cap;
    assert_int_equal(fn_buf_reserve(&buf, SIZE_MAX), -ENOMEM);
    assert_int_equal(fn_buf_reserve(&buf, SIZE_MAX - 4), -ENOMEM);
    assert_ptr_equal(buf.data, data);
    assert_int_equal(buf.cap, cap);
    assert_string_equal(buf.data, "keep");
    fn_buf_release(&buf);
}

static void test_buf_json_string(void **state)
{
    (void)state;
    fn_buf buf = FN_BUF_INIT;
    assert_int_equal(fn_buf_append_json_string(&buf, "a\"b\\c/\n\r\t\b\f\x01\x1f\0\x7f\xff", 16), 0);
    /* No UTF-8 check here: \xff goes out as it is. */
    assert_string_equal(buf.data, "\"a\\\"b\\\\c/\\n\\r\\t\\b\\f\\u0001\\u001f\\u0000\x7f\xff\"");
    fn_buf_release(&buf);
}

/* ---- encoding and round trips ---- */

static void test_encode_scalars(void **state)
{
    lua_State *L = *state;
    assert_encodes(L, "nil", "null");
    assert_encodes(L, "json.null", "null");
    assert_encodes(L, "true", "true");
    assert_encodes(L, "false", "false");
    assert_encodes(L, "0", "0");
    assert_encodes(L, "7", "7");
    assert_encodes(L, "-42", "-42");
    assert_encodes(L, "1234567890123", "1234567890123");
    assert_encodes(L, "math.maxinteger", "9223372036854775807");
    assert_encodes(L, "math.mininteger", "-9223372036854775808");
    assert_encodes(L, "'hello'", "\"hello\"");
    assert_encodes(L, "''", "\"\"");
}

static void test_encode_floats(void **state)
{
    lua_State *L = *state;
    assert_encodes(L, "1.5", "1.5");
    assert_encodes(L, "-0.25", "-0.25");
    /* Integral floats keep a fraction so that they decode back as floats. */
    assert_encodes(L, "3.0", "3.0");
    assert_encodes(L, "-0.0", "-0.0");
    assert_encodes(L, "2^53", "9007199254740992.0");
    /* %.17g: exact, not shortest. */
    assert_encodes(L, "0.1", "0.10000000000000001");
    assert_encodes(L, "1e300", "1.0000000000000001e+300");
    assert_encodes(L, "1e-300", "1e-300");
    assert_encodes(L, "5e-324", "4.9406564584124654e-324");
}

static void test_round_trip_scalars(void **state)
{
    lua_State *L = *state;
    static const char *texts[] = {"null",
                                  "true",
                                  "false",
                                  "0",
                                  "-7",
                                  "9223372036854775807",
                                  "-9223372036854775808",
                                  "1.5",
                                  "3.0",
                                  "-0.0",
                                  "1.0000000000000001e+300",
                                  "\"\"",
                                  "\"h\xc3\xa9llo \xe2\x82\xac\"",
                                  "\"a\\\"b\\\\c\\n\""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_round_trip_exact(L, texts[i]);

    push_json_text(L, "3.0");
    assert_true(lua_isnumber(L, -1) && !lua_isinteger(L, -1));
    assert_true(lua_tonumber(L, -1) == 3.0);
    push_json_text(L, "3");
    assert_true(lua_isinteger(L, -1));
    assert_int_equal(lua_tointeger(L, -1), 3);
    push_json_text(L, "true");
    assert_int_equal(lua_type(L, -1), LUA_TBOOLEAN);
    assert_true(lua_toboolean(L, -1));
    push_json_text(L, "\"x\"");
    assert_string_equal(lua_tostring(L, -1), "x");
    lua_pop(L, 4);
}

static void test_large_integers(void **state)
{
    lua_State *L = *state;
    /* 2^53 + 1 has no exact double: it must stay an integer both ways. */
    push_json_text(L, "9007199254740993");
    assert_true(lua_isinteger(L, -1));
    assert_true(lua_tointeger(L, -1) == 9007199254740993LL);
    assert_top_encodes(L, "9007199254740993");
    assert_encodes(L, "(1 << 53) + 1", "9007199254740993");
    assert_round_trip_exact(L, "[9007199254740993,-9007199254740993]");
    run_lua(L, "local v = json.decode('{\"n\":9007199254740993}')\n"
               "assert(math.type(v.n) == 'integer' and v.n == 9007199254740993 and v.n ~= 9007199254740992)\n"
               "assert(json.encode(v) == '{\"n\":9007199254740993}')");
}

static void test_nested_round_trip(void **state)
{
    lua_State *L = *state;
    assert_round_trip_exact(L, "[1,[2,[3,[]]],{\"a\":{\"b\":[true,false,null]}},\"s\"]");
    assert_round_trip_equal(L, "{\"a\":[1,{\"b\":[true,null]}],\"c\":{\"d\":\"e\",\"f\":2.5},\"g\":[[],[{}]]}");

    push_json_text(L, "{\"a\":[10,{\"b\":\"deep\"}],\"c\":{\"d\":-1}}");
    lua_setglobal(L, "v");
    run_lua(L, "assert(#v.a == 2 and v.a[1] == 10 and v.a[2].b == 'deep' and v.c.d == -1)\n"
               "assert(math.type(v.a[1]) == 'integer')");
}

static void test_tables_encode(void **state)
{
    lua_State *L = *state;
    assert_encodes(L, "{1, 2, 3}", "[1,2,3]");
    assert_encodes(L, "{'a', {true}, {x = 1}}", "[\"a\",[true],{\"x\":1}]");
    assert_encodes(L, "{x = 1}", "{\"x\":1}");
    assert_encodes(L, "{[1] = 'a', [2] = 'b'}", "[\"a\",\"b\"]");
    assert_encodes(L, "{[1.0] = 'float key normalised'}", "[\"float key normalised\"]");
    assert_encodes(L, "{['1'] = 'string key'}", "{\"1\":\"string key\"}");
    assert_encodes(L, "{[''] = 0}", "{\"\":0}");
    assert_encodes(L, "{['k\\n'] = 'v'}", "{\"k\\n\":\"v\"}");
    /* Metamethods are not consulted. */
    assert_encodes(L, "setmetatable({}, {__index = function() return 1 end, __len = function() return 3 end})", "{}");
}

static void test_empty_array_vs_object(void **state)
{
    lua_State *L = *state;
    assert_round_trip_exact(L, "[]");
    assert_round_trip_exact(L, "{}");
    assert_round_trip_exact(L, "[[],{},[{}],{\"a\":[]}]");
    assert_encodes(L, "{}", "{}");
    assert_encodes(L, "json.array({})", "[]");
    assert_encodes(L, "json.array()", "[]");
    assert_encodes(L, "json.array({1, 'two'})", "[1,\"two\"]");
    assert_encodes(L, "{a = json.array()}", "{\"a\":[]}");
    assert_encodes(L, "{a = {}}", "{\"a\":{}}");

    /* A decoded array keeps its mark after edits; the same metatable as json.array. */
    run_lua(L, "local a = json.decode('[1]'); a[1] = nil; assert(json.encode(a) == '[]')\n"
               "table.insert(a, 'x'); assert(json.encode(a) == '[\"x\"]')\n"
               "local o = json.decode('{}'); assert(getmetatable(o) == nil)\n"
               "assert(getmetatable(json.decode('[]')) == 'json.array')\n"
               "assert(getmetatable(json.array()) == 'json.array')\n"
               "assert(not pcall(setmetatable, json.decode('[]'), {}))");
}

static void test_table_shape_errors(void **state)
{
    lua_State *L = *state;
    assert_encode_fails(L, "{1, 2, x = 3}", "$: cannot encode a table that mixes array and object keys");
    assert_encode_fails(L, "{a = {b = {1, 2, nil, 4}}}", "$.a.b: cannot encode a sparse array");
    assert_encode_fails(L, "{[2] = 'b'}", "$: cannot encode a sparse array");
    /* As many keys as the border says, but not 1..n: length 3, keys 2, 3 and 5. */
    run_lua(L, "holey = {'a', 'b', 'c'}; holey[5] = 'e'; holey[1] = nil\n"
               "local count = 0; for _ in pairs(holey) do count = count + 1 end; assert(#holey == 3 and count == 3)");
    assert_encode_fails(L, "holey", "$: cannot encode a sparse array");
    assert_encode_fails(L, "{[0] = 'z', 'a'}", "$: cannot encode a sparse array");
    assert_encode_fails(L, "{x = {[1.5] = 1}}", "$.x: cannot encode a table with a non-integer number key");
    assert_encode_fails(L, "{[true] = 1}", "$: cannot encode a table with a boolean key");
    assert_encode_fails(L, "{[{}] = 1}", "$: cannot encode a table with a table key");
    assert_encode_fails(L, "json.array({x = 1})", "$: cannot encode a json.array table with string keys");
    assert_encode_fails(L, "{items = {{name = 'a'}, {name = 'b'}, {name = 'c'}, {name = print}}}",
                        "$.items[3].name: cannot encode a function");
    assert_encode_fails(L, "{['odd key'] = {['a\"b'] = {io.stdout}}}",
                        "$[\"odd key\"][\"a\\\"b\"][0]: cannot encode a userdata");
    assert_encode_fails(L, "coroutine.create(print)", "$: cannot encode a thread");
}

static void test_nan_inf_errors(void **state)
{
    lua_State *L = *state;
    assert_encode_fails(L, "0/0", "$: cannot encode NaN");
    assert_encode_fails(L, "math.huge", "$: cannot encode inf");
    assert_encode_fails(L, "{v = {1, -math.huge}}", "$.v[1]: cannot encode -inf");
}

static void test_invalid_utf8(void **state)
{
    lua_State *L = *state;
    assert_encode_fails(L, "'ok\\xff'", "$: string is not valid UTF-8 (byte 2)");
    assert_encode_fails(L, "'\\xc0\\xaf'", "not valid UTF-8 (byte 0)");           /* overlong '/' */
    assert_encode_fails(L, "'\\xe0\\x80\\xaf'", "not valid UTF-8 (byte 0)");      /* overlong, 3 bytes */
    assert_encode_fails(L, "'\\xed\\xa0\\x80'", "not valid UTF-8 (byte 0)");      /* surrogate U+D800 */
    assert_encode_fails(L, "'\\xf4\\x90\\x80\\x80'", "not valid UTF-8 (byte 0)"); /* above U+10FFFF */
    assert_encode_fails(L, "'abc\\xe2\\x82'", "not valid UTF-8 (byte 3)");        /* truncated */
    assert_encode_fails(L, "'\\xe2\\x28\\xa1'", "not valid UTF-8 (byte 0)");      /* bad continuation */
    assert_encode_fails(L, "'\\x80'", "not valid UTF-8 (byte 0)");                /* lone continuation */
    assert_encode_fails(L, "{list = {'fine', 'bad\\xfe'}}", "$.list[1]: string is not valid UTF-8 (byte 3)");
    assert_encode_fails(L, "{['k\\xff'] = 1}", "$[\"k\\xff\"]: object key is not valid UTF-8 (byte 1)");
    /* Valid multi-byte sequences of every length, at the edges of the ranges, go out unchanged. */
    assert_encodes(
        L, "'\\u{80}\\u{7ff}\\u{800}\\u{d7ff}\\u{e000}\\u{ffff}\\u{10000}\\u{10ffff}'",
        "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"");
}

static void test_control_char_escaping(void **state)
{
    lua_State *L = *state;
    assert_encodes(L, "'a\"b\\\\c/d\\n\\r\\t\\b\\f\\x01\\x1f\\x7f'",
                   "\"a\\\"b\\\\c/d\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"");
    assert_encodes(L, "'\\0'", "\"\\u0000\"");
    /* Every control character, through json.decode and back. */
    run_lua(L, "for c = 0, 31 do\n"
               "  local s = 'x' .. string.char(c) .. 'y'\n"
               "  local e = json.encode(s)\n"
               "  assert(not e:find('[%z\\1-\\31]'), 'raw control byte in ' .. e)\n"
               "  assert(json.decode(e) == s, 'round trip of ' .. c)\n"
               "end");
    /* Embedded NUL decodes (JSON_ALLOW_NUL) into a 3-byte Lua string. */
    run_lua(L, "local s = json.decode('\"a\\\\u0000b\"'); assert(#s == 3 and s:byte(2) == 0)");
}

static void test_encode_depth_limit(void **state)
{
    lua_State *L = *state;
    run_lua(L, "function nest(n) local t = {} for i = 1, n do t = {t} end return t end");
    /* nest(n) is n + 1 tables deep. */
    push_expr(L, "nest(127)");
    fn_buf buf = FN_BUF_INIT;
    char err[256] = "";
    assert_int_equal(fn_lua_encode_json(L, -1, &buf, err, sizeof err), 0);
    assert_int_equal(buf.len, 127 * 2 + 2);
    fn_buf_release(&buf);
    lua_pop(L, 1);
    assert_encode_fails(L, "nest(128)", "nesting deeper than 128 levels");
    assert_encode_fails(L, "nest(128)", "$[0][0][0]");
}

static void test_cyclic_table(void **state)
{
    lua_State *L = *state;
    run_lua(L, "cyc = {}; cyc.self = cyc; arr = {1}; arr[2] = arr");
    assert_encode_fails(L, "cyc", "$.self.self.self");
    assert_encode_fails(L, "cyc", "nesting deeper than 128 levels (or a cyclic table)");
    assert_encode_fails(L, "arr", "$[1][1][1]");
    run_lua(L, "local ok, e = pcall(json.encode, cyc); assert(not ok and e:find('cyclic', 1, true))");
}

static void test_decode_depth_limit(void **state)
{
    lua_State *L = *state;
    char *ok_text = nested_arrays(FN_JSON_MAX_DEPTH);
    assert_round_trip_exact(L, ok_text);

    char *deep_text = nested_arrays(FN_JSON_MAX_DEPTH + 1);
    json_t *deep = json_loads(deep_text, 0, NULL);
    assert_non_null(deep);
    char err[256] = "";
    lua_pushinteger(L, 99);
    int top = lua_gettop(L);
    assert_int_equal(fn_lua_push_json(L, deep, err, sizeof err), -1);
    assert_int_equal(lua_gettop(L), top);
    assert_int_equal(lua_tointeger(L, -1), 99);
    assert_non_null(strstr(err, "nesting deeper than 128 levels"));
    assert_non_null(strstr(err, "$[0][0]"));
    lua_pop(L, 1);
    json_decref(deep);

    /* From Lua: an error, and a later decode still works. */
    lua_pushstring(L, deep_text);
    lua_setglobal(L, "deep_text");
    run_lua(L, "local ok, e = pcall(json.decode, deep_text)\n"
               "assert(not ok and e:find('json.decode: line 1, column 129', 1, true) and e:find('nesting deeper', 1, "
               "true), e)\n"
               "assert(json.decode('[[1]]')[1][1] == 1)");
    free(ok_text);
    free(deep_text);
}

static void test_null(void **state)
{
    lua_State *L = *state;
    push_json_text(L, "null");
    assert_true(fn_lua_is_null(L, -1));
    assert_int_equal(lua_type(L, -1), LUA_TLIGHTUSERDATA);
    assert_top_encodes(L, "null");

    fn_lua_push_null(L);
    assert_true(fn_lua_is_null(L, -1));
    assert_top_encodes(L, "null");

    lua_pushnil(L);
    assert_false(fn_lua_is_null(L, -1));
    lua_pushboolean(L, 0);
    assert_false(fn_lua_is_null(L, -1));
    lua_pushlightuserdata(L, L);
    assert_false(fn_lua_is_null(L, -1));
    fn_buf buf = FN_BUF_INIT;
    char err[256] = "";
    assert_int_equal(fn_lua_encode_json(L, -1, &buf, err, sizeof err), -1);
    assert_string_equal(err, "$: cannot encode a light userdata other than json.null");
    fn_buf_release(&buf);
    lua_pop(L, 3);

    assert_round_trip_exact(L, "[null,1,null]");
    assert_round_trip_exact(L, "{\"a\":null}");
    run_lua(L, "local v = json.decode('{\"a\":null,\"b\":[null]}')\n"
               "assert(v.a == json.null and v.b[1] == json.null and #v.b == 1)\n"
               "assert(json.null == nil or type(json.null) == 'userdata')\n"
               "assert(json.encode({x = json.null}) == '{\"x\":null}')");
}

/* ---- the Lua library ---- */

static void test_lua_library(void **state)
{
    lua_State *L = *state;
    run_lua(L, "assert(type(json.encode) == 'function' and type(json.decode) == 'function')\n"
               "assert(type(json.array) == 'function' and type(json.null) == 'userdata')\n"
               "assert(json.encode({a = {1, 2, 3}}) == '{\"a\":[1,2,3]}')\n"
               "assert(json.encode('x/y') == '\"x/y\"')\n"
               "local v = json.decode('{\"x\":[true,false,null,1.5,\"s\"],\"y\":{}}')\n"
               "assert(v.x[1] == true and v.x[2] == false and v.x[3] == json.null)\n"
               "assert(v.x[4] == 1.5 and math.type(v.x[4]) == 'float' and v.x[5] == 's' and #v.x == 5)\n"
               "assert(next(v.y) == nil and json.encode(v.y) == '{}')\n"
               "assert(json.decode('42') == 42 and json.decode(' \"top\" ') == 'top')\n"
               "assert(json.decode('null') == json.null)\n"
               "local t = {1, 2}; assert(json.array(t) == t)\n"
               "assert(not pcall(json.array, 'not a table'))\n"
               "assert(not pcall(json.encode))");

    /* The value comes back as a string of the exact text. */
    run_lua(L, "return json.encode({k = 'v'})");
    assert_string_equal(lua_tostring(L, -1), "{\"k\":\"v\"}");
    lua_pop(L, 1);
}

static void test_lua_encode_errors(void **state)
{
    lua_State *L = *state;
    run_lua(L, "local ok, e = pcall(json.encode, {f = print})\n"
               "assert(not ok and e == 'json.encode: $.f: cannot encode a function', e)\n"
               "ok, e = pcall(json.encode, {n = 0/0})\n"
               "assert(not ok and e == 'json.encode: $.n: cannot encode NaN', e)\n"
               "ok, e = pcall(json.encode, '\\xff')\n"
               "assert(not ok and e == 'json.encode: $: string is not valid UTF-8 (byte 0)', e)\n"
               /* A failed encode leaves nothing behind in the reused buffer. */
               "assert(json.encode({1}) == '[1]')");
}

static void test_lua_decode_errors(void **state)
{
    lua_State *L = *state;
    run_lua(L, "local ok, e = pcall(json.decode, '[1, 2,\\n  x]')\n"
               "assert(not ok, 'decoded invalid text')\n"
               "assert(e:find('json.decode: ', 1, true) == 1, e)\n"
               "assert(e:find('line 2, column 3', 1, true), e)\n"
               "assert(e:find(\"invalid character 'x'\", 1, true), e)\n"
               "ok, e = pcall(json.decode, '')\n"
               "assert(not ok and e:find('line 1', 1, true), e)\n"
               "ok, e = pcall(json.decode, '{\"a\":1} extra')\n"
               "assert(not ok and e:find('end of text expected', 1, true), e)\n"
               "ok, e = pcall(json.decode, '\"\\xff\"')\n"
               "assert(not ok and e:find('invalid UTF-8', 1, true), e)\n"
               "ok, e = pcall(json.decode, '[NaN]')\n"
               "assert(not ok, e)\n"
               "ok, e = pcall(json.decode, '9223372036854775808')\n"
               "assert(not ok and e:find('too big integer', 1, true), e)\n"
               "ok, e = pcall(json.decode)\n"
               "assert(not ok)");
}

/* The encode buffer is reused between calls and dropped once it grew large: results must not mix. */
static void test_lua_encode_buffer_reuse(void **state)
{
    lua_State *L = *state;
    run_lua(L, "local big = string.rep('ab', 50000)\n"
               "local e = json.encode({big})\n"
               "assert(#e == 100004 and e:sub(1, 4) == '[\"ab' and e:sub(-3) == 'b\"]')\n"
               "assert(json.encode(1) == '1')\n"
               "assert(json.encode({big, big}) == '[\"' .. big .. '\",\"' .. big .. '\"]')\n"
               "for i = 1, 100 do assert(json.encode({i}) == '[' .. i .. ']') end\n"
               "local co = coroutine.wrap(function(x) coroutine.yield(json.encode(x)); return json.encode('b') end)\n"
               "assert(co('a') == '\"a\"' and json.encode(2) == '2' and co() == '\"b\"')");
}

static void test_push_from_jansson(void **state)
{
    lua_State *L = *state;
    json_t *value = json_pack("{s:[i,f,s#,b,n],s:{}}", "list", 5, 0.5, "a\0b", (int)3, 1, "obj");
    assert_non_null(value);
    char err[256] = "";
    lua_pushliteral(L, "below");
    assert_int_equal(fn_lua_push_json(L, value, err, sizeof err), 0);
    json_decref(value);
    assert_int_equal(lua_gettop(L), 2);
    assert_string_equal(lua_tostring(L, 1), "below");
    lua_setglobal(L, "v");
    lua_pop(L, 1);
    run_lua(L, "assert(#v.list == 5 and v.list[1] == 5 and v.list[2] == 0.5)\n"
               "assert(v.list[3] == 'a\\0b' and v.list[4] == true and v.list[5] == json.null)\n"
               "assert(next(v.obj) == nil and json.encode(v.obj) == '{}')\n"
               "assert(json.encode(v.list) == '[5,0.5,\"a\\\\u0000b\",true,null]')");

    /* Works on a state where fn_lua_json_open never ran: the array metatable is created on demand. */
    lua_State *bare = luaL_newstate();
    assert_non_null(bare);
    json_t *empty = json_array();
    assert_int_equal(fn_lua_push_json(bare, empty, err, sizeof err), 0);
    json_decref(empty);
    fn_buf buf = FN_BUF_INIT;
    assert_int_equal(fn_lua_encode_json(bare, -1, &buf, err, sizeof err), 0);
    assert_string_equal(buf.data, "[]");
    fn_buf_release(&buf);
    lua_close(bare);

    assert_int_equal(fn_lua_push_json(L, NULL, err, sizeof err), -1);
    assert_int_equal(lua_gettop(L), 0);
}

/* A small err buffer is truncated, never overrun; a NULL err is allowed. */
static void test_error_buffer_limits(void **state)
{
    lua_State *L = *state;
    push_expr(L, "{a = {b = print}}");
    fn_buf buf = FN_BUF_INIT;
    char err[8];
    memset(err, 'Z', sizeof err);
    assert_int_equal(fn_lua_encode_json(L, -1, &buf, err, 5), -1);
    assert_string_equal(err, "$.a.");
    assert_int_equal(err[5], 'Z');
    assert_int_equal(fn_lua_encode_json(L, -1, &buf, NULL, 0), -1);
    fn_buf_release(&buf);
    lua_pop(L, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_keeps_nul),
        cmocka_unit_test(test_buf_reserve_overflow),
        cmocka_unit_test(test_buf_json_string),
        cmocka_unit_test_setup_teardown(test_encode_scalars, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_encode_floats, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_round_trip_scalars, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_large_integers, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_nested_round_trip, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_tables_encode, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_empty_array_vs_object, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_table_shape_errors, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_nan_inf_errors, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_control_char_escaping, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_encode_depth_limit, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_cyclic_table, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_decode_depth_limit, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_null, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_lua_library, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_lua_encode_errors, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_lua_decode_errors, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_lua_encode_buffer_reuse, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_push_from_jansson, setup_state, teardown_state),
        cmocka_unit_test_setup_teardown(test_error_buffer_limits, setup_state, teardown_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
