/* Unit tests for lua_pattern: differential against Lua's own string library, and the work budget. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_pattern.h"

/* ---- helpers ---- */

/* Loaded into both states after the pattern functions are (or are not) replaced. Serializes results so
 * that two states can be compared as text; it uses no pattern function itself. */
static const char prelude[] =
    "local type, tostring, mtype, fmt, concat, select, pcall, load = type, tostring, math.type,\n"
    "    string.format, table.concat, select, pcall, load\n"
    "local function ser(v)\n"
    "  local t = type(v)\n"
    "  if t == 'string' then return fmt('%q', v)\n"
    "  elseif t == 'number' then return mtype(v) .. ':' .. tostring(v)\n"
    "  elseif t == 'table' then\n"
    "    local parts = {}\n"
    "    for i = 1, #v do parts[i] = ser(v[i]) end\n"
    "    return '{' .. concat(parts, ',') .. '}'\n"
    "  elseif t == 'function' then return 'function'\n"
    "  else return tostring(v) end\n"
    "end\n"
    "function serpack(...)\n"
    "  local parts = {}\n"
    "  for i = 1, select('#', ...) do parts[i] = ser((select(i, ...))) end\n"
    "  return select('#', ...) .. ':' .. concat(parts, ' ')\n"
    "end\n"
    "function run(code)\n"
    "  local f, err = load(code)\n"
    "  if not f then return 'LOAD ERROR ' .. err end\n"
    "  return serpack(pcall(f))\n"
    "end\n"
    /* every result of a gmatch loop, as a list of lists */
    "function G(s, p, init)\n"
    "  local out, it = {}, string.gmatch(s, p, init)\n"
    "  for i = 1, 10000 do\n"
    "    local r = {it()}\n"
    "    if #r == 0 then break end\n"
    "    out[#out + 1] = r\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "local repls = {\n"
    "  'x', '%0', '%1', '%2', '%%', '<%1|%0>', '%', '%a', '',\n"
    "  {a = 'A', ab = false, b = 1, [''] = 'E', ['1'] = 'one', [1] = 'int1', c = {}},\n"
    "  function(...)\n"
    "    local t = {...}\n"
    "    for i = 1, #t do t[i] = tostring(t[i]) end\n"
    "    return select('#', ...) .. '[' .. concat(t, ',') .. ']'\n"
    "  end,\n"
    "  function() return false end,\n"
    "  function(x) if x == 'b' then return {} end return 7 end,\n"
    "  42,\n"
    "}\n"
    "NREPLS = #repls\n"
    /* one randomly generated operation */
    "function R(op, s, p, init, k)\n"
    "  if op == 0 then return serpack(pcall(string.find, s, p, init))\n"
    "  elseif op == 1 then return serpack(pcall(string.match, s, p, init))\n"
    "  elseif op == 2 then return serpack(pcall(G, s, p, init))\n"
    "  elseif op == 3 then return serpack(pcall(string.gsub, s, p, repls[k], init))\n"
    "  else return serpack(pcall(string.find, s, p, init, true)) end\n"
    "end\n";

static int check_calls;
static int check_limit; /* the check raises on this call; 0 = never */

static void counting_check(lua_State *L)
{
    check_calls++;
    if (check_limit != 0 && check_calls >= check_limit)
        luaL_error(L, "timeout");
}

static void reset_check(int limit)
{
    check_calls = 0;
    check_limit = limit;
}

static lua_State *new_state(int patched, fn_lua_pattern_check check)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    if (patched)
        fn_lua_pattern_open(L, check);
    if (luaL_dostring(L, prelude) != LUA_OK) {
        print_error("prelude: %s\n", lua_tostring(L, -1));
        fail();
    }
    return L;
}

typedef struct state_pair {
    lua_State *stock;
    lua_State *ours;
} state_pair;

static int setup_pair(void **state)
{
    state_pair *pair = malloc(sizeof *pair);
    if (pair == NULL)
        return -1;
    pair->stock = new_state(0, NULL);
    pair->ours = new_state(1, counting_check);
    reset_check(0);
    *state = pair;
    return 0;
}

static int teardown_pair(void **state)
{
    state_pair *pair = *state;
    lua_close(pair->stock);
    lua_close(pair->ours);
    free(pair);
    return 0;
}

/* Calls the global function `fn` with the arguments already pushed and returns its string result,
 * copied into out. */
static void call_to_text(lua_State *L, const char *fn, int nargs, char *out, size_t cap)
{
    lua_getglobal(L, fn);
    lua_insert(L, -nargs - 1);
    if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
        print_error("%s raised: %s\n", fn, lua_tostring(L, -1));
        fail();
    }
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    assert_non_null(s);
    if (len >= cap)
        print_error("%s: result of %zu bytes does not fit\n", fn, len);
    assert_true(len < cap); /* a cut result could hide a difference */
    memcpy(out, s, len + 1);
    lua_pop(L, 1);
}

