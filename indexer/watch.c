/*
 * watch.c - inotify watches for the published trees.
 *
 * A table indexed by watch descriptor maps each watch to its repository and
 * directory path.  A directory renamed or deleted loses its watches (and
 * those below it) here and is reported removed; a directory renamed or
 * created into a tree is watched, with everything below it, and reported
 * added.  IN_Q_OVERFLOW and failed watches become WATCH_LOST: the caller
 * falls back to a rescan.
 */
#include "watch.h"
#include "fr_error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
                    IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_ONLYDIR)

struct watch_dir {
    int repo;         /* repository index; -1: slot unused */
    char *root;       /* the repository root (shared by the repository's dirs) */
    char *path;       /* relative directory path, "" for the root */
};

struct watch {
    int fd;                   /* inotify instance */
    struct watch_dir *dirs;   /* indexed by watch descriptor */
    size_t dirs_len;          /* slots allocated */
    size_t count;             /* slots in use */
};

int watch_new(struct watch **out)
{
    struct watch *watch = calloc(1, sizeof(*watch));

    *out = NULL;
    if (!watch)
        return FR_ENOMEM;
    watch->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch->fd < 0) {
        int saved = errno;

        free(watch);
        errno = saved;
        return FR_ERROR;
    }
    *out = watch;
    return 0;
}

static void watch_dir_clear(struct watch_dir *d)
{
    free(d->root);
    free(d->path);
    *d = (struct watch_dir){ .repo = -1 };
}

void watch_free(struct watch *watch)
{
    if (!watch)
        return;
    for (size_t i = 0; i < watch->dirs_len; i++)
        watch_dir_clear(&watch->dirs[i]);
    free(watch->dirs);
    close(watch->fd);
    free(watch);
}

int watch_fd(const struct watch *watch)
{
    return watch->fd;
}

size_t watch_count(const struct watch *watch)
{
    return watch->count;
}

static void watch_lost(int repo, const char *path, const char *reason,
                       void (*fn)(const struct watch_event *, void *), void *data)
{
    struct watch_event ev = { .kind = WATCH_LOST, .repo = repo, .path = path, .reason = reason };

    fn(&ev, data);
}

/* Records wd -> (repo, path); the same directory may come back with the
 * same wd (inotify_add_watch on a watched inode), which just refreshes it. */
static int watch_remember(struct watch *watch, int wd, int repo, const char *root, const char *path)
{
    struct watch_dir *d;

    if ((size_t)wd >= watch->dirs_len) {
        size_t len = watch->dirs_len ? watch->dirs_len : 64;
        struct watch_dir *grown;

        while (len <= (size_t)wd)
            len *= 2;
        grown = realloc(watch->dirs, len * sizeof(*grown));
        if (!grown)
            return FR_ENOMEM;
        for (size_t i = watch->dirs_len; i < len; i++)
            grown[i] = (struct watch_dir){ .repo = -1 };
        watch->dirs = grown;
        watch->dirs_len = len;
    }
    d = &watch->dirs[wd];
    if (d->repo < 0)
        watch->count++;
    watch_dir_clear(d);
    d->repo = repo;
    d->root = strdup(root);
    d->path = strdup(path);
    return d->root && d->path ? 0 : FR_ENOMEM;
}

static void watch_join(char *out, size_t len, const char *a, const char *b)
{
    snprintf(out, len, "%s%s%s", a, *a && *b ? "/" : "", b);
}

int watch_add_tree(struct watch *watch, int repo, const char *root, const char *dir,
                   void (*fn)(const struct watch_event *event, void *data), void *data)
{
    /* Heap buffers: a tree may be as deep as PATH_MAX allows, and this
     * recursion must not take PATH_MAX of stack per level. */
    char *full = malloc(PATH_MAX), *child = malloc(PATH_MAX);
    DIR *d = NULL;
    struct dirent *de;
    int wd, dfd, error = FR_ERROR;

    if (!full || !child) {
        error = FR_ENOMEM;
        goto done;
    }
    if ((size_t)snprintf(full, PATH_MAX, "%s%s%s", root, *dir ? "/" : "", dir) >= PATH_MAX) {
        watch_lost(repo, dir, "a directory path is longer than PATH_MAX", fn, data);
        goto done;
    }
    wd = inotify_add_watch(watch->fd, full, WATCH_MASK);
    if (wd < 0) {
        char why[512];

        if (errno == ENOSPC)
            snprintf(why, sizeof(why), "cannot watch a directory: out of inotify watches "
                     "(raise sysctl fs.inotify.max_user_watches; %zu in use here)", watch->count);
        else
            snprintf(why, sizeof(why), "cannot watch a directory: %s", strerror(errno));
        /* Gone already (a race with the writer) is not a loss. */
        if (errno != ENOENT && errno != ENOTDIR)
            watch_lost(repo, dir, why, fn, data);
        goto done;
    }
    if ((error = watch_remember(watch, wd, repo, root, dir)) != 0)
        goto done;
    error = 0;

    /* Subdirectories: O_NOFOLLOW keeps symlinked directories out. */
    dfd = open(full, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || !(d = fdopendir(dfd))) {
        if (dfd >= 0)
            close(dfd);
        goto done;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        if (de->d_type == DT_UNKNOWN &&
            (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)))
            continue;
        watch_join(child, PATH_MAX, dir, de->d_name);
        watch_add_tree(watch, repo, root, child, fn, data);
    }
    closedir(d);
