"""TARS: a personal phone assistant configured in YAML, run through Pipecat and Gemini Live."""

__version__ = "0.1.0"
