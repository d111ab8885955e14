/* chorusctl: the operator's and flow developer's command line. This file is
 * only the dispatch table; each subcommand is src/cmd/ctl_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "cmd/ctl.h"

int ctl_nlu(int argc, char **argv);
int ctl_validate(int argc, char **argv);
int ctl_chat(int argc, char **argv);
int ctl_test(int argc, char **argv);
int ctl_bench_brain(int argc, char **argv);
int ctl_store(int argc, char **argv);
int ctl_report(int argc, char **argv);
int ctl_transcripts(int argc, char **argv);
int ctl_label(int argc, char **argv);
int ctl_guard(int argc, char **argv);
int ctl_backup(int argc, char **argv);
int ctl_rollout(int argc, char **argv);
int ctl_learn(int argc, char **argv);
int ctl_roadmap(int argc, char **argv);
int ctl_simulate(int argc, char **argv);

static const ctl_command_t commands[] = {
    {"nlu", ctl_nlu, "evaluate and query the intent router"},
    {"validate", ctl_validate, "check flow files and print every problem"},
    {"chat", ctl_chat, "talk to the flows in the terminal"},
    {"test", ctl_test, "run conversation tests against the flows"},
    {"bench-brain", ctl_bench_brain, "measure brain turns per second and bytes per conversation"},
    {"report", ctl_report, "KPI report from the database or a running daemon"},
    {"transcripts", ctl_transcripts, "list conversations and show one with its turns"},
    {"label", ctl_label, "record the correct intent of a user turn (routing accuracy)"},
    {"store-load", ctl_store, "write synthetic turns through the store (benchmarks, crash tests)"},
    {"guard", ctl_guard, "evaluate guardrail rules on a labelled corpus"},
    {"token", ctl_token, "create, list and revoke admin API tokens with roles"},
    {"audit", ctl_audit, "verify the audit trail's hash chain and list its entries"},
    {"backup", ctl_backup, "copy the database while chorusd runs (online, verified)"},
    {"rollout", ctl_rollout, "start, watch, promote and abort A/B rollouts of a flow"},
    {"flows", ctl_flows, "reload the flows of a running daemon and show what is in force"},
    {"learn", ctl_learn, "rank what to automate next from the stored transcripts"},
    {"roadmap", ctl_roadmap, "the automation roadmap: workflows, KPIs, trends, opportunities"},
    {"simulate", ctl_simulate, "play simulated customers against the flows or a daemon"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl COMMAND [ARGS...]\n\ncommands:\n");
    for (const ctl_command_t *c = commands; c->name != NULL; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\n`chorusctl COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("chorusctl %s\n", CHORUS_VERSION);
        return 0;
    }
    for (const ctl_command_t *c = commands; c->name != NULL; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "chorusctl: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