static void run_text(lua_State *L, const char *code, char *out, size_t cap)
{
    int top = lua_gettop(L);
    lua_pushstring(L, code);
    call_to_text(L, "run", 1, out, cap);
    assert_int_equal(lua_gettop(L), top);
}

/* Runs `return <expr>` in both states; returns 1 when the serialized results agree (printing them when
 * they do not). */
static int same_in_both(state_pair *pair, const char *expr)
{
    static char want[1 << 17], got[1 << 17];
    char code[8192];
    snprintf(code, sizeof code, "return %s", expr);
    run_text(pair->stock, code, want, sizeof want);
    run_text(pair->ours, code, got, sizeof got);
    if (strcmp(want, got) == 0)
        return 1;
    print_error("differs: %s\n  lua:  %s\n  ours: %s\n", expr, want, got);
    return 0;
}

/* Asserts one expression's result in our state, as serialized text. */
static void assert_ours(state_pair *pair, const char *expr, const char *expected)
{
    char code[8192], got[8192];
    snprintf(code, sizeof code, "return %s", expr);
    run_text(pair->ours, code, got, sizeof got);
    if (strcmp(got, expected) != 0)
        print_error("%s\n  expected: %s\n  got:      %s\n", expr, expected, got);
    assert_string_equal(got, expected);
}

/* ---- the differential table ---- */

