/*
 * tools/hostkit/main.c - the hostkit command-line tool (build/bin/hostkit):
 *
 *     hostkit new worker NAME [--output DIR]   a worker project in DIR/NAME
 *     hostkit new web NAME [--output DIR]      a web application project in DIR/NAME
 *     hostkit --help | --version | new --help
 *
 * This file reads the command line, prints help and errors and maps results
 * to exit codes; scaffold.c checks names, renders the embedded templates
 * (templates.h, generated from templates/) and writes the project.
 *
 * Exit codes: 0 success (also --help, --version); 1 an I/O failure (nothing
 * is left behind); 2 a usage error: one line on stderr naming the problem
 * and pointing to --help, nothing written. stdout carries only help, the
 * version and the list of files created. Depends on libc and POSIX only; the
 * tool does not link libhostkit. Documented in docs/cli.md and hostkit(1).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scaffold.h"

/* Set by tools/hostkit/CMakeLists.txt. */
#ifndef HK_CLI_VERSION
#error "HK_CLI_VERSION must be defined (the project's version)"
#endif
#ifndef HK_CLI_PREFIX
#define HK_CLI_PREFIX "/usr/local"
#endif
#ifndef HK_CLI_BIN_TO_PREFIX
#define HK_CLI_BIN_TO_PREFIX ".."
#endif
#ifndef HK_CLI_INCLUDEDIR
#define HK_CLI_INCLUDEDIR "include"
#endif

enum { EXIT_OK = 0, EXIT_IO = 1, EXIT_USAGE = 2 };

static const char main_help[] =
    "Usage: hostkit COMMAND [ARGS...]\n"
    "\n"
    "Creates projects that use hostkit, the Generic Host for C.\n"
    "\n"
    "Commands:\n"
    "  new TEMPLATE NAME [--output DIR]  create the project NAME from a template\n"
    "                                    (templates: worker, web; see 'hostkit new --help')\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "      --version  print the version and exit\n"
    "\n"
    "Exit codes: 0 success, 1 I/O failure, 2 usage error. See hostkit(1).\n";

static const char new_help[] =
    "Usage: hostkit new TEMPLATE NAME [--output DIR]\n"
    "\n"
    "Creates the project NAME in the directory DIR/NAME (default: ./NAME) from a template.\n"
    "\n"
    "Templates:\n"
    "  worker  a background worker: src/main.c (a background service that resolves a\n"
    "          scoped object per iteration, a hosted service, a bound and validated\n"
    "          options section), appsettings.json, appsettings.Development.json,\n"
    "          CMakeLists.txt, README.md and NAME.service, a hardened systemd unit\n"
    "  web     a web application on the web host (libhostkit-web): src/main.c (routes\n"
    "          GET /, GET /hello/{name} and POST /echo, the health and metrics\n"
    "          endpoints, a middleware hook and a background service), appsettings.json,\n"
    "          appsettings.Development.json, CMakeLists.txt, README.md, and NAME.socket\n"
    "          with NAME.service, a socket-activated, hardened systemd unit pair\n"
    "\n"
    "NAME is 1 to 64 characters: a letter, then letters, digits, '_' or '-'. It names the\n"
    "directory, the executable, the CMake project and the systemd units.\n"
    "\n"
    "Options:\n"
    "  -o, --output DIR  create the project in DIR/NAME; DIR must exist\n"
    "  -h, --help        show this help and exit\n"
    "\n"
    "DIR/NAME must not exist, or be an empty directory. The files are written into a\n"
    "temporary directory in DIR that is renamed to DIR/NAME at the end, so a failure\n"
    "leaves nothing behind.\n";

/* Prints "hostkit: MESSAGE (see 'HELP')" on stderr and returns EXIT_USAGE. */
static int usage_error(const char *help, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *help, const char *fmt, ...) {
    va_list ap;
    fputs("hostkit: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see '%s')\n", help);
    return EXIT_USAGE;
}

static int print_help(const char *text) {
    fputs(text, stdout);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_IO;
}

/*
 * Where hostkit is installed, for the generated README's
 * -DCMAKE_PREFIX_PATH=: the prefix this binary runs from when it holds the
 * hostkit headers (an installed tool, wherever it was installed to), else the
 * prefix the build was configured with (a tool run from its build tree).
 */
static const char *hostkit_prefix(char *buf, size_t len) {
    char exe[PATH_MAX], guess[PATH_MAX + 64], header[PATH_MAX + 64];
    if (HK_CLI_INCLUDEDIR[0] == '/')
        return HK_CLI_PREFIX;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return HK_CLI_PREFIX;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return HK_CLI_PREFIX;
    *slash = '\0';
    snprintf(guess, sizeof guess, "%s/%s", exe, HK_CLI_BIN_TO_PREFIX);
    if (len < PATH_MAX || !realpath(guess, buf))
        return HK_CLI_PREFIX;
    snprintf(header, sizeof header, "%s/%s/hostkit/hostkit.h", buf, HK_CLI_INCLUDEDIR);
    return access(header, R_OK) == 0 ? buf : HK_CLI_PREFIX;
}

