"""Regenerate uv.lock.jinja from uv.lock (`make twins`, after `uv lock`).

The lock's root package carries the project's name; everything else is shared.
The drift test in test_copier.py fails when the twin falls behind.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = "{" * 2 + " project_slug " + "}" * 2


def main() -> None:
    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    twin = lock.replace('\nname = "ratchet"\nversion = ', f'\nname = "{MARKER}"\nversion = ', 1)
    if twin == lock:
        raise SystemExit('uv.lock has no root package named "ratchet"')
    (ROOT / "uv.lock.jinja").write_text(twin, encoding="utf-8")


if __name__ == "__main__":
    main()
