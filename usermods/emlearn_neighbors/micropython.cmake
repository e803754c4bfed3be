# Uses tinysense_modelfile (included by usermods/micropython.cmake; its modelfile.c is compiled there,
# once for the whole image).
add_library(usermod_emlearn_neighbors INTERFACE)
target_sources(usermod_emlearn_neighbors INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_emlearn_neighbors.c
    ${CMAKE_CURRENT_LIST_DIR}/neighbors.c
)
target_include_directories(usermod_emlearn_neighbors INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
    ${CMAKE_CURRENT_LIST_DIR}/../tinysense_modelfile
)
target_link_libraries(usermod INTERFACE usermod_emlearn_neighbors)
