"""Reading and writing the files stages exchange, with errors a user can act on.

Every read failure names the file and says what is wrong with it; every write
is byte-deterministic, so `dvc repro -f` leaves the same hashes behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

_OTHER_DELIMITERS = (";", "\t", "|")


def read_table(path: str | Path, string_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV or parquet file; `string_columns` stay text (ids like "007" keep their zeros)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise PipelineError(f"{path}: file is empty (0 bytes); expected a header row and data rows")
    if path.suffix == ".parquet":
        return _read_parquet(path)
    return _read_csv(path, string_columns)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError) as error:
        raise PipelineError(f"{path}: cannot be read as parquet: {error}") from None


def _read_csv(path: Path, string_columns: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    _check_utf8(path)
    try:
        frame = pd.read_csv(path, encoding="utf-8", dtype=dict.fromkeys(string_columns, "str"))
    except pd.errors.EmptyDataError:
        raise PipelineError(f"{path}: file has no header row") from None
    except pd.errors.ParserError as error:
        raise PipelineError(f"{path}: cannot be parsed as CSV: {str(error).strip()}") from None
    reject_wrong_delimiter(path, frame)
    return frame


def _check_utf8(path: Path, block: int = 1 << 24) -> None:
    """Stop at the first byte that is not UTF-8, naming it and its offset; reads the file a block at a time."""
    import codecs
    from itertools import chain

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # of the block being read
    with path.open("rb") as handle:
        for chunk in chain(iter(lambda: handle.read(block), b""), [b""]):  # b"": the end, to flush
            pending = len(decoder.getstate()[0])  # the previous block's unfinished character, decoded with this one
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                raise PipelineError(
                    f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
                    f"{offset - pending + error.start}); re-save the file with UTF-8 encoding"
                ) from None
            offset += len(chunk)


def reject_wrong_delimiter(path: Path, frame: pd.DataFrame) -> None:
    """A file read as one column whose name holds another separator: say so instead of a contract failure."""
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    for delimiter in _OTHER_DELIMITERS:
        if delimiter in header:
            raise PipelineError(
                f"{path}: found a single column named {header[:60]!r}; the file looks "
                f"separated by {delimiter!r}, but CSV files here must be comma-separated"
            )


def read_json(path: str | Path) -> dict:
    """A JSON result another stage wrote; missing means the pipeline has not run yet."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro` first") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: cannot be read: {error}") from None
    return parse_json(text, str(path), "run `dvc repro -f` to write it again")


def parse_json(text: str, source: str, fix: str) -> dict:
    """A JSON object from text; anything else is a one-line error naming `source` and how to fix it."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise PipelineError(f"{source}: not valid JSON ({error.msg} at line {error.lineno}); {fix}") from None
    if not isinstance(payload, dict):
        raise PipelineError(f"{source}: expected a JSON object, found {type(payload).__name__}; {fix}")
    return payload


def output_dir(path: str | Path) -> Path:
    """A directory to write into, created if needed; a path under a file is a one-line error."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise PipelineError(f"{path}: cannot be a directory: it or a parent is a file") from None
    except OSError as error:
        raise PipelineError(f"{path}: cannot create the directory: {error.strerror}") from None
    return path


def check_output_dir(path: str | Path) -> Path:
    """A directory that can be created later: no existing part of the path is a file. Creates nothing."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise PipelineError(f"{path}: cannot be a directory: {part} is a file")
            break
    return path


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    output_dir(path.parent)
    frame.to_parquet(path, index=False)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    output_dir(path.parent)
    frame.to_csv(path, index=False)


def write_json(payload: object, path: str | Path) -> None:
    write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", path)


def write_text(text: str, path: str | Path) -> None:
    path = Path(path)
    output_dir(path.parent)
    try:
        path.write_text(text, encoding="utf-8")
    except IsADirectoryError:
        raise PipelineError(f"{path}: is a directory, not a file") from None
