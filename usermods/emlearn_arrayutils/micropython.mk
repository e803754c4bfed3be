# emlearn_arrayutils for make-based builds (ports/host): typed linear map over arrays.
EMLEARN_ARRAYUTILS_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += \
	$(EMLEARN_ARRAYUTILS_DIR)/arrayutils.c \
	$(EMLEARN_ARRAYUTILS_DIR)/mod_emlearn_arrayutils.c

CFLAGS_USERMOD += -I$(EMLEARN_ARRAYUTILS_DIR)
