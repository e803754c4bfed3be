# Default host build: native (64-bit) word size.
