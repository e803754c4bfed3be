# tinysense_mel requires emlearn_fft (its fft_core.c is compiled there, once for the whole image).
TINYSENSE_MEL_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(TINYSENSE_MEL_MOD_DIR)/mod_tinysense_mel.c $(TINYSENSE_MEL_MOD_DIR)/mel_core.c
CFLAGS_USERMOD += -I$(TINYSENSE_MEL_MOD_DIR) -I$(TINYSENSE_MEL_MOD_DIR)/../emlearn_fft
