/*
 * secret.c - reading a secret from its file, for the mirrors' credentials
 * (the configuration's own secrets are checked more closely by config.c).
 */
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *secret_read(const char *path)
{
    char buf[1024];
    FILE *f;
    size_t n;

    if (!*path) {
        errno = ENOENT;
        return NULL;
    }
    if (!(f = fopen(path, "re")))
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return strdup(buf);
}
