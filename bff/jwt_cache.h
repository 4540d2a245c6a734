/* jwt_cache: a small per-thread cache of verified tokens, so a reused token is verified once. */
#ifndef BFF_JWT_CACHE_H
#define BFF_JWT_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Maps (auth id, token bytes) to the claims its verification produced, until a time the caller
 * computes from the token (bff_jwt_cache_until: never past "exp" with the leeway, never longer than
 * BFF_JWT_CACHE_TTL_S). Only successful verifications are cached; claim rules are checked on each
 * request, not cached. Entries are compared on the whole token, not only its hash.
 *
 * Bounded: BFF_JWT_CACHE_SETS x BFF_JWT_CACHE_WAYS entries, tokens longer than
 * BFF_JWT_CACHE_TOKEN_MAX are not cached; a full set replaces an expired entry, else its oldest.
 *
 * Not thread-safe: one cache per worker thread. Cached claims are shared by every request that hits
 * them: callers must treat them as read-only and take their own reference (json_incref) to keep them.
 */

#define BFF_JWT_CACHE_SETS 256
#define BFF_JWT_CACHE_WAYS 4
#define BFF_JWT_CACHE_TOKEN_MAX 4096
#define BFF_JWT_CACHE_TTL_S 300

typedef struct bff_jwt_cache_entry {
    uint64_t hash; /* 0: free */
    uint64_t auth_id;
    uint64_t stamp; /* insertion order, for replacement */
    time_t until;   /* valid while now < until */
    char *token;
    size_t len;
    json_t *claims; /* one reference */
} bff_jwt_cache_entry;

typedef struct bff_jwt_cache {
    bff_jwt_cache_entry entries[BFF_JWT_CACHE_SETS][BFF_JWT_CACHE_WAYS];
    uint64_t clock;
    uint64_t hits, misses;
} bff_jwt_cache;

/* Returns a zeroed cache (free with bff_jwt_cache_free), or NULL. */
bff_jwt_cache *bff_jwt_cache_new(void);
/* NULL-safe; drops every entry. */
void bff_jwt_cache_free(bff_jwt_cache *cache);

/* The claims cached for this token under auth_id and still valid at `now` (borrowed), or NULL. */
json_t *bff_jwt_cache_get(bff_jwt_cache *cache, uint64_t auth_id, const char *token, size_t len, time_t now);
/* Caches claims (takes its own reference) for this token until `until`; does nothing when the token is
 * too long, `until` is not after `now`, or memory runs out. */
void bff_jwt_cache_put(bff_jwt_cache *cache, uint64_t auth_id, const char *token, size_t len, json_t *claims,
                       time_t now, time_t until);

/* How long verified claims may be reused: until "exp" + leeway (verification's own bound), at most
 * BFF_JWT_CACHE_TTL_S from now. */
time_t bff_jwt_cache_until(const json_t *claims, uint64_t leeway_s, time_t now);

#endif
