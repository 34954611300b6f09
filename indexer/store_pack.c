/*
 * store_pack.c - small objects appended to packs, found through an index
 * kept in memory.
 *
 * The index is an open-addressing table keyed by the digest (its first
 * eight bytes spread well enough: they are a sha-256's).  One mutex guards
 * the table and the list of packs; it is held only to look up, to reserve
 * a range of the pack being written and to record an object, never while
 * bytes are read or written, so the hasher's workers append side by side.
 * A reserved range whose write fails stays a hole no record names.
 */
#include "store_pack.h"
#include "fr_error.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define PACK_DIR "packs"
#define PACK_DIR_MODE 0750
#define PACK_FILE_MODE 0440
#define PACK_RECORD_SIZE 64
#define PACK_NAME_SIZE 32
#define PACK_NO_FILE UINT32_MAX       /* an empty slot of the table */
#define PACK_READ_RECORDS 1024        /* records read at a time when loading */

/* One pack: its .data and, while this process writes it, its .idx. */
struct pack_file {
    uint32_t number;   /* NNNNNNNN in its names */
    int data_fd;       /* the .data file: read-only, or read-write when ours */
    int idx_fd;        /* the .idx file, append-only, or -1 once loaded */
    uint64_t size;     /* bytes of .data reserved so far (ours) or found */
    bool sync_wanted;  /* named by the objects being synced */
};

/* Where an object's bytes are. */
struct pack_slot {
    unsigned char sha256[32]; /* the digest */
    uint64_t offset;          /* in the .data file */
    uint32_t length;          /* bytes */
    uint32_t crc32;           /* of the bytes */
    uint32_t file;            /* index in packs->files; PACK_NO_FILE: empty slot */
};

struct store_packs {
    char *dir;                /* the store's directory, for log lines */
    int packs_fd;             /* DIR/packs */
    pthread_mutex_t lock;     /* guards everything below */
    struct pack_file *files;  /* every pack found or made */
    size_t files_count;       /* used */
    size_t files_cap;         /* allocated */
    size_t current;           /* the pack being written (index in files), or SIZE_MAX */
    uint32_t next_number;     /* the number the next new pack takes */
    struct pack_slot *slots;  /* the table; a power of two of them */
    size_t slots_cap;         /* allocated */
    size_t slots_used;        /* filled */
};

static void packs_close(int fd)
{
    int saved_errno = errno;

    if (fd >= 0)
        close(fd);
    errno = saved_errno;
}

static void packs_put_le(unsigned char *p, uint64_t value, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        p[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t packs_get_le(const unsigned char *p, size_t bytes)
{
    uint64_t value = 0;

    for (size_t i = 0; i < bytes; i++)
        value |= (uint64_t)p[i] << (8 * i);
    return value;
}

static uint32_t packs_crc32(const void *data, size_t len)
{
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)len);
}

/* The first 16 hex digits of a digest, for log lines. */
static void packs_digest_prefix(char out[17], const unsigned char sha256[32])
{
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", sha256[i]);
}

/* The slot holding sha256, or the empty one where it would go. */
static struct pack_slot *packs_slot(const struct pack_slot *slots, size_t cap,
                                    const unsigned char sha256[32])
{
    uint64_t h;
    size_t i;

    memcpy(&h, sha256, sizeof(h));
    for (i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        const struct pack_slot *slot = &slots[i];

        if (slot->file == PACK_NO_FILE || memcmp(slot->sha256, sha256, 32) == 0)
            return (struct pack_slot *)slot;
    }
}

static struct pack_slot *packs_find(struct store_packs *packs, const unsigned char sha256[32])
{
    struct pack_slot *slot;

    if (!packs->slots_cap)
        return NULL;
    slot = packs_slot(packs->slots, packs->slots_cap, sha256);
    return slot->file == PACK_NO_FILE ? NULL : slot;
}

