/*
 * checkpoints.c - a few directories' every-1024th keys, least recently
 * used out.
 *
 * Keys compare in listing order: directories before files, then names
 * bytewise (strcmp compares unsigned bytes, as the catalog's "C" collation
 * does).
 */
#include "checkpoints.h"
#include "fr_error.h"
#include "log.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct checkpoints_dir {
    int64_t dir_id;            /* the directory; 0: slot free */
    int64_t version;           /* what catalog_fis_checkpoints said */
    uint64_t used;             /* last use, for eviction */
    char **names;              /* checkpoint k is at position k * CHECKPOINTS_EVERY */
    bool *is_dir;              /* its kind */
    size_t count, alloc;       /* checkpoints, room */
};

struct checkpoints {
    struct checkpoints_dir dirs[CHECKPOINTS_DIRS]; /* the remembered directories */
    uint64_t uses;             /* clock of dirs[].used */
};

int checkpoints_new(struct checkpoints **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : FR_ENOMEM;
}

static void checkpoints_dir_clear(struct checkpoints_dir *dir)
{
    for (size_t i = 0; i < dir->count; i++)
        free(dir->names[i]);
    free(dir->names);
    free(dir->is_dir);
    memset(dir, 0, sizeof(*dir));
}

void checkpoints_free(struct checkpoints *checkpoints)
{
    if (!checkpoints)
        return;
    for (size_t i = 0; i < CHECKPOINTS_DIRS; i++)
        checkpoints_dir_clear(&checkpoints->dirs[i]);
    free(checkpoints);
}

const struct checkpoints_dir *checkpoints_find(struct checkpoints *checkpoints, int64_t dir_id)
{
    for (size_t i = 0; i < CHECKPOINTS_DIRS; i++) {
        if (checkpoints->dirs[i].dir_id == dir_id && dir_id != 0) {
            checkpoints->dirs[i].used = ++checkpoints->uses;
            return &checkpoints->dirs[i];
        }
    }
    return NULL;
}

void checkpoints_forget(struct checkpoints *checkpoints, int64_t dir_id)
{
    for (size_t i = 0; i < CHECKPOINTS_DIRS; i++)
        if (checkpoints->dirs[i].dir_id == dir_id)
            checkpoints_dir_clear(&checkpoints->dirs[i]);
}

static int checkpoints_add(bool is_dir, const char *name, void *data)
{
    struct checkpoints_dir *dir = data;

    if (dir->count == dir->alloc) {
        size_t alloc = dir->alloc ? dir->alloc * 2 : 64;
        char **names = realloc(dir->names, alloc * sizeof(*names));
        bool *kinds;

        if (!names)
            return FR_ENOMEM;
        dir->names = names;
        if (!(kinds = realloc(dir->is_dir, alloc * sizeof(*kinds))))
            return FR_ENOMEM;
        dir->is_dir = kinds;
        dir->alloc = alloc;
    }
    if (!(dir->names[dir->count] = strdup(name)))
        return FR_ENOMEM;
    dir->is_dir[dir->count++] = is_dir;
    return 0;
}

const struct checkpoints_dir *checkpoints_build(struct checkpoints *checkpoints,
                                                struct catalog *catalog, int64_t dir_id)
{
    struct checkpoints_dir *slot = &checkpoints->dirs[0];
    int64_t version;
    int error;

    for (size_t i = 0; i < CHECKPOINTS_DIRS; i++) {
        if (checkpoints->dirs[i].dir_id == dir_id) {
            slot = &checkpoints->dirs[i];
            break;
        }
        if (checkpoints->dirs[i].used < slot->used)
            slot = &checkpoints->dirs[i];
    }
    checkpoints_dir_clear(slot);
    error = catalog_fis_checkpoints(catalog, dir_id, CHECKPOINTS_EVERY, checkpoints_add, slot,
                                    &version);
    if (error != 0 || slot->count == 0) {
        if (error != 0 && error != FR_ENOMEM)
            log_warn("query", "dir=%" PRId64 ": cannot read its checkpoints: %s", dir_id,
                     catalog_last_error(catalog));
        checkpoints_dir_clear(slot);
        return NULL;
    }
    slot->dir_id = dir_id;
    slot->version = version;
    slot->used = ++checkpoints->uses;
    log_debug("query", "dir=%" PRId64 " version=%" PRId64 ": %zu checkpoints", dir_id, version,
              slot->count);
    return slot;
}

int64_t checkpoints_version(const struct checkpoints_dir *dir)
{
    return dir->version;
}

static int checkpoints_cmp(bool a_dir, const char *a, bool b_dir, const char *b)
{
    if (a_dir != b_dir)
        return a_dir ? -1 : 1;
    return strcmp(a, b);
}

void checkpoints_base(const struct checkpoints_dir *dir, struct catalog_fis_page *request)
{
    size_t k;

    request->base_name = NULL;
    if (dir->count == 0)
        return;
    if (request->from == CATALOG_FIS_INDEX) {
        k = (size_t)(request->index / CHECKPOINTS_EVERY);
        if (k >= dir->count)
            k = dir->count - 1;
    } else {
        size_t lo = 0, hi = dir->count; /* the last checkpoint <= key is in [lo, hi) */

        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;

            if (checkpoints_cmp(dir->is_dir[mid], dir->names[mid], request->key_is_dir,
                                request->key_name) <= 0)
                lo = mid;
            else
                hi = mid;
        }
        k = lo;
        if (checkpoints_cmp(dir->is_dir[k], dir->names[k], request->key_is_dir,
                            request->key_name) > 0)
            return; /* before the first checkpoint: count from the start */
    }
    request->base_name = dir->names[k];
    request->base_is_dir = dir->is_dir[k];
    request->base_rank = (int64_t)k * CHECKPOINTS_EVERY;
    /* The key lies before the next checkpoint. */
    request->base_span = CHECKPOINTS_EVERY + 1;
}
