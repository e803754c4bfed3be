# ASan + UBSan build, used by the bad-input tests.
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
CFLAGS += $(SANITIZE_FLAGS) -Og -g
LDFLAGS += $(SANITIZE_FLAGS)
COPT = -Og
