/* ratelimit: token buckets per client key (a route's requests per second with a burst), shared by all threads. */
#ifndef BFF_RATELIMIT_H
#define BFF_RATELIMIT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Each key (the client's address today; a JWT claim later) has a bucket of `burst` tokens refilled
 * at `rps` per second; a request takes one token or is refused. Buckets live in a fixed-size table
 * (BFF_RATELIMIT_SLOTS, allocated on first use), split into shards with one mutex each, so threads
 * rarely meet. When the table is full, the stalest bucket in the key's probe window is reused: a
 * client not seen for a while starts again with a full bucket. Memory is bounded whatever the
 * number of clients; the cost is that under a flood of distinct keys, buckets are forgotten early
 * (limits are then looser, never stricter).
 */

#define BFF_RATELIMIT_SHARDS 16
#define BFF_RATELIMIT_SLOTS_PER_SHARD 1024
#define BFF_RATELIMIT_KEY_MAX 16

typedef struct bff_rate_bucket {
    uint8_t key[BFF_RATELIMIT_KEY_MAX];
    uint8_t key_len; /* 0 = free slot */
    double tokens;
    uint64_t last_ns;
} bff_rate_bucket;

typedef struct bff_rate_shard {
    pthread_mutex_t lock;
    bff_rate_bucket *slots; /* BFF_RATELIMIT_SLOTS_PER_SHARD, allocated on first use */
} bff_rate_shard;

typedef struct bff_ratelimit {
    double rps;
    double burst;
    bff_rate_shard shards[BFF_RATELIMIT_SHARDS];
} bff_ratelimit;

void bff_ratelimit_init(bff_ratelimit *rl, double rps, double burst);
void bff_ratelimit_dispose(bff_ratelimit *rl);

/*
 * Takes a token for `key` (at most BFF_RATELIMIT_KEY_MAX bytes are used) at time now_ns
 * (CLOCK_MONOTONIC). Returns 0 when allowed, or the number of milliseconds until a token will be
 * there (> 0) when refused. Any thread.
 */
uint64_t bff_ratelimit_take(bff_ratelimit *rl, const void *key, size_t key_len, uint64_t now_ns);

#endif
