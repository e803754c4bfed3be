# tinysense_image for the esp32 (CMake) build: camera frame preprocessing. Included by ../micropython.cmake.
add_library(usermod_tinysense_image INTERFACE)

target_sources(usermod_tinysense_image INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/image.c
    ${CMAKE_CURRENT_LIST_DIR}/mod_tinysense_image.c
)

target_include_directories(usermod_tinysense_image INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_tinysense_image)
