/* core_config_int.h — the configuration's option table, shared by the
 * table itself with its value checks (core_config_options.c) and the loader
 * that reads, checks, overrides and documents by it (core_config.c). */
#ifndef CHORUS_CORE_CONFIG_INT_H
#define CHORUS_CORE_CONFIG_INT_H

#include <stddef.h>

#include "chorus/config.h"

typedef enum { OPT_INT, OPT_STRING, OPT_ENUM } opt_type_t;

typedef struct {
    const char *path; /* JSON path in the file */
    opt_type_t type;
    size_t offset;                           /* of the field in core_config_t */
    long long min, max;                      /* OPT_INT bounds, inclusive */
    long long def_int;                       /* OPT_INT default */
    const char *def_str;                     /* OPT_STRING / OPT_ENUM default */
    const char *choices;                     /* OPT_ENUM: "a|b|c" */
    int reloadable;                          /* applied by SIGHUP without a restart */
    const char *(*check)(const char *value); /* OPT_STRING extra check; static message */
    const char *doc;
} option_t;

#define KIB 1024LL
#define MIB (1024LL * 1024LL)

/* Every option, once; core__n_options of them. */
extern const option_t core__options[];
extern const size_t core__n_options;

#endif
