"""ocsptool: keep OCSP staples fresh for HAProxy."""

__version__ = "0.1.0"