/* s as one shell word: as is when it holds only safe characters, else in '...'. */
static char *shell_word(const char *s) {
    if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                        "/._+-:@%,=") == strlen(s))
        return strdup(s);
    size_t quotes = 0;
    for (const char *p = s; *p; p++)
        quotes += *p == '\'';
    char *w = malloc(strlen(s) + 3 * quotes + 3), *o = w;
    if (!w)
        return NULL;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4); /* close, escaped quote, reopen */
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return w;
}

/* Renders the template kind for name and writes it as target (inside dir). */
static int create_project(const char *kind, const char *name, const char *dir,
                          const char *target) {
    char err[1024] = "", prefix_buf[PATH_MAX];
    char *prefix = shell_word(hostkit_prefix(prefix_buf, sizeof prefix_buf));
    if (!prefix) {
        fprintf(stderr, "hostkit: out of memory\n");
        return EXIT_IO;
    }
    const cli_var_t vars[] = {
        {"name", name},
        {"hostkit_version", HK_CLI_VERSION},
        {"hostkit_prefix", prefix},
    };
    cli_project_t project = {0};
    int r = cli_project_render(kind, vars, sizeof vars / sizeof vars[0], &project, err, sizeof err);
    free(prefix);
    if (r < 0) {
        fprintf(stderr, "hostkit: %s\n", err);
        return EXIT_IO;
    }
    r = cli_project_write(&project, dir, target, err, sizeof err);
    if (r == -ENOTEMPTY || r == -EEXIST) {
        cli_project_free(&project);
        return usage_error("hostkit new --help", "%s", err);
    }
    if (r < 0) {
        cli_project_free(&project);
        fprintf(stderr, "hostkit: %s\n", err);
        return EXIT_IO;
    }
    printf("Created the %s project %s in %s/:\n", kind, name, target);
    for (size_t i = 0; i < project.n; i++)
        printf("  %s/%s\n", target, project.files[i].path);
    printf("Next: cd %s and follow README.md to build it, run it and install it as a "
           "systemd service.\n",
           target);
    cli_project_free(&project);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_IO;
}

/* hostkit new TEMPLATE NAME [--output DIR]; options may come anywhere. */
static int cmd_new(int argc, char **argv) {
    static const char help[] = "hostkit new --help";
    const char *pos[3] = {NULL, NULL, NULL};
    const char *dir = NULL;
    size_t npos = 0;
    bool help_wanted = false, options_done = false;
    char q[256];

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                options_done = true;
            } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                help_wanted = true;
            } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
                if (i + 1 >= argc)
                    return usage_error(help, "option '%s' needs a directory", a);
                dir = argv[++i];
            } else if (strncmp(a, "--output=", 9) == 0) {
                dir = a + 9;
            } else {
                return usage_error(help, "unknown option '%s'", cli_quote(a, q, sizeof q));
            }
            continue;
        }
        if (npos < 3)
            pos[npos] = a;
        npos++;
    }
    if (help_wanted)
        return print_help(new_help);
    if (npos == 0)
        return usage_error(help, "missing template and name: hostkit new worker NAME");
    if (!cli_template_exists(pos[0])) {
        char names[256];
        return usage_error(help, "unknown template '%s' (available: %s)",
                           cli_quote(pos[0], q, sizeof q), cli_template_names(names, sizeof names));
    }
    if (npos == 1)
        return usage_error(help, "missing project name: hostkit new %s NAME", pos[0]);
    if (npos > 2)
        return usage_error(help, "unexpected argument '%s'", cli_quote(pos[2], q, sizeof q));
    if (dir && !*dir)
        return usage_error(help, "empty output directory");

    const char *name = pos[1];
    char why[256];
    if (cli_name_check(name, why, sizeof why) < 0)
        return usage_error(help, "invalid project name '%s': %s", cli_quote(name, q, sizeof q),
                           why);

    /* target: NAME, or DIR/NAME (without doubling a trailing '/'). */
    const char *parent = dir ? dir : ".";
    size_t dlen = dir ? strlen(dir) : 0;
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    char *target = malloc(dlen + strlen(name) + 2);
    if (!target) {
        fprintf(stderr, "hostkit: out of memory\n");
        return EXIT_IO;
    }
    if (dir)
        sprintf(target, "%.*s%s%s", (int)dlen, dir, dir[dlen - 1] == '/' ? "" : "/", name);
    else
        strcpy(target, name);
    int code = create_project(pos[0], name, parent, target);
    free(target);
    return code;
}

int main(int argc, char **argv) {
    static const char help[] = "hostkit --help";
    char q[256];
    if (argc < 2)
        return usage_error(help, "missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)
        return print_help(main_help);
    if (strcmp(cmd, "--version") == 0) {
        printf("hostkit %s\n", HK_CLI_VERSION);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_IO;
    }
    if (strcmp(cmd, "new") == 0)
        return cmd_new(argc - 2, argv + 2);
    if (cmd[0] == '-')
        return usage_error(help, "unknown option '%s'", cli_quote(cmd, q, sizeof q));
    return usage_error(help, "unknown command '%s'", cli_quote(cmd, q, sizeof q));
}