done:
    free(full);
    free(child);
    return error;
}

/* Forgets the watches of `path` and everything below it in repo. */
static void watch_forget_tree(struct watch *watch, int repo, const char *path)
{
    size_t n = strlen(path);

    for (size_t wd = 0; wd < watch->dirs_len; wd++) {
        struct watch_dir *d = &watch->dirs[wd];

        /* "" is the root: everything of the repository lies below it. */
        if (d->repo != repo ||
            (n > 0 && (strncmp(d->path, path, n) != 0 ||
                       (d->path[n] != '\0' && d->path[n] != '/'))))
            continue;
        inotify_rm_watch(watch->fd, (int)wd);
        watch_dir_clear(d);
        watch->count--;
    }
}

static void watch_dispatch(struct watch *watch, const struct inotify_event *ie,
                           void (*fn)(const struct watch_event *, void *), void *data)
{
    struct watch_dir *d;
    char path[PATH_MAX];
    struct watch_event ev = { 0 };
    int repo;
    char *root;

    if (ie->mask & IN_Q_OVERFLOW) {
        watch_lost(-1, "", "the inotify queue overflowed (raise sysctl "
                   "fs.inotify.max_queued_events)", fn, data);
        return;
    }
    if (ie->wd < 0 || (size_t)ie->wd >= watch->dirs_len || watch->dirs[ie->wd].repo < 0)
        return; /* a watch already forgotten */
    d = &watch->dirs[ie->wd];

    if (ie->mask & IN_IGNORED) {
        /* The kernel dropped the watch (directory deleted or unmounted). */
        watch_dir_clear(d);
        watch->count--;
        return;
    }
    if (ie->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        /* Reported through the parent's IN_DELETE / IN_MOVED_FROM, except
         * for a repository root, which has no watched parent. */
        if (*d->path == '\0') {
            /* Its subdirectories' watches would go on reporting paths of a
             * tree that is no longer here: drop them all. */
            repo = d->repo;
            watch_forget_tree(watch, repo, "");
            ev = (struct watch_event){ .kind = WATCH_LOST, .repo = repo, .path = "",
                                       .reason = "the repository directory itself was moved "
                                                 "or deleted" };
            fn(&ev, data);
        }
        return;
    }
    if (ie->len == 0)
        return;

    watch_join(path, sizeof(path), d->path, ie->name);
    ev.repo = d->repo;
    ev.path = path;
    if (ie->mask & (IN_DELETE | IN_MOVED_FROM)) {
        if (ie->mask & IN_ISDIR)
            watch_forget_tree(watch, d->repo, path);
        ev.kind = WATCH_REMOVED;
        fn(&ev, data);
    } else if ((ie->mask & (IN_CREATE | IN_MOVED_TO)) && (ie->mask & IN_ISDIR)) {
        /* d may move when the table grows: keep what we need. */
        repo = d->repo;
        root = strdup(d->root);
        if (root && watch_add_tree(watch, repo, root, path, fn, data) == 0) {
            ev.kind = WATCH_DIR_ADDED;
            fn(&ev, data);
        }
        free(root);
    } else if (ie->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
        ev.kind = WATCH_WRITTEN;
        fn(&ev, data);
    } else if (ie->mask & IN_CREATE) {
        /* A regular file is ready only when closed after writing; a
         * symlink (or a device, a fifo) is complete the moment it exists. */
        struct stat st;
        char full[PATH_MAX];

        if ((size_t)snprintf(full, sizeof(full), "%s/%s", d->root, path) < sizeof(full) &&
            lstat(full, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
            ev.kind = WATCH_LINKED;
            fn(&ev, data);
        }
    }
}

int watch_read(struct watch *watch, void (*fn)(const struct watch_event *event, void *data),
               void *data)
{
    char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        ssize_t n = read(watch->fd, buf, sizeof(buf));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : FR_ERROR;
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ie = (const struct inotify_event *)p;

            watch_dispatch(watch, ie, fn, data);
            p += sizeof(*ie) + ie->len;
        }
    }
}
