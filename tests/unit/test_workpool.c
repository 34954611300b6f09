/*
 * test_workpool.c - jobs go out to the workers and come back exactly once,
 * the eventfd says when, and stopping with work in flight is clean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fr_error.h"
#include "workpool.h"

struct job {
    unsigned id;              /* index in the test's array */
    atomic_int runs;          /* how often run() saw it */
    pthread_t thread;         /* who ran it (last) */
    long sleep_us;            /* how long run() takes */
    bool signals_blocked;     /* run() found SIGTERM and SIGINT blocked */
    struct workpool *pool;    /* for a job that submits another */
    struct job *follow_up;    /* submitted from run() when set */
    int follow_up_error;      /* what that submission returned */
};

static atomic_int started, finished;

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void job_run(void *arg)
{
    struct job *job = arg;
    sigset_t mask;

    atomic_fetch_add(&started, 1);
    atomic_fetch_add(&job->runs, 1);
    job->thread = pthread_self();
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    job->signals_blocked = sigismember(&mask, SIGTERM) && sigismember(&mask, SIGINT);
    if (job->sleep_us)
        sleep_us(job->sleep_us);
    if (job->follow_up)
        job->follow_up_error = workpool_submit(job->pool, job_run, job->follow_up);
    atomic_fetch_add(&finished, 1);
}

static int reset_counters(void **state)
{
    (void)state;
    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    return 0;
}

/* Waits up to 10 s for the pool's fd to be readable. */
static void wait_readable(struct workpool *pool)
{
    struct pollfd pfd = { .fd = workpool_fd(pool), .events = POLLIN };

    assert_int_equal(poll(&pfd, 1, 10000), 1);
    assert_true(pfd.revents & POLLIN);
}

static bool is_readable(struct workpool *pool)
{
    struct pollfd pfd = { .fd = workpool_fd(pool), .events = POLLIN };

    return poll(&pfd, 1, 0) == 1;
}

