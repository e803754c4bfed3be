// tinysense generic ESP32-S3 image. Pins used by the frozen drivers live in board_pins.py.
#ifndef MICROPY_HW_BOARD_NAME
// The SPIRAM_OCT variant sets its own name from mpconfigvariant_SPIRAM_OCT.cmake.
#define MICROPY_HW_BOARD_NAME               "tinysense generic ESP32-S3"
#endif
#define MICROPY_HW_MCU_NAME                 "ESP32-S3"

// Modules with an external USB-UART bridge (no native USB) still get a REPL.
#define MICROPY_HW_ENABLE_UART_REPL         (1)

// Default machine.I2C(0) pins; keep equal to I2C in board_pins.py.
#define MICROPY_HW_I2C0_SCL                 (9)
#define MICROPY_HW_I2C0_SDA                 (8)
