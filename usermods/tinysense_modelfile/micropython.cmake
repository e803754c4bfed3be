# Shared model-file helpers (CRC-32, little-endian readers, error messages; modelsource.c: a model from a file
# or bytes, for the bindings) for emlearn_trees, emlearn_neighbors, emlearn_net and emlearn_cnn: compiled here,
# once for the whole image. No MicroPython module of its own.
add_library(usermod_tinysense_modelfile INTERFACE)
target_sources(usermod_tinysense_modelfile INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/modelfile.c
    ${CMAKE_CURRENT_LIST_DIR}/modelsource.c
)
target_include_directories(usermod_tinysense_modelfile INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_tinysense_modelfile)
