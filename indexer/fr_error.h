/*
 * fr_error.h - the error codes every filerepo function returns.
 *
 * 0 is success; failures are negative.  A code is passed up unchanged and
 * logged once, where it is handled, with the detail the failing module keeps
 * (catalog_last_error(), for instance).
 */
#ifndef FILEREPO_FR_ERROR_H
#define FILEREPO_FR_ERROR_H

enum fr_error {
    FR_OK = 0,
    FR_ERROR = -1,     /* failure with no more specific code */
    FR_ENOMEM = -2,    /* out of memory */
    FR_ECONN = -3,     /* a server is unreachable, or the connection was lost */
    FR_ESCHEMA = -4,   /* the catalog's schema is not one this binary can use */
    FR_EINVAL = -5,    /* bad input from a person, a file or the network */
    FR_ENOTFOUND = -6, /* no such thing */
};

#endif
