# Pins of the M5Stack AtomS3: the one place frozen drivers and apps read them from (`import board_pins`).
BOARD = "atoms3"
DRIVERS = ("mpu6886",)

# Internal bus of the MPU6886 (6-axis IMU).
I2C = {"id": 0, "scl": 39, "sda": 38, "freq": 400_000}
IMU = {"addr": 0x68}
# The HY2.0-4P (Grove) port, for an external sensor.
GROVE_I2C = {"id": 1, "scl": 1, "sda": 2, "freq": 100_000}
BUTTON = {"pin": 41}
