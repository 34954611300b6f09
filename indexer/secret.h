/*
 * secret.h - reading a secret (a password) from the file that holds it.
 */
#ifndef FILEREPO_SECRET_H
#define FILEREPO_SECRET_H

/**
 * The first KB of the file at `path`, trailing newlines dropped, in a new
 * string (the caller frees it); NULL when the file cannot be read (errno)
 * or path is "".
 */
char *secret_read(const char *path);

#endif
