# Shared model-file helpers (CRC-32, little-endian readers, error messages; modelsource.c: a model from a file
# or bytes, for the bindings) for emlearn_trees, emlearn_neighbors, emlearn_net and emlearn_cnn: compiled here,
# once for the whole image. No MicroPython module of its own.
TINYSENSE_MODELFILE_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(TINYSENSE_MODELFILE_MOD_DIR)/modelfile.c $(TINYSENSE_MODELFILE_MOD_DIR)/modelsource.c
CFLAGS_USERMOD += -I$(TINYSENSE_MODELFILE_MOD_DIR)
