/* lua_calls: turns ctx.call/fetch/all arguments into fn_subcall batches, and results into Lua tables. */
#include "lua_calls.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "fn_buf.h"
#include "lua_json.h"

static char *dup_checked(lua_State *L, const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        luaL_error(L, "not enough memory");
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* The value at idx as JSON text (malloc'd). */
static char *encode_value(lua_State *L, int idx, const char *what)
{
    fn_buf buf = FN_BUF_INIT;
    char err[256];
    if (fn_lua_encode_json(L, idx, &buf, err, sizeof(err)) != 0) {
        fn_buf_release(&buf);
        luaL_error(L, "%s: %s", what, err);
    }
    return fn_buf_steal(&buf);
}

static uint64_t timeout_field(lua_State *L, int t)
{
    uint64_t ms = 0;
    if (lua_getfield(L, t, "timeout_ms") != LUA_TNIL) {
        lua_Integer v = lua_tointeger(L, -1);
        if (!lua_isinteger(L, -1) || v < 1 || v > 600000)
            luaL_error(L, "timeout_ms must be an integer of 1..600000");
        ms = (uint64_t)v;
    }
    lua_pop(L, 1);
    return ms;
}

/* (c != 0: strchr also finds the terminating NUL.) */
static int path_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("-._~!$&'()*+,;=:@/%", c) != NULL);
}

static int token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Appends to c->path, which always holds the text so far: a Lua error in between (a memory error, a
 * metamethod) leaves nothing that fn_lua_batch_clear does not free. */
static void path_append(lua_State *L, fn_subcall *c, const char *s, size_t len, int percent)
{
    size_t have = strlen(c->path);
    fn_buf buf = {c->path, have, have + 1};
    int rc = percent ? fn_buf_append_percent(&buf, s, len) : fn_buf_append(&buf, s, len);
    c->path = buf.data;
    if (rc != 0)
        luaL_error(L, "not enough memory");
}

/* Appends "?name=value&..." from the table at t (string or number values). */
static void append_query(lua_State *L, int t, fn_subcall *c)
{
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING || !(lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER))
            luaL_error(L, "query: names and values must be strings (or numbers)");
        size_t nlen, vlen;
        const char *name = lua_tolstring(L, -2, &nlen);
        const char *value = lua_tolstring(L, -1, &vlen); /* a copy lua_next pushed: converting it is harmless */
        path_append(L, c, first ? "?" : "&", 1, 0);
        path_append(L, c, name, nlen, 1);
        path_append(L, c, "=", 1, 0);
        path_append(L, c, value, vlen, 1);
        lua_pop(L, 1);
        first = 0;
    }
}

static void parse_headers(lua_State *L, int t, fn_subcall *c)
{
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        ++n;
        lua_pop(L, 1);
    }
    if (n > 32)
        luaL_error(L, "headers: at most 32");
    c->headers = calloc(2 * n + 1, sizeof(char *));
    if (c->headers == NULL)
        luaL_error(L, "not enough memory");
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        size_t nlen, vlen;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "headers: names and values must be strings");
        const char *name = lua_tolstring(L, -2, &nlen);
        const char *value = lua_tolstring(L, -1, &vlen);
        int ok = nlen > 0;
        for (size_t i = 0; ok && i < nlen; ++i)
            ok = token_char((unsigned char)name[i]);
        if (!ok)
            luaL_error(L, "headers: \"%s\" is not a header name", name);
        if (memchr(value, '\r', vlen) != NULL || memchr(value, '\n', vlen) != NULL || memchr(value, '\0', vlen) != NULL)
            luaL_error(L, "headers: the value of \"%s\" holds CR, LF or NUL", name);
        char *lower = c->headers[2 * c->nheaders] = dup_checked(L, name, nlen);
        for (char *p = lower; *p != '\0'; ++p)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        if (!fn_header_settable_upstream(lower, nlen))
            luaL_error(L, "headers: \"%s\" is set by the gateway itself", lower);
        c->headers[2 * c->nheaders + 1] = dup_checked(L, value, vlen);
        ++c->nheaders;
        lua_pop(L, 1);
    }
}

/* A fetch from the options table at t, to the upstream named `name`. */
static void parse_fetch(lua_State *L, fn_subcall *c, const char *name, size_t name_len, int t)
{
    c->kind = FN_SUBCALL_UPSTREAM;
    c->target = dup_checked(L, name, name_len);
    if (lua_getfield(L, t, "method") != LUA_TNIL) {
        size_t len;
        const char *m = lua_tolstring(L, -1, &len);
        static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
        int ok = 0;
        for (size_t i = 0; m != NULL && i < sizeof(methods) / sizeof(methods[0]); ++i)
            ok |= len == strlen(methods[i]) && memcmp(m, methods[i], len) == 0;
        if (!ok)
            luaL_error(L, "method must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS");
        c->method = dup_checked(L, m, len);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "path") != LUA_TNIL) {
        size_t len;
        const char *p = lua_tolstring(L, -1, &len);
        int ok = p != NULL && len > 0 && p[0] == '/';
        for (size_t i = 0; ok && i < len; ++i)
            ok = path_char((unsigned char)p[i]);
        if (!ok)
            luaL_error(L, "path must start with '/' and hold only URL path characters (use ctx.encode for values, "
                          "query for the query)");
        c->path = dup_checked(L, p, len);
    } else {
        c->path = dup_checked(L, "/", 1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "query") != LUA_TNIL) {
        if (!lua_istable(L, -1))
            luaL_error(L, "query must be a table of names and values");
        append_query(L, lua_gettop(L), c);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "headers") != LUA_TNIL) {
        if (!lua_istable(L, -1))
            luaL_error(L, "headers must be a table of names and values");
        parse_headers(L, lua_gettop(L), c);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "body") != LUA_TNIL)
        c->body = encode_value(L, lua_gettop(L), "body");
    lua_pop(L, 1);
    c->timeout_ms = timeout_field(L, t);
}

