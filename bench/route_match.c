/* route_match: nanoseconds per bff_route_table_match for tables of 10, 1,000 and 10,000 routes. */

/*
 * Each table holds a realistic mix (nested parameters, plain literals, wildcards, several methods)
 * and every route gets its own first-level-below-/api/v1 literal, so the big tables put thousands
 * of siblings under one node. The timed loop matches GET paths spread across the whole table;
 * each size runs ROUNDS rounds and reports the fastest, which filters out a noisy machine.
 * Run: ./bench_route_match [matches per round]
 */

#include "bff/route_table.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NPATHS = 4096, PATH_CAP = 96, DEFAULT_MATCHES = 2000000, ROUNDS = 5 };

struct path {
    char text[PATH_CAP];
    size_t len;
};

static void route_at(int i, char *pattern, char *path, unsigned *methods)
{
    *methods = BFF_METHOD_GET;
    switch (i % 5) {
    case 0:
        snprintf(pattern, PATH_CAP, "/api/v1/res%d/{id}/items/{item}", i);
        snprintf(path, PATH_CAP, "/api/v1/res%d/%d/items/%d", i, 100000 + i, i * 7);
        break;
    case 1:
        snprintf(pattern, PATH_CAP, "/api/v1/res%d/{id}", i);
        snprintf(path, PATH_CAP, "/api/v1/res%d/user-%d", i, i);
        *methods = BFF_METHOD_GET | BFF_METHOD_PUT | BFF_METHOD_DELETE;
        break;
    case 2:
        snprintf(pattern, PATH_CAP, "/catalog/c%d/products", i);
        snprintf(path, PATH_CAP, "/catalog/c%d/products", i);
        break;
    case 3:
        snprintf(pattern, PATH_CAP, "/static/s%d/{path*}", i);
        snprintf(path, PATH_CAP, "/static/s%d/css/site-%d.css", i, i);
        break;
    default:
        snprintf(pattern, PATH_CAP, "/api/v1/res%d", i);
        snprintf(path, PATH_CAP, "/api/v1/res%d", i);
        *methods = BFF_METHOD_GET | BFF_METHOD_POST;
        break;
    }
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Returns ns per match, or a negative number when the table cannot be built. */
static double bench_table(int nroutes, long matches, struct path *paths)
{
    bff_route_table *table = bff_route_table_new();
    if (table == NULL)
        return -1;
    char pattern[PATH_CAP], path[PATH_CAP], err[256];
    unsigned methods;
    for (int i = 0; i < nroutes; i++) {
        route_at(i, pattern, path, &methods);
        if (bff_route_table_add(table, methods, pattern, (void *)(uintptr_t)(i + 1), err, sizeof(err)) != 0) {
            fprintf(stderr, "adding %s: %s\n", pattern, err);
            bff_route_table_free(&table);
            return -1;
        }
    }
    /* Spread the probes over the table with a multiplicative hash of their index. */
    for (int j = 0; j < NPATHS; j++) {
        int i = (int)(((uint32_t)j * 2654435761u) % (uint32_t)nroutes);
        route_at(i, pattern, paths[j].text, &methods);
        paths[j].len = strlen(paths[j].text);
    }

    bff_route_match match;
    uintptr_t sink = 0;
    for (int j = 0; j < NPATHS; j++) { /* warm up */
        if (bff_route_table_match(table, BFF_METHOD_GET, paths[j].text, paths[j].len, &match) == 1)
            sink += (uintptr_t)match.value;
    }
    double best = 0;
    for (int round = 0; round < ROUNDS; round++) {
        double start = now_ns();
        for (long k = 0; k < matches; k++) {
            const struct path *p = &paths[k & (NPATHS - 1)];
            if (bff_route_table_match(table, BFF_METHOD_GET, p->text, p->len, &match) == 1)
                sink += (uintptr_t)match.value + match.nparams;
        }
        double elapsed = now_ns() - start;
        if (round == 0 || elapsed < best)
            best = elapsed;
    }
    bff_route_table_free(&table);
    if (sink == 0)
        fprintf(stderr, "no path matched\n");
    return best / (double)matches;
}

int main(int argc, char **argv)
{
    static const int sizes[] = {10, 1000, 10000};
    long matches = argc > 1 ? strtol(argv[1], NULL, 10) : DEFAULT_MATCHES;
    if (matches <= 0)
        matches = DEFAULT_MATCHES;
    struct path *paths = calloc(NPATHS, sizeof(*paths));
    if (paths == NULL)
        return 1;

    double base = 0;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        double ns = bench_table(sizes[s], matches, paths);
        if (ns < 0) {
            free(paths);
            return 1;
        }
        if (s == 0)
            base = ns;
        printf("routes %6d  %7.1f ns/match  ratio %.2f\n", sizes[s], ns, ns / base);
    }
    free(paths);
    return 0;
}
