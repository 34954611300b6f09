/*
 * jsonc.c - comment blanking for JSON configuration files.
 *
 * A tiny state machine over the bytes: inside a string literal (with its
 * backslash escapes) nothing is touched; outside, "//" runs to the end of the
 * line and "/" "*" runs to the closing "*" "/".  The parser itself stays
 * cJSON's.
 */
#include "jsonc.h"

int jsonc_blank_comments(char *text, size_t len, size_t *bad_offset)
{
    enum { CODE, STRING, STRING_ESCAPE, LINE_COMMENT, BLOCK_COMMENT } state = CODE;
    size_t block_start = 0;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        switch (state) {
        case CODE:
            if (c == '"') {
                state = STRING;
            } else if (c == '/' && i + 1 < len && text[i + 1] == '/') {
                state = LINE_COMMENT;
                text[i] = ' ';
            } else if (c == '/' && i + 1 < len && text[i + 1] == '*') {
                state = BLOCK_COMMENT;
                block_start = i;
                text[i] = ' ';
                text[++i] = ' ';
            }
            break;
        case STRING:
            if (c == '\\')
                state = STRING_ESCAPE;
            else if (c == '"')
                state = CODE;
            break;
        case STRING_ESCAPE:
            state = STRING;
            break;
        case LINE_COMMENT:
            if (c == '\n')
                state = CODE;
            else
                text[i] = ' ';
            break;
        case BLOCK_COMMENT:
            if (c == '*' && i + 1 < len && text[i + 1] == '/') {
                text[i] = ' ';
                text[++i] = ' ';
                state = CODE;
            } else if (c != '\n') {
                text[i] = ' ';
            }
            break;
        }
    }
    if (state == BLOCK_COMMENT) {
        *bad_offset = block_start;
        return -1;
    }
    return 0;
}

void jsonc_position(const char *text, size_t offset, unsigned *line, unsigned *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && text[i] != '\0'; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}
