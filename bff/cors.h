/* cors: which browser origins may call a frontend, and what its preflights answer (a frontend's "cors"). */
#ifndef BFF_CORS_H
#define BFF_CORS_H

#include <jansson.h>
#include <stddef.h>

#include "cfg.h"

/*
 * "cors": {"origins": [...], "methods": [...], "allow_headers": [...], "expose_headers": [...],
 *          "credentials": bool, "max_age_s": n}
 * An origin is exact ("https://shop.example", "http://localhost:8080"), a pattern whose host starts
 * with "*." (https:// then *.shop.example: any subdomain, at any depth, with that scheme and port; not the
 * bare domain), or "*" (any origin; not with credentials). Origins are compared case-insensitively.
 * "methods" limits what preflights allow (default: whatever the route allows).
 *
 * Immutable once loaded; owned by the snapshot's frontend.
 */
typedef struct bff_cors {
    char **origins; /* lower-case; exact, or scheme, "://", "*." and suffix[:port] patterns */
    size_t norigins;
    int any_origin;
    unsigned methods;     /* BFF_METHOD_* bits; 0: the route's methods */
    char *allow_headers;  /* joined with ", ", or NULL */
    char *expose_headers; /* joined with ", ", or NULL */
    int credentials;
    unsigned long long max_age_s;
} bff_cors;

/* Loads the "cors" object of `file`. Returns NULL with errors appended (nothing left allocated). */
bff_cors *bff_cors_load(json_t *def, const char *file, cfg_errors *errs);
/* NULL-safe. */
void bff_cors_free(bff_cors *cors);

/* Returns 1 when `origin` (len bytes, as the browser sent it) may call the frontend. */
int bff_cors_origin_allowed(const bff_cors *cors, const char *origin, size_t len);

#endif
