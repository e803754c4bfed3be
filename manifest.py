# Frozen manifest of the tinysense ESP32-S3 image (FROZEN_MANIFEST=/abs/path/manifest.py).
#
# The port's own manifest must come first: it freezes _boot.py and inisetup.py,
# without which the LittleFS filesystem is never mounted at boot.
include("$(PORT_DIR)/boards/manifest.py")

# tinysense's frozen Python: drivers and apps, compiled to bytecode and run from flash.
freeze("firmware")
