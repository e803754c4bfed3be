# USER_C_MODULES of the ESP32-S3-EYE image: every tinysense module, then the camera module.
#
# The camera module (cnadler86/micropython-camera-API) is a checkout named by TINYSENSE_CAMERA_API_DIR (CMake
# variable or environment; the build image sets it). Its micropython.cmake sets MICROPY_FROZEN_MANIFEST to its
# own manifest, which would drop tinysense's frozen code and the board pin table: the value from before the
# include is put back right after it.
include(${CMAKE_CURRENT_LIST_DIR}/../../usermods/micropython.cmake)

if(NOT TINYSENSE_CAMERA_API_DIR)
    set(TINYSENSE_CAMERA_API_DIR "$ENV{TINYSENSE_CAMERA_API_DIR}")
endif()
if(EXISTS "${TINYSENSE_CAMERA_API_DIR}/micropython.cmake")
    set(_tinysense_camera_cmake "${TINYSENSE_CAMERA_API_DIR}/micropython.cmake")
elseif(EXISTS "${TINYSENSE_CAMERA_API_DIR}/src/micropython.cmake")
    set(_tinysense_camera_cmake "${TINYSENSE_CAMERA_API_DIR}/src/micropython.cmake")
else()
    message(FATAL_ERROR
        "tinysense: the camera module was not found (TINYSENSE_CAMERA_API_DIR='${TINYSENSE_CAMERA_API_DIR}'). "
        "Build in the tinysense Docker image (`tinysense build s3-eye`), or check out "
        "cnadler86/micropython-camera-API at the tag in docker/versions.env and pass "
        "-DTINYSENSE_CAMERA_API_DIR=/path/to/it (or set it in the environment)."
    )
endif()

set(_tinysense_frozen_manifest "${MICROPY_FROZEN_MANIFEST}")
include(${_tinysense_camera_cmake})
set(MICROPY_FROZEN_MANIFEST "${_tinysense_frozen_manifest}")
message(STATUS "tinysense: camera module from ${TINYSENSE_CAMERA_API_DIR}; frozen manifest ${MICROPY_FROZEN_MANIFEST}")