/* Records (or replaces) where an object is; the table grows at 70% full. */
static int packs_record(struct store_packs *packs, const struct pack_slot *object)
{
    struct pack_slot *slot;

    if ((packs->slots_used + 1) * 10 > packs->slots_cap * 7) {
        size_t cap = packs->slots_cap ? packs->slots_cap * 2 : 1024;
        struct pack_slot *grown = malloc(cap * sizeof(*grown));

        if (!grown)
            return FR_ENOMEM;
        for (size_t i = 0; i < cap; i++)
            grown[i].file = PACK_NO_FILE;
        for (size_t i = 0; i < packs->slots_cap; i++)
            if (packs->slots[i].file != PACK_NO_FILE)
                *packs_slot(grown, cap, packs->slots[i].sha256) = packs->slots[i];
        free(packs->slots);
        packs->slots = grown;
        packs->slots_cap = cap;
    }
    slot = packs_slot(packs->slots, packs->slots_cap, object->sha256);
    if (slot->file == PACK_NO_FILE)
        packs->slots_used++;
    *slot = *object;
    return 0;
}

static struct pack_file *packs_add_file(struct store_packs *packs)
{
    if (packs->files_count == packs->files_cap) {
        size_t cap = packs->files_cap ? packs->files_cap * 2 : 8;
        struct pack_file *grown = realloc(packs->files, cap * sizeof(*grown));

        if (!grown)
            return NULL;
        packs->files = grown;
        packs->files_cap = cap;
    }
    packs->files[packs->files_count] = (struct pack_file){ .data_fd = -1, .idx_fd = -1 };
    return &packs->files[packs->files_count++];
}

static void packs_name(char *out, uint32_t number, const char *suffix)
{
    snprintf(out, PACK_NAME_SIZE, "pack-%08x.%s", (unsigned)number, suffix);
}

