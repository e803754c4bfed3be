# tinysense_soundlevel requires emlearn_iir (included by usermods/micropython.cmake; its iir_core.c is
# compiled there, once for the whole image).
add_library(usermod_tinysense_soundlevel INTERFACE)
target_sources(usermod_tinysense_soundlevel INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_tinysense_soundlevel.c
    ${CMAKE_CURRENT_LIST_DIR}/soundlevel.c
)
target_include_directories(usermod_tinysense_soundlevel INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
    ${CMAKE_CURRENT_LIST_DIR}/../emlearn_iir
)
target_link_libraries(usermod INTERFACE usermod_tinysense_soundlevel)
