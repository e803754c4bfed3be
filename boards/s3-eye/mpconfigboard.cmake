# tinysense image for the Espressif ESP32-S3-EYE (ESP32-S3-WROOM-1 N8R8: 8 MB flash, 8 MB octal PSRAM; OV2640
# camera, I2S MEMS microphone) for sound level and image classification. It adds the camera C module
# (cnadler86/micropython-camera-API, fetched when the build image is made): build it with
# USER_C_MODULES=<this folder>/usermods.cmake, which includes every tinysense module, then the camera module, and
# re-asserts our frozen manifest after the camera module's cmake overrides it.
# Out-of-tree board: make -C ports/esp32 BOARD_DIR=<this folder> USER_C_MODULES=<this folder>/usermods.cmake.
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    boards/sdkconfig.usb
    boards/sdkconfig.ble
    boards/sdkconfig.spiram_sx
    boards/sdkconfig.240mhz
    boards/sdkconfig.spiram_oct
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)

# The camera module's compiled-in pin set (micropython-camera-API: MICROPY_CAMERA_MODEL_ESP32S3_EYE).
set(MICROPY_CAMERA_MODEL ESP32S3_EYE)

# An IDF component whose manifest pulls the pinned esp32-camera driver from the component registry
# (components/tinysense_camera_deps/idf_component.yml).
list(APPEND EXTRA_COMPONENT_DIRS ${MICROPY_BOARD_DIR}/components/tinysense_camera_deps)
