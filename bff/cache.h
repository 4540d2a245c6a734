/* cache: a bounded, thread-safe response cache with a TTL per entry and least-recently-used eviction. */
#ifndef BFF_CACHE_H
#define BFF_CACHE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

/*
 * Maps keys (any bytes) to JSON values with an expiry time. Bounded twice: at most max_entries
 * entries and max_bytes of accounted size (the caller states each entry's size, e.g. the response's
 * length); putting beyond either evicts the least recently used entries first. Expired entries are
 * dropped when met. Values are shared, never copied: a get returns a new reference to the stored
 * value, so callers must not modify it (jansson reference counts are atomic, so values may be read by
 * any thread).
 *
 * Thread-safe: one mutex per cache, held only for the table operations (never while calling out).
 */

typedef struct bff_cache bff_cache;

/* {"ttl_ms": 5000, "max_entries": 10000, "max_bytes": 16777216, "per_user": true} */
typedef struct bff_cache_config {
    uint64_t ttl_ms;
    uint64_t max_entries;
    uint64_t max_bytes;
    int per_user; /* the JWT subject is part of the key (default); false shares entries between users */
} bff_cache_config;

/* Loads a "cache" object at `path`. Returns 1 with *out set, 0 when absent, -1 on errors (appended). */
int bff_cache_config_load(json_t *obj, const char *file, const char *path, bff_cache_config *out, cfg_errors *errs);

bff_cache *bff_cache_new(const bff_cache_config *cfg);
/* NULL-safe. */
void bff_cache_free(bff_cache *cache);
const bff_cache_config *bff_cache_config_of(const bff_cache *cache);

/* A new reference to the value stored under key while now_ns is before its expiry, else NULL. */
json_t *bff_cache_get(bff_cache *cache, const void *key, size_t len, uint64_t now_ns);
/* Stores value (takes its own reference) until now_ns + ttl. Replaces an entry with the same key. An
 * entry larger than max_bytes is not stored. */
void bff_cache_put(bff_cache *cache, const void *key, size_t len, json_t *value, size_t bytes, uint64_t now_ns);

typedef struct bff_cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes;
} bff_cache_stats;

void bff_cache_stats_get(bff_cache *cache, bff_cache_stats *out);

#endif
