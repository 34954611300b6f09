/*
 * scan.c - the disk compared with the catalog, one directory at a time.
 *
 * For a directory: its catalog rows (sorted by name) and its readdir (sorted
 * the same way) are merged like two sorted lists.  The catalog rows of a
 * whole walk come from one stream in the walk's own order (catalog_tree).  A name on both sides is
 * compared by kind and stat; a name only on disk is new; a name only in the
 * catalog is gone.  Subdirectories are visited after their parent's items
 * are recorded, so items come out parents first.
 */
#include "scan.h"
#include "fr_error.h"
#include "index.h"
#include "log.h"
#include "versioner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct scan_ctx {
    struct scan *out;                   /* where items go */
    struct catalog *catalog;            /* this thread's connection */
    int64_t repo_id;                    /* repository */
    const char *repo_name;              /* for the log */
    int root_fd;                        /* O_PATH of the root */
    const struct config_strings *ignore; /* names never indexed */
    /* The catalog's side of the whole walk, read as one stream (a query per
     * directory costs a round trip each).  NULL when the walk turned out
     * not to follow the stream's order: then one query per directory. */
    struct catalog_tree *tree;
    struct catalog_tree_entry next;     /* the stream's next row, if have_next */
    bool have_next;                     /* next is filled */
    char *last_dir;                     /* the directory the stream served last */
};

/* One side of the merge. */
struct scan_name {
    char *name;          /* entry name */
    bool is_dir;         /* a directory */
    int64_t size, mtime_ns, ctime_ns, inode; /* file stat */
};

struct scan_names {
    struct scan_name *v; /* names */
    size_t count, cap;   /* used, allocated */
};

static int scan_openat2(int root_fd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root_fd, *path ? path : ".", &how, sizeof(how));

    return fd < 0 ? -errno : (int)fd;
}

int scan_open_root(const char *path)
{
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);

    return fd < 0 ? -errno : fd;
}

int scan_open_file(int root_fd, const char *path, struct stat *st)
{
    int fd = scan_openat2(root_fd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return fd;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int error = S_ISREG(st->st_mode) ? -errno : -EISDIR;

        close(fd);
        return error;
    }
    return fd;
}

