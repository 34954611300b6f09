/*
 * versioner_compact.c - keeping the state repository quick to read as it
 * grows: every batch leaves a few loose objects or one pack, and a daemon
 * that runs for years would otherwise pile up tens of thousands of loose
 * files and hundreds of packs, each looked at on every read.
 *
 * Compacting writes everything reachable from HEAD into one new pack (the
 * pack and its index flushed to disk), and only then removes the loose
 * objects and the other packs, and reopens the repository so libgit2 forgets
 * what it had mapped.  A crash in between leaves objects twice, never none.
 * What is not reachable from HEAD (a batch that failed half-way) goes.
 */
#include "versioner_internal.h"
#include "fr_error.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Whether `name` is a two-hex-digit loose object directory. */
static bool versioner_fanout_name(const char *name)
{
    return strlen(name) == 2 && strspn(name, "0123456789abcdef") == 2;
}

/*
 * Calls fn(fanout_fd, name, data) for every loose object under objects/
 * (objects/ab/cdef…), then, when `remove_dirs`, removes each emptied fanout
 * directory.  Returns -1 when objects/ cannot be read.
 */
static int versioner_each_loose(const char *objects, bool remove_dirs,
                                void (*fn)(int fanout_fd, const char *name, void *data),
                                void *data)
{
    char path[4096 + 64];
    struct dirent *entry;
    DIR *dir = opendir(objects);

    if (!dir)
        return -1;
    while ((entry = readdir(dir))) {
        DIR *sub;
        struct dirent *object;

        if (!versioner_fanout_name(entry->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", objects, entry->d_name);
        if (!(sub = opendir(path)))
            continue;
        while ((object = readdir(sub)))
            if (object->d_name[0] != '.')
                fn(dirfd(sub), object->d_name, data);
        closedir(sub);
        if (remove_dirs)
            (void)unlinkat(dirfd(dir), entry->d_name, AT_REMOVEDIR);
    }
    closedir(dir);
    return 0;
}

static void versioner_count_one(int fanout_fd, const char *name, void *data)
{
    (void)fanout_fd;
    (void)name;
    (*(long *)data)++;
}

static void versioner_remove_one(int fanout_fd, const char *name, void *data)
{
    (void)data;
    (void)unlinkat(fanout_fd, name, 0);
}

/* Counts loose objects and packs under objects/ (-1 each when unreadable). */
static void versioner_count_objects(const char *objects, long *loose, long *packs)
{
    char path[4096 + 64];
    struct dirent *entry;
    DIR *dir;

    *loose = *packs = 0;
    if (versioner_each_loose(objects, false, versioner_count_one, loose) != 0) {
        *loose = *packs = -1;
        return;
    }
    snprintf(path, sizeof(path), "%s/pack", objects);
    if (!(dir = opendir(path)))
        return;
    while ((entry = readdir(dir))) {
        size_t len = strlen(entry->d_name);

        *packs += len > 5 && strcmp(entry->d_name + len - 5, ".pack") == 0;
    }
    closedir(dir);
}

/* Removes the loose objects and every pack but `keep` ("pack-<hex>"). */
static void versioner_remove_old(const char *objects, const char *keep)
{
    char path[4096 + 64];
    struct dirent *entry;
    DIR *dir;

    snprintf(path, sizeof(path), "%s/pack", objects);
    if ((dir = opendir(path))) {
        int fd = dirfd(dir);

        /* Indexes first: a pack without its index is never looked at. */
        for (int pass = 0; pass < 2; pass++) {
            rewinddir(dir);
            while ((entry = readdir(dir))) {
                const char *dot = strrchr(entry->d_name, '.');

                if (strncmp(entry->d_name, "pack-", 5) != 0 || !dot ||
                    (strlen(keep) == (size_t)(dot - entry->d_name) &&
                     strncmp(entry->d_name, keep, strlen(keep)) == 0))
                    continue;
                if ((pass == 0) == (strcmp(dot, ".idx") == 0))
                    (void)unlinkat(fd, entry->d_name, 0);
            }
        }
        closedir(dir);
    }
    (void)versioner_each_loose(objects, true, versioner_remove_one, NULL);
}

/* Writes everything reachable from HEAD into one pack; *name gets its name. */
static int versioner_write_pack(struct versioner *versioner, const char *pack_dir,
                                char *name, size_t name_len, size_t *objects)
{
    git_packbuilder *builder = NULL;
    git_revwalk *walk = NULL;
    int error = FR_ERROR;

    if (git_packbuilder_new(&builder, versioner->repo) < 0 ||
        git_revwalk_new(&walk, versioner->repo) < 0 || git_revwalk_push_head(walk) < 0 ||
        git_packbuilder_insert_walk(builder, walk) < 0 ||
        git_packbuilder_write(builder, pack_dir, 0, NULL, NULL) < 0) {
        versioner_git_error(versioner, "writing the compacted pack");
        goto done;
    }
    *objects = git_packbuilder_object_count(builder);
    snprintf(name, name_len, "pack-%s", git_packbuilder_name(builder));
    error = 0;
done:
    git_revwalk_free(walk);
    git_packbuilder_free(builder);
    return error;
}

int versioner_compact(struct versioner *versioner, long max_loose, long max_packs,
                      bool *compacted)
{
    char objects[4096], pack_dir[4200], name[128];
    struct timespec started, ended;
    long loose, packs;
    size_t count = 0;
    int error;

    *compacted = false;
    snprintf(objects, sizeof(objects), "%s/objects", versioner->git_dir);
    /* Counted once, then kept up to date by every save. */
    if (versioner->loose < 0 || versioner->packs < 0)
        versioner_count_objects(objects, &versioner->loose, &versioner->packs);
    loose = versioner->loose;
    packs = versioner->packs;
    if (loose < 0 || (loose <= max_loose && packs <= max_packs))
        return 0;
    if (versioner_head_missing(versioner))
        return 0; /* nothing committed: nothing reachable to keep */
    clock_gettime(CLOCK_MONOTONIC, &started);
    snprintf(pack_dir, sizeof(pack_dir), "%s/pack", objects);
    if ((error = versioner_write_pack(versioner, pack_dir, name, sizeof(name), &count)) != 0)
        return error;
    versioner_remove_old(objects, name);
    versioner->loose = 0;
    versioner->packs = 1;
    /* libgit2 still has the old packs in its lists: start afresh. */
    if ((error = versioner_reopen(versioner)) != 0)
        return error;
    clock_gettime(CLOCK_MONOTONIC, &ended);
    log_info("versioner", "%s: compacted %ld loose objects and %ld packs into one pack of %zu "
             "objects in %ld ms", versioner->git_dir, loose, packs, count,
             (long)((ended.tv_sec - started.tv_sec) * 1000 +
                    (ended.tv_nsec - started.tv_nsec) / 1000000));
    *compacted = true;
    return 0;
}
