"""Template text to tokens, as Go's ``text/template/parse`` lexer cuts it.

Token boundaries and the messages of lexical errors (``unclosed action``,
``bad number syntax: "1x"``) follow Go's, since parse errors quote them.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portside.cli.gotemplate.strconv import go_quote


class T(enum.Enum):
    """Token types; those from BLOCK on are keywords."""

    ERROR = enum.auto()
    BOOL = enum.auto()
    CHAR = enum.auto()  # a printable ASCII character: comma and the like
    CHAR_CONSTANT = enum.auto()
    COMPLEX = enum.auto()
    ASSIGN = enum.auto()
    DECLARE = enum.auto()
    EOF = enum.auto()
    FIELD = enum.auto()
    IDENTIFIER = enum.auto()
    LEFT_DELIM = enum.auto()
    LEFT_PAREN = enum.auto()
    NUMBER = enum.auto()
    PIPE = enum.auto()
    RAW_STRING = enum.auto()
    RIGHT_DELIM = enum.auto()
    RIGHT_PAREN = enum.auto()
    SPACE = enum.auto()
    STRING = enum.auto()
    TEXT = enum.auto()
    VARIABLE = enum.auto()
    BLOCK = enum.auto()
    BREAK = enum.auto()
    CONTINUE = enum.auto()
    DOT = enum.auto()
    DEFINE = enum.auto()
    ELSE = enum.auto()
    END = enum.auto()
    IF = enum.auto()
    NIL = enum.auto()
    RANGE = enum.auto()
    TEMPLATE = enum.auto()
    WITH = enum.auto()


_KEYWORDS = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}
_KEYWORD_TYPES = frozenset(_KEYWORDS.values())

LEFT_DELIM, RIGHT_DELIM = "{{", "}}"
LEFT_COMMENT, RIGHT_COMMENT = "/*", "*/"
_SPACE_CHARS = " \t\r\n"


@dataclass(frozen=True)
class Token:
    typ: T
    pos: int  # index of the token's first character in the template text
    val: str
    line: int

    def __str__(self) -> str:
        """As Go's ``item.String``, which parse errors quote."""
        if self.typ is T.EOF:
            return "EOF"
        if self.typ is T.ERROR:
            return self.val
        if self.typ in _KEYWORD_TYPES:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def _is_space(ch: str) -> bool:
    return ch != "" and ch in _SPACE_CHARS


def _is_alnum(ch: str) -> bool:
    return ch == "_" or (ch != "" and (ch.isalpha() or unicodedata.category(ch) == "Nd"))


