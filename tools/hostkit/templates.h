/*
 * tools/hostkit/templates.h - the project templates embedded in the hostkit
 * tool.
 *
 * The table is generated at build time by cmake/EmbedTemplates.cmake from
 * the files under templates/ (one folder per template: templates/worker/...),
 * so the tool needs nothing outside its own binary. Paths are relative to
 * templates/ and use '/'; they may hold placeholders ("worker/{{name}}.service")
 * just like the contents (scaffold.c renders both). The table is sorted by
 * path in byte order. Depends on nothing.
 */
#ifndef HOSTKIT_CLI_TEMPLATES_H
#define HOSTKIT_CLI_TEMPLATES_H

#include <stddef.h>

typedef struct cli_template_file {
    const char *path; /* "worker/src/main.c" */
    const char *data; /* size bytes, followed by a NUL */
    size_t size;
} cli_template_file_t;

extern const cli_template_file_t cli_template_files[];
extern const size_t cli_template_nfiles;

#endif /* HOSTKIT_CLI_TEMPLATES_H */
