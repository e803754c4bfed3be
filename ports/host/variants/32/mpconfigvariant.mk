# 32-bit build (-m32, needs gcc-multilib): the ESP32-S3's word size.
MICROPY_FORCE_32BIT = 1
