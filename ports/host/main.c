// tinysense host port entry point.
//
//   micropython [-X heapsize=N[K|M]] [-c CMD | SCRIPT | -] [ARGS...]
//
// Runs a command, a script or a REPL. Exit status: 0 on success, 1 on an
// uncaught exception, N for SystemExit(N); 2 for bad command-line usage.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "py/builtin.h"
#include "py/compile.h"
#include "py/gc.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/repl.h"
#include "py/runtime.h"
#include "py/stackctrl.h"
#include "genhdr/mpversion.h"

#if MICROPY_ENABLE_GC
#include "shared/runtime/gchelper.h"
#endif

// 2 MiB: room for feature extraction on host datasets while staying a
// believable stand-in for the ESP32-S3's internal RAM heap. -X heapsize= changes it.
#define DEFAULT_HEAP_SIZE (2 * 1024 * 1024)

#define EXIT_UNCAUGHT (1)
#define EXIT_USAGE (2)
// A SystemExit value is returned with this bit set to tell it from the above.
#define FORCED_EXIT (0x100)

const char tinysense_help_text[] =
    "tinysense host MicroPython: the device's C modules on Linux.\n"
    "help('modules') lists the built-in modules.\n";

#if defined(__SANITIZE_ADDRESS__)
// The sanitize variant runs without the GC (see variants/sanitize):
// - nothing is ever freed, so leak reports would be noise;
// - the GC hands out zeroed blocks and parts of the core rely on that, while
//   ASan fills fresh allocations with 0xbe: fill them with zeros, as the device's
//   heap does. (Reads of uninitialised memory are MSan's business, not ASan's.)
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return "detect_leaks=0:malloc_fill_byte=0:max_malloc_fill_size=2147483647";
}
#endif

static int handle_uncaught_exception(mp_obj_base_t *exc) {
    if (mp_obj_is_subclass_fast(MP_OBJ_FROM_PTR(exc->type), MP_OBJ_FROM_PTR(&mp_type_SystemExit))) {
        mp_obj_t exit_val = mp_obj_exception_get_value(MP_OBJ_FROM_PTR(exc));
        mp_int_t val = 0;
        if (exit_val != mp_const_none && !mp_obj_get_int_maybe(exit_val, &val)) {
            // sys.exit("message") prints the message and exits with status 1.
            mp_obj_print_helper(&mp_stderr_print, exit_val, PRINT_STR);
            mp_print_str(&mp_stderr_print, "\n");
            val = 1;
        }
        return FORCED_EXIT | (val & 255);
    }
    mp_obj_print_exception(&mp_stderr_print, MP_OBJ_FROM_PTR(exc));
    return EXIT_UNCAUGHT;
}

// Parses and runs one unit of input; returns 0 or an exit code as above.
static int execute_from_lexer(mp_lexer_t *lex, mp_parse_input_kind_t input_kind, bool is_repl) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        qstr source_name = lex->source_name;
        mp_parse_tree_t parse_tree = mp_parse(lex, input_kind);
        mp_obj_t module_fun = mp_compile(&parse_tree, source_name, is_repl);
        mp_call_function_0(module_fun);
        nlr_pop();
        return 0;
    }
    return handle_uncaught_exception(nlr.ret_val);
}

static int execute_string(const char *str, mp_parse_input_kind_t input_kind, bool is_repl) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_lexer_t *lex = mp_lexer_new_from_str_len(MP_QSTR__lt_stdin_gt_, str, strlen(str), 0);
        nlr_pop();
        return execute_from_lexer(lex, input_kind, is_repl);
    }
    return handle_uncaught_exception(nlr.ret_val);
}

static int execute_file(const char *path) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_lexer_t *lex = mp_lexer_new_from_file(qstr_from_str(path));
        nlr_pop();
        return execute_from_lexer(lex, MP_PARSE_FILE_INPUT, false);
    }
    return handle_uncaught_exception(nlr.ret_val);
}

// True when a line (possibly empty) was read, false at end of input.
static bool read_line(vstr_t *line, const char *prompt) {
    size_t len_before = line->len;
    return host_readline(line, prompt) == 0 || line->len > len_before;
}

// A line-based REPL: enough for interactive pokes and for piping code in.
static int do_repl(void) {
    if (isatty(STDIN_FILENO)) {
        mp_hal_stdout_tx_str(MICROPY_BANNER_NAME_AND_VERSION "; " MICROPY_BANNER_MACHINE "\n"
            "Use Ctrl-D to exit.\n");
    }
    const char *ps1 = isatty(STDIN_FILENO) ? ">>> " : "";
    const char *ps2 = isatty(STDIN_FILENO) ? "... " : "";
    vstr_t line;
    vstr_init(&line, 64);
    for (;;) {
        vstr_reset(&line);
        if (!read_line(&line, ps1)) {
            break;
        }
        if (line.len == 0) {
            continue;
        }
        while (mp_repl_continue_with_input(vstr_null_terminated_str(&line))) {
            vstr_add_byte(&line, '\n');
            if (!read_line(&line, ps2)) {
                break;
            }
        }
        int ret = execute_string(vstr_null_terminated_str(&line), MP_PARSE_SINGLE_INPUT, true);
        if (ret & FORCED_EXIT) {
            vstr_clear(&line);
            return ret;
        }
    }
    vstr_clear(&line);
    return 0;
}

static int usage(const char *argv0) {
    fprintf(stderr,
        "usage: %s [-X heapsize=N[K|M]] [-c CMD | SCRIPT | -] [ARGS...]\n"
        "  -c CMD          run the program passed in as a string\n"
        "  -X heapsize=N   GC heap size in bytes, with optional K or M suffix (default %d)\n"
        "  SCRIPT          run a .py file; its directory becomes sys.path[0]\n"
        "  -               read the program from stdin\n"
        "Environment: MICROPYPATH=dir1:dir2 adds directories to sys.path.\n",
        argv0, DEFAULT_HEAP_SIZE);
    return EXIT_USAGE;
}

