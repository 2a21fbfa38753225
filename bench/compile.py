"""Compile time of a large generated project: 1,000 playbooks and 200 tools (target < 2 s)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import ROOT, Row


def generate(root: Path, playbooks: int = 1000, tools: int = 200) -> None:
    """A project like the example, scaled up: many webhook tools with needs chains, many playbooks."""
    root.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((ROOT / "tars.yaml").read_text())
    hooks = {}
    for i in range(tools):
        hooks[f"hook_{i}"] = {
            "description": f"Webhook tool number {i}.",
            "url": f"https://hooks.example.com/{i}",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
            "needs": [f"hook_{i - 1}"] if i % 10 else [],
        }
    config["tools"]["webhooks"].update(hooks)
    config["roles"]["delegate"]["tools"] += list(hooks)
    (root / "tars.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for folder in ("personas", "schemas"):
        shutil.copytree(ROOT / folder, root / folder)
    (root / "playbooks").mkdir()
    template = (ROOT / "playbooks" / "book_appointment.yaml").read_text()
    for i in range(playbooks):
        text = template.replace(
            "tools: [current_time, record_outcome, ask_owner, press_digits, end_call]",
            f"tools: [current_time, record_outcome, ask_owner, press_digits, end_call, hook_{i % tools}]",
        )
        (root / "playbooks" / f"playbook_{i:04d}.yaml").write_text(text)


def run(quick: bool = False) -> list[Row]:
    from tars.loading import load_project

    count = 100 if quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "big"
        generate(root, playbooks=count, tools=200)
        load_project(root)  # warm imports and caches
        timings = []
        for _ in range(1 if quick else 3):
            start = time.perf_counter()
            project = load_project(root)
            timings.append(time.perf_counter() - start)
        assert len(project.playbooks) == count
    best = min(timings) * 1000
    return [
        Row(
            f"load + validate + compile: {count} playbooks, 200 tools",
            best,
            "ms",
            target="< 2000 ms" if not quick else None,
            extra={"nodes": project.graph.number_of_nodes(), "edges": project.graph.number_of_edges()},
        )
    ]


if __name__ == "__main__":
    from bench.common import table

    print(table(run()))
