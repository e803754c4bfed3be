# tinysense generic ESP32-S3 image (the default prebuilt download): any ESP32-S3 module with 4 MB or more of
# flash; the firmware sizes the filesystem to the flash it detects at boot. Quad SPIRAM is detected at startup;
# boards with octal SPIRAM use the SPIRAM_OCT variant (mpconfigvariant_SPIRAM_OCT.cmake).
#
# Out-of-tree board: make -C ports/esp32 BOARD_DIR=<this folder>. Relative SDKCONFIG_DEFAULTS entries are the
# esp32 port's own fragments (relative to ports/esp32); ours are named through ${MICROPY_BOARD_DIR}.
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    boards/sdkconfig.usb
    boards/sdkconfig.ble
    boards/sdkconfig.spiram_sx
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

# The board's manifest: tinysense's frozen code (../../manifest.py) plus this board's pin table.
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