static const char *const cases[] = {
    /* find: plain and init handling */
    "('hello world'):find('o')",
    "('hello world'):find('o', 6)",
    "('hello world'):find('o', -3)",
    "('hello world'):find('o', -100)",
    "('hello world'):find('o', 0)",
    "('hello world'):find('o', 100)",
    "('hello world'):find('', 100)",
    "('hello world'):find('', 11)",
    "('hello world'):find('', 12)",
    "('hello world'):find('', 13)",
    "('hello world'):find('', -1)",
    "('hello world'):find('', 0)",
    "(''):find('')",
    "(''):find('', 1)",
    "(''):find('', 2)",
    "(''):find('', -1)",
    "(''):find('a')",
    "('abc'):find('abcd')",
    "('abc'):find('c', math.maxinteger)",
    "('abc'):find('c', math.mininteger)",
    "('abc'):find('b', 2.0)",
    "('abc'):find('b', 2.5)",
    "('abc'):find('b', '2')",
    "('abc'):find('b', 'x')",
    "('a.b'):find('.', 1, true)",
    "('a.b'):find('.')",
    "('a+b'):find('+', 1, true)",
    "('a+b'):find('a+', 1, true)",
    "('a%b'):find('%', 1, true)",
    "('a%b'):find('%')",
    "('a[b'):find('[', 1, true)",
    "('a[b'):find('[')",
    "('aaab'):find('aab', 1, true)",
    "('aaab'):find('aab', 2, true)",
    "('aaab'):find('aab', 3, true)",
    "('x^y'):find('^y', 1, true)",
    "('x^y'):find('^', 1)",
    "('abc'):find('b', nil, true)",
    "('abc'):find('b', 1, false)",
    "('abc'):find('b', 1, nil)",
    "('abc'):find('b', 1, 0)",
    "('abcabc'):find('bc', 3)",
    "('abcabc'):find('b(c)', 3)",
    "string.find(12345, 34)",
    "string.find(12345, 3.0)",
    "string.find(1.5, '.', 1, true)",
    "string.find('a')",
    "string.find()",
    "string.find(nil, 'a')",
    "string.find({}, 'a')",
    "string.find('a', {})",
    "('a'):find(nil)",
    "pcall(string.find, 'a')",
    "(function() local f = string.find; return f('a', nil) end)()",
    /* embedded NULs */
    "('a\\0b'):find('\\0')",
    "('a\\0b'):find('\\0', 1, true)",
    "('a\\0b'):find('b\\0')",
    "('a\\0b\\0'):find('%z')",
    "('a\\0b\\0'):gsub('\\0', 'x')",
    "('a\\0b'):match('[\\0]')",
    "('a\\0\\0\\0b'):match('a\\0*')",
    "('a\\0\\0\\0b'):match('a\\0-b')",
    "('a\\0\\0\\0b'):match('%c+')",
    "('\\0\\0'):find('.', 2)",
    "('x\\0y'):find('[^%z]+')",
    "('x\\0y'):match('%f[\\0]')",
    "('x\\0y'):find('%f[\\0]')",
    "('x\\0y'):find('%f[%z]')",
    "('abc'):find('%f[\\0]')",
    "('abc'):find('c%f[\\0]')",
    "('x\\0y'):find('%b\\0y')",
    "('\\0x\\0'):find('%b\\0\\0')",
    "('a.b'):find('.\\0', 1, true)",
    "('a\\0.b'):find('\\0.', 1, true)",
    "('a\\0.b'):find('\\0.')",
    /* anchors */
    "('abc'):find('^a')",
    "('abc'):find('^b')",
    "('abc'):find('^b', 2)",
    "('abc'):find('^')",
    "('abc'):find('^', 4)",
    "('abc'):find('^', 5)",
    "('abc'):find('$')",
    "('abc'):find('c$')",
    "('abc'):find('b$')",
    "('abc'):find('^abc$')",
    "('a$c'):find('$c')",
    "('a$c'):find('a$c')",
    "('a^c'):find('a^c')",
    "('a$'):find('$$')",
    "('a$'):find('.$$')",
    "('^a'):find('^^a')",
    "('abc'):match('^(a)(b)')",
    "(''):match('^$')",
    "(''):match('$')",
    "(''):match('^')",
    "('x'):match('^$')",
    /* match: captures */
    "('hello world'):match('(%w+) (%w+)')",
    "('hello world'):match('()ll()')",
    "('hello world'):match('()')",
    "('hello world'):match('()', 5)",
    "('hello world'):match('()', 12)",
    "('hello world'):match('()', 13)",
    "('hello'):match('')",
    "('hello'):match('', 3)",
    "('key = value'):match('^(%w+)%s*=%s*(%w+)$')",
    "('abc'):match('((a)(b))')",
    "('abc'):match('(a)()(b)')",
    "('abc'):match('a(.-)c')",
    "('abc'):match('(x*)')",
    "('abc'):match('(a*(.)%w(%s*))')",
    "('abc'):find('(a*(.)%w(%s*))')",
    "('abc'):match('(')",
    "('abc'):match('(a')",
    "('abc'):match('a)')",
    "('abc'):match(')')",
    "('abc'):match('(()')",
    "('abc'):find('(a')",
    "('abc'):match('(x')",
    "('abc'):match('(a)(b)(c)x')",
    "('abc'):match(string.rep('(', 32) .. 'a' .. string.rep(')', 32))",
    "('abc'):match(string.rep('(', 33) .. 'a' .. string.rep(')', 33))",
    "('abc'):match(string.rep('()', 32))",
    "('abc'):match(string.rep('()', 33))",
    "('abc'):match('((((((((((a))))))))))')",
    /* back-references */
    "('hello hello'):match('(%w+) %1')",
    "('hello world'):match('(%w+) %1')",
    "('abab'):match('(ab)%1')",
    "('aa'):match('(a)%1')",
    "('aa'):match('(a%1)')",
    "('aa'):match('%1')",
    "('aa'):match('%0')",
    "('aa'):match('(a)%2')",
    "('aa'):match('(a)%9')",
    "('aa'):match('()%1')",
    "('a1a'):match('()a%1')",
    "('xyzxyz'):find('(x(y)z)%1')",
    "('xyzxyzy'):find('(x(y)z)%1%2')",
    "('abcabc'):gsub('(a)(b)(c)', '%3%2%1')",
    "('\"hi\" and \\'yo\\''):match('([\"\\'])(.-)%1')",
    "('aaaa'):match('(a*)%1')",
    "('aaaaa'):match('^(a*)%1$')",
    "('aaaaaa'):match('^(a+)%1$')",
    /* %b and %f */
    "('f(a(b)c)d'):match('%b()')",
    "('f(a(b)c'):match('%b()')",
    "('((('):match('%b()')",
    "('x'):match('%b')",
    "('x'):match('%b(')",
    "('x'):match('%bx')",
    "('x)'):match('%b)')",
    "('aXbXc'):match('%bXX')",
    "('[[x]]'):match('%b[]')",
    "(''):match('%b()')",
    "('(a)(b)'):match('%b()%b()')",
    "('(a)(b)'):gsub('%b()', '<%0>')",
    "('THE (quick) fox'):find('%f[%a]%a+%f[%A]')",
    "('THE (quick) fox'):gsub('%f[%w]%w+', 'W')",
    "('hello'):find('%f[%l]')",
    "('hello'):find('%f[%L]')",
    "('hello'):find('%f')",
    "('hello'):find('%fx')",
    "('hello'):find('%f[')",
    "('hello'):find('%f[a')",
    "('hello'):find('%f[^%l]')",
    "('hello'):find('%f[]')",
    "('hello'):find('%f[]]')",
    "(''):find('%f[%a]')",
    "(''):find('%f[^%a]')",
    "('a b'):gsub('%f[%s]', '|')",
    /* sets */
    "('abc123'):match('[%d]+')",
    "('abc123'):match('[^%d]+')",
    "('abc123'):match('[a-b]+')",
    "('abc123'):match('[b-a]+')",
    "('a-c'):match('[a-]+')",
    "('a-c'):match('[-a]+')",
    "('a-c'):match('[%-]')",
    "('a]c'):match('[]]')",
    "('a]c'):match('[^]]+')",
    "('a]c'):match('[]a]+')",
    "('a^c'):match('[%^]')",
    "('a^c'):match('[a^]+')",
    "('a^c'):match('[^^]+')",
    "('a%c'):match('[%%]')",
    "('a.c'):match('[.]')",
    "('abc'):match('[.]')",
    "('abc'):match('[')",
    "('abc'):match('[a')",
    "('abc'):match('[^')",
    "('abc'):match('[^]')",
    "('abc'):match('[]')",
    "('abc'):match('[a%')",
    "('abc'):match('[a%]')",
    "('abc'):match('[%a-z]+')",
    "('a-z'):match('[%a-z]+')",
    "('abc'):match('[a-%z]+')",
    "('xyz'):match('[a-c-z]+')",
    "('b-'):match('[a-c-]+')",
    "('\\200\\255a'):match('[\\128-\\255]+')",
    "('\\200\\255a'):match('[^\\128-\\255]+')",
    "('ABCabc'):match('[A-Z]+')",
    "('ABCabc'):match('[%u%d]+', 2)",
    "('  x'):match('[%s]*()')",
    "('abc'):match('[abc')",
    "('x'):match('[%]')",
    /* classes */
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%a', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%A', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%c', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%C', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%d', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%D', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%g', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%G', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%l', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%L', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%p', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%P', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%s', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%S', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%u', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%U', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%w', '*')",
    "('a1 ._\\t\\n!A~\\127\\200'):gsub('%W', '*')",
    "('a1 ._\\t\\n!A~\\127\\200fF'):gsub('%x', '*')",
    "('a1 ._\\t\\n!A~\\127\\200fF'):gsub('%X', '*')",
    "('za\\0'):gsub('%z', '*')",
    "('za\\0'):gsub('%Z', '*')",
    "('a.b'):gsub('%.', '*')",
    "('a%b'):gsub('%%', '*')",
    "('a]b'):gsub('%]', '*')",
    "('a b'):gsub('% ', '*')",
    "('abc'):match('%')",
    "('abc'):match('a%')",
    "('abc'):find('%', 1, true)",
    /* quantifiers */
    "('aaab'):match('a*')",
    "('aaab'):match('a+')",
    "('aaab'):match('a-')",
    "('aaab'):match('a-b')",
    "('aaab'):match('a?')",
    "('aaab'):match('a?a?a?a?b')",
    "('b'):match('a+')",
    "('b'):match('a*b')",
    "('b'):match('a-b')",
    "('b'):match('a?b')",
    "('<a><b>'):match('<(.-)>')",
    "('<a><b>'):match('<(.*)>')",
    "('abc'):match('*')",
    "('a*c'):match('a*')",
    "('*c'):match('*c')",
    "('+c'):match('+')",
    "('-c'):match('-')",
    "('?c'):match('?')",
    "('a?c'):match('a?\?')",
    "('aac'):match('a**')",
    "('a+c'):match('a++')",
    "('a-c'):match('a--c')",
    "('abc'):match('.-$')",
    "('abc'):match('.*()')",
    "('[[x]]'):match('%[*(.-)%]*$')",
    "(' x '):match('^%s*(.-)%s*$')",
    "('abcd'):match('[ab]*[cd]+')",
    "('abcd'):match('(.)-')",
    "('ab'):match('(.)?b')",
    "('ab'):match('(.?)b')",
    "('a'):find('a-', 2)",
    /* recursion depth */
    "string.rep('a', 300):match(string.rep('a?', 198))",
    "string.rep('a', 300):match(string.rep('a?', 199))",
    "string.rep('a', 300):match(string.rep('a?', 200))",
    "string.rep('a', 300):match(string.rep('a?', 201))",
    "string.rep('a', 300):match(string.rep('a*', 199))",
    "string.rep('a', 300):match(string.rep('a*', 200))",
    "('b'):match(string.rep('a-', 199) .. 'b')",
    "('b'):match(string.rep('a-', 200) .. 'b')",
    "string.rep('a', 300):gsub(string.rep('a?', 250), '')",
    "string.rep('a', 10):match(string.rep('()', 30) .. string.rep('a?', 180))",
    /* gmatch */
    "G('hello world from Lua', '%a+')",
    "G('from=world, to=Lua', '(%w+)=(%w+)')",
    "G('abc', '')",
    "G('', '')",
    "G('', 'a')",
    "G('abc', '()')",
    "G('abc', 'x*')",
    "G('abc', '.-')",
    "G('abc', 'b*')",
    "G('aaa', 'a-')",
    "G('aaa', '^a')",
    "G('^a^a', '^a')",
    "G('aaa', 'a', 2)",
    "G('aaa', 'a', -1)",
    "G('aaa', 'a', -10)",
    "G('aaa', 'a', 0)",
    "G('aaa', 'a', 4)",
    "G('aaa', '', 4)",
    "G('aaa', '', 5)",
    "G('aaa', '()', 3)",
    "G('a,b,,c', '([^,]*)')",
    "G('a b', '%f[%w]%w+')",
    "G('(a)(b(c))', '%b()')",
    "G('abab', '(a)(b)')",
    "G('abab', '()a()')",
    "G('abc', '(')",
    "G('abc', '%')",
    "G('abc', '[a')",
    "G('abc', '(a)%2')",
    "G(123123, 2)",
    "G('x', 'x', 1.5)",
    "G()",
    "G('x')",
    "(function() local it = ('a1b2'):gmatch('%a(%d)'); return it(), it(), it(), it() end)()",
    "(function() local it = ('aaa'):gmatch('a'); it(); it(); it(); return it(), it() end)()",
    "(function() local it = ('ab'):gmatch('(b'); local ok, e = pcall(it); return ok, e, it() end)()",
    "select('#', ('x'):gmatch('x'))",
    /* gsub with strings */
    "('abc'):gsub('', '-')",
    "(''):gsub('', '-')",
    "(''):gsub('x', '-')",
    "('abc'):gsub('x*', '-')",
    "('abc'):gsub('b*', '-')",
    "('abc'):gsub('.-', '-')",
    "('abc'):gsub('^', '-')",
    "('abc'):gsub('$', '-')",
    "('abc'):gsub('^.', '-')",
    "('abc'):gsub('^x', '-')",
    "('abc'):gsub('^x*', '-')",
    "('hello world'):gsub('o', '0')",
    "('hello world'):gsub('o', '0', 1)",
    "('hello world'):gsub('o', '0', 0)",
    "('hello world'):gsub('o', '0', -1)",
    "('hello world'):gsub('o', '0', 1.0)",
    "('hello world'):gsub('o', '0', 1.5)",
    "('hello world'):gsub('o', '0', '1')",
    "('hello world'):gsub('', '-', 3)",
    "('hello world'):gsub('(o)', '[%1]')",
    "('hello world'):gsub('o', '[%1]')",
    "('hello world'):gsub('o', '[%2]')",
    "('hello world'):gsub('(o)', '[%2]')",
    "('hello world'):gsub('o', '[%0]')",
    "('hello world'):gsub('o', '%%')",
    "('hello world'):gsub('o', '%')",
    "('hello world'):gsub('o', 'x%')",
    "('hello world'):gsub('o', '%x')",
    "('hello world'):gsub('o', '%\\0')",
    "('hello world'):gsub('o()', '%1')",
    "('hello world'):gsub('()o()', '%2-%1')",
    "('hello world'):gsub('(l)(l)', '%2%1%0%%')",
    "('hello world'):gsub('(o', 'x')",
    "('hello world'):gsub('(o', '%1')",
    "('hello world'):gsub('w', 5)",
    "('hello world'):gsub('w', 5.5)",
    "('hello world'):gsub('w', '\\0')",
    "('a\\0b'):gsub('\\0', '%0%0')",
    "('hello world'):gsub('w')",
    "('hello world'):gsub('w', nil)",
    "('hello world'):gsub('w', true)",
    "('hello world'):gsub('w', 'x', 'y')",
    "('hello world'):gsub(nil, 'x', 'y')",
    "string.gsub(12, 2, 3)",
    "string.gsub(12, 'x', 3)",
    "string.gsub(12.5, '%.', ',')",
    /* gsub with tables and functions */
    "('$name is $age'):gsub('%$(%w+)', {name = 'Ann', age = 7})",
    "('$name is $x'):gsub('%$(%w+)', {name = 'Ann'})",
    "('$name is $x'):gsub('%$(%w+)', {name = false})",
    "('$name'):gsub('%$(%w+)', {name = {}})",
    "('$name'):gsub('%$(%w+)', {name = true})",
    "('$name'):gsub('%$(%w+)', {name = print})",
    "('abc'):gsub('%w', {a = 1, b = 2.5})",
    "('abc'):gsub('()', {[1] = 'one', [3] = 'three'})",
    "('abc'):gsub('b', setmetatable({}, {__index = function(t, k) return k:upper() end}))",
    "('abc'):gsub('%w', function(c) return c:upper() .. '.' end)",
    "('abc'):gsub('%w', function(c) end)",
    "('abc'):gsub('%w', function(c) return false end)",
    "('abc'):gsub('%w', function(c) return 1 end)",
    "('abc'):gsub('%w', function(c) return {} end)",
    "('abc'):gsub('%w', function(c) error('boom') end)",
    "('abc'):gsub('%w', function(c) error({}) end)",
    "('abc'):gsub('(%w)()', function(c, p) return c .. p end)",
    "('abc'):gsub('', function(...) return select('#', ...) .. tostring((...)) end)",
    "('abc'):gsub('(b)(c)', function(...) return table.concat({...}, '+') end)",
    "('abc'):gsub('(b', function(...) return 'x' end)",
    "('abc'):gsub('%w', function(c) return (c:gsub('.', '%0%0')) end)",
    "('abc'):gsub('%w', function(c) return c:find('b') and 'B' end)",
    "('x = 1, y = 2'):gsub('(%w+) = (%w+)', '%2 = %1')",
    "('hello'):gsub('l+', function(s) return #s end)",
    "('abc'):gsub('.', {a = 'x'}, 2)",
    /* errors raised inside pcall with names */
    "pcall(string.gsub, 'a', 'a')",
    "pcall(string.match)",
    "pcall(string.gmatch, 'a')",
    "select(2, pcall(string.rep('a', 10).find, 'x', '(x'))",
    /* method forms go through the string metatable */
    "('x'):find('x') == string.find('x', 'x')",
    "getmetatable('').__index == string",
    "('abc'):len()",
};

