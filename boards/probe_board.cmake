# Reads a board folder the way ports/esp32/CMakeLists.txt does, without ESP-IDF (script mode):
#   cmake -DBOARD_DIR=/abs/boards/<name> [-DVARIANT=SPIRAM_OCT] [-DPORT_DIR=/stub/ports/esp32] -P probe_board.cmake
# prints one "@@probe NAME=VALUE" line per variable the port reads back from the board files. Used by
# tests/test_boards.py; the esp32 port's own variables are stubbed here with the values it gives them.
cmake_minimum_required(VERSION 3.12)

if(NOT BOARD_DIR OR NOT EXISTS "${BOARD_DIR}/mpconfigboard.cmake")
    message(FATAL_ERROR "probe_board: BOARD_DIR='${BOARD_DIR}' has no mpconfigboard.cmake")
endif()
if(NOT PORT_DIR)
    set(PORT_DIR "/nonexistent/micropython/ports/esp32")
endif()

# What the esp32 port has set when it includes mpconfigboard.cmake.
set(MICROPY_BOARD_DIR "${BOARD_DIR}")
get_filename_component(MICROPY_BOARD "${BOARD_DIR}" NAME)
set(MICROPY_BOARD_VARIANT "${VARIANT}")
set(MICROPY_PORT_DIR "${PORT_DIR}")
get_filename_component(MICROPY_DIR "${PORT_DIR}/../.." ABSOLUTE)
set(IDF_VERSION "5.5.1")
# ports/esp32/CMakeLists.txt sets this for ESP-IDF >= 5.2.
set(SDKCONFIG_IDF_VERSION_SPECIFIC boards/sdkconfig.idf52)
unset(IDF_TARGET)
unset(SDKCONFIG_DEFAULTS)
unset(MICROPY_FROZEN_MANIFEST)

include("${BOARD_DIR}/mpconfigboard.cmake")
if(VARIANT)
    if(NOT EXISTS "${BOARD_DIR}/mpconfigvariant_${VARIANT}.cmake")
        message(FATAL_ERROR "probe_board: no mpconfigvariant_${VARIANT}.cmake in ${BOARD_DIR}")
    endif()
    include("${BOARD_DIR}/mpconfigvariant_${VARIANT}.cmake")
else()
    include("${BOARD_DIR}/mpconfigvariant.cmake" OPTIONAL)
endif()

foreach(name IDF_TARGET SDKCONFIG_DEFAULTS MICROPY_FROZEN_MANIFEST MICROPY_DEF_BOARD MICROPY_CAMERA_MODEL
             EXTRA_COMPONENT_DIRS)
    message(STATUS "@@probe ${name}=${${name}}")
endforeach()
