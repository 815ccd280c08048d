"""Stage 2: read a file's bytes and decode them as Python does (PEP 263 cookie, BOM).

Newlines are left exactly as they are in the file: LibCST keeps them, so `\\r\\n` files stay
`\\r\\n`. Encoding back uses the same codec, so a BOM or a latin-1 byte survives untouched.
"""

from __future__ import annotations

import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

from unleak.errors import UserError


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the codec to encode the fixed text with ("utf-8-sig" keeps a BOM)


def read_bytes(path: Path | str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as error:
        raise UserError(str(path), f"cannot read: {error.strerror or error}") from None


def decode(raw: bytes, display_path: str) -> Decoded:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as error:
        # Bad bytes in the first two lines look like a bad cookie to tokenize: say which it is.
        encoding, complaint = "utf-8", f"cannot decode: {error.msg}"
    else:
        complaint = None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise UserError(display_path, f"cannot decode as {encoding}: {error.reason} at byte {error.start}") from None
    if complaint:
        raise UserError(display_path, complaint)
    return Decoded(text, encoding)


def encode(text: str, decoded: Decoded, display_path: str) -> bytes:
    try:
        return text.encode(decoded.encoding)
    except UnicodeEncodeError as error:
        raise UserError(display_path, f"the fixed code cannot be encoded as {decoded.encoding}: {error.reason}") from None