static void test_differential_cases(void **state)
{
    state_pair *pair = *state;
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        failures += !same_in_both(pair, cases[i]);
    assert_int_equal(failures, 0);
}

/* A few expectations written out, so that the differential test cannot pass by both sides being wrong
 * in the same way (e.g. the stock functions never being replaced in the test's states). */
static void test_known_results(void **state)
{
    state_pair *pair = *state;
    assert_ours(pair, "('abc'):gsub('', '-')", "3:true \"-a-b-c-\" integer:4");
    assert_ours(pair, "('hello world'):find('o', 6)", "3:true integer:8 integer:8");
    assert_ours(pair, "('hello world'):match('()ll()')", "3:true integer:3 integer:5");
    assert_ours(pair, "pcall(string.gsub, 'o', 'o', '%')", "3:true false \"invalid use of '%' in replacement string\"");
    assert_ours(pair, "pcall(string.gsub, 'o', 'o', {o = {}})", "3:true false \"invalid replacement value (a table)\"");
    assert_ours(pair, "pcall(string.find, 'o', '%')", "3:true false \"malformed pattern (ends with '%')\"");
    assert_ours(pair, "pcall(string.find, 'o', '[o')", "3:true false \"malformed pattern (missing ']')\"");
    assert_ours(pair, "pcall(string.find, 'o', '%fo')", "3:true false \"missing '[' after '%f' in pattern\"");
    assert_ours(pair, "pcall(string.find, 'o', '%1')", "3:true false \"invalid capture index %1\"");
    assert_ours(pair, "pcall(string.find, 'o', '(o')", "3:true false \"unfinished capture\"");
    assert_ours(pair, "pcall(string.match, 'o', 'o)')", "3:true false \"invalid pattern capture\"");
    assert_ours(pair, "pcall(string.find, string.rep('o', 300), string.rep('o?', 300))",
                "3:true false \"pattern too complex\"");
    assert_ours(pair, "pcall(string.gsub, 'o', 'o')",
                "3:true false \"bad argument #3 to 'string.gsub' (string/function/table expected, got no value)\"");
    assert_ours(pair, "G('^a^a', '^a')", "2:true {{\"^a\"},{\"^a\"}}");

    /* The replaced functions are ours: they are not the ones the library installed. */
    lua_State *stock = pair->stock;
    lua_State *ours = pair->ours;
    lua_getglobal(stock, "string");
    lua_getfield(stock, -1, "find");
    lua_CFunction stock_find = lua_tocfunction(stock, -1);
    lua_pop(stock, 2);
    lua_getglobal(ours, "string");
    lua_getfield(ours, -1, "find");
    assert_true(lua_tocfunction(ours, -1) != stock_find);
    lua_pop(ours, 2);
}

