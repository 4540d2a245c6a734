/* ratelimit: sharded, bounded tables of token buckets. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#define PROBE_WINDOW 8

void bff_ratelimit_init(bff_ratelimit *rl, double rps, double burst)
{
    memset(rl, 0, sizeof(*rl));
    rl->rps = rps;
    rl->burst = burst;
    for (size_t i = 0; i < BFF_RATELIMIT_SHARDS; ++i)
        pthread_mutex_init(&rl->shards[i].lock, NULL);
}

void bff_ratelimit_dispose(bff_ratelimit *rl)
{
    for (size_t i = 0; i < BFF_RATELIMIT_SHARDS; ++i) {
        pthread_mutex_destroy(&rl->shards[i].lock);
        free(rl->shards[i].slots);
        rl->shards[i].slots = NULL;
    }
}

static uint64_t hash_key(const uint8_t *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; ++i) {
        h ^= key[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

uint64_t bff_ratelimit_take(bff_ratelimit *rl, const void *key_in, size_t key_len, uint64_t now_ns)
{
    uint8_t key[BFF_RATELIMIT_KEY_MAX] = {0};
    if (key_len > BFF_RATELIMIT_KEY_MAX)
        key_len = BFF_RATELIMIT_KEY_MAX;
    memcpy(key, key_in, key_len);
    uint64_t h = hash_key(key, key_len);
    bff_rate_shard *shard = &rl->shards[h % BFF_RATELIMIT_SHARDS];
    size_t start = (size_t)((h / BFF_RATELIMIT_SHARDS) % BFF_RATELIMIT_SLOTS_PER_SHARD);

    pthread_mutex_lock(&shard->lock);
    if (shard->slots == NULL) {
        shard->slots = calloc(BFF_RATELIMIT_SLOTS_PER_SHARD, sizeof(*shard->slots));
        if (shard->slots == NULL) {
            pthread_mutex_unlock(&shard->lock);
            return 0; /* out of memory: fail open rather than refuse everyone */
        }
    }
    bff_rate_bucket *found = NULL, *free_slot = NULL, *stalest = NULL;
    for (size_t i = 0; i < PROBE_WINDOW; ++i) {
        bff_rate_bucket *b = &shard->slots[(start + i) % BFF_RATELIMIT_SLOTS_PER_SHARD];
        if (b->key_len == key_len + 1 && memcmp(b->key, key, BFF_RATELIMIT_KEY_MAX) == 0) {
            found = b;
            break;
        }
        if (b->key_len == 0) {
            if (free_slot == NULL)
                free_slot = b;
        } else if (stalest == NULL || b->last_ns < stalest->last_ns) {
            stalest = b;
        }
    }
    if (found == NULL) {
        found = free_slot != NULL ? free_slot : stalest;
        memcpy(found->key, key, BFF_RATELIMIT_KEY_MAX);
        found->key_len = (uint8_t)(key_len + 1);
        found->tokens = rl->burst;
        found->last_ns = now_ns;
    }
    double elapsed = now_ns > found->last_ns ? (double)(now_ns - found->last_ns) / 1e9 : 0;
    found->tokens += elapsed * rl->rps;
    if (found->tokens > rl->burst)
        found->tokens = rl->burst;
    found->last_ns = now_ns;
    uint64_t wait_ms = 0;
    if (found->tokens >= 1.0) {
        found->tokens -= 1.0;
    } else {
        wait_ms = (uint64_t)((1.0 - found->tokens) / rl->rps * 1000.0) + 1;
    }
    pthread_mutex_unlock(&shard->lock);
    return wait_ms;
}
