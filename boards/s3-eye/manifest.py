# Frozen manifest of this board: everything tinysense freezes, plus this board's pin table.
include("$(BOARD_DIR)/../../manifest.py")
module("board_pins.py")
