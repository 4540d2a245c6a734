/* fn_pool: a process-wide pool of threads for work that may block (C functions), results posted back to the caller's
 * loop. */
#ifndef FN_POOL_H
#define FN_POOL_H

#include <stdatomic.h>

#include "fn.h"

/*
 * A job is submitted from a worker thread with its fn_host. A pool thread runs job->run (unless it was
 * cancelled before it started); then the pool posts back to the submitting thread (through host->post):
 * job->complete, or, for a cancelled job, job->ended when set. job->release frees the job, exactly once, when both the
 * submitter (by completing or cancelling) and the pool are done with it; it may run on either thread.
 *
 * Threads are started on demand, up to the configured maximum (default 64); when all are busy,
 * jobs wait in FIFO order. A job that blocks occupies one thread and nothing else: other jobs keep
 * running on the others. Route concurrency limits are what bound how many threads one route's
 * jobs can hold.
 */
typedef struct fn_pool_job fn_pool_job;
struct fn_pool_job {
    void (*run)(fn_pool_job *job);      /* on a pool thread */
    void (*complete)(fn_pool_job *job); /* on the submitting thread, unless cancelled */
    void (*release)(fn_pool_job *job);  /* frees the job */
    void (*ended)(fn_pool_job *job);    /* optional: on the submitting thread, after a cancelled job ended */
    fn_host *host;
    /* private */
    atomic_int refs;
    atomic_int cancelled;
    fn_pool_job *next;
};

/* Sets the maximum number of pool threads (before the first submit). */
void fn_pool_set_max_threads(unsigned max);
/* Queues the job. Returns 0, or -ENOMEM/-EAGAIN (then nothing was queued and no callback runs). */
int fn_pool_submit(fn_pool_job *job);
/* On the submitting thread: job->complete will not run. The pool releases the job when it is done. */
void fn_pool_cancel(fn_pool_job *job);

typedef struct fn_pool_stats {
    unsigned threads; /* started */
    unsigned busy;    /* running a job */
    unsigned queued;  /* waiting for a thread */
} fn_pool_stats;
void fn_pool_stats_get(fn_pool_stats *out);

#endif
