/* cold_start: what a cold start costs a small Lua function (a new state: sandbox, chunk, handler) vs a warm call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "functions/lua_runtime.h"

#define ROUNDS 2000

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, size_t n)
{
    qsort(ns, n, sizeof(*ns), cmp_u64);
    printf("%-44s p50 %7.1f us   p99 %7.1f us\n", what, (double)ns[n / 2] / 1e3, (double)ns[n * 99 / 100] / 1e3);
}

int main(void)
{
    char path[] = "/tmp/bffgate-cold-XXXXXX";
    int fd = mkstemp(path);
    const char src[] = "local M = {}\n"
                       "function M.handler(event, ctx)\n"
                       "  return { message = 'hello', frontend = event.frontend }\n"
                       "end\n"
                       "return M\n";
    if (fd < 0 || write(fd, src, sizeof(src) - 1) != (ssize_t)(sizeof(src) - 1))
        return 1;
    close(fd);
    static uint64_t load_ns[ROUNDS], cold_ns[ROUNDS], warm_ns[ROUNDS];
    bfg_event ev = {.abi_version = BFG_ABI_VERSION, .frontend = {"web", 3}, .request_id = {"r", 1}};
    for (int i = 0; i < ROUNDS; ++i) {
        char err[512];
        fn_function *fn = NULL;
        uint64_t t0 = fn_now_ns();
        /* A reload's load of a changed function: read, compile, validate, one warm state for thread 0. */
        if (fn_lua_load("hello", path, 2, 0, &fn, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        uint64_t t1 = fn_now_ns();
        fn_response res;
        /* Thread 1 has no warm state yet: this invocation creates one (a cold start). */
        fn_call call = {.event = &ev, .thread = 1, .limits = {1000, 64 << 20}, .start_ns = t1};
        fn_response_init(&res);
        if (fn_invoke(fn, &call, &res) != 0)
            return 1;
        uint64_t t2 = fn_now_ns();
        fn_response_release(&res);
        call.start_ns = fn_now_ns();
        fn_response_init(&res);
        fn_invoke(fn, &call, &res);
        uint64_t t3 = fn_now_ns();
        fn_response_release(&res);
        load_ns[i] = t1 - t0;
        cold_ns[i] = t2 - t1;
        warm_ns[i] = t3 - call.start_ns;
        fn_function_release(&fn);
    }
    unlink(path);
    report("load (read, compile, validate, 1 state)", load_ns, ROUNDS);
    report("cold invocation (new state + call)", cold_ns, ROUNDS);
    report("warm invocation", warm_ns, ROUNDS);
    return 0;
}
