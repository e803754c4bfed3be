# tinysense image for the M5Stack AtomS3 (ESP32-S3FN8: 8 MB flash, no PSRAM; MPU6886 IMU on the internal I2C bus)
# for activity recognition. Out-of-tree board: make -C ports/esp32 BOARD_DIR=<this folder>.
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    boards/sdkconfig.usb
    boards/sdkconfig.ble
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
