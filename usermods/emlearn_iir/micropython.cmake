add_library(usermod_emlearn_iir INTERFACE)
target_sources(usermod_emlearn_iir INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_emlearn_iir.c
    ${CMAKE_CURRENT_LIST_DIR}/iir_core.c
)
target_include_directories(usermod_emlearn_iir INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_emlearn_iir)
