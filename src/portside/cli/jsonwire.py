"""JSON for the CLI's requests and answers, without importing the ``json`` package.

``json`` imports ``re`` for its pure-Python fallbacks and compiles six
expressions at import; with ``re`` come ``enum``, ``functools`` and
``collections``: the largest part of what a ``portside run`` imported
(docs/cli-startup.md). ``json`` hands the work to its C accelerator,
``_json``, anyway: here the accelerator is driven with the settings
``json.dumps(value)`` and ``json.loads(data)`` give it, so the text sent and
the values read are the same. Whatever the fast path does not take (a
document it refuses, bytes that are not UTF-8, an interpreter without
``_json``) goes to ``json`` itself, so the errors are json's, word for word.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # not CPython: json's own pure-Python code
    _json = None  # type: ignore[assignment]

_WHITESPACE = " \t\n\r"  # JSON's, as json.decoder's WHITESPACE pattern


def _default(value: object) -> object:
    """json.JSONEncoder.default: what cannot be encoded."""
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


class _DecoderSettings:
    """The attributes _json.make_scanner reads from a json.JSONDecoder, at json.loads()'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


# The C scanner reports a malformed document by raising json.decoder.JSONDecodeError, which it
# looks up in sys.modules only: before json is imported that lookup fails and the scanner
# returns NULL without an exception, which Python turns into SystemError. Either way, the
# caller asks json itself, which imports json.decoder and raises its own error.
_SCAN_FAILURES = (ValueError, SystemError)

# The stub wants a JSONDecoder; the scanner reads only the attributes above.
_scan = _json.make_scanner(_DecoderSettings) if _json is not None else None  # type: ignore[arg-type]


def dumps(value: Any) -> str:
    """``json.dumps(value)``: the same text (ASCII, ", " and ": " separators, keys in dict order)."""
    if _json is None:
        import json

        return json.dumps(value)
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    # json.JSONEncoder().iterencode(value, _one_shot=True): markers for the
    # circular check, no indent, the default separators, keys unsorted.
    encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return "".join(encode(value, 0))


def raw_decode(text: str, start: int) -> tuple[Any, int]:
    """``json.JSONDecoder().raw_decode(text[start:])``, with the end as an index into ``text``.

    Raises ValueError when no whole value starts at ``start`` (json's own
    JSONDecodeError for a value cut short: only that case imports json).
    """
    if _scan is None:
        import json

        value, end = json.JSONDecoder().raw_decode(text[start:])
        return value, start + end
    try:
        return _scan(text, start)
    except StopIteration:
        raise ValueError(f"Expecting value: char {start}") from None
    except _SCAN_FAILURES:
        pass  # json says what is wrong
    import json

    value, end = json.JSONDecoder().raw_decode(text, start)
    return value, end


def loads(data: bytes | bytearray | str) -> Any:
    """``json.loads(data)``: the same value, or json's own error."""
    if _scan is not None:
        try:
            text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
            start = len(text) - len(text.lstrip(_WHITESPACE))
            value, end = _scan(text, start)
            if not text[end:].strip(_WHITESPACE):
                return value
        except (StopIteration, *_SCAN_FAILURES):
            pass
    import json  # a document the fast path refuses: json decides, and says why

    return json.loads(data)
