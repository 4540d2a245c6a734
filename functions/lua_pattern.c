/* lua_pattern: a Lua 5.4 pattern matcher that counts its work, behind string.find/match/gmatch/gsub. */
#include "lua_pattern.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include <lauxlib.h>

/*
 * The matcher is a backtracking interpreter of the pattern text, as the Lua manual (§6.4.1) describes it.
 * Where the manual is silent, the observable behaviour of Lua 5.4 is the specification (the unit test
 * compares both on the same inputs):
 * - The matcher recurses exactly where Lua's does (a capture, '?', and each attempt after '*', '+', '-';
 *   other items loop), and each level counts towards the depth limit, so "pattern too complex" is
 *   raised for the same patterns and subjects.
 * - A set's first member may be ']' ("[]]", "[^]]"); '-' is a range only between two members.
 * - At the end of the subject, %f sees the character '\0', so %f[%z] matches there.
 * - A back-reference to a position capture never matches.
 * - gmatch treats a leading '^' as an ordinary character.
 * - %z (NUL) and %Z are still classes, although the manual dropped them after 5.1.
 * Pattern and subject are walked with explicit bounds (never relying on the '\0' Lua keeps after a
 * string), so embedded NULs are ordinary characters.
 */

#define ESCAPE '%'
#define SPECIALS "^$*+?.([%-"
#define MAX_MATCH_DEPTH 200

/* Lua's limit, which luaconf.h may override for the library it builds. */
#ifndef LUA_MAXCAPTURES
#define LUA_MAXCAPTURES 32
#endif

/* Capture lengths that are not lengths. */
#define CAPTURE_OPEN (-1)
#define CAPTURE_POSITION (-2)

/* Bulk comparisons advance in slices of this many bytes so that a mismatch costs little. */
#define COMPARE_SLICE 256

typedef struct capture {
    const char *start;
    ptrdiff_t len; /* or CAPTURE_OPEN / CAPTURE_POSITION */
} capture;

/* Shared by the four functions of one fn_lua_pattern_open (their first upvalue), so that work adds up
 * across calls: a Lua loop of many small matches checks as often as one long match. */
typedef struct work_budget {
    fn_lua_pattern_check check;
    size_t work; /* units since the last check */
} work_budget;

typedef struct matcher {
    lua_State *L;
    const char *subject;
    const char *subject_end;
    const char *pattern_end;
    int depth_left;
    int level; /* captures started */
    capture captures[LUA_MAXCAPTURES];
    work_budget *budget;
} matcher;

static inline int uchar(char c)
{
    return (unsigned char)c;
}

static void spend(matcher *m, size_t units)
{
    work_budget *b = m->budget;
    b->work += units;
    if (b->work >= FN_LUA_PATTERN_CHECK_STEPS) {
        b->work = 0;
        if (b->check != NULL)
            b->check(m->L);
    }
}

static void matcher_init(matcher *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
    m->L = L;
    m->subject = s;
    m->subject_end = s + ls;
    m->pattern_end = p + lp;
    m->depth_left = MAX_MATCH_DEPTH;
    m->level = 0;
    m->budget = lua_touserdata(L, lua_upvalueindex(1));
}

/* Forgets the captures of the previous attempt, before trying a new start position. */
static void matcher_restart(matcher *m)
{
    m->level = 0;
    m->depth_left = MAX_MATCH_DEPTH;
}

static int equal_bytes(matcher *m, const char *a, const char *b, size_t len)
{
    while (len > 0) {
        size_t n = len < COMPARE_SLICE ? len : COMPARE_SLICE;
        spend(m, n);
        if (memcmp(a, b, n) != 0)
            return 0;
        a += n;
        b += n;
        len -= n;
    }
    return 1;
}

/* ---- single-character items ---- */

