r"""``streammeta config``: the effective configuration (file, environment and flags applied),
printed as TOML.

>>> print(toml(Config()).split("\n\n")[-1], end="")
[log]
level = "INFO"
format = "text"
"""

from __future__ import annotations

import argparse

from streammeta.config import Config, to_dict

__all__ = ["show", "toml"]


def toml(config: Config) -> str:
    """``config`` as TOML tables, one per section."""
    lines = []
    for section, values in to_dict(config).items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            text = repr(v).replace("'", '"') if not isinstance(v, bool) else str(v).lower()
            lines.append(f"{k} = {text}")
        lines.append("")
    return "\n".join(lines)


def show(config: Config, args: argparse.Namespace) -> int:
    print(toml(config))
    return 0
