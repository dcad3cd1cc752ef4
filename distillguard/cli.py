"""The ``distillguard`` command line.

Each area registers its own commands (``register(app)`` in its ``cli`` module) so
this file stays an index, and heavy imports happen only when a command runs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from distillguard.settings import use_config

app = typer.Typer(
    name="distillguard",
    help="Streaming detection of LLM-API distillation abuse.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _main(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Extra YAML settings file, over configs/default.yaml."),
    ] = None,
) -> None:
    use_config(config)


# Modules that add commands; each defines register(app: typer.Typer) -> None.
COMMAND_MODULES = (
    "distillguard.infra_cli",
    "distillguard.stream.cli",
    "distillguard.demo",
    "distillguard.api.cli",
    "distillguard.sim.cli",
    "distillguard.evaluation.cli",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)
