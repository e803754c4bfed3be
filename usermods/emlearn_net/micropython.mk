# Uses tinysense_modelfile (its modelfile.c is compiled there, once for the whole image).
EMLEARN_NET_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(EMLEARN_NET_MOD_DIR)/mod_emlearn_net.c $(EMLEARN_NET_MOD_DIR)/net.c
CFLAGS_USERMOD += -I$(EMLEARN_NET_MOD_DIR) -I$(EMLEARN_NET_MOD_DIR)/../tinysense_modelfile