def _describe_rune(ch: str) -> str:
    """Go's ``%#U``: ``U+0029 ')'``, without the quoted glyph when not printable."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() else code


def lex(text: str, *, break_ok: bool, continue_ok: bool) -> list[Token]:
    """The tokens of ``text``; the list ends with EOF or with one ERROR token.

    ``break`` and ``continue`` are keywords unless a function of that name is
    defined (``break_ok`` and ``continue_ok`` false), as in Go.
    """
    return _Lexer(text, break_ok=break_ok, continue_ok=continue_ok).run()


class _Lexer:
    """The lexer's state machine: each state method returns the next state."""

    def __init__(self, text: str, *, break_ok: bool, continue_ok: bool) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.break_ok = break_ok
        self.continue_ok = continue_ok
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        state: Callable[[], Any] | None = self.lex_text
        while state is not None:
            state = state()
        return self.tokens

    # -- helpers --

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def emit(self, typ: T) -> None:
        self.tokens.append(self._token(typ, self.text[self.start : self.pos]))
        self.start = self.pos

    def _token(self, typ: T, val: str) -> Token:
        return Token(typ, self.start, val, 1 + self.text.count("\n", 0, self.start))

    def error(self, message: str) -> None:
        self.tokens.append(self._token(T.ERROR, message))

    def at_right_delim(self) -> tuple[bool, bool]:
        """(at ``}}``, preceded by a trim marker ``" -"``)."""
        rest = self.text[self.pos :]
        if _has_right_trim_marker(rest) and rest[2:].startswith(RIGHT_DELIM):
            return True, True
        return rest.startswith(RIGHT_DELIM), False

    def at_terminator(self) -> bool:
        """Can an identifier end here? ``.X.Y`` splits in two; ``$x+2`` does not lex."""
        ch = self.peek()
        return _is_space(ch) or ch == "" or ch in ".,|:)(" or self.text.startswith(RIGHT_DELIM, self.pos)

    def accept(self, valid: str) -> bool:
        ch = self.peek()
        if ch and ch in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    # -- states --

    def lex_text(self) -> Callable[[], Any] | None:
        x = self.text.find(LEFT_DELIM, self.pos)
        if x < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.emit(T.TEXT)
            self.emit(T.EOF)
            return None
        text = self.text[self.start : x]
        if _has_left_trim_marker(self.text[x + len(LEFT_DELIM) :]):
            text = text.rstrip(_SPACE_CHARS)
        if text:
            self.tokens.append(self._token(T.TEXT, text))
        self.pos = self.start = x
        return self.lex_left_delim

    def lex_left_delim(self) -> Callable[[], Any] | None:
        self.pos += len(LEFT_DELIM)
        after_marker = 2 if _has_left_trim_marker(self.text[self.pos :]) else 0
        if self.text.startswith(LEFT_COMMENT, self.pos + after_marker):
            self.pos += after_marker
            self.start = self.pos
            return self.lex_comment
        self.emit(T.LEFT_DELIM)
        self.pos += after_marker
        self.start = self.pos
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self) -> Callable[[], Any] | None:
        self.pos += len(LEFT_COMMENT)
        end = self.text.find(RIGHT_COMMENT, self.pos)
        if end < 0:
            self.error("unclosed comment")
            return None
        self.pos = end + len(RIGHT_COMMENT)
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
            return None
        self.pos += (2 if trim else 0) + len(RIGHT_DELIM)
        if trim:
            self.pos += _left_trim_length(self.text[self.pos :])
        self.start = self.pos
        return self.lex_text

    def lex_right_delim(self) -> Callable[[], Any] | None:
        trim = _has_right_trim_marker(self.text[self.pos :])
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += len(RIGHT_DELIM)
        self.emit(T.RIGHT_DELIM)
        if trim:
            self.pos += _left_trim_length(self.text[self.pos :])
            self.start = self.pos
        return self.lex_text

    def lex_inside_action(self) -> Callable[[], Any] | None:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            self.error("unclosed left paren")
            return None
        ch = self.next()
        if ch == "":
            self.error("unclosed action")
            return None
        if _is_space(ch):
            self.pos -= 1  # put the space back in case this is " -}}"
            return self.lex_space
        if ch == "=":
            self.emit(T.ASSIGN)
        elif ch == ":":
            if self.next() != "=":
                self.error("expected :=")
                return None
            self.emit(T.DECLARE)
        elif ch == "|":
            self.emit(T.PIPE)
        elif ch == '"':
            return self.lex_quote
        elif ch == "`":
            return self.lex_raw_quote
        elif ch == "$":
            return self.lex_variable
        elif ch == "'":
            return self.lex_char
        elif ch == "." and self.peek() and not ("0" <= self.peek() <= "9"):
            return self.lex_field
        elif ch in "+-." or "0" <= ch <= "9":
            self.pos -= 1
            return self.lex_number
        elif _is_alnum(ch):
            self.pos -= 1
            return self.lex_identifier
        elif ch == "(":
            self.emit(T.LEFT_PAREN)
            self.paren_depth += 1
        elif ch == ")":
            self.emit(T.RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.error(f"unexpected right paren {_describe_rune(ch)}")
                return None
        elif ord(ch) < 0x80 and ch.isprintable():
            self.emit(T.CHAR)
        else:
            self.error(f"unrecognized character in action: {_describe_rune(ch)}")
            return None
        return self.lex_inside_action

    def lex_space(self) -> Callable[[], Any] | None:
        spaces = 0
        while _is_space(self.peek()):
            self.pos += 1
            spaces += 1
        # The last space may belong to a trim-marked closing delimiter " -}}".
        rest = self.text[self.pos - 1 :]
        if _has_right_trim_marker(rest) and rest[2:].startswith(RIGHT_DELIM):
            self.pos -= 1
            if spaces == 1:
                return self.lex_right_delim
        self.emit(T.SPACE)
        return self.lex_inside_action

    def lex_identifier(self) -> Callable[[], Any] | None:
        while _is_alnum(self.peek()):
            self.pos += 1
        word = self.text[self.start : self.pos]
        if not self.at_terminator():
            self.error(f"bad character {_describe_rune(self.peek())}")
            return None
        keyword = _KEYWORDS.get(word)
        if keyword is not None:
            if (keyword is T.BREAK and not self.break_ok) or (keyword is T.CONTINUE and not self.continue_ok):
                keyword = T.IDENTIFIER
            self.emit(keyword)
        elif word in ("true", "false"):
            self.emit(T.BOOL)
        else:
            self.emit(T.IDENTIFIER)
        return self.lex_inside_action

    def lex_field(self) -> Callable[[], Any] | None:
        return self.lex_field_or_variable(T.FIELD)

    def lex_variable(self) -> Callable[[], Any] | None:
        return self.lex_field_or_variable(T.VARIABLE)

    def lex_field_or_variable(self, typ: T) -> Callable[[], Any] | None:
        if self.at_terminator():  # a lone "." or "$"
            self.emit(T.VARIABLE if typ is T.VARIABLE else T.DOT)
            return self.lex_inside_action
        while _is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            self.error(f"bad character {_describe_rune(self.peek())}")
            return None
        self.emit(typ)
        return self.lex_inside_action

    def _lex_quoted(self, quote: str, typ: T, message: str) -> Callable[[], Any] | None:
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
            if ch in ("", "\n"):
                self.error(message)
                return None
            if ch == quote:
                break
        self.emit(typ)
        return self.lex_inside_action

    def lex_quote(self) -> Callable[[], Any] | None:
        return self._lex_quoted('"', T.STRING, "unterminated quoted string")

    def lex_char(self) -> Callable[[], Any] | None:
        return self._lex_quoted("'", T.CHAR_CONSTANT, "unterminated character constant")

    def lex_raw_quote(self) -> Callable[[], Any] | None:
        end = self.text.find("`", self.pos)
        if end < 0:
            self.error("unterminated raw quoted string")
            return None
        self.pos = end + 1
        self.emit(T.RAW_STRING)
        return self.lex_inside_action

    def lex_number(self) -> Callable[[], Any] | None:
        if not self.scan_number():
            self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
            return None
        if self.peek() in ("+", "-") and self.peek() != "":
            # A complex constant such as 1+2i: no spaces, ends in "i".
            if not self.scan_number() or self.text[self.pos - 1] != "i":
                self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
                return None
            self.emit(T.COMPLEX)
        else:
            self.emit(T.NUMBER)
        return self.lex_inside_action

    def scan_number(self) -> bool:
        """Accept what may be a number; strconv decides later (Go accepts "089" here too)."""
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if _is_alnum(self.peek()):
            self.pos += 1
            return False
        return True


def _has_left_trim_marker(s: str) -> bool:
    return len(s) >= 2 and s[0] == "-" and _is_space(s[1])


def _has_right_trim_marker(s: str) -> bool:
    return len(s) >= 2 and _is_space(s[0]) and s[1] == "-"


def _left_trim_length(s: str) -> int:
    return len(s) - len(s.lstrip(_SPACE_CHARS))
