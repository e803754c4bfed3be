// The MicroPython sdist ships py/ and shared/ without extmod/, yet py/modsys.c and
// shared/runtime/pyexec.c include this header unconditionally. The platform module
// is disabled (MICROPY_PY_PLATFORM=0), so nothing from it is needed: an empty
// header on the include path satisfies the includes.
#ifndef TINYSENSE_SHIM_EXTMOD_MODPLATFORM_H
#define TINYSENSE_SHIM_EXTMOD_MODPLATFORM_H
#define MICROPY_PLATFORM_VERSION ""
#endif
