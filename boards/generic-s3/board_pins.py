# Pins of the generic ESP32-S3 image: the one place frozen drivers and apps read them from (`import board_pins`).
# A bare module has no sensors: wire an MPU6886 breakout and an I2S MEMS microphone (INMP441/ICS-43434, L/R to GND)
# to these pins, or build a board of your own (boards/README.md).
BOARD = "generic-s3"
DRIVERS = ("mpu6886", "i2s_mic")

I2C = {"id": 0, "scl": 9, "sda": 8, "freq": 400_000}
IMU = {"addr": 0x68}
I2S_MIC = {"id": 0, "sck": 4, "ws": 5, "sd": 6, "rate": 16_000, "bits": 32}
