/* route_table: method + path-pattern matching for one frontend, as a segment trie. */
#ifndef BFF_ROUTE_TABLE_H
#define BFF_ROUTE_TABLE_H

#include <stddef.h>

/*
 * Patterns are absolute paths split on '/': each segment is a literal ("products"), a parameter
 * ("{id}": matches one non-empty segment) or, as the last segment only, a wildcard ("{path*}":
 * matches the rest of the path, zero or more segments, slashes included). Parameter names are
 * [A-Za-z_][A-Za-z0-9_]*. A literal segment may not contain '{' or '}'. "/" alone is the root.
 *
 * Matching prefers, at each segment, a literal over a parameter over a wildcard, and backtracks
 * when the preferred branch does not lead to a full match. The cost of a match grows with the
 * number of segments of the path, not with the number of routes: children of a node are kept in
 * a hash table when they are many.
 *
 * Ownership: the table owns its nodes and copies of the patterns; `value` pointers belong to the
 * caller and are returned as given. Threading: build on one thread, then the table is immutable
 * and bff_route_table_match may run on any number of threads at once. No function here blocks.
 */

typedef struct bff_route_table bff_route_table;

/* Methods are a bit set so 405 answers can list what a path allows. */
enum {
    BFF_METHOD_GET = 1 << 0,
    BFF_METHOD_HEAD = 1 << 1,
    BFF_METHOD_POST = 1 << 2,
    BFF_METHOD_PUT = 1 << 3,
    BFF_METHOD_PATCH = 1 << 4,
    BFF_METHOD_DELETE = 1 << 5,
    BFF_METHOD_OPTIONS = 1 << 6,
    BFF_METHOD_COUNT = 7
};

/* Returns the method's bit, or 0 for a method the gateway does not route. */
unsigned bff_method_from_name(const char *name, size_t len);
/* Returns the canonical name of a single method bit ("GET"), or NULL. */
const char *bff_method_name(unsigned method_bit);
/* Writes the methods of `mask` as "GET, HEAD, POST" (canonical order) into buf; returns the length written
 * (truncated to fit, always NUL-terminated when cap > 0). */
size_t bff_method_list(unsigned mask, char *buf, size_t cap);

#define BFF_ROUTE_MAX_PARAMS 16

typedef struct bff_route_param {
    const char *name; /* points into the table; NUL-terminated */
    size_t name_len;
    const char *value; /* points into the matched path: not NUL-terminated, not decoded */
    size_t value_len;
} bff_route_param;

typedef struct bff_route_match {
    void *value;         /* the route's value as given to bff_route_table_add */
    const char *pattern; /* the pattern as given, NUL-terminated, owned by the table */
    unsigned allowed;    /* methods that have a route for this path (for 405 and Allow) */
    size_t nparams;
    bff_route_param params[BFF_ROUTE_MAX_PARAMS];
} bff_route_match;

bff_route_table *bff_route_table_new(void);
/* NULL-safe; clears *table. */
void bff_route_table_free(bff_route_table **table);

/*
 * Adds a route. `methods` is a non-empty bit set. Returns 0, or a negative errno-style code with
 * a human-readable reason in err (cap bytes, NUL-terminated):
 *   -EINVAL  the pattern is malformed (the reason says where),
 *   -EEXIST  a route with an equivalent pattern (same shape, parameter names aside) already has
 *            one of these methods,
 *   -E2BIG   the pattern has more than BFF_ROUTE_MAX_PARAMS parameters,
 *   -ENOMEM  out of memory.
 * On error the table is unchanged.
 */
int bff_route_table_add(bff_route_table *table, unsigned methods, const char *pattern, void *value, char *err,
                        size_t cap);

/* Number of routes added (a route with several methods counts once per add call). */
size_t bff_route_table_size(const bff_route_table *table);

/*
 * Matches `path` (len bytes, starting with '/', query string already removed) for `method`
 * (one bit). HEAD falls back to the GET route when no HEAD route exists.
 * Returns:
 *    1  matched: out->value, pattern, params and allowed are set;
 *    0  no route has this path: out is untouched except allowed = 0;
 *   -1  the path exists but not for this method: out->allowed holds the methods it has
 *       (HEAD included wherever GET is).
 * An empty segment ("//") only matches a wildcard. Never allocates.
 */
int bff_route_table_match(const bff_route_table *table, unsigned method, const char *path, size_t len,
                          bff_route_match *out);

#endif
