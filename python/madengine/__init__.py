"""madengine: benchmark AI models in Docker containers, on one host or a fleet."""

__version__ = "0.2.0"