/* ---- randomized differential ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static uint32_t rng_below(uint32_t n)
{
    return rng_next() % n;
}

static const char *const pattern_tokens[] = {
    "a",    "b",    "c",      ".",      "%a",    "%d",    "%s", "%w", "%A", "[ab]", "[^a]", "[a-c]", "[%d%s]",
    "[]]",  "[^]]", "[a-]",   "*",      "+",     "-",     "?",  "(",  ")",  "()",   "%1",   "%2",    "%0",
    "%b()", "%bab", "%f[%w]", "%f[%W]", "%f[a]", "^",     "$",  "%",  "[",  "]",    "\0",   "%z",    "%.",
    "%%",   "%b",   "%f",     "(a)",    "(.-)",  "(%w+)", "a*", "b-", ".?", "x",    " ",    "%(",    "[%]",
};

static const char subject_chars[] = "aabbc() 1x\0^$%]-";

static void test_random_differential(void **state)
{
    state_pair *pair = *state;
    size_t ntokens = sizeof pattern_tokens / sizeof pattern_tokens[0];
    static const int inits[] = {1, 2, 3, -1, -2, -5, 0, 4, 7, 20};
    int failures = 0;
    for (int iter = 0; iter < 100000 && failures < 10; iter++) {
        char pattern[64], subject[16];
        size_t lp = 0, ls = rng_below(11);
        int tokens = (int)rng_below(6);
        for (int t = 0; t < tokens; t++) {
            const char *tok = pattern_tokens[rng_below((uint32_t)ntokens)];
            size_t len = tok[0] == '\0' ? 1 : strlen(tok);
            memcpy(pattern + lp, tok, len);
            lp += len;
        }
        for (size_t i = 0; i < ls; i++)
            subject[i] = subject_chars[rng_below(sizeof subject_chars - 1)];
        int op = (int)rng_below(5);
        int with_init = rng_below(3) != 0;
        int init = inits[rng_below(sizeof inits / sizeof inits[0])];
        int repl = (int)rng_below(14) + 1;

        char want[8192], got[8192];
        lua_State *states[2] = {pair->stock, pair->ours};
        char *outs[2] = {want, got};
        for (int k = 0; k < 2; k++) {
            lua_State *L = states[k];
            lua_pushinteger(L, op);
            lua_pushlstring(L, subject, ls);
            lua_pushlstring(L, pattern, lp);
            if (with_init)
                lua_pushinteger(L, init);
            else
                lua_pushnil(L);
            lua_pushinteger(L, repl);
            call_to_text(L, "R", 5, outs[k], sizeof want);
        }
        if (strcmp(want, got) != 0) {
            failures++;
            print_error("op %d subject '%.*s' pattern '%.*s' init %d repl %d\n  lua:  %s\n  ours: %s\n", op, (int)ls,
                        subject, (int)lp, pattern, with_init ? init : 0, repl, want, got);
        }
    }
    assert_int_equal(failures, 0);
}

/* ---- the work budget ---- */

