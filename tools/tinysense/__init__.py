"""tinysense host tool: train, convert, verify, bundle and flash models for tinysense firmware."""

__version__ = "0.1.0"
