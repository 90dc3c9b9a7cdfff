"""Offline, cited question answering over the Shanghai SOE AI+ Action Initiative documents."""

__version__ = "0.1.0"
