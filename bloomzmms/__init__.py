"""BLOOMZMMS on stock ESPnet: a multilingual LLM that understands multilingual speech."""

__version__ = "0.1.0"
