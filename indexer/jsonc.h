/*
 * jsonc.h - JSON with comments, for configuration files.
 *
 * filerepo's configuration is JSON in which `// line` and `/ * block * /`
 * comments are allowed, so a shipped example can explain itself.  Comments are
 * blanked to spaces in place (newlines kept), so the parser's byte offsets
 * still give the line and column a person sees in the file.
 */
#ifndef FILEREPO_JSONC_H
#define FILEREPO_JSONC_H

#include <stddef.h>

/**
 * Overwrites every comment in text[0..len) with spaces, leaving string
 * literals and newlines alone.  Returns 0, or -1 when a block comment is not
 * closed (then *bad_offset is where it starts).
 */
int jsonc_blank_comments(char *text, size_t len, size_t *bad_offset);

/**
 * Computes the 1-based line and column of byte `offset` in text.
 */
void jsonc_position(const char *text, size_t offset, unsigned *line, unsigned *column);

#endif
