add_library(usermod_emlearn_fft INTERFACE)
target_sources(usermod_emlearn_fft INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_emlearn_fft.c
    ${CMAKE_CURRENT_LIST_DIR}/fft_core.c
)
target_include_directories(usermod_emlearn_fft INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_emlearn_fft)
