# 32-bit build (-m32, needs gcc-multilib): the ESP32-S3's word size.
MICROPY_FORCE_32BIT = 1
# Round every float operation to single precision, as the ESP32-S3's FPU does; gcc's
# default for -m32 is the x87 unit, whose excess precision makes results depend on
# register spills (chunked and one-shot filtering would differ).
CFLAGS += -msse2 -mfpmath=sse
