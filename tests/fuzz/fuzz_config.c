/*
 * fuzz_config.c - libFuzzer target: any bytes as a configuration file.
 *
 * Whatever the text, config_parse must return either a config or error
 * lines, never crash, read out of bounds or leak (ASan + UBSan + LSan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *config = NULL;
    char *errors = NULL;

    if (config_parse(&config, &errors, "fuzz.json", (const char *)data, size,
                     CONFIG_FOR_CLI) == 0) {
        if (!config || errors)
            abort();
        config_free(config);
    } else {
        /* Every failure says why, one line per problem. */
        if (config || !errors || !*errors || errors[strlen(errors) - 1] != '\n')
            abort();
        free(errors);
    }
    return 0;
}
