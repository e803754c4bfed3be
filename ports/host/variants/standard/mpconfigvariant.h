// Default host build: native word size, GC heap as on the device.
