// tinysense host port: MicroPython for Linux with the tinysense C modules.
// It mirrors the ESP32-S3 firmware's numerics (single-precision float, and a
// 32-bit variant) so that modules proven here behave the same on the device.

#include <stdint.h>
#include <alloca.h>

// Variant-specific settings (word size, GC on/off for the sanitizer build).
#include <mpconfigvariant.h>

#define MICROPY_CONFIG_ROM_LEVEL            (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

// Numerics: the ESP32-S3 FPU is single precision and its port uses float.
#define MICROPY_FLOAT_IMPL                  (MICROPY_FLOAT_IMPL_FLOAT)
#define MICROPY_LONGINT_IMPL                (MICROPY_LONGINT_IMPL_MPZ)

// Memory.
#ifndef MICROPY_ENABLE_GC
#define MICROPY_ENABLE_GC                   (1)
#endif
#define MICROPY_ENABLE_FINALISER            (MICROPY_ENABLE_GC)
#define MICROPY_PY_GC                       (MICROPY_ENABLE_GC)
#define MICROPY_GCREGS_SETJMP               (1)
#define MICROPY_MALLOC_USES_ALLOCATED_SIZE  (1)
#define MICROPY_MEM_STATS                   (1)
#define MICROPY_ENABLE_EMERGENCY_EXCEPTION_BUF (1)
#define MICROPY_EMERGENCY_EXCEPTION_BUF_SIZE (256)
#define MICROPY_STACK_CHECK                 (1)
#define MICROPY_ALLOC_PATH_MAX              (4096)

// Bytecode dispatch as on the device: the esp32 port sets MICROPY_OPT_COMPUTED_GOTO (a jump table
// instead of one `switch` per opcode; the other MICROPY_OPT_* it relies on come with the EXTRA_FEATURES
// level). Without it every bytecode here cost a bounds-checked switch more than on the ESP32-S3, and
// benchmarks that compare C modules with MicroPython code measured a slower VM than the device runs.
#define MICROPY_OPT_COMPUTED_GOTO           (1)

// Compiler and runtime.
#define MICROPY_ENABLE_COMPILER             (1)
#define MICROPY_PERSISTENT_CODE_LOAD        (1)
#define MICROPY_HELPER_REPL                 (1)
#define MICROPY_KBD_EXCEPTION               (1)
#define MICROPY_DEBUG_PRINTERS              (1)
#define MICROPY_DEBUG_PRINTER               (&mp_stderr_print)
#define MICROPY_ERROR_PRINTER               (&mp_stderr_print)
#define MICROPY_USE_INTERNAL_PRINTF         (0)
#define MICROPY_USE_INTERNAL_ERRNO          (0)
#define MICROPY_MODULE_OVERRIDE_MAIN_IMPORT (1)

// Imports from the POSIX filesystem (sys.path / MICROPYPATH), .py and .mpy.
#define MICROPY_READER_POSIX                (1)
#define MICROPY_HELPER_LEXER_UNIX           (1)
#define MICROPY_PY_SYS_PATH_ARGV_DEFAULTS   (0)
#define MICROPY_PY_SYS_EXIT                 (1)
#define MICROPY_PY_SYS_PLATFORM             "linux"
#define MICROPY_PY_SYS_STDFILES             (1)
#define MICROPY_PY_SYS_STDIO_BUFFER         (1)
#define MICROPY_PY_SYS_EXC_INFO             (1)
#define MICROPY_PY_IO_IOBASE                (1)
#define MICROPY_PY_MICROPYTHON_HEAP_LOCKED  (1)
#define MICROPY_PY_BUILTINS_HELP_TEXT       tinysense_help_text

// The sdist has py/ and shared/ but no extmod/: the extmod-backed modules are
// off, and the port provides open(), sys.stdin/out/err and `time` itself.
#define MICROPY_PY_TIME                     (0)
#define MICROPY_PY_OS                       (0)
#define MICROPY_PY_JSON                     (0)
#define MICROPY_PY_RE                       (0)
#define MICROPY_PY_SELECT                   (0)
#define MICROPY_PY_ASYNCIO                  (0)
#define MICROPY_PY_UCTYPES                  (0)
#define MICROPY_PY_DEFLATE                  (0)
#define MICROPY_PY_HEAPQ                    (0)
#define MICROPY_PY_HASHLIB                  (0)
#define MICROPY_PY_BINASCII                 (0)
#define MICROPY_PY_RANDOM                   (0)
#define MICROPY_PY_FRAMEBUF                 (0)
#define MICROPY_PY_PLATFORM                 (0)
#define MICROPY_PY_VFS                      (0)
#define MICROPY_PY_MACHINE                  (0)
#define MICROPY_PY_NETWORK                  (0)
#define MICROPY_PY_SOCKET                   (0)
#define MICROPY_PY_BLUETOOTH                (0)
#define MICROPY_PY_THREAD                   (0)

// Type definitions for the specific machine.
typedef long mp_off_t;

// ssize_t and friends come from the system headers.
#include <sys/types.h>

#define MICROPY_HW_BOARD_NAME               "tinysense host"
#define MICROPY_HW_MCU_NAME                 "linux"

extern const char tinysense_help_text[];

#define MP_STATE_PORT MP_STATE_VM
