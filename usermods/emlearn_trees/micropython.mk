# Uses tinysense_modelfile (its modelfile.c is compiled there, once for the whole image).
EMLEARN_TREES_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(EMLEARN_TREES_MOD_DIR)/mod_emlearn_trees.c $(EMLEARN_TREES_MOD_DIR)/trees.c
CFLAGS_USERMOD += -I$(EMLEARN_TREES_MOD_DIR) -I$(EMLEARN_TREES_MOD_DIR)/../tinysense_modelfile