static bool parse_heap_size(const char *text, long *heap_size) {
    char *end;
    errno = 0;
    long size = strtol(text, &end, 0);
    if (errno != 0 || end == text || size <= 0) {
        return false;
    }
    if (*end == 'k' || *end == 'K') {
        size *= 1024;
        ++end;
    } else if (*end == 'm' || *end == 'M') {
        size *= 1024 * 1024;
        ++end;
    }
    if (*end != '\0' || size < 16 * 1024) {
        return false;
    }
    *heap_size = size;
    return true;
}

static void set_sys_path(const char *script_dir) {
    mp_sys_path = mp_obj_new_list(0, NULL);
    mp_obj_list_append(mp_sys_path, mp_obj_new_str_from_cstr(script_dir));
    const char *path = getenv("MICROPYPATH");
    while (path != NULL && *path != '\0') {
        const char *sep = strchr(path, ':');
        size_t len = sep != NULL ? (size_t)(sep - path) : strlen(path);
        if (len > 0) {
            mp_obj_list_append(mp_sys_path, mp_obj_new_str(path, len));
        }
        path = sep != NULL ? sep + 1 : NULL;
    }
}

static void set_sys_argv(int argc, char **argv) {
    mp_obj_list_init(MP_OBJ_TO_PTR(mp_sys_argv), 0);
    for (int i = 0; i < argc; ++i) {
        mp_obj_list_append(mp_sys_argv, mp_obj_new_str_from_cstr(argv[i]));
    }
}

int main(int argc, char **argv) {
    mp_stack_ctrl_init();
    // Linux gives the main thread 8 MiB; leave headroom for C frames (the
    // sanitizer build's are several times larger).
    mp_stack_set_limit(1024 * 1024 * (sizeof(void *) / 4));

    long heap_size = DEFAULT_HEAP_SIZE;
    int arg = 1;
    while (arg < argc && strcmp(argv[arg], "-X") == 0) {
        if (arg + 1 >= argc) {
            return usage(argv[0]);
        }
        const char *opt = argv[arg + 1];
        if (strncmp(opt, "heapsize=", 9) != 0 || !parse_heap_size(opt + 9, &heap_size)) {
            fprintf(stderr, "%s: bad -X option '%s' (expected heapsize=N[K|M], at least 16K)\n", argv[0], opt);
            return EXIT_USAGE;
        }
        arg += 2;
    }
    if (arg < argc && (strcmp(argv[arg], "-h") == 0 || strcmp(argv[arg], "--help") == 0)) {
        usage(argv[0]);
        return 0;
    }

    #if MICROPY_ENABLE_GC
    char *heap = malloc((size_t)heap_size);
    if (heap == NULL) {
        fprintf(stderr, "%s: cannot allocate a %ld byte heap\n", argv[0], heap_size);
        return EXIT_UNCAUGHT;
    }
    gc_init(heap, heap + heap_size);
    #else
    (void)heap_size;
    #endif

    mp_init();

    int ret;
    if (arg < argc && strcmp(argv[arg], "-c") == 0) {
        if (arg + 1 >= argc) {
            mp_deinit();
            return usage(argv[0]);
        }
        set_sys_path("");
        // sys.argv is ['-c', ARGS...] as in CPython.
        const char *command = argv[arg + 1];
        argv[arg + 1] = argv[arg];
        set_sys_argv(argc - arg - 1, argv + arg + 1);
        ret = execute_string(command, MP_PARSE_FILE_INPUT, false);
    } else if (arg < argc && strcmp(argv[arg], "-") != 0) {
        if (argv[arg][0] == '-') {
            fprintf(stderr, "%s: unknown option '%s'\n", argv[0], argv[arg]);
            mp_deinit();
            return usage(argv[0]);
        }
        const char *script = argv[arg];
        const char *slash = strrchr(script, '/');
        vstr_t dir;
        vstr_init(&dir, 16);
        if (slash != NULL) {
            vstr_add_strn(&dir, script, (size_t)(slash - script));
        }
        set_sys_path(vstr_null_terminated_str(&dir));
        vstr_clear(&dir);
        set_sys_argv(argc - arg, argv + arg);
        ret = execute_file(script);
    } else {
        set_sys_path("");
        set_sys_argv(arg < argc ? argc - arg : 1, arg < argc ? argv + arg : (char *[]) {""});
        if (arg < argc || !isatty(STDIN_FILENO)) {
            // Program on stdin: read it all, then run it as a file.
            vstr_t program;
            vstr_init(&program, 256);
            int c;
            while ((c = mp_hal_stdin_rx_chr()) >= 0) {
                vstr_add_byte(&program, (byte)c);
            }
            ret = execute_string(vstr_null_terminated_str(&program), MP_PARSE_FILE_INPUT, false);
            vstr_clear(&program);
        } else {
            ret = do_repl();
        }
    }

    #if MICROPY_ENABLE_FINALISER
    // Run finalisers (e.g. close files) before exit, as MicroPython ports do.
    gc_sweep_all();
    #endif
    mp_deinit();
    #if MICROPY_ENABLE_GC
    free(heap);
    #endif
    return ret & 0xff;
}

#if MICROPY_ENABLE_GC
void gc_collect(void) {
    gc_collect_start();
    gc_helper_collect_regs_and_stack();
    gc_collect_end();
}
#endif

void nlr_jump_fail(void *val) {
    fprintf(stderr, "FATAL: uncaught NLR %p\n", val);
    exit(EXIT_UNCAUGHT);
}
