# Uses tinysense_modelfile (its modelfile.c is compiled there, once for the whole image).
EMLEARN_CNN_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(EMLEARN_CNN_MOD_DIR)/mod_emlearn_cnn.c $(EMLEARN_CNN_MOD_DIR)/cnn.c
CFLAGS_USERMOD += -I$(EMLEARN_CNN_MOD_DIR) -I$(EMLEARN_CNN_MOD_DIR)/../tinysense_modelfile
