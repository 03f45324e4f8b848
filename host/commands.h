/* commands.h: the subcommands of edm2host. Each takes (argc, argv) after the command name and returns
 * the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef EDM2_HOST_COMMANDS_H
#define EDM2_HOST_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_check_ref(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

/* True when argv holds -h or --help. */
int wants_help(int argc, char **argv);

#endif
