# Shared model-file helpers (CRC-32, little-endian readers, error messages) for emlearn_trees,
# emlearn_neighbors and emlearn_net: compiled here, once for the whole image. No MicroPython module.
add_library(usermod_tinysense_modelfile INTERFACE)
target_sources(usermod_tinysense_modelfile INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/modelfile.c
)
target_include_directories(usermod_tinysense_modelfile INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_tinysense_modelfile)
