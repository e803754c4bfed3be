# Uses tinysense_modelfile (its modelfile.c is compiled there, once for the whole image).
EMLEARN_NEIGHBORS_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(EMLEARN_NEIGHBORS_MOD_DIR)/mod_emlearn_neighbors.c $(EMLEARN_NEIGHBORS_MOD_DIR)/neighbors.c
CFLAGS_USERMOD += -I$(EMLEARN_NEIGHBORS_MOD_DIR) -I$(EMLEARN_NEIGHBORS_MOD_DIR)/../tinysense_modelfile
