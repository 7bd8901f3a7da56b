/*
 * tools/hostkit/scaffold.h - what `hostkit new` does once the command line is
 * understood: check the project name, render a template's files with the
 * placeholder values, and write them as one new directory.
 *
 * Conventions (as in libhostkit): functions return 0 or a negative errno
 * value and, on failure, write a one-line message into a caller-supplied
 * buffer (err, err_len), naming the file or path and the failing call; output
 * parameters are named ret_* and are left untouched on failure. Nothing here
 * prints or exits; main.c maps the result to an exit code. Single-threaded.
 */
#ifndef HOSTKIT_CLI_SCAFFOLD_H
#define HOSTKIT_CLI_SCAFFOLD_H

#include <stdbool.h>
#include <stddef.h>

/* The longest project name accepted. */
#define CLI_NAME_MAX 64

/* A placeholder value: {{key}} in a template path or file becomes value. */
typedef struct cli_var {
    const char *key;
    const char *value;
} cli_var_t;

/* One rendered file: its path inside the project ("src/main.c") and contents. */
typedef struct cli_file {
    char *path;
    char *data;
    size_t size;
} cli_file_t;

/* A rendered project: files in the template's order. Free with cli_project_free. */
typedef struct cli_project {
    cli_file_t *files;
    size_t n;
} cli_project_t;

/*
 * Checks a project name: 1 to CLI_NAME_MAX characters, an ASCII letter first,
 * then ASCII letters, digits, '_' or '-' ([A-Za-z][A-Za-z0-9_-]{0,63}). The
 * name becomes a directory, an executable, a CMake target and a systemd unit,
 * and appears in C strings, JSON and Markdown, where these characters are safe.
 * Returns 0, or -EINVAL with the reason in err ("it must start with a letter").
 */
int cli_name_check(const char *name, char *err, size_t err_len);

/* Whether templates/<kind>/ holds at least one file. */
bool cli_template_exists(const char *kind);

/*
 * The embedded templates' names for a message, in byte order, separated by
 * ", " ("web, worker"), written into buf (truncated to the names that fit
 * when len is too small; "" when len is 0 or nothing fits). Returns buf.
 */
const char *cli_template_names(char *buf, size_t len);

/*
 * Renders every file of templates/<kind>/: the path below <kind>/ and the
 * contents, with each {{key}} (key: letters, digits, '_') replaced by its
 * value in vars. A "{{" not followed by key and "}}" is copied as is; an
 * unknown key is an error (a template bug). On success *ret_project owns the
 * files. Returns 0, -ENOENT (no such template), -EINVAL (unknown placeholder;
 * err names the file, line and key) or -ENOMEM.
 */
int cli_project_render(const char *kind, const cli_var_t *vars, size_t nvars,
                       cli_project_t *ret_project, char *err, size_t err_len);

/* Frees the files of a project rendered by cli_project_render. Accepts NULL. */
void cli_project_free(cli_project_t *project);

/*
 * Writes the project as the directory target, which must be a path directly
 * inside parent (an existing directory) and must not exist or be an empty
 * directory. The files go into a temporary directory in parent first
 * (".NAME.hostkit-XXXXXX", mode 0700 while being filled), which gets the
 * mode a new directory would get and is then renamed to target in one step:
 * either target appears complete or, on any failure, nothing is left (the
 * temporary directory is removed). Files are created with mode 0666 and
 * directories with 0777, both less the umask.
 * Returns 0; -ENOTEMPTY (target is a non-empty directory) or -EEXIST (target
 * exists and is not a directory): a refusal, nothing was written; any other
 * negative errno: an I/O failure (parent missing or not writable, disk full,
 * file too large, ...). err tells which path and call failed.
 */
int cli_project_write(const cli_project_t *project, const char *parent, const char *target,
                      char *err, size_t err_len);

/*
 * Copies s into buf for a message: printable ASCII as is, every other byte as
 * \xNN, truncated with "..." when buf is too small. Returns buf.
 */
const char *cli_quote(const char *s, char *buf, size_t len);

#endif /* HOSTKIT_CLI_SCAFFOLD_H */
