/* chorusctl flows SUBCOMMAND: the flow lifecycle against a running daemon.
 * This file is only the dispatch table; each subcommand lives in the file
 * that owns it (reload and status: ctl_flows_reload.c). */
#include <stdio.h>
#include <string.h>

#include "cmd/ctl.h"

static const ctl_command_t subcommands[] = {
    {"reload", ctl_flows_reload, "reload the flows now and print the result"},
    {"status", ctl_flows_status, "the flows in force and the last reload attempt"},
    {"list", ctl_flows_list, "what each environment runs: flow, version, author, time"},
    {"versions", ctl_flows_versions, "a flow's recorded versions (--diff: with their diffs)"},
    {"promote", ctl_flows_promote, "test staging's versions, then promote them (--to production)"},
    {"rollback", ctl_flows_rollback, "restore a flow's previous version (or --to one it ran)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl flows SUBCOMMAND [ARGS...]\n\nsubcommands:\n");
    for (const ctl_command_t *c = subcommands; c->name != NULL; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\n`chorusctl flows SUBCOMMAND --help` describes each one.\n");
}

int ctl_flows(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const ctl_command_t *c = subcommands; c->name != NULL; c++)
        if (!strcmp(argv[1], c->name))
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "chorusctl flows: unknown subcommand \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
