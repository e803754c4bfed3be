# tinysense_image for make-based builds (ports/host): camera frame preprocessing (RGB565 luma, area
# downscale, brightness normalisation).
TINYSENSE_IMAGE_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += \
	$(TINYSENSE_IMAGE_DIR)/image.c \
	$(TINYSENSE_IMAGE_DIR)/mod_tinysense_image.c

CFLAGS_USERMOD += -I$(TINYSENSE_IMAGE_DIR)