static int class_matches(int c, int class_letter)
{
    int res;
    switch (tolower(class_letter)) {
    case 'a':
        res = isalpha(c);
        break;
    case 'c':
        res = iscntrl(c);
        break;
    case 'd':
        res = isdigit(c);
        break;
    case 'g':
        res = isgraph(c);
        break;
    case 'l':
        res = islower(c);
        break;
    case 'p':
        res = ispunct(c);
        break;
    case 's':
        res = isspace(c);
        break;
    case 'u':
        res = isupper(c);
        break;
    case 'w':
        res = isalnum(c);
        break;
    case 'x':
        res = isxdigit(c);
        break;
    case 'z': /* deprecated in the manual, still accepted by Lua 5.4 */
        res = c == '\0';
        break;
    default: /* %. for any non-class character is that character */
        return class_letter == c;
    }
    if (isupper(class_letter)) /* %A is the complement of %a */
        res = !res;
    return res != 0;
}

/* The end (one past) of the single-character item at p: "x", "%x", ".", or a set "[...]". */
static const char *item_end(matcher *m, const char *p)
{
    const char *end = m->pattern_end;
    char c = *p++;
    if (c == ESCAPE) {
        if (p >= end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c != '[')
        return p;
    if (p < end && *p == '^')
        p++;
    /* The first member is taken before looking for ']', so "[]...]" holds a ']'. */
    do {
        if (p >= end)
            luaL_error(m->L, "malformed pattern (missing ']')");
        spend(m, 1);
        c = *p++;
        if (c == ESCAPE && p < end)
            p++;
    } while (p >= end || *p != ']');
    return p + 1;
}

/* Whether c belongs to the set that opens at p ('[') and closes at close (']'). */
static int in_set(matcher *m, int c, const char *p, const char *close)
{
    int member = 1; /* the answer when c matches a member */
    p++;
    if (*p == '^') {
        member = 0;
        p++;
    }
    for (; p < close; p++) {
        spend(m, 1);
        if (*p == ESCAPE) {
            p++;
            if (class_matches(c, uchar(*p)))
                return member;
        } else if (p[1] == '-' && p + 2 < close) {
            if (uchar(p[0]) <= c && c <= uchar(p[2]))
                return member;
            p += 2;
        } else if (uchar(*p) == c) {
            return member;
        }
    }
    return !member;
}

/* Whether the subject character at s matches the item [p, ep). */
static int single_match(matcher *m, const char *s, const char *p, const char *ep)
{
    spend(m, 1);
    if (s >= m->subject_end)
        return 0;
    int c = uchar(*s);
    switch (*p) {
    case '.':
        return 1;
    case ESCAPE:
        return class_matches(c, uchar(p[1]));
    case '[':
        return in_set(m, c, p, ep - 1);
    default:
        return uchar(*p) == c;
    }
}

/* ---- the matcher ---- */

static const char *match_here(matcher *m, const char *s, const char *p);

/* %bxy at s; p points at x. */
static const char *match_balance(matcher *m, const char *s, const char *p)
{
    if (p + 1 >= m->pattern_end)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->subject_end || *s != p[0])
        return NULL;
    char open = p[0], close = p[1];
    size_t depth = 1;
    while (++s < m->subject_end) {
        spend(m, 1);
        if (*s == close) {
            if (--depth == 0)
                return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

/* Item [p, ep) repeated as often as possible (greedy '*'), then giving back one at a time. */
static const char *match_greedy(matcher *m, const char *s, const char *p, const char *ep)
{
    size_t count = 0;
    while (single_match(m, s + count, p, ep))
        count++;
    for (;;) {
        const char *res = match_here(m, s + count, ep + 1);
        if (res != NULL)
            return res;
        if (count == 0)
            return NULL;
        count--;
    }
}

/* Item [p, ep) repeated as few times as possible ('-'). */
static const char *match_lazy(matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *res = match_here(m, s, ep + 1);
        if (res != NULL)
            return res;
        if (!single_match(m, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *open_capture(matcher *m, const char *s, const char *p, ptrdiff_t kind)
{
    if (m->level >= LUA_MAXCAPTURES)
        luaL_error(m->L, "too many captures");
    m->captures[m->level].start = s;
    m->captures[m->level].len = kind;
    m->level++;
    const char *res = match_here(m, s, p);
    if (res == NULL)
        m->level--;
    return res;
}

static const char *close_capture(matcher *m, const char *s, const char *p)
{
    int i = m->level - 1;
    while (i >= 0 && m->captures[i].len != CAPTURE_OPEN)
        i--;
    if (i < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->captures[i].len = s - m->captures[i].start;
    const char *res = match_here(m, s, p);
    if (res == NULL)
        m->captures[i].len = CAPTURE_OPEN;
    return res;
}

/* %1..%9 at s; digit is the character after the '%'. */
static const char *match_backref(matcher *m, const char *s, int digit)
{
    int i = digit - '1';
    if (i < 0 || i >= m->level || m->captures[i].len == CAPTURE_OPEN)
        luaL_error(m->L, "invalid capture index %%%d", i + 1);
    ptrdiff_t len = m->captures[i].len;
    if (len == CAPTURE_POSITION || m->subject_end - s < len)
        return NULL;
    return equal_bytes(m, m->captures[i].start, s, (size_t)len) ? s + len : NULL;
}

/* Matches the pattern from p against the subject from s: the end of the match, or NULL. */
static const char *match_here(matcher *m, const char *s, const char *p)
{
    const char *end = m->pattern_end;
    if (m->depth_left-- == 0)
        luaL_error(m->L, "pattern too complex");
    for (;;) {
        spend(m, 1);
        if (p == end)
            break;
        switch (*p) {
        case '(':
            if (p + 1 < end && p[1] == ')')
                s = open_capture(m, s, p + 2, CAPTURE_POSITION);
            else
                s = open_capture(m, s, p + 1, CAPTURE_OPEN);
            goto done;
        case ')':
            s = close_capture(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 == end) {
                if (s != m->subject_end)
                    s = NULL;
                goto done;
            }
            break; /* elsewhere '$' is an ordinary character */
        case ESCAPE:
            if (p + 1 == end)
                break; /* item_end reports it */
            switch (p[1]) {
            case 'b':
                s = match_balance(m, s, p + 2);
                if (s == NULL)
                    goto done;
                p += 4;
                continue;
            case 'f': {
                p += 2;
                if (p >= end || *p != '[')
                    luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = item_end(m, p);
                int before = s == m->subject ? '\0' : uchar(s[-1]);
                int here = s < m->subject_end ? uchar(*s) : '\0';
                if (in_set(m, before, p, ep - 1) || !in_set(m, here, p, ep - 1)) {
                    s = NULL;
                    goto done;
                }
                p = ep;
                continue;
            }
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7':
            case '8':
            case '9':
                s = match_backref(m, s, uchar(p[1]));
                if (s == NULL)
                    goto done;
                p += 2;
                continue;
            default:
                break;
            }
            break;
        default:
            break;
        }

        /* A single-character item, perhaps followed by a quantifier. */
        const char *ep = item_end(m, p);
        char quantifier = ep < end ? *ep : '\0';
        if (!single_match(m, s, p, ep)) {
            if (quantifier == '*' || quantifier == '?' || quantifier == '-') {
                p = ep + 1; /* zero repetitions are fine */
                continue;
            }
            s = NULL;
            goto done;
        }
        switch (quantifier) {
        case '?': {
            const char *res = match_here(m, s + 1, ep + 1);
            if (res != NULL) {
                s = res;
                goto done;
            }
            p = ep + 1;
            continue;
        }
        case '+':
            s = match_greedy(m, s + 1, p, ep);
            goto done;
        case '*':
            s = match_greedy(m, s, p, ep);
            goto done;
        case '-':
            s = match_lazy(m, s, p, ep);
            goto done;
        default:
            s++;
            p = ep;
            continue;
        }
    }
done:
    m->depth_left++;
    return s;
}

/* ---- results ---- */

/* Capture i of the match [s, e): sets *start and returns its length, or returns CAPTURE_POSITION.
 * With no captures, capture 0 is the whole match. */
static ptrdiff_t capture_span(matcher *m, int i, const char *s, const char *e, const char **start)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        *start = s;
        return e - s;
    }
    const capture *c = &m->captures[i];
    if (c->len == CAPTURE_OPEN)
        luaL_error(m->L, "unfinished capture");
    *start = c->start;
    return c->len;
}

static void push_capture(matcher *m, int i, const char *s, const char *e)
{
    const char *start;
    ptrdiff_t len = capture_span(m, i, s, e, &start);
    if (len == CAPTURE_POSITION)
        lua_pushinteger(m->L, start - m->subject + 1);
    else
        lua_pushlstring(m->L, start, (size_t)len);
}

/* Pushes the captures of the match [s, e), or the whole match when there are none and s is not NULL.
 * Returns how many values were pushed. */
static int push_captures(matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s != NULL) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

/* ---- find and match ---- */

/* The 0-based offset where a search starting at the 1-based, possibly negative position pos begins;
 * above len when it starts past the end. */
static size_t start_offset(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos - 1;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 0;
    return len - (size_t)(-(pos + 1)) - 1;
}

static int has_specials(matcher *m, const char *p, size_t lp)
{
    spend(m, lp);
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr(SPECIALS, p[i]) != NULL)
            return 1;
    return 0;
}

/* The first occurrence of [p, p + lp) in [s, s + ls), or NULL. */
static const char *plain_search(matcher *m, const char *s, size_t ls, const char *p, size_t lp)
{
    if (lp == 0)
        return s;
    if (lp > ls)
        return NULL;
    const char *last = s + (ls - lp); /* the last possible start */
    while (s <= last) {
        size_t window = (size_t)(last - s) + 1;
        if (window > FN_LUA_PATTERN_CHECK_STEPS)
            window = FN_LUA_PATTERN_CHECK_STEPS;
        const char *hit = memchr(s, p[0], window);
        if (hit == NULL) {
            spend(m, window);
            s += window;
            continue;
        }
        spend(m, (size_t)(hit - s) + 1);
        if (equal_bytes(m, hit + 1, p + 1, lp - 1))
            return hit;
        s = hit + 1;
    }
    return NULL;
}

static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    if (find && (lua_toboolean(L, 4) || !has_specials(&m, p, lp))) {
        const char *at = plain_search(&m, s + init, ls - init, p, lp);
        if (at != NULL) {
            lua_pushinteger(L, (at - s) + 1);
            lua_pushinteger(L, (lua_Integer)((size_t)(at - s) + lp));
            return 2;
        }
        luaL_pushfail(L);
        return 1;
    }
    int anchored = lp > 0 && p[0] == '^';
    if (anchored) {
        p++;
        lp--;
    }
    for (const char *start = s + init;; start++) {
        matcher_restart(&m);
        const char *e = match_here(&m, start, p);
        if (e != NULL) {
            if (!find)
                return push_captures(&m, start, e);
            lua_pushinteger(L, (start - s) + 1);
            lua_pushinteger(L, e - s);
            return push_captures(&m, NULL, NULL) + 2;
        }
        if (anchored || start >= m.subject_end)
            break;
    }
    luaL_pushfail(L);
    return 1;
}

static int pattern_find(lua_State *L)
{
    return find_or_match(L, 1);
}

static int pattern_match(lua_State *L)
{
    return find_or_match(L, 0);
}

/* ---- gmatch ---- */

/* Upvalues: 1 budget, 2 subject, 3 pattern, 4 offset of the next start, 5 end offset of the previous
 * match (-1 before the first), which must not end an empty match again. */
static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(3), &lp);
    size_t from = (size_t)lua_tointeger(L, lua_upvalueindex(4));
    lua_Integer last_end = lua_tointeger(L, lua_upvalueindex(5));
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    for (size_t at = from; at <= ls; at++) {
        matcher_restart(&m);
        const char *e = match_here(&m, s + at, p);
        if (e != NULL && e - s != last_end) {
            lua_pushinteger(L, e - s);
            lua_pushvalue(L, -1);
            lua_replace(L, lua_upvalueindex(4));
            lua_replace(L, lua_upvalueindex(5));
            return push_captures(&m, s + at, e);
        }
    }
    return 0;
}

static int pattern_gmatch(lua_State *L)
{
    size_t ls, lp;
    luaL_checklstring(L, 1, &ls);
    luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    if (init > ls)
        init = ls + 1; /* nothing to iterate */
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_pushinteger(L, (lua_Integer)init);
    lua_pushinteger(L, -1);
    lua_pushcclosure(L, gmatch_next, 5);
    return 1;
}

/* ---- gsub ---- */

/* Appends the replacement string (argument 3) for the match [s, e), expanding %0-%9 and %%. */
static void add_string_replacement(matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    size_t left;
    const char *r = lua_tolstring(L, 3, &left);
    spend(m, left);
    const char *esc;
    while ((esc = memchr(r, ESCAPE, left)) != NULL) {
        luaL_addlstring(b, r, (size_t)(esc - r));
        const char *after = esc + 1;
        char c = after < r + left ? *after : '\0';
        if (c == ESCAPE) {
            luaL_addchar(b, ESCAPE);
        } else if (c == '0') {
            spend(m, (size_t)(e - s));
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit(uchar(c))) {
            const char *start;
            ptrdiff_t len = capture_span(m, c - '1', s, e, &start);
            if (len == CAPTURE_POSITION) {
                lua_pushinteger(L, start - m->subject + 1);
                luaL_addvalue(b);
            } else {
                spend(m, (size_t)len);
                luaL_addlstring(b, start, (size_t)len);
            }
        } else {
            luaL_error(L, "invalid use of '%%' in replacement string");
        }
        left -= (size_t)(after + 1 - r);
        r = after + 1;
    }
    luaL_addlstring(b, r, left);
}

/* Appends the replacement for the match [s, e); returns whether it differs from keeping the match. */
static int add_replacement(matcher *m, luaL_Buffer *b, const char *s, const char *e, int repl_type)
{
    lua_State *L = m->L;
    if (repl_type == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (repl_type == LUA_TTABLE) {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_string_replacement(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the match */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int pattern_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int repl_type = lua_type(L, 3);
    lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L,
                     repl_type == LUA_TNUMBER || repl_type == LUA_TSTRING || repl_type == LUA_TFUNCTION ||
                         repl_type == LUA_TTABLE,
                     3, "string/function/table");
    matcher m;
    matcher_init(&m, L, src, ls, p, lp);
    int anchored = lp > 0 && p[0] == '^';
    if (anchored) {
        p++;
        lp--;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *last_end = NULL;
    lua_Integer n = 0;
    int changed = 0;
    while (n < max_n) {
        matcher_restart(&m);
        const char *e = match_here(&m, src, p);
        if (e != NULL && e != last_end) {
            n++;
            changed |= add_replacement(&m, &b, src, e, repl_type);
            src = last_end = e;
        } else if (src < m.subject_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchored)
            break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src, (size_t)(m.subject_end - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void fn_lua_pattern_open(lua_State *L, fn_lua_pattern_check check)
{
    static const luaL_Reg functions[] = {
        {"find", pattern_find}, {"match", pattern_match}, {"gmatch", pattern_gmatch}, {"gsub", pattern_gsub},
        {NULL, NULL},
    };
    if (lua_getglobal(L, "string") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    work_budget *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->check = check;
    b->work = 0;
    luaL_setfuncs(L, functions, 1);
    lua_pop(L, 1);
}
