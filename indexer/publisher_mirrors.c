/*
 * publisher_mirrors.c - a revision's verified mirrors as XEP-0214 mirror
 * settings (type, address, port, ref, description; user and pass only when
 * the admin made them public).
 */
#include "publisher_mirrors.h"
#include "fr_error.h"
#include "secret.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct publisher_mirror_text {
    struct mirror_url_parts parts;     /* the base URL's parts */
    char *fields;                      /* the line, split in place at tabs */
    char *ref;                         /* path on the server + the file's path */
    char *pass;                        /* public password, NULL when none */
};

void publisher_mirrors_clear(struct publisher_mirrors *m)
{
    for (size_t i = 0; m->text && i < m->count; i++) {
        free(m->text[i].fields);
        free(m->text[i].ref);
        if (m->text[i].pass) {
            explicit_bzero(m->text[i].pass, strlen(m->text[i].pass));
            free(m->text[i].pass);
        }
    }
    free(m->text);
    free(m->items);
    *m = (struct publisher_mirrors){ 0 };
}

int publisher_mirrors_parse(struct publisher_mirrors *out, const char *lines, const char *path)
{
    size_t lines_count = *lines ? 1 : 0;

    *out = (struct publisher_mirrors){ 0 };
    for (const char *s = lines; *s; s++)
        lines_count += *s == '\n';
    if (lines_count == 0)
        return 0;
    out->items = calloc(lines_count, sizeof(*out->items));
    out->text = calloc(lines_count, sizeof(*out->text));
    if (!out->items || !out->text)
        goto nomem;
    for (const char *s = lines; *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        struct publisher_mirror_text *t = &out->text[out->count];
        char *field[5] = { 0 }, *cursor, *file_url;
        size_t ref_len;
        int k = 0;

        if (!(t->fields = strndup(s, n)))
            goto nomem;
        s += n + (e ? 1 : 0);
        for (cursor = t->fields; k < 5; k++) {
            field[k] = cursor;
            cursor = strchr(cursor, '\t');
            if (!cursor)
                break;
            *cursor++ = '\0';
        }
        if (k < 4 || mirror_url_split(&t->parts, field[1]) != 0) {
            free(t->fields);
            t->fields = NULL;
            continue;
        }
        /* The file's URL, and the ref is what follows "scheme://host[:port]/". */
        ref_len = strlen(field[1]) + 3 * strlen(path) + 1;
        file_url = malloc(ref_len);
        if (!file_url) {
            free(t->fields);
            t->fields = NULL;
            goto nomem;
        }
        mirror_url_file(file_url, ref_len, t->parts.path + 1, path);
        t->ref = file_url;
        t->pass = field[3][0] ? secret_read(field[4]) : NULL;
        out->items[out->count] = (struct pubsub_mirror){
            /* webdav is a push target; readers get the http(s) server it is. */
            .type = strcmp(field[0], "webdav") == 0 ? t->parts.scheme : field[0],
            .address = t->parts.host,
            .port = t->parts.port[0] ? t->parts.port : NULL,
            .ref = t->ref,
            .description = field[2],
            .user = field[3][0] ? field[3] : NULL,
            .pass = t->pass,
        };
        out->count++;
    }
    return 0;
nomem:
    publisher_mirrors_clear(out);
    return FR_ENOMEM;
}
