/* ctl.h — chorusctl's subcommands. Each lives in its own src/cmd/ctl_<name>.c
 * and is listed once in the table in chorusctl.c. A subcommand gets argv
 * starting at its own name, prints its output and returns the exit code:
 * 0 success, 1 a failure it reports (a failed test, an invalid file),
 * 2 a usage error. */
#ifndef CHORUS_CTL_H
#define CHORUS_CTL_H

typedef int (*ctl_run_fn)(int argc, char **argv);

typedef struct ctl_command_s {
    const char *name; /* "validate" */
    ctl_run_fn run;
    const char *summary; /* one line for `chorusctl help` */
} ctl_command_t;

/* chorusctl token (ctl_token.c) and audit (ctl_audit.c). */
int ctl_token(int argc, char **argv);
int ctl_audit(int argc, char **argv);

/* chorusctl flows SUBCOMMAND (ctl_flows.c, a dispatch table like this one)
 * and its subcommands, each in the file that owns it. */
int ctl_flows(int argc, char **argv);
int ctl_flows_reload(int argc, char **argv);   /* ctl_flows_reload.c */
int ctl_flows_status(int argc, char **argv);   /* ctl_flows_reload.c */
int ctl_flows_list(int argc, char **argv);     /* ctl_flows_env.c */
int ctl_flows_versions(int argc, char **argv); /* ctl_flows_env.c */
int ctl_flows_promote(int argc, char **argv);  /* ctl_flows_env.c */
int ctl_flows_rollback(int argc, char **argv); /* ctl_flows_env.c */

#endif
