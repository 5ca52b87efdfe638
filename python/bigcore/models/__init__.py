"""Models built from bigcore's layers: ``GPT`` and its ``GPTConfig`` (nanoGPT's GPT-2)."""

from .gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]
