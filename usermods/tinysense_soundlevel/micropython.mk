# tinysense_soundlevel requires emlearn_iir (its iir_core.c is compiled there, once for the whole image).
TINYSENSE_SOUNDLEVEL_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(TINYSENSE_SOUNDLEVEL_MOD_DIR)/mod_tinysense_soundlevel.c $(TINYSENSE_SOUNDLEVEL_MOD_DIR)/soundlevel.c
CFLAGS_USERMOD += -I$(TINYSENSE_SOUNDLEVEL_MOD_DIR) -I$(TINYSENSE_SOUNDLEVEL_MOD_DIR)/../emlearn_iir
