// Typed array utilities: the pure C core of the emlearn_arrayutils module.
// No MicroPython includes: callable from any C code, testable on its own.
#ifndef TINYSENSE_ARRAYUTILS_H
#define TINYSENSE_ARRAYUTILS_H

#include <stddef.h>

// Element types, named by their Python `array` typecodes:
//   'b' int8, 'B' uint8, 'h' int16, 'H' uint16, 'i' int32, 'f' float32.
// Bytes in bytes, or 0 for a typecode that is not supported.
size_t arrayutils_type_size(char typecode);

typedef enum {
    ARRAYUTILS_OK = 0,
    ARRAYUTILS_ERR_IN_TYPE,       // in_type is not a supported typecode
    ARRAYUTILS_ERR_OUT_TYPE,      // out_type is not a supported typecode
    ARRAYUTILS_ERR_NOT_FINITE,    // a range bound is inf or nan
    ARRAYUTILS_ERR_EMPTY_RANGE,   // in_min == in_max
    ARRAYUTILS_ERR_RANGE_TOO_WIDE, // in_max - in_min or out_max - out_min overflows float32
    ARRAYUTILS_ERR_OVERLAP,       // in and out overlap, but not element for element
} arrayutils_status_t;

// Map `length` elements of `in` linearly from [in_min, in_max] to [out_min, out_max] into `out`.
//
// Each element, in float32 arithmetic, in exactly this order (the same as emlearn-micropython's
// linear_map, so integer data whose exact result is an integer gives that integer exactly):
//     x = (float)in[i]
//     y = ((x - in_min) * (out_max - out_min)) / (in_max - in_min) + out_min
// then y is clamped to the output range [min(out_min, out_max), max(out_min, out_max)], for every
// output type (also as in emlearn-micropython), and for an integer output also to the type's range.
// Integer outputs truncate toward zero (C's float-to-int conversion, as emlearn-micropython does):
// 2.9 -> 2, -2.9 -> -2. A nan element gives nan for 'f' output and the low end of the clamp range for
// an integer output. Reversed ranges (in_min > in_max, out_min > out_max) map as the formula says.
//
// `in` and `out` may be the same array (in place), or overlapping views with the same element type;
// other overlaps are refused. No allocation: a small stack buffer holds float32 blocks.
arrayutils_status_t arrayutils_linear_map(const void *in, char in_type, void *out, char out_type, size_t length,
    float in_min, float in_max, float out_min, float out_max);

#endif // TINYSENSE_ARRAYUTILS_H
