/* test_adversarial: what a hostile client or a hostile function tries, each case with the answer it must get,
 * against the real binary. Raw HTTP/1.1 bytes (malformed requests, smuggling attempts, traversal) and Lua
 * functions that try to leave the sandbox or outlast their limits. Other adversarial cases live next to the
 * feature they test (docs/adversarial.md lists them all). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static const char gateway_json[] =
    "{\n"
    "  \"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 2,\n"
    "             \"max_body_bytes\": 4096},\n"
    "  \"functions\": {\n"
    "    \"hello\": {\"lua\": \"hello.lua\"}, \"dump\": {\"lua\": \"dump.lua\"}, \"bytecode\": {\"lua\": "
    "\"bytecode.lua\"},\n"
    "    \"libs\": {\"lua\": \"libs.lua\"}, \"tamper\": {\"lua\": \"tamper.lua\"}, \"victim\": {\"lua\": "
    "\"victim.lua\"},\n"
    "    \"cospin\": {\"lua\": \"cospin.lua\"}, \"pcallspin\": {\"lua\": \"pcallspin.lua\"},\n"
    "    \"pattern\": {\"lua\": \"pattern.lua\"}, \"tablebomb\": {\"lua\": \"tablebomb.lua\"},\n"
    "    \"stringbomb\": {\"lua\": \"stringbomb.lua\"}, \"gc\": {\"lua\": \"gc.lua\"}, \"crlf\": {\"lua\": "
    "\"crlf.lua\"}\n"
    "  },\n"
    "  \"frontends\": [\"public.json\", \"secure.json\"]\n"
    "}\n";

static const char public_json[] =
    "{\"name\": \"public\", \"match\": {\"path_prefix\": \"/public\"}, \"defaults\": {\"timeout_ms\": 300, "
    "\"memory_mb\": 8},\n"
    " \"routes\": [\n"
    "  {\"method\": [\"GET\", \"POST\"], \"path\": \"/hello\", \"function\": \"hello\"},\n"
    "  {\"path\": \"/items/{id}\", \"function\": \"hello\"},\n"
    "  {\"path\": \"/dump\", \"function\": \"dump\"}, {\"path\": \"/bytecode\", \"function\": \"bytecode\"},\n"
    "  {\"path\": \"/libs\", \"function\": \"libs\"}, {\"path\": \"/tamper\", \"function\": \"tamper\"},\n"
    "  {\"path\": \"/victim\", \"function\": \"victim\"}, {\"path\": \"/cospin\", \"function\": \"cospin\"},\n"
    "  {\"path\": \"/pcallspin\", \"function\": \"pcallspin\"}, {\"path\": \"/pattern\", \"function\": \"pattern\"},\n"
    "  {\"path\": \"/tablebomb\", \"function\": \"tablebomb\"}, {\"path\": \"/stringbomb\", \"function\": "
    "\"stringbomb\"},\n"
    "  {\"path\": \"/gc\", \"function\": \"gc\"}, {\"path\": \"/crlf\", \"function\": \"crlf\"}\n"
    " ]}\n";

static const char secure_json[] =
    "{\"name\": \"secure\", \"match\": {\"path_prefix\": \"/secure\"},\n"
    " \"auth\": {\"jwt\": {\"keys\": [{\"alg\": \"HS256\", \"secret_env\": \"BFFGATE_ADVERSARIAL_SECRET\"}]}},\n"
    " \"routes\": [{\"path\": \"/me\", \"function\": \"hello\"}]}\n";

static const struct {
    const char *file, *source;
} functions[] = {
    {"hello.lua", "return { handler = function(event) return { hello = event.path } end }\n"},
    {"dump.lua", "return { handler = function() return { has_dump = string.dump ~= nil } end }\n"},
    {"bytecode.lua", "return { handler = function()\n"
                     "  local ok, f = pcall(load, string.char(27) .. 'LuaT\\0\\25\\147\\r\\n\\26\\n')\n"
                     "  return { loaded = ok and f ~= nil }\n"
                     "end }\n"},
    {"libs.lua", "return { handler = function()\n"
                 "  return { io = io ~= nil, os_execute = os ~= nil and os.execute ~= nil, debug = debug ~= nil,\n"
                 "           package = package ~= nil, require = require ~= nil, dofile = dofile ~= nil,\n"
                 "           loadfile = loadfile ~= nil }\n"
                 "end }\n"},
    {"tamper.lua", "return { handler = function()\n"
                   "  string.upper = function() return 'pwned' end\n"
                   "  local mt = getmetatable('')\n"
                   "  if mt then pcall(function() mt.__index = { upper = function() return 'pwned' end } end) end\n"
                   "  return { tampered = true }\n"
                   "end }\n"},
    {"victim.lua", "return { handler = function() return { up = ('a'):upper(), up2 = string.upper('b') } end }\n"},
    {"cospin.lua", "return { handler = function()\n"
                   "  local co = coroutine.wrap(function() while true do end end)\n"
                   "  co()\n"
                   "end }\n"},
    {"pcallspin.lua", "return { handler = function()\n"
                      "  while true do pcall(function() while true do end end) end\n"
                      "end }\n"},
    {"pattern.lua", "return { handler = function()\n"
                    "  local s = string.rep('a', 100000)\n"
                    "  return { r = s:find(string.rep('a*', 100) .. 'b') }\n"
                    "end }\n"},
    {"tablebomb.lua", "return { handler = function()\n"
                      "  local t = {}\n"
                      "  for i = 1, 1e9 do t[i] = i end\n"
                      "end }\n"},
    {"stringbomb.lua", "return { handler = function() return { s = string.rep('x', 1 << 30) } end }\n"},
    {"gc.lua", "return { handler = function() setmetatable({}, { __gc = function() end }) return {} end }\n"},
    {"crlf.lua", "return { handler = function()\n"
                 "  return { statusCode = 200, headers = { ['x-a'] = 'a\\r\\nset-cookie: pwned=1' }, body = {} }\n"
                 "end }\n"},
};

static e2e_server srv;

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    setenv("BFFGATE_ADVERSARIAL_SECRET", "adversarial-secret-0123456789abcdefghij", 1);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    e2e_write(&srv, "gateway.json", gateway_json);
    e2e_write(&srv, "public.json", public_json);
    e2e_write(&srv, "secure.json", secure_json);
    for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); ++i)
        e2e_write(&srv, functions[i].file, functions[i].source);
    return e2e_start(&srv, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

/* Sends raw bytes on a new connection; returns everything the server sends until it closes or goes quiet. */
static char *exchange(const char *bytes, size_t len, size_t *got)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    (void)!send(fd, bytes, len, MSG_NOSIGNAL);
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(1, cap + 1);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, n == 0 ? 2000 : 300) != 1) /* the first answer, then whatever follows at once */
            break;
        ssize_t r = recv(fd, out + n, cap - n, 0);
        if (r <= 0 || (n += (size_t)r) == cap)
            break;
    }
    close(fd);
    *got = n;
    return out;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        ++n;
    return n;
}

