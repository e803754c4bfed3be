# Shared model-file helpers (CRC-32, little-endian readers, error messages) for emlearn_trees,
# emlearn_neighbors and emlearn_net: compiled here, once for the whole image. No MicroPython module.
TINYSENSE_MODELFILE_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(TINYSENSE_MODELFILE_MOD_DIR)/modelfile.c
CFLAGS_USERMOD += -I$(TINYSENSE_MODELFILE_MOD_DIR)
