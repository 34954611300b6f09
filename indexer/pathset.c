/*
 * pathset.c - open addressing (linear probing, tombstones) keyed by path,
 * FNV-1a hashed.  Taking due paths is a pass over the table: it happens once
 * per settle period, not per event.
 */
#include "pathset.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PATHSET_TOMBSTONE ((char *)&pathset_tombstone_mark)

static const char pathset_tombstone_mark = 0;

struct pathset_slot {
    char *path;      /* NULL: empty; PATHSET_TOMBSTONE: removed */
    uint64_t due_ms; /* when to look at it */
};

struct pathset {
    struct pathset_slot *slots; /* cap slots */
    size_t cap;                 /* a power of two */
    size_t count;               /* live paths */
    size_t used;                /* live + tombstones */
};

static uint64_t pathset_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int pathset_new(struct pathset **out)
{
    struct pathset *set = calloc(1, sizeof(*set));

    *out = NULL;
    if (!set)
        return FR_ENOMEM;
    set->cap = 64;
    set->slots = calloc(set->cap, sizeof(*set->slots));
    if (!set->slots) {
        free(set);
        return FR_ENOMEM;
    }
    *out = set;
    return 0;
}

static bool pathset_live(const struct pathset_slot *slot)
{
    return slot->path && slot->path != PATHSET_TOMBSTONE;
}

void pathset_clear(struct pathset *set)
{
    for (size_t i = 0; i < set->cap; i++) {
        if (pathset_live(&set->slots[i]))
            free(set->slots[i].path);
        set->slots[i].path = NULL;
    }
    set->count = set->used = 0;
}

void pathset_free(struct pathset *set)
{
    if (!set)
        return;
    pathset_clear(set);
    free(set->slots);
    free(set);
}

/* Moves the live paths into a table of `cap` slots (dropping tombstones). */
static int pathset_rehash(struct pathset *set, size_t cap)
{
    struct pathset_slot *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return FR_ENOMEM;
    for (size_t i = 0; i < set->cap; i++) {
        struct pathset_slot *old = &set->slots[i];
        size_t j;

        if (!pathset_live(old))
            continue;
        for (j = pathset_hash(old->path) & (cap - 1); slots[j].path; j = (j + 1) & (cap - 1))
            ;
        slots[j] = *old;
    }
    free(set->slots);
    set->slots = slots;
    set->cap = cap;
    set->used = set->count;
    return 0;
}

int pathset_put(struct pathset *set, const char *path, uint64_t due_ms)
{
    size_t i, free_slot = SIZE_MAX;
    char *copy;

    if ((set->used + 1) * 4 > set->cap * 3 &&
        pathset_rehash(set, set->count * 2 >= set->cap / 2 ? set->cap * 2 : set->cap) != 0)
        return FR_ENOMEM;
    for (i = pathset_hash(path) & (set->cap - 1); set->slots[i].path; i = (i + 1) & (set->cap - 1)) {
        if (set->slots[i].path == PATHSET_TOMBSTONE) {
            if (free_slot == SIZE_MAX)
                free_slot = i;
        } else if (strcmp(set->slots[i].path, path) == 0) {
            set->slots[i].due_ms = due_ms;
            return 0;
        }
    }
    if (!(copy = strdup(path)))
        return FR_ENOMEM;
    if (free_slot == SIZE_MAX) {
        free_slot = i;
        set->used++;
    }
    set->slots[free_slot] = (struct pathset_slot){ copy, due_ms };
    set->count++;
    return 0;
}

/* The slot holding path, or NULL. */
static struct pathset_slot *pathset_find(const struct pathset *set, const char *path)
{
    for (size_t i = pathset_hash(path) & (set->cap - 1); set->slots[i].path;
         i = (i + 1) & (set->cap - 1))
        if (set->slots[i].path != PATHSET_TOMBSTONE && strcmp(set->slots[i].path, path) == 0)
            return &set->slots[i];
    return NULL;
}

int pathset_get(const struct pathset *set, const char *path, uint64_t *due_ms)
{
    struct pathset_slot *slot = pathset_find(set, path);

    if (slot && due_ms)
        *due_ms = slot->due_ms;
    return slot != NULL;
}

int pathset_remove(struct pathset *set, const char *path)
{
    struct pathset_slot *slot = pathset_find(set, path);

    if (!slot)
        return 0;
    free(slot->path);
    slot->path = PATHSET_TOMBSTONE;
    set->count--;
    return 1;
}

size_t pathset_count(const struct pathset *set)
{
    return set->count;
}

uint64_t pathset_next_due(const struct pathset *set)
{
    uint64_t next = UINT64_MAX;

    for (size_t i = 0; i < set->cap && set->count; i++)
        if (pathset_live(&set->slots[i]) && set->slots[i].due_ms < next)
            next = set->slots[i].due_ms;
    return next;
}

size_t pathset_take_due(struct pathset *set, uint64_t now_ms,
                        void (*fn)(char *path, void *data), void *data)
{
    size_t taken = 0;

    for (size_t i = 0; i < set->cap; i++) {
        struct pathset_slot *slot = &set->slots[i];

        if (!pathset_live(slot) || slot->due_ms > now_ms)
            continue;
        fn(slot->path, data);
        slot->path = PATHSET_TOMBSTONE;
        set->count--;
        taken++;
    }
    return taken;
}
