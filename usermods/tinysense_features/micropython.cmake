add_library(usermod_tinysense_features INTERFACE)
target_sources(usermod_tinysense_features INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_tinysense_features.c
    ${CMAKE_CURRENT_LIST_DIR}/features_core.c
)
target_include_directories(usermod_tinysense_features INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_tinysense_features)
