/* cache: chained hash table + LRU list under one mutex; values are shared jansson references. */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const cache_keys[] = {"ttl_ms", "max_entries", "max_bytes", "per_user", NULL};

typedef struct entry {
    struct entry *next_in_bucket;
    struct entry *newer, *older; /* LRU list */
    uint64_t hash;
    uint64_t expires_ns;
    size_t bytes;
    json_t *value;
    size_t key_len;
    unsigned char key[]; /* key_len bytes */
} entry;

struct bff_cache {
    bff_cache_config cfg;
    pthread_mutex_t lock;
    entry **buckets;
    size_t nbuckets; /* a power of two */
    entry *newest, *oldest;
    size_t entries, bytes;
    uint64_t hits, misses, evictions;
};

int bff_cache_config_load(json_t *obj, const char *file, const char *path, bff_cache_config *out, cfg_errors *errs)
{
    json_t *def;
    int rc = cfg_get_object(errs, file, path, obj, "cache", 0, &def);
    if (rc != 1)
        return rc;
    char p[600];
    cfg_path_key(p, sizeof(p), path, "cache");
    size_t before = errs->count;
    cfg_check_keys(errs, file, p, def, cache_keys);
    *out = (bff_cache_config){.ttl_ms = 0, .max_entries = 10000, .max_bytes = 16u << 20, .per_user = 1};
    cfg_get_uint(errs, file, p, def, "ttl_ms", 1, 86400000, 1, &out->ttl_ms);
    cfg_get_uint(errs, file, p, def, "max_entries", 1, 10000000, 0, &out->max_entries);
    cfg_get_uint(errs, file, p, def, "max_bytes", 1024, 1ull << 34, 0, &out->max_bytes);
    cfg_get_bool(errs, file, p, def, "per_user", &out->per_user);
    return errs->count == before ? 1 : -1;
}

bff_cache *bff_cache_new(const bff_cache_config *cfg)
{
    bff_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->cfg = *cfg;
    c->nbuckets = 64;
    while (c->nbuckets < cfg->max_entries && c->nbuckets < (1u << 20))
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void entry_free(entry *e)
{
    json_decref(e->value);
    free(e);
}

void bff_cache_free(bff_cache *c)
{
    if (c == NULL)
        return;
    for (entry *e = c->newest; e != NULL;) {
        entry *older = e->older;
        entry_free(e);
        e = older;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const bff_cache_config *bff_cache_config_of(const bff_cache *c)
{
    return &c->cfg;
}

static uint64_t hash_key(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; ++i)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void lru_unlink(bff_cache *c, entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(bff_cache *c, entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest != NULL)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
}

static entry **find_slot(bff_cache *c, uint64_t h, const void *key, size_t len)
{
    entry **slot = &c->buckets[h & (c->nbuckets - 1)];
    while (*slot != NULL && !((*slot)->hash == h && (*slot)->key_len == len && memcmp((*slot)->key, key, len) == 0))
        slot = &(*slot)->next_in_bucket;
    return slot;
}

/* Removes the entry at *slot from the table and the list. Lock held. */
static void remove_at(bff_cache *c, entry **slot)
{
    entry *e = *slot;
    *slot = e->next_in_bucket;
    lru_unlink(c, e);
    --c->entries;
    c->bytes -= e->bytes;
    entry_free(e);
}

json_t *bff_cache_get(bff_cache *c, const void *key, size_t len, uint64_t now_ns)
{
    uint64_t h = hash_key(key, len);
    pthread_mutex_lock(&c->lock);
    entry **slot = find_slot(c, h, key, len);
    json_t *value = NULL;
    if (*slot != NULL && now_ns >= (*slot)->expires_ns) {
        remove_at(c, slot);
    } else if (*slot != NULL) {
        entry *e = *slot;
        lru_unlink(c, e);
        lru_push(c, e);
        value = json_incref(e->value);
    }
    if (value != NULL)
        ++c->hits;
    else
        ++c->misses;
    pthread_mutex_unlock(&c->lock);
    return value;
}

void bff_cache_put(bff_cache *c, const void *key, size_t len, json_t *value, size_t bytes, uint64_t now_ns)
{
    if (value == NULL || bytes > c->cfg.max_bytes)
        return;
    entry *e = malloc(sizeof(*e) + len);
    if (e == NULL)
        return;
    memcpy(e->key, key, len);
    e->key_len = len;
    e->hash = hash_key(key, len);
    e->expires_ns = now_ns + c->cfg.ttl_ms * 1000000ULL;
    e->bytes = bytes;
    e->value = json_incref(value);
    e->newer = e->older = NULL;
    pthread_mutex_lock(&c->lock);
    entry **slot = find_slot(c, e->hash, key, len);
    if (*slot != NULL)
        remove_at(c, slot);
    /* Make room: the least recently used go first. */
    while (c->oldest != NULL && (c->entries + 1 > c->cfg.max_entries || c->bytes + bytes > c->cfg.max_bytes)) {
        entry *old = c->oldest;
        remove_at(c, find_slot(c, old->hash, old->key, old->key_len));
        ++c->evictions;
    }
    slot = find_slot(c, e->hash, key, len); /* the chain may have changed */
    e->next_in_bucket = NULL;
    *slot = e;
    lru_push(c, e);
    ++c->entries;
    c->bytes += bytes;
    pthread_mutex_unlock(&c->lock);
}

void bff_cache_stats_get(bff_cache *c, bff_cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = (bff_cache_stats){c->hits, c->misses, c->evictions, c->entries, c->bytes};
    pthread_mutex_unlock(&c->lock);
}
