// Hardware abstraction for the host port: POSIX stdio and clocks.
#ifndef TINYSENSE_HOST_MPHALPORT_H
#define TINYSENSE_HOST_MPHALPORT_H

#include "py/mpconfig.h"

// No machine.Pin here; defining this keeps py/mphal.h from pulling in extmod/virtpin.h.
#define mp_hal_pin_obj_t void *

// Tracebacks and debug output go to stderr, like CPython, so tests can tell
// program output from error reports.
extern const struct _mp_print_t mp_stderr_print;

// input() and the REPL read lines through this (there is no shared/readline here).
// Returns 0 after a newline, CHAR_CTRL_D (4) at end of input.
struct _vstr_t;
int host_readline(struct _vstr_t *line, const char *prompt);
#define mp_hal_readline host_readline

static inline void mp_hal_set_interrupt_char(int c) {
    (void)c;
}

#endif // TINYSENSE_HOST_MPHALPORT_H