int scan_open_dir(int root_fd, const char *path)
{
    return scan_openat2(root_fd, path, O_PATH | O_DIRECTORY | O_NOFOLLOW);
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool scan_utf8_valid(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s, need, min;
        uint32_t cp;

        if (c < 0x80) {
            s++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            need = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        for (unsigned i = 1; i <= need; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += need + 1;
    }
    return true;
}

bool scan_name_publishable(const char *name)
{
    return scan_utf8_valid((const unsigned char *)name) && versioner_name_allowed(name);
}

/*
 * Whether `name` (len bytes) matches the shell pattern `pattern` (a leading
 * dot is matched by a wildcard too).  The usual ignore patterns, a literal
 * with at most one '*' (".*", "*.part", "*~"), are answered by comparing
 * the ends: every name of every scan goes through here.
 */
static bool scan_glob(const char *pattern, const char *name, size_t len)
{
    const char *star = strchr(pattern, '*');
    size_t head, tail;

    if (strpbrk(pattern, "?[\\") || (star && strchr(star + 1, '*')))
        return fnmatch(pattern, name, 0) == 0;
    if (!star)
        return strcmp(pattern, name) == 0;
    head = (size_t)(star - pattern);
    tail = strlen(star + 1);
    return len >= head + tail && memcmp(name, pattern, head) == 0 &&
           memcmp(name + len - tail, star + 1, tail) == 0;
}

bool scan_ignored(const struct config_strings *ignore, const char *path)
{
    char seg[NAME_MAX + 1];

    for (const char *p = path; *p;) {
        size_t len = strcspn(p, "/");

        if (len < sizeof(seg)) {
            memcpy(seg, p, len);
            seg[len] = '\0';
            for (size_t i = 0; i < ignore->count; i++)
                if (scan_glob(ignore->items[i], seg, len))
                    return true;
        }
        p += len + (p[len] == '/');
    }
    return false;
}

static int scan_item_add(struct scan *out, enum scan_kind kind, const char *path,
                         const struct stat *st)
{
    struct scan_item *item;

    if (out->count == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 64;
        struct scan_item *grown = realloc(out->items, cap * sizeof(*grown));

        if (!grown)
            return FR_ENOMEM;
        out->items = grown;
        out->cap = cap;
    }
    item = &out->items[out->count];
    *item = (struct scan_item){ .kind = kind, .path = strdup(path) };
    if (!item->path)
        return FR_ENOMEM;
    if (st) {
        item->size = st->st_size;
        item->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
        item->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
        item->inode = (int64_t)st->st_ino;
    }
    out->count++;
    return 0;
}

void scan_clear(struct scan *scan)
{
    for (size_t i = 0; i < scan->count; i++)
        free(scan->items[i].path);
    free(scan->items);
    *scan = (struct scan){ 0 };
}

/* out = dir "/" name (name alone for the root), cut to fit len. */
static void scan_join(char *out, size_t len, const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name), at = 0;

    if (len == 0)
        return;
    if (d) {
        d = d < len - 1 ? d : len - 1;
        memcpy(out, dir, d);
        at = d;
        if (at < len - 1)
            out[at++] = '/';
    }
    n = n < len - 1 - at ? n : len - 1 - at;
    memcpy(out + at, name, n);
    out[at + n] = '\0';
}

/*
 * What a name on disk is, for indexing: a directory (not through a
 * symlink), a regular file (possibly through a symlink that stays inside),
 * or nothing to index.  `name` is in dir_fd; `path` is the same from the
 * root.  Returns 1 for a directory, 0 for a file (*st
 * filled), -1 to skip.
 */
static int scan_classify(struct scan_ctx *ctx, int dir_fd, const char *name, const char *path,
                         struct stat *st)
{
    int fd;

    if (fstatat(dir_fd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    if (S_ISDIR(st->st_mode))
        return 1;
    if (S_ISREG(st->st_mode))
        return 0;
    if (!S_ISLNK(st->st_mode))
        return -1; /* fifos, sockets, devices: not published */
    fd = scan_openat2(ctx->root_fd, path, O_PATH);
    if (fd < 0) {
        if (fd == -EXDEV)
            log_warn("scan", "repo=%s path=%s: symbolic link leads outside the repository; "
                     "not followed", ctx->repo_name, path);
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        if (S_ISDIR(st->st_mode))
            log_debug("scan", "repo=%s path=%s: symbolic link to a directory; not followed",
                      ctx->repo_name, path);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int scan_names_add(struct scan_names *names, const char *name, bool is_dir,
                          const struct stat *st)
{
    struct scan_name *n;

    if (names->count == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 64;
        struct scan_name *grown = realloc(names->v, cap * sizeof(*grown));

        if (!grown)
            return FR_ENOMEM;
        names->v = grown;
        names->cap = cap;
    }
    n = &names->v[names->count];
    *n = (struct scan_name){ .name = strdup(name), .is_dir = is_dir };
    if (!n->name)
        return FR_ENOMEM;
    if (st && !is_dir) {
        n->size = st->st_size;
        n->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
        n->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
        n->inode = (int64_t)st->st_ino;
    }
    names->count++;
    return 0;
}

static void scan_names_clear(struct scan_names *names)
{
    for (size_t i = 0; i < names->count; i++)
        free(names->v[i].name);
    free(names->v);
    *names = (struct scan_names){ 0 };
}

static int scan_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct scan_name *)a)->name, ((const struct scan_name *)b)->name);
}

static int scan_collect_catalog(const struct catalog_entry_stat *e, void *data)
{
    struct stat st = { .st_size = e->size, .st_ino = (ino_t)e->inode };

    st.st_mtim.tv_sec = e->mtime_ns / 1000000000;
    st.st_mtim.tv_nsec = e->mtime_ns % 1000000000;
    st.st_ctim.tv_sec = e->ctime_ns / 1000000000;
    st.st_ctim.tv_nsec = e->ctime_ns % 1000000000;
    return scan_names_add(data, e->name, e->is_dir, &st) == 0 ? 0 : FR_ENOMEM;
}

/* Stops reading the stream; the rest of the walk asks per directory. */
static void scan_tree_stop(struct scan_ctx *ctx)
{
    catalog_tree_close(ctx->tree);
    ctx->tree = NULL;
    ctx->have_next = false;
}

static int scan_tree_advance(struct scan_ctx *ctx)
{
    int rc = catalog_tree_next(ctx->tree, &ctx->next);

    ctx->have_next = rc == 1;
    return rc < 0 ? rc : 0;
}

/* The catalog's side of directory `dir`, sorted by name. */
static int scan_read_catalog(struct scan_ctx *ctx, const char *dir, struct scan_names *cat)
{
    int error = 0;

    if (ctx->tree && ctx->last_dir && catalog_tree_order(ctx->last_dir, dir) >= 0) {
        /* Names with a byte 0x01 can make the walk leave the stream's
         * order; the stream is no use from there on. */
        log_debug("scan", "repo=%s dir=%s: walk left the catalog's order; "
                  "reading directory by directory", ctx->repo_name, *dir ? dir : "/");
        scan_tree_stop(ctx);
    }
    if (!ctx->tree) {
        error = catalog_dir_children(ctx->catalog, ctx->repo_id, dir, scan_collect_catalog, cat);
        return error == FR_ENOTFOUND ? 0 : error; /* a new directory: all in it is new */
    }
    free(ctx->last_dir);
    if (!(ctx->last_dir = strdup(dir)))
        return FR_ENOMEM;
    /* Groups before this one are directories gone from disk (their removal
     * covers what is below them) or not walked (ignored names). */
    while (ctx->have_next && catalog_tree_order(ctx->next.dir, dir) < 0 && !error)
        error = scan_tree_advance(ctx);
    while (ctx->have_next && strcmp(ctx->next.dir, dir) == 0 && !error) {
        error = scan_collect_catalog(&ctx->next.stat, cat);
        if (!error)
            error = scan_tree_advance(ctx);
    }
    return error;
}

static bool scan_same(const struct scan_name *disk, const struct scan_name *cat)
{
    return disk->size == cat->size && disk->mtime_ns == cat->mtime_ns &&
           disk->ctime_ns == cat->ctime_ns && disk->inode == cat->inode;
}

static int scan_directory(struct scan_ctx *ctx, const char *dir);

/* The disk's side of directory `dir`, sorted; unreadable: -errno. */
static int scan_read_disk(struct scan_ctx *ctx, const char *dir, struct scan_names *disk)
{
    char path[PATH_MAX];
    struct dirent *de;
    struct stat st;
    DIR *d;
    int fd = scan_openat2(ctx->root_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);

    if (fd < 0)
        return fd;
    if (!(d = fdopendir(fd))) {
        int error = -errno;

        close(fd);
        return error;
    }
    while ((de = readdir(d)) != NULL) {
        int kind;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        scan_join(path, sizeof(path), dir, de->d_name);
        if (scan_ignored(ctx->ignore, de->d_name))
            continue;
        if (!scan_name_publishable(de->d_name)) {
            /* The catalog holds UTF-8 and git refuses .git look-alikes:
             * such a name would stop every batch of the repository. */
            char shown[4 * NAME_MAX + 1];
            size_t n = 0;

            for (const unsigned char *c = (const unsigned char *)de->d_name; *c; c++)
                n += (size_t)snprintf(shown + n, sizeof(shown) - n,
                                      *c < 0x20 || *c >= 0x7f ? "\\x%02x" : "%c", *c);
            log_warn("scan", "repo=%s dir=%s name=\"%s\": not valid UTF-8, or a name git "
                     "cannot hold; not published", ctx->repo_name, *dir ? dir : "/", shown);
            ctx->out->problems++;
            continue;
        }
        /* readdir() already tells a real directory apart: no stat needed. */
        kind = de->d_type == DT_DIR ? 1 : scan_classify(ctx, dirfd(d), de->d_name, path, &st);
        if (kind < 0)
            continue;
        if (scan_names_add(disk, de->d_name, kind == 1, &st) != 0) {
            closedir(d);
            return FR_ENOMEM;
        }
    }
    closedir(d);
    if (disk->count > 1)
        qsort(disk->v, disk->count, sizeof(*disk->v), scan_name_cmp);
    return 0;
}

static int scan_directory(struct scan_ctx *ctx, const char *dir)
{
    struct scan_names disk = { 0 }, cat = { 0 };
    char path[PATH_MAX];
    size_t i = 0, j = 0;
    int error;

    error = scan_read_disk(ctx, dir, &disk);
    if (error < 0 && error != FR_ENOMEM) {
        log_warn("scan", "repo=%s path=%s: cannot read directory: %s; will retry",
                 ctx->repo_name, *dir ? dir : "/", strerror(-error));
        ctx->out->problems++;
        error = 0;
        goto done; /* not "everything vanished": leave the catalog alone */
    }
    if (error)
        goto done;
    if ((error = scan_read_catalog(ctx, dir, &cat)) != 0)
        goto done;

    /* Merge: record this directory's items first, then descend. */
    while (i < disk.count || j < cat.count) {
        int c = i == disk.count ? 1 : j == cat.count ? -1 : strcmp(disk.v[i].name, cat.v[j].name);
        struct scan_name *dn = c <= 0 ? &disk.v[i] : NULL;
        struct scan_name *cn = c >= 0 ? &cat.v[j] : NULL;
        const char *name = dn ? dn->name : cn->name;

        scan_join(path, sizeof(path), dir, name);
        if (cn && (!dn || dn->is_dir != cn->is_dir))
            error = scan_item_add(ctx->out, cn->is_dir ? SCAN_DIR_REMOVED : SCAN_FILE_REMOVED,
                                  path, NULL);
        if (!error && dn && dn->is_dir && (!cn || !cn->is_dir))
            error = scan_item_add(ctx->out, SCAN_DIR_ADDED, path, NULL);
        if (!error && dn && !dn->is_dir) {
            struct stat st = { .st_size = dn->size, .st_ino = (ino_t)dn->inode };

            ctx->out->files++;
            ctx->out->bytes += (uint64_t)dn->size;
            st.st_mtim.tv_sec = dn->mtime_ns / 1000000000;
            st.st_mtim.tv_nsec = dn->mtime_ns % 1000000000;
            st.st_ctim.tv_sec = dn->ctime_ns / 1000000000;
            st.st_ctim.tv_nsec = dn->ctime_ns % 1000000000;
            if (!cn || cn->is_dir || !scan_same(dn, cn))
                error = scan_item_add(ctx->out, SCAN_FILE, path, &st);
        }
        if (error)
            goto done;
        i += c <= 0;
        j += c >= 0;
    }
    for (i = 0; i < disk.count && !error; i++) {
        if (!disk.v[i].is_dir)
            continue;
        scan_join(path, sizeof(path), dir, disk.v[i].name);
        error = scan_directory(ctx, path);
    }
done:
    scan_names_clear(&disk);
    scan_names_clear(&cat);
    return error;
}

int scan_reconcile(struct scan *out, struct catalog *catalog, int64_t repo_id,
                   const char *repo_name, int root_fd, const char *path,
                   const struct config_strings *ignore)
{
    struct scan_ctx ctx = { .out = out, .catalog = catalog, .repo_id = repo_id,
                            .repo_name = repo_name, .root_fd = root_fd, .ignore = ignore };
    struct catalog_entry_stat known;
    struct stat st;
    int kind, error;

    if (*path && scan_ignored(ignore, path))
        return 0;
    for (const char *seg = path; *seg;) {
        char name[NAME_MAX + 1];
        size_t len = strcspn(seg, "/");

        snprintf(name, sizeof(name), "%.*s", (int)(len < NAME_MAX ? len : NAME_MAX), seg);
        if (!scan_name_publishable(name))
            return 0; /* never recorded, so nothing to remove either */
        seg += len + (seg[len] == '/');
    }
    kind = *path ? scan_classify(&ctx, root_fd, path, path, &st) : 1;
    error = *path ? catalog_entry_lookup(catalog, repo_id, path, &known) : 0;
    if (error && error != FR_ENOTFOUND)
        return error;
    bool in_catalog = error == 0;

    if (kind < 0) {
        /* Gone (or nothing we publish): removed, if the catalog had it. */
        if (in_catalog)
            return scan_item_add(out, known.is_dir ? SCAN_DIR_REMOVED : SCAN_FILE_REMOVED, path,
                                 NULL);
        return 0;
    }
    if (kind == 1) {
        if (*path && (!in_catalog || !known.is_dir)) {
            if (in_catalog && (error = scan_item_add(out, SCAN_FILE_REMOVED, path, NULL)) != 0)
                return error;
            if ((error = scan_item_add(out, SCAN_DIR_ADDED, path, NULL)) != 0)
                return error;
        }
        /* The stream pays off for a walk of more than a few directories;
         * without it (it cannot be opened) the walk asks per directory. */
        if (catalog_tree_open(&ctx.tree, catalog, repo_id, path) == 0 &&
            scan_tree_advance(&ctx) != 0)
            scan_tree_stop(&ctx);
        error = scan_directory(&ctx, path);
        scan_tree_stop(&ctx);
        free(ctx.last_dir);
        return error;
    }

    out->files++;
    out->bytes += (uint64_t)st.st_size;
    if (in_catalog && known.is_dir &&
        (error = scan_item_add(out, SCAN_DIR_REMOVED, path, NULL)) != 0)
        return error;
    if (in_catalog && !known.is_dir && known.size == st.st_size &&
        known.mtime_ns == (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec &&
        known.ctime_ns == (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec &&
        known.inode == (int64_t)st.st_ino)
        return 0;
    return scan_item_add(out, SCAN_FILE, path, &st);
}
