# ASan + UBSan build, used by the bad-input tests.
# -O1, not -Og: at -Og with ASan, gcc 12 miscompiles the setjmp-based NLR path
# (class definitions silently vanished); -O1 is the optimisation ASan recommends.
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
COPT = -O1 -g
CFLAGS += $(SANITIZE_FLAGS)
LDFLAGS += $(SANITIZE_FLAGS)
