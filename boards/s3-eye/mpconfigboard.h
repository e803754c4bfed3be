// tinysense image for the Espressif ESP32-S3-EYE. Pins used by the frozen drivers live in board_pins.py.
#define MICROPY_HW_BOARD_NAME               "tinysense ESP32-S3-EYE"
#define MICROPY_HW_MCU_NAME                 "ESP32-S3"

// I2C bus shared by the camera's SCCB and the QMA7981 accelerometer; keep equal to I2C in board_pins.py.
#define MICROPY_HW_I2C0_SCL                 (5)
#define MICROPY_HW_I2C0_SDA                 (4)
