# tinysense user C modules for the esp32 (CMake) build: USER_C_MODULES=/abs/path/usermods/micropython.cmake
#
# Every module folder in usermods/ must be listed at the bottom, one include() per module, alphabetically.
# The make-based host build (ports/host) picks up every usermods/*/micropython.mk by itself;
# tests/test_cmake_harness.py checks this list against that build, so no module is on the host but
# missing from the image.

# The emlearn C headers (eml_*.h), for the modules that include them. In order:
#   -DEMLEARN_INCLUDE_DIR=...            on the CMake command line (or set before this file is included)
#   EMLEARN_INCLUDE_DIR=... in the environment (ports/host's Makefile exports the pinned wheel's headers)
#   emlearn.includedir of the emlearn pip package, as the build's Python sees it (Docker/ESP-IDF builds:
#   the pinned `emlearn` from sources.lock is pip-installed into that Python)
if(Python3_EXECUTABLE)
    set(_tinysense_python "${Python3_EXECUTABLE}")
else()
    set(_tinysense_python python3)
endif()
if(NOT EMLEARN_INCLUDE_DIR AND NOT "$ENV{EMLEARN_INCLUDE_DIR}" STREQUAL "")
    set(EMLEARN_INCLUDE_DIR "$ENV{EMLEARN_INCLUDE_DIR}")
endif()
if(NOT EMLEARN_INCLUDE_DIR)
    execute_process(
        COMMAND ${_tinysense_python} -c "import emlearn; print(emlearn.includedir)"
        OUTPUT_VARIABLE _tinysense_emlearn_dir
        ERROR_VARIABLE _tinysense_emlearn_error
        RESULT_VARIABLE _tinysense_emlearn_result
        OUTPUT_STRIP_TRAILING_WHITESPACE
    )
    if(_tinysense_emlearn_result EQUAL 0 AND _tinysense_emlearn_dir)
        set(EMLEARN_INCLUDE_DIR "${_tinysense_emlearn_dir}")
    endif()
endif()
if(NOT EMLEARN_INCLUDE_DIR OR NOT EXISTS "${EMLEARN_INCLUDE_DIR}/eml_common.h")
    string(STRIP "${_tinysense_emlearn_error}" _tinysense_emlearn_error)
    message(FATAL_ERROR
        "tinysense: the emlearn C headers were not found (EMLEARN_INCLUDE_DIR='${EMLEARN_INCLUDE_DIR}'). "
        "Either pass -DEMLEARN_INCLUDE_DIR=/path/to/dir-with-eml_common.h (or set it in the environment), "
        "or install the pinned package into the Python that runs this build: "
        "`${_tinysense_python} -m pip install emlearn==<version in sources.lock>`. "
        "${_tinysense_emlearn_error}"
    )
endif()
message(STATUS "tinysense: emlearn headers from ${EMLEARN_INCLUDE_DIR}")

include(${CMAKE_CURRENT_LIST_DIR}/emlearn_arrayutils/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/emlearn_cnn/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/emlearn_fft/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/emlearn_iir/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/emlearn_neighbors/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/emlearn_net/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/emlearn_trees/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/tinysense_features/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/tinysense_image/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/tinysense_mel/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/tinysense_modelfile/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/tinysense_soundlevel/micropython.cmake)
