/*
 * get_sink.c - the output of `filerepo get`: ordered writes by the caller,
 * sha-256 by a hasher thread.
 *
 * The buffers form a ring.  The caller fills the one at `head`, writes it
 * and commits it (head advances); the hasher takes the one at `tail`,
 * hashes it and frees it (tail advances).  Hashing in order keeps the
 * digest the file's.
 *
 * Hashing is the slower side, so the ring is mostly full.  A caller that
 * finds it full sleeps until half of it is free, not just one buffer: woken
 * for every buffer, it was woken thousands of times per gigabyte, and each
 * wake-up could move it onto the hasher's core.  Each side signals the
 * other only when the other sleeps.
 */
#include "get_sink.h"
#include "fr_error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct get_sink {
    int fd;                              /* the output (borrowed) */
    EVP_MD_CTX *sha;                     /* its digest (borrowed) */
    int64_t offset;                      /* file offset of the next byte written */
    unsigned char *buf[GET_SINK_CHUNKS]; /* the ring */
    size_t len[GET_SINK_CHUNKS];         /* bytes committed in each */
    unsigned head, tail, queued;         /* next to fill, next to hash, committed not hashed */
    bool stopping;                       /* the hasher is to end */
    bool hasher_waits;                   /* it sleeps on `work` */
    int caller_waits_for;                /* the caller sleeps on `room` until queued <= this;
                                          * -1: it does not sleep */
    pthread_mutex_t lock;                /* over all of the above */
    pthread_cond_t work;                 /* for the hasher: something queued, or stop */
    pthread_cond_t room;                 /* for the caller: queued fell as far as it waits for */
    pthread_t hasher;                    /* the thread */
    bool started;                        /* it runs */
};

static void *get_sink_hash(void *data)
{
    struct get_sink *s = data;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        unsigned i;

        while (s->queued == 0 && !s->stopping) {
            s->hasher_waits = true;
            pthread_cond_wait(&s->work, &s->lock);
            s->hasher_waits = false;
        }
        if (s->queued == 0)
            break;
        i = s->tail;
        pthread_mutex_unlock(&s->lock);
        EVP_DigestUpdate(s->sha, s->buf[i], s->len[i]);
        pthread_mutex_lock(&s->lock);
        s->tail = (s->tail + 1) % GET_SINK_CHUNKS;
        s->queued--;
        if ((int)s->queued <= s->caller_waits_for)
            pthread_cond_signal(&s->room);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int get_sink_new(struct get_sink **out, int fd, EVP_MD_CTX *sha, int64_t offset)
{
    struct get_sink *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!s)
        return FR_ENOMEM;
    s->fd = fd;
    s->sha = sha;
    s->offset = offset;
    s->caller_waits_for = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->room, NULL);
    for (unsigned i = 0; i < GET_SINK_CHUNKS; i++)
        if (!(s->buf[i] = malloc(GET_SINK_CHUNK))) {
            get_sink_free(s);
            return FR_ENOMEM;
        }
    if (pthread_create(&s->hasher, NULL, get_sink_hash, s) != 0) {
        get_sink_free(s);
        return FR_ERROR;
    }
    s->started = true;
    *out = s;
    return 0;
}

/* With the lock held: sleeps until at most `queued` buffers wait for the hasher. */
static void get_sink_wait(struct get_sink *s, unsigned queued)
{
    s->caller_waits_for = (int)queued;
    while (s->queued > queued)
        pthread_cond_wait(&s->room, &s->lock);
    s->caller_waits_for = -1;
}

unsigned char *get_sink_buffer(struct get_sink *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->queued == GET_SINK_CHUNKS)
        get_sink_wait(s, GET_SINK_CHUNKS / 2);
    pthread_mutex_unlock(&s->lock);
    return s->buf[s->head];
}

int get_sink_commit(struct get_sink *s, size_t len)
{
    const unsigned char *p = s->buf[s->head];
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(s->fd, p + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    s->offset += (int64_t)len;
    pthread_mutex_lock(&s->lock);
    s->len[s->head] = len;
    s->head = (s->head + 1) % GET_SINK_CHUNKS;
    s->queued++;
    if (s->hasher_waits)
        pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int get_sink_write(struct get_sink *s, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        size_t n = len < GET_SINK_CHUNK ? len : GET_SINK_CHUNK;
        int error;

        memcpy(get_sink_buffer(s), buf, n);
        if ((error = get_sink_commit(s, n)) != 0)
            return error;
        buf += n;
        len -= n;
    }
    return 0;
}

void get_sink_drain(struct get_sink *s)
{
    pthread_mutex_lock(&s->lock);
    get_sink_wait(s, 0);
    pthread_mutex_unlock(&s->lock);
}

void get_sink_free(struct get_sink *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->hasher, NULL);
    }
    for (unsigned i = 0; i < GET_SINK_CHUNKS; i++)
        free(s->buf[i]);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->room);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
