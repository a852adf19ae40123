#include "cli/cli.h"
int cmd_validate(int argc, char **argv) { (void)argc; (void)argv; return CLI_EXIT_USAGE; }
