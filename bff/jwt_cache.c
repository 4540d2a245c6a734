/* jwt_cache: set-associative cache of verified tokens, keyed by a 64-bit hash and checked on the bytes. */
#include "jwt_cache.h"

#include <stdlib.h>
#include <string.h>

bff_jwt_cache *bff_jwt_cache_new(void)
{
    return calloc(1, sizeof(bff_jwt_cache));
}

static void entry_clear(bff_jwt_cache_entry *e)
{
    free(e->token);
    json_decref(e->claims);
    memset(e, 0, sizeof(*e));
}

void bff_jwt_cache_free(bff_jwt_cache *cache)
{
    if (cache == NULL)
        return;
    for (size_t s = 0; s < BFF_JWT_CACHE_SETS; ++s)
        for (size_t w = 0; w < BFF_JWT_CACHE_WAYS; ++w)
            entry_clear(&cache->entries[s][w]);
    free(cache);
}

/* A 64-bit hash of the token, 8 bytes at a time (multiply-xorshift mixing); never 0. */
static uint64_t token_hash(uint64_t auth_id, const char *p, size_t len)
{
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    uint64_t h = (auth_id + len) * k;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * k;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h = (h ^ tail) * k;
    h ^= h >> 32;
    return h != 0 ? h : 1;
}

json_t *bff_jwt_cache_get(bff_jwt_cache *cache, uint64_t auth_id, const char *token, size_t len, time_t now)
{
    uint64_t h = token_hash(auth_id, token, len);
    bff_jwt_cache_entry *set = cache->entries[h % BFF_JWT_CACHE_SETS];
    for (size_t w = 0; w < BFF_JWT_CACHE_WAYS; ++w) {
        bff_jwt_cache_entry *e = &set[w];
        if (e->hash != h || e->auth_id != auth_id || e->len != len || memcmp(e->token, token, len) != 0)
            continue;
        if (now >= e->until) {
            entry_clear(e);
            break;
        }
        ++cache->hits;
        return e->claims;
    }
    ++cache->misses;
    return NULL;
}

void bff_jwt_cache_put(bff_jwt_cache *cache, uint64_t auth_id, const char *token, size_t len, json_t *claims,
                       time_t now, time_t until)
{
    if (len == 0 || len > BFF_JWT_CACHE_TOKEN_MAX || until <= now || claims == NULL)
        return;
    uint64_t h = token_hash(auth_id, token, len);
    bff_jwt_cache_entry *set = cache->entries[h % BFF_JWT_CACHE_SETS], *victim = &set[0];
    for (size_t w = 0; w < BFF_JWT_CACHE_WAYS; ++w) {
        bff_jwt_cache_entry *e = &set[w];
        if (e->hash == 0 || now >= e->until ||
            (e->hash == h && e->auth_id == auth_id && e->len == len && memcmp(e->token, token, len) == 0)) {
            victim = e;
            break;
        }
        if (e->stamp < victim->stamp)
            victim = e;
    }
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, token, len);
    entry_clear(victim);
    *victim = (bff_jwt_cache_entry){.hash = h,
                                    .auth_id = auth_id,
                                    .stamp = ++cache->clock,
                                    .until = until,
                                    .token = copy,
                                    .len = len,
                                    .claims = json_incref(claims)};
}

time_t bff_jwt_cache_until(const json_t *claims, uint64_t leeway_s, time_t now)
{
    time_t until = now + BFF_JWT_CACHE_TTL_S;
    json_t *exp = json_object_get(claims, "exp");
    if (json_is_number(exp)) {
        double limit = json_number_value(exp) + (double)leeway_s; /* verification refuses now >= exp + leeway */
        if (limit < (double)until)
            until = limit <= (double)now ? now : (time_t)limit;
        /* A fractional exp: (time_t) truncates toward the past, which only shortens the entry. */
    }
    return until;
}
