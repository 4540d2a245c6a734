/* fn_pool: on-demand threads running blocking jobs, completion posted to the submitter's loop. */
#include "fn_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "fn_log.h"

#define DEFAULT_MAX_THREADS 64

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static fn_pool_job *queue_head, *queue_tail;
static unsigned max_threads = DEFAULT_MAX_THREADS;
static unsigned nthreads, nidle, nqueued, nbusy;

void fn_pool_set_max_threads(unsigned max)
{
    pthread_mutex_lock(&pool_lock);
    max_threads = max > 0 ? max : 1;
    pthread_mutex_unlock(&pool_lock);
}

static void job_unref(fn_pool_job *job)
{
    if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) == 1)
        job->release(job);
}

/* On the submitting thread: hands the result over unless the submitter cancelled meanwhile. */
static void deliver(void *data)
{
    fn_pool_job *job = data;
    if (!atomic_load_explicit(&job->cancelled, memory_order_relaxed)) {
        job->complete(job);
        job_unref(job); /* the submitter's reference: completing ends its interest */
    } else if (job->ended != NULL) {
        job->ended(job);
    }
    job_unref(job); /* the pool's reference */
}

static void *pool_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        while (queue_head == NULL) {
            ++nidle;
            pthread_cond_wait(&pool_cond, &pool_lock);
            --nidle;
        }
        fn_pool_job *job = queue_head;
        queue_head = job->next;
        if (queue_head == NULL)
            queue_tail = NULL;
        --nqueued;
        ++nbusy;
        pthread_mutex_unlock(&pool_lock);

        if (!atomic_load_explicit(&job->cancelled, memory_order_relaxed))
            job->run(job);
        /* The post cannot be dropped while the submitter lives (it waits for the result or for the end of
         * a cancelled job); when its loop has closed (shutdown), there is nobody left to tell. */
        int rc;
        while ((rc = job->host->ops->post(job->host, deliver, job)) == -ENOMEM)
            usleep(1000);
        if (rc != 0)
            job_unref(job);

        pthread_mutex_lock(&pool_lock);
        --nbusy;
    }
    return NULL;
}

int fn_pool_submit(fn_pool_job *job)
{
    atomic_init(&job->refs, 2);
    atomic_init(&job->cancelled, 0);
    job->next = NULL;
    pthread_mutex_lock(&pool_lock);
    if (nidle <= nqueued && nthreads < max_threads) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&tid, &attr, pool_main, NULL) == 0)
            ++nthreads;
        else if (nthreads == 0)
            fn_log_msg(FN_LOG_ERROR, "cannot start a C function pool thread");
        pthread_attr_destroy(&attr);
    }
    if (nthreads == 0) {
        pthread_mutex_unlock(&pool_lock);
        return -EAGAIN;
    }
    if (queue_tail != NULL)
        queue_tail->next = job;
    else
        queue_head = job;
    queue_tail = job;
    ++nqueued;
    pthread_cond_signal(&pool_cond);
    pthread_mutex_unlock(&pool_lock);
    return 0;
}

void fn_pool_cancel(fn_pool_job *job)
{
    atomic_store_explicit(&job->cancelled, 1, memory_order_relaxed);
    job_unref(job);
}

void fn_pool_stats_get(fn_pool_stats *out)
{
    pthread_mutex_lock(&pool_lock);
    out->threads = nthreads;
    out->busy = nbusy;
    out->queued = nqueued;
    pthread_mutex_unlock(&pool_lock);
}
