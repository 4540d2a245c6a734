/* auth: a frontend's or route's JWT authentication, loaded from its "jwt" config section. */
#ifndef BFF_AUTH_H
#define BFF_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "jwt_verify.h"

/*
 * What a request must carry to reach a route: a bearer token verified against `jwt` (pinned keys,
 * issuer, audiences, leeway, size limit), taken from the Authorization header or else from the
 * cookie named `cookie`, whose claims satisfy `rules` (403 otherwise).
 *
 * A frontend's "auth": {"jwt": {...}} applies to all its routes; a route may replace it with its own
 * "auth": {"jwt": {...}}, add rules with "auth": {"require": [...]}, or opt out with "auth": false.
 *
 * Immutable once loaded; owned by the snapshot that loaded it. `id` is unique in the process (never
 * reused, unlike an address), so per-thread caches of verified tokens can key on it.
 */
typedef struct bff_auth {
    uint64_t id;
    bff_jwt_config jwt;
    char *cookie;          /* NULL: the Authorization header only */
    bff_claim_rule *rules; /* "require": every token's claims must satisfy these */
    size_t nrules;
} bff_auth;

/*
 * Loads a "jwt" section found at `path` of `file` (e.g. "auth.jwt", "routes[2].auth.jwt"):
 * {"keys": [key...], "issuer", "audience", "leeway_s", "cookie", "max_token_bytes", "require"}.
 * A key is {"alg", "kid"?, "secret_env" | "secret_file" | "public_key_file"} or {"jwks_file"}.
 * Returns the new auth, or NULL with every problem appended to errs (nothing is left allocated).
 */
bff_auth *bff_auth_load(json_t *jwt_def, const char *file, const char *path, cfg_errors *errs);
/* NULL-safe. */
void bff_auth_free(bff_auth *auth);

/*
 * Parses claim rules at `path`: [{"claim": "sub"}, {"claim": "scope", "contains": "orders:read"},
 * {"claim": "role", "equals": "admin"}]. Sets *out (free with bff_jwt_rules_free) and *nout; errors
 * are appended to errs.
 */
void bff_auth_parse_rules(json_t *list, const char *file, const char *path, bff_claim_rule **out, size_t *nout,
                          cfg_errors *errs);

#endif