/* Runs code (which must raise) in our state under a check that raises on call `limit`; asserts that the
 * error is the check's and that the check ran exactly `limit` times, i.e. the match stopped at once. */
static void assert_stopped(lua_State *L, const char *code, int limit)
{
    reset_check(limit);
    int top = lua_gettop(L);
    assert_int_equal(luaL_loadstring(L, code), LUA_OK);
    int rc = lua_pcall(L, 0, LUA_MULTRET, 0);
    if (rc == LUA_OK)
        print_error("not stopped: %s\n", code);
    assert_int_equal(rc, LUA_ERRRUN);
    const char *msg = lua_tostring(L, -1);
    assert_non_null(msg);
    /* luaL_error names the Lua line that called the string function */
    assert_non_null(strstr(msg, ":1: timeout"));
    assert_int_equal(check_calls, limit);
    lua_settop(L, top);
    reset_check(0);
}

static void test_catastrophic_patterns_stop(void **state)
{
    state_pair *pair = *state;
    lua_State *L = pair->ours;
    assert_stopped(L, "return string.rep('a', 3000):find('.-.-.-b')", 10);
    assert_stopped(L, "local s = string.rep('a', 3000); return s:find('.-.-.-b')", 3);
    assert_stopped(L, "return string.rep('a', 3000):match('(.-)(.-)(.-)b')", 10);
    assert_stopped(L, "return string.rep('a', 3000):match('^.*.*.*.*b')", 10);
    assert_stopped(L, "return string.rep('a', 100000):gsub('a*b', '')", 10);
    assert_stopped(L, "for _ in string.rep('a', 100000):gmatch('a*b') do end", 10);
    assert_stopped(L, "return string.rep('(', 100000):gsub('%b()', '')", 10);
    assert_stopped(L, "return string.rep('(', 100000):find('%b()%b()')", 10);
    assert_stopped(L, "return string.rep('a', 100000):find('(a*)%1b')", 10);
    assert_stopped(L, "return string.rep('a', 1000000):find(string.rep('a', 1000) .. 'b', 1, true)", 10);
    assert_stopped(L, "return string.rep('b', 100000):find('[' .. string.rep('a', 20000) .. ']')", 10);
    assert_stopped(L, "return string.rep('b', 100000):find('%f[' .. string.rep('a', 20000) .. ']')", 10);
    assert_stopped(L, "return string.rep('a', 100000):gsub('', string.rep('x', 100))", 10);
    /* The check may fire at the very first opportunity. */
    assert_stopped(L, "return string.rep('a', 3000):find('.-.-.-b')", 1);

    /* The stack is balanced afterwards and the state still works. */
    char out[256];
    run_text(L, "return ('abc'):gsub('b', 'x')", out, sizeof out);
    assert_string_equal(out, "3:true \"axc\" integer:1");

    /* A pcall inside the script catches the error like any other. */
    reset_check(2);
    run_text(L, "return pcall(string.find, string.rep('a', 3000), '.-.-.-b')", out, sizeof out);
    assert_string_equal(out, "3:true false \"timeout\"");
    assert_int_equal(check_calls, 2);
    reset_check(0);
}

