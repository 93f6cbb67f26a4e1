"""Print the README's settings table from geo.settings.SETTINGS (keeps them in step)."""

from __future__ import annotations

from pathlib import Path

from geo.settings import SETTINGS

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"


def settings_table() -> str:
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = ", ".join(map(str, s.default)) if isinstance(s.default, tuple) else s.default
        rows.append(f"| `{s.name}` | `{default}` | {s.help} |")
    return "\n".join(rows)


def update_readme(path: Path) -> None:
    """Rewrite the block between the settings markers of *path*."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    update_readme(Path(__file__).resolve().parents[1] / "README.md")
