/*
 * mirrors/probe.h - one check of one revision on one mirror, as a chain of
 * libcurl transfers run by the checker's multi handle.
 *
 * Stages (probe_enter_stage logs each change at debug):
 *   webdav, copy not verified before:  MKCOL (each parent) -> PUT -> PROPPATCH
 *                                      (whitelist repositories) -> HEAD
 *   every type:                        HEAD (http: HEAD; ftp, sftp, smb: SIZE)
 *                                      -> GET (policy full: whole file and its
 *                                      SHA-256; sampled: ranges compared with
 *                                      the content store) -> DONE
 * The policy "size" stops after HEAD.  The outcome is a catalog result:
 * verified, missing, mismatch, or error (transient when the mirror, not the
 * file, is at fault: unreachable, timed out, a 5xx).
 */
#ifndef FILEREPO_MIRRORS_PROBE_H
#define FILEREPO_MIRRORS_PROBE_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "mirror.h"

struct store;

/** How thoroughly a copy is verified (the "mirrors.verify" choices, in order). */
enum probe_policy {
    PROBE_POLICY_SIZE,             /* HEAD / SIZE only */
    PROBE_POLICY_SAMPLED,          /* and a few ranges compared byte for byte */
    PROBE_POLICY_FULL,             /* and the whole file's SHA-256 */
};

/** What every probe of a checker shares. */
struct probe_settings {
    enum probe_policy policy;      /* mirrors.verify */
    long connect_timeout_s;        /* mirrors.connect_timeout_seconds */
    long low_speed_time_s;         /* mirrors.low_speed_seconds */
    struct store *store;           /* content store (borrowed, may be NULL) */
};

struct probe;

/**
 * Makes the probe of `check` (copied) and its first transfer, to be added
 * to a multi handle with probe_easy().  A password file that cannot be read
 * ends the probe at once (probe_finished()).  Returns 0 or FR_ENOMEM.
 */
int probe_new(struct probe **out, const struct catalog_mirror_check *check,
              const struct probe_settings *settings);

/** Frees the probe and its easy handle (remove it from the multi first). */
void probe_free(struct probe *probe);

/** Returns the transfer to run now, NULL when the probe has finished. */
CURL *probe_easy(struct probe *probe);

/**
 * The current transfer ended with `code` (remove it from the multi first):
 * decides the next stage.  Afterwards either probe_easy() has the next
 * transfer or probe_finished() is true.
 */
void probe_transfer_done(struct probe *probe, CURLcode code);

/** Returns whether the probe has an outcome. */
bool probe_finished(const struct probe *probe);

/** The outcome (valid once finished; strings borrowed from the probe). */
void probe_result(const struct probe *probe, struct catalog_mirror_result *out);

/** The mirror and the revision checked. */
int64_t probe_mirror_id(const struct probe *probe);
int64_t probe_revision_id(const struct probe *probe);

/** The file's URL on the mirror, for the log (never holds credentials). */
const char *probe_url(const struct probe *probe);

#endif
