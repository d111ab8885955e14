/* chorusctl validate [DIR]: compiles every flow file of DIR (default
 * "flows") and prints every problem as `file:line:col: path: message`. */
#include <stdio.h>
#include <string.h>

#include "cmd/ctl.h"
#include "cmd/ctl_common.h"

int ctl_validate(int argc, char **argv);

int ctl_validate(int argc, char **argv)
{
    const char *dir = "flows";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: chorusctl validate [DIR]\n\n"
                   "Checks every flow file in DIR (default \"flows\") and prints each problem\n"
                   "as file:line:col: json.path: message. Exits 1 if there is any.\n");
            return 0;
        }
        if (argv[i][0] == '-') {
            fprintf(stderr, "chorusctl validate: unknown option %s\n", argv[i]);
            return 2;
        }
        if (i > 1) { /* one flow set: two directories are two runs */
            fprintf(stderr, "chorusctl validate: one directory only (got %s and %s)\n", dir,
                    argv[i]);
            return 2;
        }
        dir = argv[i];
    }
    brain_flowset_t *fs;
    if (ctl_flowset_load(dir, 1, &fs) != 0)
        return 1;
    printf("%s: %zu flows OK\n", dir, brain_flowset_flow_count(fs));
    brain_flowset_unref(fs);
    return 0;
}
