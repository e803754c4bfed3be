add_library(usermod_emlearn_net INTERFACE)
target_sources(usermod_emlearn_net INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_emlearn_net.c
    ${CMAKE_CURRENT_LIST_DIR}/net.c
)
target_include_directories(usermod_emlearn_net INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_emlearn_net)
