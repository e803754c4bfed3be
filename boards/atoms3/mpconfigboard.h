// tinysense image for the M5Stack AtomS3. Pins used by the frozen drivers live in board_pins.py.
#define MICROPY_HW_BOARD_NAME               "tinysense M5Stack AtomS3"
#define MICROPY_HW_MCU_NAME                 "ESP32-S3FN8"

// Internal I2C bus (MPU6886 at 0x68); keep equal to I2C in board_pins.py.
#define MICROPY_HW_I2C0_SCL                 (39)
#define MICROPY_HW_I2C0_SDA                 (38)
