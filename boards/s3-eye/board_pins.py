# Pins of the Espressif ESP32-S3-EYE: the one place frozen drivers and apps read them from (`import board_pins`).
BOARD = "s3-eye"
DRIVERS = ("i2s_mic", "camera")

# Shared by the camera's SCCB and the QMA7981 accelerometer.
I2C = {"id": 0, "scl": 5, "sda": 4, "freq": 400_000}
# The on-board I2S (standard mode, not PDM) MEMS microphone.
I2S_MIC = {"id": 0, "sck": 41, "ws": 42, "sd": 2, "rate": 16_000, "bits": 32}
# OV2640 on the DVP port; keys are micropython-camera-API's Camera() keyword arguments (data_pins = D0..D7).
CAMERA = {
    "data_pins": [11, 9, 8, 10, 12, 18, 17, 16],
    "vsync_pin": 6,
    "href_pin": 7,
    "pclk_pin": 13,
    "xclk_pin": 15,
    "sda_pin": 4,
    "scl_pin": 5,
    "powerdown_pin": -1,
    "reset_pin": -1,
    "xclk_freq": 20_000_000,
}
