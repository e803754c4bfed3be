# emlearn_arrayutils for the esp32 (CMake) build: typed linear map over arrays. Included by ../micropython.cmake.
add_library(usermod_emlearn_arrayutils INTERFACE)

target_sources(usermod_emlearn_arrayutils INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/arrayutils.c
    ${CMAKE_CURRENT_LIST_DIR}/mod_emlearn_arrayutils.c
)

target_include_directories(usermod_emlearn_arrayutils INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_emlearn_arrayutils)
