/* chorusctl backup: a consistent copy of chorusd's database while it runs
 * (store_backup: SQLite's online backup API, integrity-checked, renamed
 * into place). docs/operations.md, "Backup and restore", says how to
 * restore it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "chorus/store.h"
#include "cmd/ctl.h"

int ctl_backup(int argc, char **argv);

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl backup (--data-dir DIR | --db FILE) --to FILE\n"
                 "\n"
                 "  -d, --data-dir DIR   chorusd's data_dir: backs up DIR/chorus.db\n"
                 "      --db FILE        the database file (store.path) instead\n"
                 "  -o, --to FILE        where the copy goes; written beside it under a\n"
                 "                       temporary name, checked, then renamed over FILE\n"
                 "\n"
                 "Safe while chorusd runs and writes. Exit 0 once the copy is verified\n"
                 "and durable, 1 on any failure (FILE is then left as it was).\n");
}

int ctl_backup(int argc, char **argv)
{
    static const struct option opts[] = {{"data-dir", required_argument, NULL, 'd'},
                                         {"db", required_argument, NULL, 'b'},
                                         {"to", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *data_dir = NULL, *db = NULL, *to = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data_dir = optarg;
            break;
        case 'b':
            db = optarg;
            break;
        case 'o':
            to = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((data_dir == NULL) == (db == NULL) || to == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    char path[4096];
    if (data_dir != NULL)
        snprintf(path, sizeof(path), "%s/chorus.db", data_dir);
    else
        snprintf(path, sizeof(path), "%s", db);
    store_backup_stats_t st;
    core_err_t err = {0};
    if (store_backup(path, to, &st, &err) != 0) {
        fprintf(stderr, "chorusctl backup: %s\n", err.msg);
        return 1;
    }
    printf("backup: %s -> %s: %d pages, schema version %d, integrity ok (%d steps, %d restarts)\n",
           path, to, st.pages, st.schema_version, st.steps, st.restarts);
    return 0;
}
