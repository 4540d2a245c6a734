/* cli: bffgate's subcommands: invoke one function without a server, list routes, write an OpenAPI document. */
#ifndef GW_CLI_H
#define GW_CLI_H

#include <stdio.h>

#include "../bff/cfg.h"

/*
 * The subcommands load the config exactly like --check (gw_config_load with one thread; -L/--lib-path
 * and BFFGATE_LIB_PATH are honoured) and never open a socket or start a thread of their own.
 *
 *   bffgate invoke CONFIG FUNCTION [EVENT.json | -] [--timeout-ms N] [--memory-mb N]
 *       Runs FUNCTION once, synchronously (fn_invoke, no event loop), on an event read from the
 *       file, from stdin ('-') or, without one, an empty GET / event. Writes to stdout one JSON
 *       object {"statusCode", "headers", "body" (or base64 "body" + "isBase64Encoded"), "json"
 *       (when the body is JSON)} that is what the server would answer for the same request,
 *       error answers included (500 function failed, 500 memory_mb, 504 timeout_ms); then to
 *       stderr the failure reason (if any) and one REPORT line. Exits 0 when the function ran,
 *       whatever its status; 1 on config or event errors; 2 on usage errors.
 *   bffgate routes CONFIG
 *       Prints each frontend (name, match) and its routes (methods, pattern, function, limits).
 *   bffgate openapi CONFIG FRONTEND
 *       Writes an OpenAPI 3.1.0 document (pretty-printed JSON) of FRONTEND's routes.
 *
 * Config errors are printed like the server prints them (gw_cli_print_config_errors).
 * Everything here runs on the main thread and is for one-shot processes: nothing is kept.
 */

/* True when `word` names a subcommand ("invoke", "routes", "openapi"). */
int gw_cli_is_command(const char *word);

/* Runs a subcommand: argv[0] is its name, the rest its arguments and options. Returns the process's
 * exit status (0, 1 config/event/lookup error, 2 usage error). */
int gw_cli_run(int argc, char **argv);

/* The subcommands' part of `bffgate --help`. */
void gw_cli_usage(FILE *out);

/* Prints every config error as "FILE: JSON.PATH: reason", then "bffgate: N configuration errors". */
void gw_cli_print_config_errors(const cfg_errors *errs);

#endif
