/*
 * metalink.c - one revision as a Metalink 4 document (RFC 5854 §4): a
 * <metalink> with one <file name=…> holding <size>, <hash type=…> in the
 * IANA "Hash Function Textual Names" (sha-256, sha-1, md5, sha-512) and a
 * <url priority=N> per verified mirror.
 */
#include "metalink.h"
#include "fr_error.h"

#include <inttypes.h>

static void metalink_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default: fputc(*s, out);
        }
    }
}

static void metalink_hash(FILE *out, const char *type, const char *hex)
{
    if (!hex || !*hex)
        return;
    fprintf(out, "    <hash type=\"%s\">", type);
    metalink_text(out, hex);
    fputs("</hash>\n", out);
}

int metalink_write(FILE *out, const struct metalink_file *file)
{
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    fputs("<metalink xmlns=\"" METALINK_NS "\">\n", out);
    if (file->generator) {
        fputs("  <generator>", out);
        metalink_text(out, file->generator);
        fputs("</generator>\n", out);
    }
    if (file->published && *file->published) {
        fputs("  <published>", out);
        metalink_text(out, file->published);
        fputs("</published>\n", out);
    }
    fputs("  <file name=\"", out);
    metalink_text(out, file->name);
    fputs("\">\n", out);
    if (file->description && *file->description) {
        fputs("    <description>", out);
        metalink_text(out, file->description);
        fputs("</description>\n", out);
    }
    fprintf(out, "    <size>%" PRId64 "</size>\n", file->size);
    metalink_hash(out, "sha-256", file->sha256_hex);
    metalink_hash(out, "sha-512", file->sha512_hex);
    metalink_hash(out, "sha-1", file->sha1_hex);
    metalink_hash(out, "md5", file->md5_hex);
    for (size_t i = 0; i < file->urls_count; i++) {
        /* RFC 5854 §4.2.16: 1 is the highest priority. */
        fprintf(out, "    <url priority=\"%zu\">", i + 1 < 999999 ? i + 1 : 999999);
        metalink_text(out, file->urls[i]);
        fputs("</url>\n", out);
    }
    fputs("  </file>\n</metalink>\n", out);
    return ferror(out) ? FR_ERROR : 0;
}