/* Work is counted wherever it is done: across the start positions of find, gsub and gmatch, inside one
 * attempt, and in bulk operations. Each script does at least `units` units of one kind (and little of any
 * other kind), so the check must have run at least units / FN_LUA_PATTERN_CHECK_STEPS times. */
static void test_work_is_counted(void **state)
{
    state_pair *pair = *state;
    lua_State *L = pair->ours;
    char out[256];
    static const struct {
        const char *code;
        int units;
    } loads[] = {
        /* start positions */
        {"return (string.rep('a', 100000):find('b'))", 100000},
        {"return (string.rep('a', 100000):find('b', 1, true))", 100000},
        {"return (string.rep('a', 100000):match('b'))", 100000},
        {"return #(string.rep('a', 100000):gsub('b', ''))", 100000},
        {"for _ in string.rep('a', 100000):gmatch('b') do end", 100000},
        /* matching steps that test no character at all */
        {"return (string.rep('a', 100000):match('()$'))", 100000},
        {"return #(string.rep('a', 100000):gsub('()', ''))", 100000},
        {"for _ in string.rep('a', 100000):gmatch('()') do end", 100000},
        /* many small calls add up like one long one */
        {"for i = 1, 100000 do ('x'):find('()$') end", 100000},
        /* character tests of one greedy item, in one matching step */
        {"return #string.rep('a', 1000000):match('.*')", 1000000},
        /* %b scanning, in one matching step */
        {"return #(string.rep('(', 100000) .. string.rep(')', 100000)):match('%b()')", 200000},
        /* set members examined: 1000 tests of a set of 1001 members */
        {"return #string.rep('b', 1000):match('[' .. string.rep('a', 1000) .. 'b]*')", 1000000},
        /* the scan for the end of a set (its first member matches at once) */
        {"return string.rep('b', 1):match('[b' .. string.rep('a', 200000) .. ']')", 200000},
        /* bulk comparison in plain find, and in a back-reference */
        {"return string.rep('a', 200000):find(string.rep('a', 200000), 1, true)", 200000},
        {"local s = string.rep('a', 400000); return #s:match('^(' .. string.rep('a', 200000) .. ')%1')", 200000},
        /* gsub's replacement text is counted in one piece: one check for one copy */
        {"return #('a'):gsub('a', string.rep('x', 200000))", FN_LUA_PATTERN_CHECK_STEPS},
        /* so is find's scan of the pattern for special characters (here it has none, and is too long) */
        {"return ('b'):find(string.rep('a', 200000))", FN_LUA_PATTERN_CHECK_STEPS},
    };
    for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
        reset_check(0);
        run_text(L, loads[i].code, out, sizeof out);
        int want = loads[i].units / FN_LUA_PATTERN_CHECK_STEPS;
        if (check_calls < want)
            print_error("%s: %d checks, expected at least %d\n", loads[i].code, check_calls, want);
        assert_true(check_calls >= want);
    }
}

