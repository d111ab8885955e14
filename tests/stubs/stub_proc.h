/* Test helper: starts a Python stub server from tests/stubs/ in a child
 * process, reads its `READY port=N` line, and stops it. Header-only so every
 * C test that needs a loopback peer can include it. */
#ifndef CHORUS_TEST_STUB_PROC_H
#define CHORUS_TEST_STUB_PROC_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

typedef struct stub_proc_s {
    pid_t pid; /* child, 0 when not running */
    int port;  /* the port it bound */
    FILE *out; /* its stdout */
} stub_proc_t;

/* Starts python3 tests/stubs/<script> with up to 4 extra arguments (NULL
 * terminated). Returns 0 and fills sp, or -1. */
static inline int stub_proc_start(stub_proc_t *sp, const char *script, const char *const *args)
{
    const char *src = getenv("CHORUS_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/stubs/%s", src ? src : ".", script);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        const char *argv[12] = {"python3", "-u", path};
        int n = 3;
        for (int i = 0; args != NULL && args[i] != NULL && n < 11; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    sp->pid = pid;
    sp->out = fdopen(fds[0], "r");
    char line[256];
    sp->port = 0;
    while (fgets(line, sizeof(line), sp->out) != NULL) {
        const char *p = strstr(line, "READY port=");
        if (p != NULL) {
            sp->port = (int)strtol(p + 11, NULL, 10);
            break;
        }
    }
    return sp->port > 0 ? 0 : -1;
}

static inline void stub_proc_stop(stub_proc_t *sp)
{
    if (sp->pid > 0) {
        kill(sp->pid, SIGTERM);
        waitpid(sp->pid, NULL, 0);
        sp->pid = 0;
    }
    if (sp->out) {
        fclose(sp->out);
        sp->out = NULL;
    }
}

/* A loopback port nothing listens on: bind port 0, read it back, close. */
static inline int stub_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

#endif