static void test_workpool__default_is_one_thread_per_core(void **state)
{
    (void)state;
    struct workpool *pool;

    assert_int_equal(workpool_new(&pool, 0), 0);
    assert_int_equal(workpool_threads(pool), (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    workpool_free(pool);

    assert_int_equal(workpool_new(&pool, 3), 0);
    assert_int_equal(workpool_threads(pool), 3);
    workpool_free(pool);
    workpool_free(NULL);
}

static void test_workpool__thousand_jobs_come_back_once(void **state)
{
    (void)state;
    enum { JOBS = 1000 };
    struct job *jobs = calloc(JOBS, sizeof(*jobs));
    unsigned char seen[JOBS] = { 0 };
    pthread_t threads[JOBS];
    size_t thread_count = 0;
    struct workpool *pool;
    unsigned taken = 0;

    assert_non_null(jobs);
    assert_int_equal(workpool_new(&pool, 4), 0);
    for (unsigned i = 0; i < JOBS; i++) {
        jobs[i].id = i;
        jobs[i].sleep_us = 50;
        assert_int_equal(workpool_submit(pool, job_run, &jobs[i]), 0);
    }
    while (taken < JOBS) {
        struct job *job;

        wait_readable(pool);
        while ((job = workpool_take_done(pool))) {
            assert_true(job >= jobs && job < jobs + JOBS);
            assert_int_equal(seen[job->id], 0);
            seen[job->id] = 1;
            assert_int_equal(atomic_load(&job->runs), 1);
            assert_true(job->signals_blocked);
            taken++;
        }
    }
    assert_null(workpool_take_done(pool));
    assert_false(is_readable(pool));
    for (unsigned i = 0; i < JOBS; i++) {
        bool known = false;

        for (size_t t = 0; t < thread_count && !known; t++)
            known = pthread_equal(threads[t], jobs[i].thread);
        if (!known)
            threads[thread_count++] = jobs[i].thread;
    }
    assert_true(thread_count > 1);
    assert_true(thread_count <= 4);
    workpool_free(pool);
    free(jobs);
}

static void test_workpool__eventfd_says_when(void **state)
{
    (void)state;
    struct workpool *pool;
    struct job a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3, .sleep_us = 100000 };

    assert_int_equal(workpool_new(&pool, 1), 0);
    assert_false(is_readable(pool));
    assert_null(workpool_take_done(pool));

    assert_int_equal(workpool_submit(pool, job_run, &a), 0);
    wait_readable(pool);
    assert_int_equal(workpool_submit(pool, job_run, &b), 0);
    assert_int_equal(workpool_submit(pool, job_run, &c), 0);
    /* One worker: once c runs, a and b are both finished and waiting. */
    while (atomic_load(&started) < 3)
        sleep_us(1000);
    assert_ptr_equal(workpool_take_done(pool), &a);
    assert_true(is_readable(pool));
    assert_ptr_equal(workpool_take_done(pool), &b);
    assert_false(is_readable(pool));
    assert_null(workpool_take_done(pool));
    /* And readable again when c is done. */
    wait_readable(pool);
    assert_ptr_equal(workpool_take_done(pool), &c);
    assert_false(is_readable(pool));
    workpool_free(pool);
}

static void test_workpool__one_thread_finishes_in_order(void **state)
{
    (void)state;
    enum { JOBS = 50 };
    struct job jobs[JOBS];
    struct workpool *pool;
    unsigned next = 0;

    memset(jobs, 0, sizeof(jobs));
    assert_int_equal(workpool_new(&pool, 1), 0);
    for (unsigned i = 0; i < JOBS; i++) {
        jobs[i].id = i;
        assert_int_equal(workpool_submit(pool, job_run, &jobs[i]), 0);
    }
    while (next < JOBS) {
        struct job *job;

        wait_readable(pool);
        while ((job = workpool_take_done(pool)))
            assert_int_equal(job->id, next++);
    }
    workpool_free(pool);
}

static void test_workpool__job_may_submit_another(void **state)
{
    (void)state;
    struct workpool *pool;
    struct job second = { .id = 2 };
    struct job first = { .id = 1, .follow_up = &second };
    struct job *back[2] = { NULL, NULL };
    int n = 0;

    assert_int_equal(workpool_new(&pool, 2), 0);
    first.pool = pool;
    assert_int_equal(workpool_submit(pool, job_run, &first), 0);
    while (n < 2) {
        struct job *job;

        wait_readable(pool);
        while ((job = workpool_take_done(pool)))
            back[n++] = job;
    }
    assert_int_equal(first.follow_up_error, 0);
    assert_true((back[0] == &first && back[1] == &second) ||
                (back[0] == &second && back[1] == &first));
    workpool_free(pool);
}

static void test_workpool__free_with_jobs_in_flight(void **state)
{
    (void)state;
    enum { JOBS = 20 };
    struct job *jobs[JOBS];
    struct workpool *pool;

    assert_int_equal(workpool_new(&pool, 2), 0);
    for (unsigned i = 0; i < JOBS; i++) {
        /* Heap jobs, so valgrind sees any the pool would free or leak. */
        jobs[i] = calloc(1, sizeof(*jobs[i]));
        assert_non_null(jobs[i]);
        jobs[i]->id = i;
        jobs[i]->sleep_us = 20000;
        assert_int_equal(workpool_submit(pool, job_run, jobs[i]), 0);
    }
    while (atomic_load(&started) < 2)
        sleep_us(1000);
    workpool_free(pool);

    /* Running jobs were let finish; the queued ones never started. */
    assert_int_equal(atomic_load(&started), atomic_load(&finished));
    assert_true(atomic_load(&started) >= 2);
    assert_true(atomic_load(&started) < JOBS);
    for (unsigned i = 0; i < JOBS; i++) {
        assert_true(atomic_load(&jobs[i]->runs) <= 1);
        free(jobs[i]);
    }
}

static void test_workpool__free_with_jobs_not_taken(void **state)
{
    (void)state;
    enum { JOBS = 10 };
    struct job jobs[JOBS];
    struct workpool *pool;

    memset(jobs, 0, sizeof(jobs));
    assert_int_equal(workpool_new(&pool, 2), 0);
    for (unsigned i = 0; i < JOBS; i++)
        assert_int_equal(workpool_submit(pool, job_run, &jobs[i]), 0);
    while (atomic_load(&finished) < JOBS)
        sleep_us(1000);
    wait_readable(pool);
    workpool_free(pool);
    for (unsigned i = 0; i < JOBS; i++)
        assert_int_equal(atomic_load(&jobs[i].runs), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workpool__default_is_one_thread_per_core),
        cmocka_unit_test_setup(test_workpool__thousand_jobs_come_back_once, reset_counters),
        cmocka_unit_test_setup(test_workpool__eventfd_says_when, reset_counters),
        cmocka_unit_test_setup(test_workpool__one_thread_finishes_in_order, reset_counters),
        cmocka_unit_test_setup(test_workpool__job_may_submit_another, reset_counters),
        cmocka_unit_test_setup(test_workpool__free_with_jobs_in_flight, reset_counters),
        cmocka_unit_test_setup(test_workpool__free_with_jobs_not_taken, reset_counters),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