typedef struct raw_case {
    const char *name;
    const char *request; /* NUL-free unless len is given */
    size_t len;
    const char *status_line; /* the answer's first line starts with this */
    const char *body;        /* and its text contains this (NULL: anything) */
    int answers;             /* how many answers the connection gets (smuggled requests must get none) */
} raw_case;

static void test_malformed_and_smuggling_requests(void **state)
{
    (void)state;
    static const char nul_header[] = "GET /public/hello HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
    static const raw_case cases[] = {
        {"garbage request line", "GARBAGE\r\n\r\n", 0, "HTTP/1.1 400", NULL, 1},
        {"HTTP/0.9", "GET /public/hello\r\n\r\n", 0, "HTTP/1.1 400", NULL, 1},
        {"HTTP/2.0 in an HTTP/1 request line", "GET /public/hello HTTP/2.0\r\nHost: x\r\n\r\n", 0, "HTTP/1.1 400", NULL,
         1},
        {"header without a colon", "GET /public/hello HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 0, "HTTP/1.1 400", NULL,
         1},
        {"space before the colon", "GET /public/hello HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n", 0, "HTTP/1.1 400", NULL,
         1},
        {"NUL in a header value", nul_header, sizeof(nul_header) - 1, "HTTP/1.1 400", NULL, 1},
        {"CR alone in a header value", "GET /public/hello HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 0, "HTTP/1.1 400",
         NULL, 1},
        {"unknown transfer coding", "POST /public/hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 0,
         "HTTP/1.1 400", NULL, 1},
        {"negative Content-Length", "POST /public/hello HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 0,
         "HTTP/1.1 400", NULL, 1},
        {"broken chunk size", "POST /public/hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0,
         "HTTP/1.1 400", NULL, 1},
        /* CL.TE / TE.CL: a proxy that reads the other field would see a second request here */
        {"Content-Length and Transfer-Encoding",
         "POST /public/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
         "GET /secure/me HTTP/1.1\r\nHost: x\r\n\r\n",
         0, "HTTP/1.1 400", "ambiguous: both Content-Length and Transfer-Encoding", 1},
        {"two Content-Lengths",
         "POST /public/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 41\r\n\r\n{}"
         "GET /secure/me HTTP/1.1\r\nHost: x\r\n\r\n",
         0, "HTTP/1.1 400", "Content-Length fields that disagree", 1},
        {"a Content-Length list (h2o refuses it first)",
         "POST /public/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}", 0, "HTTP/1.1 400", NULL, 1},
        {"body over max_body_bytes",
         "POST /public/hello HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n", 0,
         "HTTP/1.1 413", NULL, 1},
        {"unknown expectation",
         "POST /public/hello HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}", 0, "HTTP/1.1 417",
         NULL, 1},
        {"unknown method", "BREW /public/hello HTTP/1.1\r\nHost: x\r\n\r\n", 0, "HTTP/1.1 405",
         "\"error\":\"method not allowed\"", 1},
        {"CONNECT (no proxying here)", "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n", 0,
         "HTTP/1.1 404", "\"error\":", 1},
        /* routing happens on the normalized path, and so do frontend selection and authentication */
        {"dot segments into a protected frontend", "GET /public/../secure/me HTTP/1.1\r\nHost: x\r\n\r\n", 0,
         "HTTP/1.1 401", "\"error\":", 1},
        {"encoded dot segments", "GET /public/%2e%2e/secure/me HTTP/1.1\r\nHost: x\r\n\r\n", 0, "HTTP/1.1 401",
         "\"error\":", 1},
        {"an encoded slash in a parameter", "GET /public/items/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n", 0, "HTTP/1.1 404",
         "no route matches", 1},
        {"bare LF line endings (allowed)", "GET /public/hello HTTP/1.1\nHost: x\n\n", 0, "HTTP/1.1 200",
         "\"hello\":\"/public/hello\"", 1},
        {"pipelined requests stay in step",
         "GET /public/hello HTTP/1.1\r\nHost: x\r\n\r\nGET /secure/me HTTP/1.1\r\nHost: x\r\n\r\n", 0, "HTTP/1.1 200",
         "HTTP/1.1 401", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        const raw_case *c = &cases[i];
        size_t got = 0;
        char *out = exchange(c->request, c->len > 0 ? c->len : strlen(c->request), &got);
        if (strncmp(out, c->status_line, strlen(c->status_line)) != 0 ||
            (c->body != NULL && strstr(out, c->body) == NULL) || count(out, "HTTP/1.1 ") != (size_t)c->answers)
            fail_msg("%s: expected \"%s\" (%d answer(s))%s%s, got:\n%.600s", c->name, c->status_line, c->answers,
                     c->body != NULL ? " with " : "", c->body != NULL ? c->body : "", out);
        free(out);
    }
}

typedef struct fn_case {
    const char *path;
    long status;
    const char *body;
} fn_case;

static void test_lua_functions_stay_in_their_sandbox_and_limits(void **state)
{
    (void)state;
    static const fn_case cases[] = {
        {"/public/dump", 200, "\"has_dump\":false"},            /* no string.dump: no bytecode out */
        {"/public/bytecode", 200, "\"loaded\":false"},          /* load() takes text only: no bytecode in */
        {"/public/libs", 200, "\"io\":false"},                  /* no io, os.execute, debug, package, require... */
        {"/public/tamper", 200, "\"tampered\":true"},           /* it may change its own string table... */
        {"/public/victim", 200, "\"up\":\"A\""},                /* ...not another function's */
        {"/public/cospin", 504, "\"limit\":\"timeout_ms\""},    /* a loop inside a coroutine still times out */
        {"/public/pcallspin", 504, "\"limit\":\"timeout_ms\""}, /* pcall cannot catch the timeout */
        {"/public/pattern", 504, "\"limit\":\"timeout_ms\""},   /* pattern matching checks the deadline */
        {"/public/tablebomb", 500, "\"limit\":\"memory_mb\""},
        {"/public/stringbomb", 500, "\"limit\":\"memory_mb\""},
        {"/public/gc", 500, "\"error\":\"the function failed\""}, /* no __gc finalizers */
        {"/public/crlf", 500, "\"error\":"},                      /* no header injection from a function */
        {"/public/hello", 200, "\"hello\":\"/public/hello\""},    /* and the gateway serves on */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        e2e_response res;
        assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", cases[i].path, NULL, NULL, 0, &res), 0);
        if (res.status != cases[i].status || strstr(res.body, cases[i].body) == NULL)
            fail_msg("%s: expected %ld with %s, got %ld: %s", cases[i].path, cases[i].status, cases[i].body, res.status,
                     res.body);
        if (strcmp(cases[i].path, "/public/libs") == 0 &&
            (strstr(res.body, "true") != NULL || count(res.body, "false") != 7))
            fail_msg("/public/libs: something is reachable: %s", res.body);
        if (strstr(res.headers, "pwned") != NULL)
            fail_msg("%s: injected header: %s", cases[i].path, res.headers);
        e2e_response_release(&res);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_and_smuggling_requests),
        cmocka_unit_test(test_lua_functions_stay_in_their_sandbox_and_limits),
    };
    return cmocka_run_group_tests_name("e2e/adversarial", tests, group_setup, group_teardown);
}
