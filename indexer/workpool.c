/*
 * workpool.c - a mutex, a condition variable, two queues and an eventfd.
 *
 * `pending` holds submitted jobs in submission order; workers sleep on
 * `work_ready` until it has one.  A worker runs the job without the lock and
 * appends it to `done`.  Every change to `done` and to the eventfd's counter
 * happens under the lock, which keeps one invariant: the counter is non-zero
 * exactly while `done` is non-empty.  The worker that makes `done` non-empty
 * writes 1; workpool_take_done() reads the counter back to 0 when it takes
 * the last job.  So the loop thread never misses a finished job and is never
 * woken for nothing.
 *
 * Each queued job costs one small allocation, the queue item, freed when the
 * job is taken back (or by workpool_free()).
 */
#include "workpool.h"
#include "fr_error.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct workpool_item {
    workpool_fn run;                /* what to do */
    void *job;                      /* the caller's job, passed to run() */
    struct workpool_item *next;     /* next in its queue */
};

struct workpool_queue {
    struct workpool_item *head;     /* oldest; NULL when empty */
    struct workpool_item *tail;     /* newest; meaningless when empty */
};

struct workpool {
    pthread_mutex_t lock;           /* guards everything below but event_fd's number */
    pthread_cond_t work_ready;      /* signalled when pending gains a job or on stop */
    struct workpool_queue pending;  /* submitted, not started */
    struct workpool_queue done;     /* finished, not taken back */
    bool stopping;                  /* set by workpool_free: workers leave */
    int event_fd;                   /* non-zero counter iff done is non-empty */
    pthread_t *threads;             /* the workers */
    unsigned thread_count;          /* workers started */
};

static void workpool_queue_push(struct workpool_queue *queue, struct workpool_item *item)
{
    item->next = NULL;
    if (queue->head)
        queue->tail->next = item;
    else
        queue->head = item;
    queue->tail = item;
}

static struct workpool_item *workpool_queue_pop(struct workpool_queue *queue)
{
    struct workpool_item *item = queue->head;

    if (item)
        queue->head = item->next;
    return item;
}

static void workpool_queue_clear(struct workpool_queue *queue)
{
    struct workpool_item *item;

    while ((item = workpool_queue_pop(queue)))
        free(item);
}

static void *workpool_worker(void *arg)
{
    struct workpool *pool = arg;
    struct workpool_item *item;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && !pool->pending.head)
            pthread_cond_wait(&pool->work_ready, &pool->lock);
        if (pool->stopping)
            break;
        item = workpool_queue_pop(&pool->pending);
        pthread_mutex_unlock(&pool->lock);

        item->run(item->job);

        pthread_mutex_lock(&pool->lock);
        if (!pool->done.head) {
            uint64_t one = 1;

            /* Cannot fail: the counter is 0 here, far from its maximum. */
            (void)!write(pool->event_fd, &one, sizeof(one));
        }
        workpool_queue_push(&pool->done, item);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static unsigned workpool_default_threads(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);

    return online > 0 ? (unsigned)online : 1u;
}

int workpool_new(struct workpool **out, unsigned threads)
{
    struct workpool *pool = NULL;
    sigset_t all, old;
    int error = FR_ENOMEM;

    *out = NULL;
    if (threads == 0)
        threads = workpool_default_threads();
    if (threads > WORKPOOL_MAX_THREADS)
        threads = WORKPOOL_MAX_THREADS;

    pool = calloc(1, sizeof(*pool));
    if (!pool)
        return FR_ENOMEM;
    pool->event_fd = -1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pool->threads = calloc(threads, sizeof(*pool->threads));
    if (!pool->threads)
        goto done;
    pool->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool->event_fd < 0) {
        error = FR_ERROR;
        goto done;
    }

    /* Threads inherit the mask in force when they are created. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < threads; i++) {
        int rc = pthread_create(&pool->threads[i], NULL, workpool_worker, pool);

        if (rc != 0) {
            errno = rc;
            break;
        }
        pthread_setname_np(pool->threads[i], "fr-worker");
        pool->thread_count++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pool->thread_count < threads) {
        error = FR_ERROR;
        goto done;
    }
    *out = pool;
    pool = NULL;
    error = 0;

done:
    workpool_free(pool); /* keeps errno */
    return error;
}

void workpool_free(struct workpool *pool)
{
    int saved_errno = errno;

    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->thread_count; i++)
        pthread_join(pool->threads[i], NULL);

    /* The jobs themselves are the caller's (see workpool.h). */
    workpool_queue_clear(&pool->pending);
    workpool_queue_clear(&pool->done);
    if (pool->event_fd >= 0)
        close(pool->event_fd);
    pthread_cond_destroy(&pool->work_ready);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
    errno = saved_errno;
}

int workpool_submit(struct workpool *pool, workpool_fn run, void *job)
{
    struct workpool_item *item;

    assert(run);
    item = malloc(sizeof(*item));
    if (!item)
        return FR_ENOMEM;
    item->run = run;
    item->job = job;
    pthread_mutex_lock(&pool->lock);
    assert(!pool->stopping);
    workpool_queue_push(&pool->pending, item);
    pthread_cond_signal(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int workpool_fd(const struct workpool *pool)
{
    return pool->event_fd;
}

void *workpool_take_done(struct workpool *pool)
{
    struct workpool_item *item;
    void *job = NULL;

    pthread_mutex_lock(&pool->lock);
    item = workpool_queue_pop(&pool->done);
    if (item && !pool->done.head) {
        uint64_t count;

        /* Back to 0 with the queue; it was non-zero, so this read succeeds. */
        (void)!read(pool->event_fd, &count, sizeof(count));
    }
    pthread_mutex_unlock(&pool->lock);
    if (item) {
        job = item->job;
        free(item);
    }
    return job;
}

unsigned workpool_threads(const struct workpool *pool)
{
    return pool->thread_count;
}