/* A small match in a fresh state does not check at all. */
static void test_small_match_does_not_check(void **state)
{
    (void)state;
    lua_State *L = new_state(1, counting_check);
    char out[256];
    reset_check(0);
    run_text(L, "return ('hello'):find('l+')", out, sizeof out);
    assert_string_equal(out, "3:true integer:3 integer:4");
    assert_int_equal(check_calls, 0);
    lua_close(L);
}

/* A check that never raises changes nothing in the results. */
static void test_check_that_returns(void **state)
{
    state_pair *pair = *state;
    reset_check(0);
    assert_true(same_in_both(pair, "string.rep('a', 300):find('.-.-b')"));
    assert_true(same_in_both(pair, "string.rep('ab', 2000):gsub('(a)(b)', '%2%1')"));
    assert_true(same_in_both(pair, "G(string.rep('x y ', 3000), '%a+')"));
    assert_true(check_calls > 0);
}

static void test_null_check(void **state)
{
    (void)state;
    lua_State *stock = new_state(0, NULL);
    lua_State *L = new_state(1, NULL);
    state_pair pair = {stock, L};
    assert_true(same_in_both(&pair, "string.rep('a', 20):find('.-.-.-b')"));
    assert_true(same_in_both(&pair, "string.rep('a', 200):find('.-.-b')"));
    assert_true(same_in_both(&pair, "string.rep('a', 1000):gsub('a*b', '')"));
    assert_true(same_in_both(&pair, "('key=val'):match('(%w+)=(%w+)')"));
    lua_close(stock);
    lua_close(L);
}

/* Without the string library there is nothing to replace, and nothing breaks. */
static void test_open_without_string_library(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    fn_lua_pattern_open(L, counting_check);
    assert_int_equal(lua_gettop(L), 0);
    assert_int_equal(lua_getglobal(L, "string"), LUA_TNIL);
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_differential_cases, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_known_results, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_random_differential, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_catastrophic_patterns_stop, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_work_is_counted, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_check_that_returns, setup_pair, teardown_pair),
        cmocka_unit_test(test_small_match_does_not_check),
        cmocka_unit_test(test_null_check),
        cmocka_unit_test(test_open_without_string_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
