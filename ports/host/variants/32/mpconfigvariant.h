// 32-bit build: the ESP32-S3's word size, so pointer/int/size_t widths match the device.
