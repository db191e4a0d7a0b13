/* infersim's entry point: the command line, run by cli_main (cli/main.c). */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
