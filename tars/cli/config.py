"""``tars config show``: the resolved configuration, secrets masked."""

from __future__ import annotations

from typing import Annotated

import typer

from tars.cli import context, output

app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print tars.yaml as TARS understands it: ${VAR}s resolved, defaults filled, secrets masked."""
    import json

    import yaml

    from tars.config.secrets import MASK, mask_text
    from tars.project import thaw

    project = context.load(ctx)
    data = thaw(project.settings)
    for path in project.secret_paths:
        node = data
        for key in path[:-1]:
            node = node[key]
        if node.get(path[-1]):
            node[path[-1]] = MASK
    if as_json:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    output.out.print(mask_text(text, project.secrets), markup=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="config")
