/* fuzz_json_lua: JSON text straight into Lua values (functions/json_parse.c) and back out through the encoder.
 * Whatever the parser accepts must encode to JSON that jansson accepts, and encode the same way twice. */
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "functions/fn_buf.h"
#include "functions/lua_json.h"
#include "fuzz.h"

static lua_State *L;

typedef struct job {
    const uint8_t *data;
    size_t size;
    int parsed;
    fn_buf first, second;
} job;

static int run(lua_State *L)
{
    job *j = lua_touserdata(L, 1);
    char err[256];
    if (fn_json_parse(L, (const char *)j->data, j->size, 0, err, sizeof(err)) != 0)
        return 0;
    j->parsed = 1;
    if (fn_lua_encode_json(L, -1, &j->first, err, sizeof(err)) != 0)
        abort(); /* what was parsed can be encoded */
    /* again, from the encoder's own output */
    if (fn_json_parse(L, j->first.data, j->first.len, 0, err, sizeof(err)) != 0)
        abort();
    if (fn_lua_encode_json(L, -1, &j->second, err, sizeof(err)) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (L == NULL) {
        L = luaL_newstate();
        luaL_openlibs(L);
        fn_lua_json_open(L);
    }
    job j = {.data = data, .size = size};
    lua_settop(L, 0);
    lua_pushcfunction(L, run);
    lua_pushlightuserdata(L, &j);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg == NULL || strstr(msg, "not enough memory") == NULL)
            abort(); /* only memory may raise */
    } else if (j.parsed) {
        json_error_t e;
        json_t *v = json_loadb(j.first.data, j.first.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (v == NULL)
            abort();
        json_decref(v);
        /* objects' key order may change between runs of the encoder (Lua tables have no order) */
        if (j.first.len != j.second.len)
            abort();
    }
    fn_buf_release(&j.first);
    fn_buf_release(&j.second);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
