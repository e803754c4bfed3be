// POSIX implementations of the MicroPython HAL functions the core needs.
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "py/mphal.h"
#include "py/mpprint.h"
#include "py/runtime.h"
#include "py/mpconfig.h"
#include "py/misc.h"
#include "shared/readline/readline.h"

static void write_all(int fd, const char *str, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, str, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        str += n;
        len -= (size_t)n;
    }
}

mp_uint_t mp_hal_stdout_tx_strn(const char *str, size_t len) {
    write_all(STDOUT_FILENO, str, len);
    return len;
}

// Linux terminals translate "\n" themselves, so "cooked" output needs no "\r".
void mp_hal_stdout_tx_strn_cooked(const char *str, size_t len) {
    write_all(STDOUT_FILENO, str, len);
}

void mp_hal_stdout_tx_str(const char *str) {
    write_all(STDOUT_FILENO, str, strlen(str));
}

int mp_hal_stdin_rx_chr(void) {
    unsigned char c;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n == 1) {
            return c;
        }
        if (n == 0) {
            // End of input: a REPL reading a pipe must stop rather than spin.
            return -1;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

int host_readline(vstr_t *line, const char *prompt) {
    mp_hal_stdout_tx_str(prompt);
    for (;;) {
        int c = mp_hal_stdin_rx_chr();
        if (c < 0) {
            return CHAR_CTRL_D;
        }
        if (c == '\n') {
            return 0;
        }
        vstr_add_byte(line, (byte)c);
    }
}

static void stderr_print_strn(void *env, const char *str, size_t len) {
    (void)env;
    write_all(STDERR_FILENO, str, len);
}

const mp_print_t mp_stderr_print = {NULL, stderr_print_strn};

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

mp_uint_t mp_hal_ticks_ms(void) {
    return (mp_uint_t)(monotonic_ns() / 1000000u);
}

mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)(monotonic_ns() / 1000u);
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return (mp_uint_t)monotonic_ns();
}

uint64_t mp_hal_time_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(uint64_t us) {
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        // A signal (e.g. Ctrl-C) interrupted the sleep: let pending exceptions run.
        mp_handle_pending(true);
    }
}

void mp_hal_delay_us(mp_uint_t us) {
    sleep_us(us);
}

void mp_hal_delay_ms(mp_uint_t ms) {
    sleep_us((uint64_t)ms * 1000u);
}