/* Reads every record of one pack's index into the table. */
static int packs_load_file(struct store_packs *packs, uint32_t number)
{
    unsigned char *records = NULL;
    char name[PACK_NAME_SIZE];
    struct pack_file *file;
    struct stat st;
    size_t skipped = 0;
    int idx_fd = -1;
    int error = FR_ERROR;

    if (!(file = packs_add_file(packs)))
        return FR_ENOMEM;
    file->number = number;
    packs_name(name, number, "data");
    file->data_fd = openat(packs->packs_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (file->data_fd < 0 || fstat(file->data_fd, &st) != 0)
        goto done;
    file->size = (uint64_t)st.st_size;
    packs_name(name, number, "idx");
    if ((idx_fd = openat(packs->packs_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        goto done;
    if (!(records = malloc(PACK_READ_RECORDS * PACK_RECORD_SIZE))) {
        error = FR_ENOMEM;
        goto done;
    }
    /* Read at record-aligned offsets, so a short read anywhere cannot
     * shift the records; what remains of less than a record at the end is
     * a torn last record, skipped. */
    for (off_t offset = 0;;) {
        ssize_t got = pread(idx_fd, records, PACK_READ_RECORDS * PACK_RECORD_SIZE, offset);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto done;
        if (got < PACK_RECORD_SIZE) {
            skipped += got > 0;
            break;
        }
        offset += got - got % PACK_RECORD_SIZE;
        for (ssize_t at = 0; at + PACK_RECORD_SIZE <= got; at += PACK_RECORD_SIZE) {
            const unsigned char *r = records + at;
            struct pack_slot object;

            memcpy(object.sha256, r, 32);
            object.offset = packs_get_le(r + 32, 8);
            object.length = (uint32_t)packs_get_le(r + 40, 4);
            object.crc32 = (uint32_t)packs_get_le(r + 44, 4);
            object.file = (uint32_t)(file - packs->files);
            if ((uint32_t)packs_get_le(r + 60, 4) != packs_crc32(r, 60) ||
                object.length > STORE_PACK_OBJECT_MAX || object.offset > file->size ||
                object.length > file->size - object.offset) {
                skipped++;
                continue;
            }
            if ((error = packs_record(packs, &object)) != 0)
                goto done;
        }
    }
    if (skipped)
        log_warn("store", "%s/" PACK_DIR "/%s: %zu damaged records skipped (their objects"
                 " are stored again when next seen)", packs->dir, name, skipped);
    error = 0;

done:
    free(records);
    packs_close(idx_fd);
    return error;
}

static int packs_compare_numbers(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Loads every pack found, oldest first (a later record wins). */
static int packs_load(struct store_packs *packs)
{
    uint32_t *numbers = NULL;
    size_t count = 0, cap = 0;
    struct dirent *entry;
    DIR *dir;
    int fd, error = FR_ERROR;

    if ((fd = openat(packs->packs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return FR_ERROR;
    if (!(dir = fdopendir(fd))) {
        packs_close(fd);
        return FR_ERROR;
    }
    while ((entry = readdir(dir))) {
        unsigned number;
        char suffix[8];

        if (strlen(entry->d_name) != 17 ||
            sscanf(entry->d_name, "pack-%8x.%3s", &number, suffix) != 2 ||
            strcmp(suffix, "idx") != 0)
            continue;
        if (count == cap) {
            uint32_t *grown = realloc(numbers, (cap = cap ? cap * 2 : 16) * sizeof(*grown));

            if (!grown) {
                error = FR_ENOMEM;
                goto done;
            }
            numbers = grown;
        }
        numbers[count++] = number;
    }
    if (count) /* with no pack yet, numbers is NULL */
        qsort(numbers, count, sizeof(*numbers), packs_compare_numbers);
    for (size_t i = 0; i < count; i++)
        if ((error = packs_load_file(packs, numbers[i])) != 0)
            goto done;
    packs->next_number = count ? numbers[count - 1] + 1 : 1;
    error = 0;

done:
    closedir(dir);
    free(numbers);
    return error;
}

int store_packs_open(struct store_packs **out, int dir_fd, const char *dir)
{
    struct store_packs *packs;
    int error;

    *out = NULL;
    if (!(packs = calloc(1, sizeof(*packs))))
        return FR_ENOMEM;
    packs->packs_fd = -1;
    packs->current = SIZE_MAX;
    pthread_mutex_init(&packs->lock, NULL);
    if (!(packs->dir = strdup(dir))) {
        error = FR_ENOMEM;
        goto fail;
    }
    if ((mkdirat(dir_fd, PACK_DIR, PACK_DIR_MODE) != 0 && errno != EEXIST) ||
        (packs->packs_fd = openat(dir_fd, PACK_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        error = FR_ERROR;
        goto fail;
    }
    if ((error = packs_load(packs)) != 0)
        goto fail;
    *out = packs;
    return 0;

fail:
    store_packs_free(packs);
    return error;
}

void store_packs_free(struct store_packs *packs)
{
    if (!packs)
        return;
    for (size_t i = 0; i < packs->files_count; i++) {
        packs_close(packs->files[i].data_fd);
        packs_close(packs->files[i].idx_fd);
    }
    packs_close(packs->packs_fd);
    pthread_mutex_destroy(&packs->lock);
    free(packs->files);
    free(packs->slots);
    free(packs->dir);
    free(packs);
}

/* Starts a new pack of ours; called locked.  Returns 0 or FR_E*. */
static int packs_start_file(struct store_packs *packs)
{
    char data[PACK_NAME_SIZE], idx[PACK_NAME_SIZE];
    struct pack_file *file;

    if (!(file = packs_add_file(packs)))
        return FR_ENOMEM;
    /* Numbers only grow: a name taken (by a pack this process could not
     * read, say) is skipped, never reused. */
    for (int attempt = 0; attempt < 64; attempt++) {
        file->number = packs->next_number++;
        packs_name(data, file->number, "data");
        packs_name(idx, file->number, "idx");
        file->data_fd = openat(packs->packs_fd, data,
                               O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                               PACK_FILE_MODE);
        if (file->data_fd >= 0 || errno != EEXIST)
            break;
    }
    if (file->data_fd < 0)
        goto fail;
    file->idx_fd = openat(packs->packs_fd, idx,
                          O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                          PACK_FILE_MODE);
    if (file->idx_fd < 0) {
        (void)unlinkat(packs->packs_fd, data, 0);
        goto fail;
    }
    packs->current = (size_t)(file - packs->files);
    return 0;

fail:
    packs_close(file->data_fd);
    packs->files_count--;
    return FR_ERROR;
}

static int packs_pread_all(int fd, void *buf, size_t len, uint64_t offset)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* shorter than its record says */
            return FR_ERROR;
        }
        done += (size_t)n;
    }
    return 0;
}

static int packs_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(offset + done));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FR_ERROR;
        done += (size_t)n;
    }
    return 0;
}

/*
 * Reads a packed object's bytes into a new buffer (*out, the caller's) and
 * checks them against their record.  Returns 0, FR_ENOTFOUND when not
 * packed, FR_EINVAL when the bytes are damaged, or FR_ERROR/FR_ENOMEM.
 */
static int packs_read(struct store_packs *packs, const unsigned char sha256[32],
                      unsigned char **out, size_t *len)
{
    struct pack_slot object;
    struct pack_slot *slot;
    unsigned char *buf;
    int fd;

    *out = NULL;
    *len = 0;
    pthread_mutex_lock(&packs->lock);
    slot = packs_find(packs, sha256);
    if (slot) {
        object = *slot;
        fd = packs->files[object.file].data_fd;
    }
    pthread_mutex_unlock(&packs->lock);
    if (!slot)
        return FR_ENOTFOUND;
    if (!(buf = malloc(object.length ? object.length : 1)))
        return FR_ENOMEM;
    if (packs_pread_all(fd, buf, object.length, object.offset) != 0) {
        int saved_errno = errno;

        free(buf);
        errno = saved_errno;
        return errno == EIO ? FR_EINVAL : FR_ERROR;
    }
    if (packs_crc32(buf, object.length) != object.crc32) {
        free(buf);
        return FR_EINVAL;
    }
    *out = buf;
    *len = object.length;
    return 0;
}

int store_packs_put(struct store_packs *packs, const unsigned char sha256[32],
                    const void *data, size_t len, bool *existed)
{
    unsigned char record[PACK_RECORD_SIZE] = { 0 };
    struct pack_slot object = { .length = (uint32_t)len };
    unsigned char *have = NULL;
    size_t have_len;
    int fd, idx_fd, error;

    *existed = false;
    if (len > STORE_PACK_OBJECT_MAX)
        return FR_EINVAL;
    error = packs_read(packs, sha256, &have, &have_len);
    if (error == 0) {
        bool same = have_len == len && memcmp(have, data, len) == 0;

        free(have);
        if (same) {
            *existed = true;
            return 0;
        }
        error = FR_EINVAL;
    }
    if (error == FR_EINVAL) {
        char hex[17];

        packs_digest_prefix(hex, sha256);
        log_warn("store", "packed object %s… in %s/" PACK_DIR " is damaged; storing it again",
                 hex, packs->dir);
    } else if (error != FR_ENOTFOUND) {
        return error;
    }

    memcpy(object.sha256, sha256, 32);
    object.crc32 = packs_crc32(data, len);
    pthread_mutex_lock(&packs->lock);
    if (packs->current == SIZE_MAX ||
        packs->files[packs->current].size + len > (uint64_t)STORE_PACK_BYTES) {
        /* A full pack keeps its index descriptor (records of ranges
         * reserved before may still come, and the syncs need it). */
        packs->current = SIZE_MAX;
        if ((error = packs_start_file(packs)) != 0) {
            pthread_mutex_unlock(&packs->lock);
            return error;
        }
    }
    object.file = (uint32_t)packs->current;
    object.offset = packs->files[packs->current].size;
    packs->files[packs->current].size += len;
    fd = packs->files[packs->current].data_fd;
    pthread_mutex_unlock(&packs->lock);

    if (packs_pwrite_all(fd, data, len, object.offset) != 0)
        return FR_ERROR;
    memcpy(record, sha256, 32);
    packs_put_le(record + 32, object.offset, 8);
    packs_put_le(record + 40, object.length, 4);
    packs_put_le(record + 44, object.crc32, 4);
    packs_put_le(record + 60, packs_crc32(record, 60), 4);

    pthread_mutex_lock(&packs->lock);
    idx_fd = packs->files[object.file].idx_fd;
    if (write(idx_fd, record, sizeof(record)) != (ssize_t)sizeof(record))
        error = FR_ERROR;
    else
        error = packs_record(packs, &object);
    pthread_mutex_unlock(&packs->lock);
    return error;
}

int store_packs_open_object(struct store_packs *packs, const unsigned char sha256[32])
{
    unsigned char *bytes = NULL;
    size_t len = 0;
    int fd = -1;
    int error;

    error = packs_read(packs, sha256, &bytes, &len);
    if (error == FR_EINVAL) {
        char hex[17];

        packs_digest_prefix(hex, sha256);
        log_warn("store", "packed object %s… in %s/" PACK_DIR " is damaged; not served",
                 hex, packs->dir);
        return FR_ENOTFOUND;
    }
    if (error)
        return error;
    error = FR_ERROR;
    fd = memfd_create("filerepo-object", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || packs_pwrite_all(fd, bytes, len, 0) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
        goto done;
    error = 0;

done:
    free(bytes);
    if (error) {
        packs_close(fd);
        return error;
    }
    return fd;
}

bool store_packs_contains(struct store_packs *packs, const unsigned char sha256[32])
{
    bool found;

    pthread_mutex_lock(&packs->lock);
    found = packs_find(packs, sha256) != NULL;
    pthread_mutex_unlock(&packs->lock);
    return found;
}

int store_packs_sync_objects(struct store_packs *packs, const unsigned char (*sha256)[32],
                             size_t count)
{
    int *fds = NULL;
    size_t nfds = 0;
    bool any = false;
    int error = 0;

    pthread_mutex_lock(&packs->lock);
    for (size_t i = 0; i < count; i++) {
        struct pack_slot *slot = packs_find(packs, sha256[i]);

        if (slot) {
            packs->files[slot->file].sync_wanted = true;
            any = true;
        }
    }
    if (any && !(fds = malloc(packs->files_count * 2 * sizeof(*fds))))
        error = FR_ENOMEM;
    for (size_t i = 0; i < packs->files_count && fds; i++) {
        struct pack_file *file = &packs->files[i];
        char name[PACK_NAME_SIZE];

        if (!file->sync_wanted)
            continue;
        file->sync_wanted = false;
        /* An object already packed by an earlier process is durable only
         * once its pack is: that process may have died before its sync. */
        packs_name(name, file->number, "idx");
        fds[nfds] = dup(file->data_fd);
        fds[nfds + 1] = file->idx_fd >= 0 ? dup(file->idx_fd)
                        : openat(packs->packs_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fds[nfds] < 0 || fds[nfds + 1] < 0)
            error = FR_ERROR;
        nfds += 2;
    }
    pthread_mutex_unlock(&packs->lock);
    for (size_t i = 0; i < nfds; i++) {
        if (!error && fsync(fds[i]) != 0)
            error = FR_ERROR;
        packs_close(fds[i]);
    }
    free(fds);
    if (!error && any && fsync(packs->packs_fd) != 0)
        error = FR_ERROR;
    return error;
}