static void parse_call(lua_State *L, fn_subcall *c, const char *name, size_t name_len, int input_idx)
{
    c->kind = FN_SUBCALL_FUNCTION;
    c->target = dup_checked(L, name, name_len);
    if (input_idx != 0 && !lua_isnoneornil(L, input_idx))
        c->body = encode_value(L, input_idx, "input");
}

int fn_lua_batch_parse_call(lua_State *L, fn_lua_batch *b)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    b->n = 1;
    parse_call(L, &b->calls[0], name, len, 2);
    if (lua_istable(L, 3))
        b->calls[0].timeout_ms = timeout_field(L, 3);
    return 0;
}

int fn_lua_batch_parse_fetch(lua_State *L, fn_lua_batch *b)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
    }
    b->n = 1;
    parse_fetch(L, &b->calls[0], name, len, 2);
    return 0;
}

int fn_lua_batch_parse_all(lua_State *L, fn_lua_batch *b)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n < 1 || n > FN_SUBCALLS_MAX)
        return luaL_error(L, "ctx.all takes a list of 1 to %d calls", FN_SUBCALLS_MAX);
    b->list = 1;
    for (lua_Integer i = 1; i <= n; ++i) {
        if (lua_geti(L, 1, i) != LUA_TTABLE)
            return luaL_error(L, "ctx.all: item %d is not a table", (int)i);
        int t = lua_gettop(L);
        size_t len;
        int is_call = lua_getfield(L, t, "call") == LUA_TSTRING;
        int is_fetch = lua_getfield(L, t, "fetch") == LUA_TSTRING;
        if (is_call == is_fetch)
            return luaL_error(L, "ctx.all: item %d needs exactly one of call = <function> or fetch = <upstream>",
                              (int)i);
        const char *name = lua_tolstring(L, is_call ? -2 : -1, &len);
        fn_subcall *c = &b->calls[b->n++];
        if (is_call) {
            lua_getfield(L, t, "input");
            parse_call(L, c, name, len, lua_gettop(L));
            lua_pop(L, 1);
            c->timeout_ms = timeout_field(L, t);
        } else {
            parse_fetch(L, c, name, len, t);
        }
        lua_settop(L, t - 1);
    }
    return 0;
}

static void push_result(lua_State *L, const fn_subcall_result *r)
{
    char err[256];
    lua_createtable(L, 0, 4);
    int ok = r->ok && (r->status == 0 || r->status < 400);
    lua_pushboolean(L, ok);
    lua_setfield(L, -2, "ok");
    lua_pushinteger(L, r->status);
    lua_setfield(L, -2, "status");
    if (r->value != NULL) {
        if (fn_lua_push_json(L, r->value, err, sizeof(err)) != 0)
            luaL_error(L, "cannot convert a call's result: %s", err);
        lua_setfield(L, -2, "body");
    }
    if (!ok) {
        if (r->error[0] != '\0')
            lua_pushstring(L, r->error);
        else if (r->status != 0)
            lua_pushfstring(L, "status %d", r->status);
        else
            lua_pushliteral(L, "failed");
        lua_setfield(L, -2, "error");
    }
}

int fn_lua_batch_push_results(lua_State *L)
{
    const fn_lua_batch *b = lua_touserdata(L, 1);
    if (!b->list) {
        push_result(L, &b->results[0]);
        return 1;
    }
    lua_createtable(L, (int)b->n, 0);
    for (size_t i = 0; i < b->n; ++i) {
        push_result(L, &b->results[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

void fn_lua_batch_clear(fn_lua_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < FN_SUBCALLS_MAX; ++i) {
        fn_subcall *c = &b->calls[i];
        free(c->target);
        free(c->method);
        free(c->path);
        for (size_t k = 0; c->headers != NULL && c->headers[k] != NULL; ++k) /* NULL-terminated (calloc) */
            free(c->headers[k]);
        free(c->headers);
        free(c->body);
        json_decref(b->results[i].value);
    }
    memset(b, 0, sizeof(*b));
}

int fn_lua_ctx_encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    fn_buf out = FN_BUF_INIT;
    if (fn_buf_append_percent(&out, s, len) != 0) {
        fn_buf_release(&out);
        return luaL_error(L, "not enough memory");
    }
    lua_pushlstring(L, out.data != NULL ? out.data : "", out.len);
    fn_buf_release(&out);
    return 1;
}
