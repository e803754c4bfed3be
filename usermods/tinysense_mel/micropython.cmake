# tinysense_mel requires emlearn_fft (included by usermods/micropython.cmake; its fft_core.c is
# compiled there, once for the whole image).
add_library(usermod_tinysense_mel INTERFACE)
target_sources(usermod_tinysense_mel INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_tinysense_mel.c
    ${CMAKE_CURRENT_LIST_DIR}/mel_core.c
)
target_include_directories(usermod_tinysense_mel INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
    ${CMAKE_CURRENT_LIST_DIR}/../emlearn_fft
)
target_link_libraries(usermod INTERFACE usermod_tinysense_mel)
