# Variant for ESP32-S3 modules with octal SPIRAM (e.g. WROOM-1 N8R8/N16R8): 240 MHz and octal PSRAM mode.
set(SDKCONFIG_DEFAULTS
    ${SDKCONFIG_DEFAULTS}
    boards/sdkconfig.240mhz
    boards/sdkconfig.spiram_oct
)

list(APPEND MICROPY_DEF_BOARD
    MICROPY_HW_BOARD_NAME="tinysense generic ESP32-S3 with octal SPIRAM"
)
