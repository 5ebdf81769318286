"""Go's text/template, as docker's ``--format`` and ``-f`` flags use it.

A template is lexed into tokens, parsed into a tree of nodes and run over the
data; the three stages follow Go's ``text/template`` and ``text/template/parse``
closely enough that templates written for docker print the same bytes here,
and that bad templates fail with the same messages (``template: :1:
unexpected "}" in operand``).

Data are what the Engine API returns, decoded by ``json``: dicts, lists, str,
int, float, bool and None, or objects with attributes. They behave as Go's
``map[string]interface{}`` and friends:

* ``.Key`` looks a key up in a dict (an attribute on an object); a missing key
  is Go's invalid value, printed ``<no value>``, and so is a JSON null printed
  on its own, while a null inside a list or map prints ``<nil>``.
* values print as Go's ``fmt`` prints them: ``[a b]``, ``map[k:v]`` with sorted
  keys, ``true``, ``4261296`` for an int and ``4.261296e+06`` for a float.
* dict keys are ranged over in sorted order, as Go ranges over a map.

Functions are Go's builtins (``and or not len index slice eq ne lt le gt ge
print printf println``) and docker's (``json split join title lower upper pad
truncate``, from docker/cli ``templates/templates.go``), plus ``inc``, which
docker does not define. ``printf`` is Go's ``fmt.Sprintf`` (flags, widths,
``*``, ``[n]``, ``%!d(string=x)`` markers). Actions: ``if``/``else if``,
``range`` (lists, dicts, ints) with ``break``/``continue``, ``with``/``else
with``, variables, comments, trim markers, ``define``/``template``/``block``.
Not supported: complex numbers and the builtins ``call``, ``html``, ``js``
and ``urlquery``.

Layout of this module: lexer, parse tree, parser, Go string literals, Go's
``fmt``, Go's JSON encoder, template functions, executor, public API.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import struct
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from portside.errors import InvalidArgument

__all__ = [
    "Arg",
    "Func",
    "HEADER_FUNCS",
    "MISSING",
    "Template",
    "TemplateError",
    "format_value",
    "json_marshal",
    "parse",
    "render",
    "sprint",
    "sprintf",
    "sprintln",
]


class TemplateError(InvalidArgument):
    """A template that does not parse or fails while running; the message is Go's.

    ``partial`` holds what had been written before an execution error, as Go
    leaves it in the writer.
    """

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class _Missing:
    """Go's invalid ``reflect.Value``: a missing map key, or nil reaching an action."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

# ---------------------------------------------------------------------------
# Lexer
# ---------------------------------------------------------------------------


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


class _Lexer:
    """Turns template text into tokens; the list ends with EOF or with one ERROR token."""

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
        if keyword is not None and keyword is not T.DOT:
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
        if self.at_terminator():  # a lone "$"
            self.emit(T.VARIABLE)
            return self.lex_inside_action
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


# ---------------------------------------------------------------------------
# Parse tree
# ---------------------------------------------------------------------------


@dataclass
class Node:
    pos: int

    def __str__(self) -> str:  # pragma: no cover - every node overrides it
        raise NotImplementedError


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass
class TextNode(Node):
    text: str

    def __str__(self) -> str:
        return go_quote(self.text)


@dataclass
class VariableNode(Node):
    idents: list[str]  # "$x.A.B" is ["$x", "A", "B"]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass
class PipeNode(Node):
    line: int
    decls: list[VariableNode] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        decl = ", ".join(str(v) for v in self.decls) + " := " if self.decls else ""
        return decl + " | ".join(str(c) for c in self.cmds)


@dataclass
class ActionNode(Node):
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass
class BranchNode(Node):
    keyword: str
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None

    def __str__(self) -> str:
        text = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.body)
        if self.else_body is not None:
            text += "{{else}}" + str(self.else_body)
        return text + "{{end}}"


class IfNode(BranchNode):
    pass


class RangeNode(BranchNode):
    pass


class WithNode(BranchNode):
    pass


@dataclass
class BreakNode(Node):
    def __str__(self) -> str:
        return "{{break}}"


@dataclass
class ContinueNode(Node):
    def __str__(self) -> str:
        return "{{continue}}"


@dataclass
class TemplateNode(Node):
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + go_quote(self.name) + "}}"
        return "{{template " + go_quote(self.name) + " " + str(self.pipe) + "}}"


@dataclass
class IdentifierNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class FieldNode(Node):
    idents: list[str]  # ".A.B" is ["A", "B"]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass
class ChainNode(Node):
    node: Node  # "(pipe).A.B": the pipe, then the fields
    fields: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return head + "".join("." + f for f in self.fields)


@dataclass
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass
class NumberNode(Node):
    text: str
    int_value: int | None  # set when the constant is an integer (Go's IsInt)
    float_value: float | None  # set when it is a float (Go's IsFloat)

    def __str__(self) -> str:
        return self.text


@dataclass
class StringNode(Node):
    quoted: str  # as written, quotes included
    text: str

    def __str__(self) -> str:
        return self.quoted


class _End(Node):
    def __str__(self) -> str:
        return "{{end}}"


class _Else(Node):
    def __str__(self) -> str:
        return "{{else}}"


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the token list, with the grammar and errors of Go's parser."""

    def __init__(self, text: str, funcs: Mapping[str, Any]) -> None:
        self.text = text
        self.funcs = funcs
        lexer = _Lexer(text, break_ok="break" not in funcs, continue_ok="continue" not in funcs)
        self.tokens = lexer.run()
        self.index = 0
        self.furthest = 0  # the last token read, whose line parse errors report
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.trees: dict[str, ListNode] = {}

    # -- token stream --

    def next(self) -> Token:
        token = self.tokens[min(self.index, len(self.tokens) - 1)]
        self.index += 1
        self.furthest = max(self.furthest, self.index - 1)
        return token

    def backup(self, n: int = 1) -> None:
        self.index -= n

    def peek(self) -> Token:
        token = self.next()
        self.backup()
        return token

    def next_non_space(self) -> Token:
        token = self.next()
        while token.typ is T.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        """The next non-space token; like Go, the spaces before it are consumed."""
        token = self.next_non_space()
        self.backup()
        return token

    # -- errors --

    def errorf(self, message: str) -> NoReturn:
        line = self.tokens[min(self.furthest, len(self.tokens) - 1)].line
        raise TemplateError(f"template: :{line}: {message}")

    def unexpected(self, token: Token, context: str) -> NoReturn:
        if token.typ is T.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != token.line:
                extra = f" in action started at :{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self.errorf(f"{token}{extra}")
        self.errorf(f"unexpected {token} in {context}")

    def expect(self, typ: T, context: str) -> Token:
        token = self.next_non_space()
        if token.typ is not typ:
            self.unexpected(token, context)
        return token

    # -- grammar --

    def parse(self) -> dict[str, ListNode]:
        root = ListNode(self.peek().pos)
        while self.peek().typ is not T.EOF:
            if self.peek().typ is T.LEFT_DELIM:
                delim_index = self.index
                self.next()
                if self.next_non_space().typ is T.DEFINE:
                    self.parse_definition()
                    continue
                self.index = delim_index
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        self.trees[""] = root
        return self.trees

    def parse_definition(self) -> None:
        context = "define clause"
        token = self.next_non_space()
        if token.typ not in (T.STRING, T.RAW_STRING):
            self.unexpected(token, context)
        name = self.unquote(token)
        self.expect(T.RIGHT_DELIM, context)
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in {context}")
        self.trees[name] = body

    def item_list(self) -> tuple[ListNode, Node]:
        nodes = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ is not T.EOF:
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                return nodes, node
            nodes.nodes.append(node)
        self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.typ is T.TEXT:
            return TextNode(token.pos, token.val)
        if token.typ is T.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(token, "input")

    def action(self) -> Node:
        token = self.next_non_space()
        if token.typ is T.BLOCK:
            return self.block_control()
        if token.typ is T.BREAK:
            return self.loop_control(BreakNode(token.pos), "{{break}}")
        if token.typ is T.CONTINUE:
            return self.loop_control(ContinueNode(token.pos), "{{continue}}")
        if token.typ is T.ELSE:
            return self.else_control()
        if token.typ is T.END:
            return _End(self.expect(T.RIGHT_DELIM, "end").pos)
        if token.typ is T.IF:
            return IfNode(*self.parse_control("if"))
        if token.typ is T.RANGE:
            return RangeNode(*self.parse_control("range"))
        if token.typ is T.TEMPLATE:
            return self.template_control()
        if token.typ is T.WITH:
            return WithNode(*self.parse_control("with"))
        self.backup()
        token = self.peek()
        return ActionNode(token.pos, self.pipeline("command", T.RIGHT_DELIM))

    def loop_control(self, node: Node, context: str) -> Node:
        token = self.next_non_space()
        if token.typ is not T.RIGHT_DELIM:
            self.unexpected(token, context)
        if self.range_depth == 0:
            self.errorf(f"{context} outside {{{{range}}}}")
        return node

    def pipeline(self, context: str, end: T) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos, token.line)
        self.declarations(pipe, context)
        while True:
            token = self.next_non_space()
            if token.typ is end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in (
                T.BOOL, T.CHAR_CONSTANT, T.COMPLEX, T.DOT, T.FIELD, T.IDENTIFIER,
                T.NUMBER, T.NIL, T.RAW_STRING, T.STRING, T.VARIABLE, T.LEFT_PAREN,
            ):  # fmt: skip
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(token, context)

    def declarations(self, pipe: PipeNode, context: str) -> None:
        """``$x :=``, ``$x =`` or, in a range, ``$i, $e :=`` before the commands."""
        while True:
            v = self.peek_non_space()
            if v.typ is not T.VARIABLE:
                return
            start = self.index
            self.next()
            following = self.peek_non_space()
            if following.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = following.typ is T.ASSIGN
                self.next_non_space()
                pipe.decls.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                return
            if following.typ is T.CHAR and following.val == ",":
                self.next_non_space()
                pipe.decls.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decls) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue  # the second variable of a range
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            # Not a declaration: "$x" is the first operand.
            self.index = start
            return

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.errorf(f"non executable command in pipeline stage {i}")

    def parse_control(self, context: str) -> tuple[int, str, PipeNode, ListNode, ListNode | None]:
        saved_vars = len(self.vars)
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, next_node = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_body: ListNode | None = None
            if isinstance(next_node, _Else):
                # "{{if a}}x{{else if b}}y{{end}}" is "{{if a}}x{{else}}{{if b}}y{{end}}{{end}}":
                # the nested if (or with, for "else with") consumes the only {{end}}.
                chained = {"if": (T.IF, IfNode), "with": (T.WITH, WithNode)}.get(context)
                if chained is not None and self.peek().typ is chained[0]:
                    self.next()
                    nested = chained[1](*self.parse_control(context))
                    else_body = ListNode(next_node.pos, [nested])
                else:
                    else_body, end = self.item_list()
                    if not isinstance(end, _End):
                        self.errorf(f"expected end; found {end}")
            return pipe.pos, context, pipe, body, else_body
        finally:
            del self.vars[saved_vars:]

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ in (T.IF, T.WITH):
            # "{{else if ...": the if (or with) is left for the enclosing control to parse.
            return _Else(peek.pos)
        return _Else(self.expect(T.RIGHT_DELIM, "else").pos)

    def block_control(self) -> Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in {context}")
        self.trees[name] = body
        return TemplateNode(token.pos, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().typ is not T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(token.pos, name, pipe)

    def template_name(self, token: Token, context: str) -> str:
        if token.typ not in (T.STRING, T.RAW_STRING):
            self.unexpected(token, context)
        return self.unquote(token)

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ is T.SPACE:
                continue
            if token.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif token.typ is not T.PIPE:
                self.unexpected(token, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ is T.FIELD:
            chain = ChainNode(self.peek().pos, node)
            while self.peek().typ is T.FIELD:
                chain.fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, node.idents + chain.fields)
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, node.idents + chain.fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.errorf(f"unexpected . after term {go_quote(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ is T.IDENTIFIER:
            if token.val not in self.funcs:
                self.errorf(f"function {go_quote(token.val)} not defined")
            return IdentifierNode(token.pos, token.val)
        if typ is T.DOT:
            return DotNode(token.pos)
        if typ is T.NIL:
            return NilNode(token.pos)
        if typ is T.VARIABLE:
            return self.use_var(token)
        if typ is T.FIELD:
            return FieldNode(token.pos, [token.val[1:]])
        if typ is T.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            return self.number(token)
        if typ is T.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if typ in (T.STRING, T.RAW_STRING):
            return StringNode(token.pos, token.val, self.unquote(token))
        self.backup()
        return None

    def use_var(self, token: Token) -> VariableNode:
        name = token.val.split(".")[0]
        if name not in self.vars:
            self.errorf(f"undefined variable {go_quote(name)}")
        return VariableNode(token.pos, [token.val])

    def unquote(self, token: Token) -> str:
        try:
            return go_unquote(token.val)
        except ValueError as e:
            self.errorf(str(e))

    def char_constant(self, text: str) -> str:
        """'a', '\\n', '\\u00e9': one rune, or Go's error for what follows the first."""
        try:
            return go_unquote(text)
        except ValueError:
            pass
        # Unquote the first rune alone to tell "invalid syntax" from trailing junk.
        end = 2
        if text[1:2] == "\\":
            end = 3 + {"x": 2, "u": 4, "U": 8}.get(text[2:3], 2 if text[2:3] in "01234567" else 0)
        try:
            go_unquote("'" + text[1:end] + "'")
        except ValueError:
            self.errorf("invalid syntax")
        self.errorf(f"malformed character constant: {text}")

    def number(self, token: Token) -> NumberNode:
        text = token.val
        if token.typ is T.COMPLEX or text.endswith("i"):
            self.errorf(f"complex constants are not supported: {text}")
        if token.typ is T.CHAR_CONSTANT:
            rune = self.char_constant(text)
            return NumberNode(token.pos, text, ord(rune), float(ord(rune)))
        int_value = _go_parse_int(text)
        if int_value is not None:
            return NumberNode(token.pos, text, int_value, float(int_value))
        float_value = _go_parse_float(text)
        if float_value is None:
            self.errorf(f"illegal number syntax: {go_quote(text)}")
        if not any(c in text for c in ".eEpP"):
            self.errorf(f"integer overflow: {go_quote(text)}")
        is_integral = math.isfinite(float_value) and float_value == int(float_value)
        as_int = int(float_value) if is_integral and abs(float_value) < 2**63 else None
        return NumberNode(token.pos, text, as_int, float_value)


_INT_RE = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)"
)
_DEC_FLOAT_RE = re.compile(
    r"[+-]?(?:[0-9](?:_?[0-9])*\.?(?:[0-9](?:_?[0-9])*)?|\.[0-9](?:_?[0-9])*)"
    r"(?:[eE][+-]?[0-9](?:_?[0-9])*)?"
)
_HEX_FLOAT_RE = re.compile(
    r"[+-]?0[xX](?:_?[0-9a-fA-F])*\.?(?:[0-9a-fA-F](?:_?[0-9a-fA-F])*)?[pP][+-]?[0-9](?:_?[0-9])*"
)


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64): Go's integer literal syntax, within int64."""
    if not _INT_RE.fullmatch(text):
        return None
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-").replace("_", "")
    legacy_octal = len(body) > 1 and body[0] == "0" and body[1] not in "xXbBoO"  # "017"
    value = sign * int(body, 8 if legacy_octal else 0)
    return value if -(2**63) <= value < 2**63 else None


def _go_parse_float(text: str) -> float | None:
    if _DEC_FLOAT_RE.fullmatch(text):
        return float(text.replace("_", ""))
    if _HEX_FLOAT_RE.fullmatch(text):
        return float.fromhex(text.replace("_", ""))
    return None


# ---------------------------------------------------------------------------
# Go string literals
# ---------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def go_unquote(quoted: str) -> str:
    """strconv.Unquote for "...", `...` and '.' literals; ValueError("invalid syntax") otherwise."""
    if len(quoted) < 2 or quoted[0] != quoted[-1] or quoted[0] not in "\"'`":
        raise ValueError("invalid syntax")
    quote, body = quoted[0], quoted[1:-1]
    if quote == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == quote or ch == "\n":
            raise ValueError("invalid syntax")
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        esc = body[i]
        i += 1
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
        elif esc == quote:
            out.append(esc)
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i : i + size]
            if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            i += size
            code = int(digits, 16)
            if esc == "x":
                out.append(_byte_char(code, quote))
            else:
                if code > 0x10FFFF or 0xD800 <= code < 0xE000:
                    raise ValueError("invalid syntax")
                out.append(chr(code))
        elif esc in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            i += 2
            out.append(_byte_char(int(digits, 8), quote))
        else:
            raise ValueError("invalid syntax")
    result = "".join(out)
    if quote == "'" and len(result) != 1:
        raise ValueError("invalid syntax")
    return result


def _byte_char(code: int, quote: str) -> str:
    """A \\x or octal escape: one raw byte in a string (kept as Python's surrogateescape
    does, so it encodes back to that byte), a code point in a rune literal."""
    if quote == "'" or code < 0x80:
        return chr(code)
    return chr(0xDC00 + code)


def _utf8(s: str) -> bytes:
    """The bytes Go would hold for a string, raw escaped bytes included."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace")


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str, quote: str = '"', *, ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteRune with ``quote="'"``): Go escapes, printable runes kept."""
    out = [quote]
    for ch in s:
        code = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() and not (ascii_only and code >= 0x80) and not 0xD800 <= code < 0xE000:
            out.append(ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")  # a raw byte that is not UTF-8
        elif 0xD800 <= code < 0xE000:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


# ---------------------------------------------------------------------------
# Printing values as Go's fmt does
# ---------------------------------------------------------------------------


@dataclass
class _Flags:
    """One directive's flags, width and precision, as Go's ``fmt`` keeps them."""

    minus: bool = False
    plus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    plus_v: bool = False  # %+v: struct field names
    sharp_v: bool = False  # %#v: Go syntax
    wid: int | None = None
    prec: int | None = None


_PLAIN = _Flags()


def go_type_name(v: Any) -> str:
    """The Go type a JSON-decoded value would have, for messages and ``%T``."""
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if callable(v):
        return "func"
    return type(v).__name__


def format_value(v: Any) -> str:
    """Go's ``fmt.Sprint(v)`` of one value, which is what ``{{.X}}`` prints."""
    return _print_arg(v, "v", _PLAIN)


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(_print_arg(arg, "v", _PLAIN))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: operands separated by spaces, then a newline."""
    return " ".join(_print_arg(a, "v", _PLAIN) for a in args) + "\n"


_TOO_LARGE = 1_000_000  # Go rejects widths and precisions beyond this


def _parse_num(s: str, i: int, end: int) -> tuple[int | None, int]:
    """Go's parsenum: digits from i, or None; an absurdly long number eats the rest."""
    num, start = 0, i
    while i < end and "0" <= s[i] <= "9":
        if abs(num) > _TOO_LARGE:
            return None, end
        num = num * 10 + int(s[i])
        i += 1
    return (num if i > start else None), i


class _Printf:
    """fmt.Sprintf's directive loop: flags, ``[n]`` indexes, ``*`` widths, verbs."""

    def __init__(self, format: str, args: tuple[Any, ...]) -> None:
        self.format = format
        self.args = args
        self.argn = 0
        self.reordered = False
        self.good_argn = True
        self.out: list[str] = []

    def arg_number(self, i: int) -> tuple[int, bool]:
        """An explicit ``[n]`` at i: move to argument n; returns (new i, index found)."""
        s = self.format
        if i >= len(s) or s[i] != "[":
            return i, False
        self.reordered = True
        close = s.find("]", i + 1)
        if close < 0 or len(s) - i < 3:
            self.good_argn = False
            return i + 1, False
        num, after = _parse_num(s, i + 1, close)
        if num is None or after != close:
            self.good_argn = False
            return close + 1, False
        if 1 <= num <= len(self.args):
            self.argn = num - 1
            return close + 1, True
        self.good_argn = False
        return close + 1, True

    def int_from_arg(self) -> int | None:
        if self.argn >= len(self.args):
            return None
        arg = self.args[self.argn]
        self.argn += 1
        if isinstance(arg, bool) or not isinstance(arg, int) or abs(arg) > _TOO_LARGE:
            return None
        return arg

    def run(self) -> str:
        s, end = self.format, len(self.format)
        i = 0
        while i < end:
            self.good_argn = True
            percent = s.find("%", i)
            if percent < 0:
                self.out.append(s[i:])
                break
            self.out.append(s[i:percent])
            i = percent + 1
            f = _Flags()
            while i < end and s[i] in "#0+- ":
                c = s[i]
                if c == "#":
                    f.sharp = True
                elif c == "0":
                    f.zero = not f.minus  # zero padding only on the left
                elif c == "+":
                    f.plus = True
                elif c == "-":
                    f.minus, f.zero = True, False
                else:
                    f.space = True
                i += 1
            i, after_index = self.arg_number(i)
            if i < end and s[i] == "*":
                i += 1
                f.wid = self.int_from_arg()
                if f.wid is None:
                    self.out.append("%!(BADWIDTH)")
                elif f.wid < 0:
                    f.wid, f.minus, f.zero = -f.wid, True, False
                after_index = False
            else:
                f.wid, i = _parse_num(s, i, end)
                if after_index and f.wid is not None:  # "%[3]2d"
                    self.good_argn = False
            if i + 1 < end and s[i] == ".":
                i += 1
                if after_index:  # "%[3].2d"
                    self.good_argn = False
                i, after_index = self.arg_number(i)
                if i < end and s[i] == "*":
                    i += 1
                    f.prec = self.int_from_arg()
                    if f.prec is not None and f.prec < 0:
                        f.prec = None
                    if f.prec is None:
                        self.out.append("%!(BADPREC)")
                    after_index = False
                else:
                    f.prec, i = _parse_num(s, i, end)
                    if f.prec is None:
                        f.prec = 0
            if not after_index:
                i, after_index = self.arg_number(i)
            if i >= end:
                self.out.append("%!(NOVERB)")
                break
            verb = s[i]
            i += 1
            if verb == "%":
                self.out.append("%")
            elif not self.good_argn:
                self.out.append(f"%!{verb}(BADINDEX)")
            elif self.argn >= len(self.args):
                self.out.append(f"%!{verb}(MISSING)")
            else:
                if verb == "v":
                    f.sharp_v, f.sharp = f.sharp, False
                    f.plus_v, f.plus = f.plus, False
                self.out.append(_print_arg(self.args[self.argn], verb, f))
                self.argn += 1
        if not self.reordered and self.argn < len(self.args):
            extra = ", ".join(
                "<nil>" if a is None else f"{go_type_name(a)}={_print_arg(a, 'v', _PLAIN)}"
                for a in self.args[self.argn :]
            )
            self.out.append(f"%!(EXTRA {extra})")
        return "".join(self.out)


def sprintf(format: str, *args: Any) -> str:
    """fmt.Sprintf, with Go's ``%!verb(type=value)`` markers for mismatched arguments."""
    return _Printf(format, args).run()


def _padding(n: int, f: _Flags) -> str:
    return ("0" if f.zero else " ") * max(n, 0)


def _pad(s: str, f: _Flags) -> str:
    """Pad to the width (counted in runes), on the right with ``-``, with zeros with ``0``."""
    if not f.wid:
        return s
    fill = f.wid - len(s)
    return s + _padding(fill, f) if f.minus else _padding(fill, f) + s


def _no_zero(f: _Flags) -> _Flags:
    return dataclasses.replace(f, zero=False) if f.zero else f


def _bad_verb(verb: str, arg: Any, f: _Flags) -> str:
    """``%!d(string=x)``: Go prints the value with %v and the directive's flags."""
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(arg)}={_print_arg(arg, 'v', f)})"


def _print_arg(arg: Any, verb: str, f: _Flags, depth: int = 0) -> str:
    if arg is None or arg is MISSING:
        if depth > 0:
            # A nil inside a list or map: Go prints it whatever the verb.
            return "interface {}(nil)" if f.sharp_v else "<nil>"
        return _pad("<nil>", f) if verb in "Tv" else _bad_verb(verb, None, f)
    if verb == "T":
        return _fmt_s(go_type_name(arg), f)
    if isinstance(arg, bool):
        if verb in "tv":
            return _pad("true" if arg else "false", f)
        return _bad_verb(verb, arg, f)
    if isinstance(arg, int):
        return _fmt_integer(arg, verb, f)
    if isinstance(arg, float):
        return _fmt_float(arg, verb, f)
    if isinstance(arg, str):
        if verb == "v":
            return _fmt_q(arg, f) if f.sharp_v else _fmt_s(arg, f)
        if verb == "s":
            return _fmt_s(arg, f)
        if verb in "xX":
            return _fmt_sx(arg, verb, f)
        if verb == "q":
            return _fmt_q(arg, f)
        return _bad_verb(verb, arg, f)
    if isinstance(arg, (list, tuple)):
        items = [_print_arg(e, verb, f, depth + 1) for e in arg]
        if f.sharp_v:
            return "[]interface {}{" + ", ".join(items) + "}"
        return "[" + " ".join(items) + "]"
    if isinstance(arg, dict):
        pairs = [
            _print_arg(k, verb, f, depth + 1) + ":" + _print_arg(v, verb, f, depth + 1)
            for k, v in sorted(arg.items(), key=lambda kv: _sort_key(kv[0]))
        ]
        if f.sharp_v:
            return "map[string]interface {}{" + ", ".join(pairs) + "}"
        return "map[" + " ".join(pairs) + "]"
    if dataclasses.is_dataclass(arg) and not isinstance(arg, type):
        parts = []
        for fld in dataclasses.fields(arg):
            value = _print_arg(getattr(arg, fld.name), verb, f, depth + 1)
            parts.append(f"{fld.name}:{value}" if f.plus_v or f.sharp_v else value)
        prefix = type(arg).__name__ if f.sharp_v else ""
        return prefix + "{" + (", " if f.sharp_v else " ").join(parts) + "}"
    return _fmt_s(str(arg), f)


def _sort_key(key: Any) -> tuple[int, Any]:
    """Go's fmtsort order for map keys of one kind; mixed kinds group by kind."""
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, (int, float)):
        return (1, key)
    if isinstance(key, str):
        return (2, key)
    return (3, str(key))


def _fmt_s(s: str, f: _Flags) -> str:
    if f.prec is not None:
        s = s[: f.prec]
    return _pad(s, f)


def _fmt_q(s: str, f: _Flags) -> str:
    if f.prec is not None:
        s = s[: f.prec]
    if f.sharp and _can_backquote(s):
        return _pad("`" + s + "`", f)
    return _pad(go_quote(s, ascii_only=f.plus), f)


def _can_backquote(s: str) -> bool:
    return all(
        ch == "\t" or (ch >= " " and ch not in "`\x7f\ufeff" and not 0xD800 <= ord(ch) < 0xE000) for ch in s
    )


def _fmt_sx(s: str, verb: str, f: _Flags) -> str:
    """%x on a string: hex of its bytes; ``% x`` separates them, ``%#x`` adds 0x."""
    data = _utf8(s)
    if f.prec is not None:
        data = data[: f.prec]
    if not data:
        return _padding(f.wid or 0, f)
    pattern = "{:02x}" if verb == "x" else "{:02X}"
    prefix = ("0x" if verb == "x" else "0X") if f.sharp else ""
    if f.space:
        text = " ".join(prefix + pattern.format(b) for b in data)
    else:
        text = prefix + "".join(pattern.format(b) for b in data)
    return _pad(text, f)


def _fmt_integer(v: int, verb: str, f: _Flags) -> str:
    if verb == "c":
        return _pad(_rune(v), f)
    if verb == "q":
        return _pad(go_quote(_rune(v), "'", ascii_only=f.plus), f)
    if verb == "U":
        return _fmt_unicode(v, f)
    base = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}.get(verb)
    if base is None:
        return _bad_verb(verb, v, f)
    negative = v < 0
    if f.prec is not None:
        prec = f.prec
        if prec == 0 and v == 0:
            return _padding(f.wid or 0, _no_zero(f))
    elif f.zero and f.wid is not None:
        prec = f.wid - (1 if negative or f.plus or f.space else 0)
    else:
        prec = 0
    digits = {10: "{:d}", 2: "{:b}", 8: "{:o}", 16: "{:x}"}[base].format(abs(v))
    if verb == "X":
        digits = digits.upper()
    digits = digits.rjust(prec, "0")
    if f.sharp:
        if base == 2:
            digits = "0b" + digits
        elif base == 8 and not digits.startswith("0"):
            digits = "0" + digits
        elif base == 16:
            digits = ("0x" if verb == "x" else "0X") + digits
    if verb == "O":
        digits = "0o" + digits
    sign = "-" if negative else "+" if f.plus else " " if f.space else ""
    # Zero padding was done above, as a precision.
    return _pad(sign + digits, _no_zero(f))


def _rune(v: int) -> str:
    """The character for %c and %q; invalid code points print as U+FFFD."""
    if v < 0 or v > 0x10FFFF or 0xD800 <= v < 0xE000:
        return "\ufffd"
    return chr(v)


def _fmt_unicode(v: int, f: _Flags) -> str:
    """%U: "U+0078", at least four hex digits (or the precision); %#U adds 'x'."""
    prec = f.prec if f.prec is not None and f.prec > 4 else 4
    code = v if v >= 0 else v + 2**64  # Go formats the bits as unsigned
    text = "U+" + f"{code:X}".rjust(prec, "0")
    if f.sharp and 0 <= v <= 0x10FFFF and _rune(v).isprintable():
        text += f" '{chr(v)}'"
    return _pad(text, _no_zero(f))


def _fmt_float(v: float, verb: str, f: _Flags) -> str:
    """Go's fmtFloat: strconv's digits, then sign, ``#`` and zero-padding rules."""
    if verb == "v":
        fmt_verb, default_prec = "g", -1
    elif verb in "bgGxX":
        fmt_verb, default_prec = verb, -1
    elif verb in "feE":
        fmt_verb, default_prec = verb, 6
    elif verb == "F":
        fmt_verb, default_prec = "f", 6
    else:
        return _bad_verb(verb, v, f)
    prec = f.prec if f.prec is not None else default_prec
    num = _strconv_float(v, fmt_verb, prec)
    num = num if num[0] in "+-" else "+" + num
    if f.space and num[0] == "+" and not f.plus:
        num = " " + num[1:]
    if num[1] in "IN":  # Inf and NaN are not numbers to pad with zeros
        if num[1] == "N" and not f.space and not f.plus:
            num = num[1:]
        return _pad(num, _no_zero(f))
    if f.sharp and fmt_verb != "b":
        num = _sharp_float(num, fmt_verb, prec)
    if f.plus or num[0] != "+":
        if f.zero and f.wid is not None and f.wid > len(num):
            return num[0] + _padding(f.wid - len(num), f) + num[1:]
        return _pad(num, f)
    return _pad(num[1:], f)


def _sharp_float(num: str, verb: str, prec: int) -> str:
    """``%#g`` and friends: always a decimal point, trailing zeros kept."""
    digits = (6 if prec == -1 else prec) if verb in "gGx" else 0  # not X: Go's quirk
    tail = ""
    body = num
    for marker in ("p", "P") if verb in "xX" else ("e", "E", "p", "P"):
        at = body.find(marker, 1)
        if at >= 0:
            body, tail = body[:at], body[at:]
            break
    seen_nonzero = False
    for ch in body[1:]:
        if ch == ".":
            continue
        if ch != "0":
            seen_nonzero = True
        if seen_nonzero:
            digits -= 1
    if "." not in body:
        if body[1:] == "0":
            digits -= 1
        body += "."
    return body + "0" * max(digits, 0) + tail


def _strconv_float(v: float, verb: str, prec: int) -> str:
    """strconv.FormatFloat(v, verb, prec, 64); prec -1 means the shortest exact digits."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if verb == "b":
        _, mant, exp = _float_bits(v)
        return f"{sign}{mant}p{exp - 52:+d}"
    if verb in "xX":
        return _hex_float(v, prec, upper=verb == "X")
    if prec >= 0:
        if verb in "gG":
            prec = max(prec, 1)
        return f"{v:.{prec}{verb}}"
    if v == 0:
        zero = {"e": "0e+00", "E": "0E+00"}.get(verb, "0")
        return sign + zero
    digits, exp = _shortest_digits(v)
    if verb in "gG":
        use_exp = exp < -4 or exp >= 6
        verb = "e" if verb == "g" else "E"
        if not use_exp:
            return sign + _fixed(digits, exp)
    if verb in "eE":
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}{verb}{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + _fixed(digits, exp)


def _float_bits(v: float) -> tuple[bool, int, int]:
    """(negative, mantissa with its implicit bit, unbiased exponent) as strconv splits a float64."""
    bits = struct.unpack(">Q", struct.pack(">d", v))[0]
    biased = (bits >> 52) & 0x7FF
    mant = bits & ((1 << 52) - 1)
    if biased == 0:
        biased = 1  # subnormal
    else:
        mant |= 1 << 52
    return bool(bits >> 63), mant, biased - 1023


def _hex_float(v: float, prec: int, *, upper: bool) -> str:
    """%x of a float: -0x1.8p+01, the mantissa shifted to a leading 1 and rounded to prec digits."""
    neg, mant, exp = _float_bits(v)
    if mant == 0:
        exp = 0
    mant <<= 60 - 52
    while mant and not mant & (1 << 60):
        mant <<= 1
        exp -= 1
    if 0 <= prec < 15:
        shift = prec * 4
        extra = (mant << shift) & ((1 << 60) - 1)
        mant >>= 60 - shift
        if extra | (mant & 1) > 1 << 59:  # round half to even
            mant += 1
        mant <<= 60 - shift
        if mant & (1 << 61):
            mant >>= 1
            exp += 1
    hexdigits = "0123456789ABCDEF" if upper else "0123456789abcdef"
    out = ["-" if neg else "", "0X" if upper else "0x", str((mant >> 60) & 1)]
    mask = (1 << 64) - 1
    mant = (mant << 4) & mask
    count = prec if prec > 0 else (-1 if prec < 0 and mant else 0)
    if count:
        out.append(".")
        while (count < 0 and mant) or count > 0:
            out.append(hexdigits[(mant >> 60) & 15])
            mant = (mant << 4) & mask
            count -= 1 if count > 0 else 0
    out.append(f"{'P' if upper else 'p'}{'-' if exp < 0 else '+'}{abs(exp):02d}")
    return "".join(out)


def _shortest_digits(v: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip ``v``, and the decimal exponent of the first."""
    mantissa, _, exponent = repr(abs(v)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    stripped = all_digits.lstrip("0")
    if not stripped:
        return "0", 0
    point = len(int_part) + (int(exponent) if exponent else 0) - (len(all_digits) - len(stripped))
    return stripped.rstrip("0"), point - 1


def _fixed(digits: str, exp: int) -> str:
    """Digits d1d2d3... with the first at 10**exp, in plain notation."""
    if exp < 0:
        return "0." + "0" * (-exp - 1) + digits
    if exp + 1 >= len(digits):
        return digits + "0" * (exp + 1 - len(digits))
    return digits[: exp + 1] + "." + digits[exp + 1 :]


def _shortest_g(v: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64), which %v uses: exponent form when exp < -4 or exp >= 6."""
    return _strconv_float(v, "g", -1)


# ---------------------------------------------------------------------------
# JSON as Go's encoding/json writes it
# ---------------------------------------------------------------------------


def json_marshal(value: Any, *, escape_html: bool = False, sort_keys: bool = False) -> str:
    """Compact JSON as Go's encoder writes it, without the trailing newline.

    docker's ``json`` template function disables HTML escaping (docker/cli
    ``templates/templates.go``, since moby/moby#32120), so ``<`` stays ``<``;
    ``escape_html=True`` gives ``json.Marshal``'s ``\\u003c``. Keys keep the
    dict's order (a Go struct's field order); ``sort_keys=True`` orders them as
    Go orders a map's. Raises ValueError for NaN and infinities, as Go does.
    """
    out: list[str] = []
    _json_encode(value, out, escape_html, sort_keys)
    return "".join(out)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(s: str, escape_html: bool) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif code < 0x20 or (escape_html and ch in "<>&") or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code < 0xE000:
            out.append("\\ufffd")  # not valid UTF-8: Go writes the replacement character
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(v: float) -> str:
    if not math.isfinite(v):
        raise ValueError(f"json: unsupported value: {_shortest_g(v)}")
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    digits, exp = _shortest_digits(v)
    sign = "-" if v < 0 else ""
    if abs(v) < 1e-6 or abs(v) >= 1e21:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        # Go writes e-7, not e-07, but keeps two digits after e+.
        exponent = f"-{abs(exp)}" if exp < 0 else f"+{exp:02d}"
        return f"{sign}{mantissa}e{exponent}"
    return sign + _fixed(digits, exp)


def _json_encode(v: Any, out: list[str], escape_html: bool, sort_keys: bool) -> None:
    if v is None or v is MISSING:
        out.append("null")
    elif isinstance(v, bool):
        out.append("true" if v else "false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(_json_float(v))
    elif isinstance(v, str):
        out.append(_json_string(v, escape_html))
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, e in enumerate(v):
            if i:
                out.append(",")
            _json_encode(e, out, escape_html, sort_keys)
        out.append("]")
    elif isinstance(v, Mapping):
        items = [(str(k) if not isinstance(k, str) else k, e) for k, e in v.items()]
        if sort_keys:
            items.sort(key=lambda kv: kv[0])
        out.append("{")
        for i, (k, e) in enumerate(items):
            if i:
                out.append(",")
            out.append(_json_string(k, escape_html))
            out.append(":")
            _json_encode(e, out, escape_html, sort_keys)
        out.append("}")
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
        _json_encode(fields, out, escape_html, sort_keys)
    elif hasattr(v, "__dict__"):
        public = {k: e for k, e in vars(v).items() if not k.startswith("_")}
        _json_encode(public, out, escape_html, sort_keys)
    else:
        raise ValueError(f"json: unsupported type: {type(v).__name__}")


# ---------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------


class Arg(enum.Enum):
    """The Go parameter type a function declares, which decides how arguments convert."""

    ANY = "interface {}"  # anything; a missing value arrives as None
    VALUE = "reflect.Value"  # anything, MISSING passed through (Go builtins)
    STRING = "string"
    INT = "int"
    BOOL = "bool"
    STRINGS = "[]string"


@dataclass(frozen=True)
class Func:
    """A template function with Go-style typed parameters.

    A plain callable given in ``funcs`` is treated as ``Func(fn, variadic=Arg.ANY)``.
    The function signals failure by raising; the template then fails with
    ``error calling NAME: MESSAGE``.
    """

    fn: Callable[..., Any]
    params: tuple[Arg, ...] = ()
    variadic: Arg | None = None


class _FuncError(Exception):
    """Raised by builtins: becomes ``error calling NAME: MESSAGE``."""


def _truth(v: Any) -> tuple[bool, bool]:
    """Go's isTrue: (truth, meaningful). Empty collections, zero, "" and nil are false."""
    if v is None or v is MISSING:
        return False, True
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v), True
    return True, True  # structs, functions: true


def _not(v: Any) -> bool:
    return not _truth(v)[0]


def _len(v: Any) -> int:
    if v is MISSING:
        raise _FuncError("reflect: call of reflect.Value.Type on zero Value")
    if v is None:
        raise _FuncError("len of nil pointer")
    if isinstance(v, str):
        return len(_utf8(v))
    if isinstance(v, (list, tuple, dict)):
        return len(v)
    raise _FuncError(f"len of type {go_type_name(v)}")


def _index_arg(index: Any, cap: int) -> int:
    if index is None or index is MISSING:
        raise _FuncError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise _FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise _FuncError(f"index out of range: {index}")
    return index


def _index(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise _FuncError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise _FuncError("index of nil pointer")
        if isinstance(item, (str, list, tuple)):
            seq = _utf8(item) if isinstance(item, str) else item
            i = _index_arg(index, len(seq))
            if i == len(seq):
                kind = "string" if isinstance(item, str) else "slice"
                raise _FuncError(f"reflect: {kind} index out of range")
            item = seq[i]
        elif isinstance(item, dict):
            if index is None or index is MISSING:
                raise _FuncError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise _FuncError(f"value has type {go_type_name(index)}; should be string")
            item = item.get(index)
        else:
            raise _FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise _FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise _FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _FuncError("cannot 3-index slice a string")
        data: Any = _utf8(item)
    elif isinstance(item, (list, tuple)):
        data = list(item)
    else:
        raise _FuncError(f"can't slice item of type {go_type_name(item)}")
    bounds = [0, len(data)]
    for i, index in enumerate(indexes):
        value = _index_arg(index, len(data))
        if i < 2:
            bounds[i] = value
    if bounds[0] > bounds[1]:
        raise _FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3 and bounds[1] > _index_arg(indexes[2], len(data)):
        raise _FuncError(f"invalid slice index: {bounds[1]} > {indexes[2]}")
    result = data[bounds[0] : bounds[1]]
    if isinstance(item, str):
        return result.decode("utf-8", "replace")
    return result


def _basic_kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return None


def _eq(arg1: Any, *args: Any) -> bool:
    if not args:
        raise _FuncError("missing argument for comparison")
    arg1 = None if arg1 is MISSING else arg1
    k1 = _basic_kind(arg1)
    for arg in args:
        arg = None if arg is MISSING else arg
        k2 = _basic_kind(arg)
        if k1 != k2:
            if arg1 is not None and arg is not None:
                raise _FuncError("incompatible types for comparison")
            truth = False
        elif k1 is not None:
            truth = arg1 == arg
        elif arg1 is None or arg is None:
            truth = arg1 is None and arg is None
        elif _kind_of(arg1) != _kind_of(arg):
            raise _FuncError(
                f"non-comparable types {sprintf('%s', arg1)}: {go_type_name(arg1)}, "
                f"{go_type_name(arg)}: {format_value(arg)}"
            )
        elif isinstance(arg, (list, tuple, dict)):
            raise _FuncError(f"non-comparable type {sprintf('%s', arg)}: {go_type_name(arg)}")
        else:
            truth = arg1 == arg
        if truth:
            return True
    return False


def _kind_of(v: Any) -> str:
    return "slice" if isinstance(v, (list, tuple)) else "map" if isinstance(v, dict) else type(v).__name__


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    a = None if a is MISSING else a
    b = None if b is MISSING else b
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 is None or k2 is None:
        raise _FuncError("invalid type for comparison")
    if k1 != k2:
        raise _FuncError("incompatible types for comparison")
    if k1 == "bool":
        raise _FuncError("invalid type for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _json(v: Any) -> str:
    try:
        return json_marshal(v)
    except ValueError:
        return ""  # docker ignores the encoder's error: nothing is printed


def _go_title(s: str) -> str:
    """strings.Title: upper-case each letter that follows a separator."""
    out: list[str] = []
    prev = " "
    for ch in s:
        out.append(_single_case(ch, str.title) if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _is_separator(ch: str) -> bool:
    if ord(ch) < 0x80:
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or unicodedata.category(ch) == "Nd":
        return False
    return ch.isspace()


def _single_case(ch: str, mapping: Callable[[str], str]) -> str:
    """Go maps case rune by rune; Python's full mappings can grow a rune ("ß" -> "SS")."""
    mapped = mapping(ch)
    return mapped if len(mapped) == 1 else ch


def _go_upper(s: str) -> str:
    return "".join(_single_case(ch, str.upper) for ch in s)


def _go_lower(s: str) -> str:
    return "".join(_single_case(ch, str.lower) for ch in s)


def _split(s: str, sep: str) -> list[str]:
    return list(s) if sep == "" else s.split(sep)


def _pad_with_space(source: str, prefix: int, suffix: int) -> str:
    if source == "":
        return source
    return " " * prefix + source + " " * suffix


def _truncate(source: str, length: int) -> str:
    data = _utf8(source)
    if len(data) < length:
        return source
    return data[: max(length, 0)].decode("utf-8", "replace")


def _inc(n: int) -> int:
    return n + 1


def _identity(v: Any, *_: Any) -> Any:
    return v


_A, _V, _S, _I, _SS = Arg.ANY, Arg.VALUE, Arg.STRING, Arg.INT, Arg.STRINGS

BUILTINS: Mapping[str, Func] = {
    # and/or are evaluated lazily by the executor; these entries give their arity.
    "and": Func(_identity, (_V,), _V),
    "or": Func(_identity, (_V,), _V),
    "not": Func(_not, (_V,)),
    "len": Func(_len, (_V,)),
    "index": Func(_index, (_V,), _V),
    "slice": Func(_slice, (_V,), _V),
    "eq": Func(_eq, (_V,), _V),
    "ne": Func(_ne, (_V, _V)),
    "lt": Func(_lt, (_V, _V)),
    "le": Func(_le, (_V, _V)),
    "gt": Func(_gt, (_V, _V)),
    "ge": Func(_ge, (_V, _V)),
    "print": Func(sprint, (), _A),
    "printf": Func(sprintf, (_S,), _A),
    "println": Func(sprintln, (), _A),
}

DOCKER_FUNCS: Mapping[str, Func] = {
    "json": Func(_json, (_A,)),
    "split": Func(_split, (_S, _S)),
    "join": Func(lambda items, sep: sep.join(items), (_SS, _S)),
    "title": Func(_go_title, (_S,)),
    "lower": Func(_go_lower, (_S,)),
    "upper": Func(_go_upper, (_S,)),
    "pad": Func(_pad_with_space, (_S, _I, _I)),
    "truncate": Func(_truncate, (_S, _I)),
    "inc": Func(_inc, (_I,)),  # not a docker function; kept for portside's own templates
}

# docker/cli HeaderFunctions: rendering a table header leaves titles as they are
# (pad is deliberately not overridden, to keep headers aligned with padded cells).
HEADER_FUNCS: Mapping[str, Func] = {
    "json": Func(_identity, (_S,)),
    "split": Func(_identity, (_S, _S)),
    "join": Func(_identity, (_S, _S)),
    "title": Func(_identity, (_S,)),
    "lower": Func(_identity, (_S,)),
    "upper": Func(_identity, (_S,)),
    "truncate": Func(_identity, (_S, _I)),
}


def _as_func(fn: Any) -> Func:
    return fn if isinstance(fn, Func) else Func(fn, (), Arg.ANY)


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------

_NO_FINAL: Any = object()  # "no value piped in", distinct from a piped-in MISSING


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ExecError(Exception):
    pass


class _State:
    """One run of a template: the output, the variable stack and the node being run."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = []
        self.node: Node | None = None
        self.depth = 0

    # -- errors --

    def errorf(self, message: str) -> NoReturn:
        if self.node is None:
            raise _ExecError(f"template: : {message}")
        text = self.template.text
        pos = self.node.pos
        before = text[:pos]
        line = 1 + before.count("\n")
        col = len(_utf8(before[before.rfind("\n") + 1 :]))
        raise _ExecError(f'template: :{line}:{col}: executing "" at <{self.node}>: {message}')

    def at(self, node: Node) -> None:
        self.node = node

    # -- variables --

    def push(self, name: str, value: Any) -> None:
        self.vars.append((name, value))

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for var_name, value in reversed(self.vars):
            if var_name == name:
                return value
        self.errorf(f"undefined variable: {name}")

    # -- walking the tree --

    def walk(self, dot: Any, node: Node) -> None:
        self.at(node)
        if isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decls:
                self.print_value(node, value)
        elif isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, (IfNode, WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        else:  # pragma: no cover - the parser makes no other nodes
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            truth, _ = _truth(value)
            if truth:
                self.walk(value if isinstance(node, WithNode) else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        self.at(node)
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            items = self.range_items(value, node)
            if not items:
                if node.else_body is not None:
                    self.walk(dot, node.else_body)
                return
            # eval_pipeline pushed the range's variables; each iteration sets them.
            body_mark = self.mark()
            names = [decl.idents[0] for decl in node.pipe.decls]
            for index, elem in items:
                if names:
                    self.vars[body_mark - 1] = (names[-1], elem)
                if len(names) > 1:
                    self.vars[body_mark - 2] = (names[0], index)
                try:
                    self.walk(elem, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    self.pop(body_mark)
        finally:
            self.pop(mark)

    def range_items(self, value: Any, node: RangeNode) -> list[tuple[Any, Any]]:
        """(index or key, element) pairs; a map in sorted key order, an int as 0..n-1."""
        if isinstance(value, (list, tuple)):
            return list(enumerate(value))
        if isinstance(value, dict):
            return [(k, value[k]) for k in sorted(value, key=_sort_key)]
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decls) > 1:
                self.errorf(f"can't use {value} to iterate over more than one variable")
            return [(i, i) for i in range(value)]
        if value is MISSING or value is None:
            return []  # Go treats an invalid value like an empty map
        self.errorf(f"range can't iterate over {format_value(value)}")

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.at(node)
        tree = self.template.trees.get(node.name)
        if tree is None:
            self.errorf(f"template {go_quote(node.name)} not defined")
        if self.depth >= 10000:
            self.errorf("exceeded maximum template depth (10000)")
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else MISSING
        saved_vars, self.vars = self.vars, [("$", value)]
        self.depth += 1
        try:
            self.walk(value, tree)
        finally:
            self.depth -= 1
            self.vars = saved_vars

    def print_value(self, node: Node, value: Any) -> None:
        self.at(node)
        if value is MISSING:
            self.out.append("<no value>")
            return
        if callable(value) and not isinstance(value, type):
            self.errorf(f"can't print {node} of type {go_type_name(value)}")
        self.out.append(format_value(value))

    # -- evaluating --

    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return MISSING
        self.at(pipe)
        value = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                # Go digs the value out of an interface{}: a nil one becomes invalid.
                value = MISSING
        for variable in pipe.decls:
            if pipe.is_assign:
                self.set_var(variable.idents[0], value)
            else:
                self.push(variable.idents[0], value)
        return value

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, ChainNode):
            self.at(first)
            if isinstance(first.node, NilNode):
                self.errorf(f"indirection through explicit nil in {first}")
            receiver = self.eval_arg(dot, Arg.VALUE, first.node)
            return self.eval_field_chain(dot, receiver, first, first.fields, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        self.errorf(f"can't evaluate command {go_quote(str(first))}")  # pragma: no cover

    def ideal_constant(self, number: NumberNode) -> Any:
        """A number with no type to convert to: the syntax decides, as in Go."""
        self.at(number)
        text = number.text
        is_hex_int = text.lower().startswith(("0x", "-0x", "+0x")) and "p" not in text.lower()
        if (
            number.float_value is not None
            and not is_hex_int
            and not text.startswith("'")
            and any(c in text for c in ".eEpP")
        ):
            return number.float_value
        if number.int_value is not None:
            return number.int_value
        self.errorf(f"{text} overflows int")

    def eval_variable(self, dot: Any, node: VariableNode, args: list[Node], final: Any) -> Any:
        self.at(node)
        value = self.var_value(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.idents[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Node, idents: list[str], args: list[Node], final: Any
    ) -> Any:
        """``.A.B.C args``: all but the last are plain lookups; the last may be a method call."""
        for i, name in enumerate(idents[:-1]):
            receiver = self.eval_field(dot, name, node, [], _NO_FINAL, receiver, from_lookup=i > 0)
        return self.eval_field(dot, idents[-1], node, args, final, receiver, from_lookup=len(idents) > 1)

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: Node,
        args: list[Node],
        final: Any,
        receiver: Any,
        *,
        from_lookup: bool,
    ) -> Any:
        if receiver is MISSING:
            if self.template.missing_key_error:
                self.errorf(f"nil data; no entry for key {go_quote(name)}")
            return MISSING
        # Values found in a map or slice have Go type interface{}, which messages name.
        type_name = "interface {}" if from_lookup or receiver is None else go_type_name(receiver)
        if receiver is None:
            self.errorf(f"nil pointer evaluating {type_name}.{name}")
        has_args = len(args) > 1 or final is not _NO_FINAL
        if isinstance(receiver, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name not in receiver and self.template.missing_key_error:
                self.errorf(f"map has no entry for key {go_quote(name)}")
            return receiver.get(name, MISSING)
        if not isinstance(receiver, (str, int, float, bool, list, tuple)) and not name.startswith("_"):
            attr = getattr(receiver, name, MISSING)
            if attr is not MISSING:
                if callable(attr) and not isinstance(attr, type):
                    return self.eval_call(dot, _as_func(attr), node, name, args, final)
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return attr
        self.errorf(f"can't evaluate field {name} in type {type_name}")

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node], final: Any) -> Any:
        self.at(node)
        fn = self.template.funcs.get(node.name)
        if fn is None:
            self.errorf(f"{go_quote(node.name)} is not a defined function")
        if node.name in ("and", "or") and fn is BUILTINS[node.name]:
            return self.eval_and_or(dot, node.name, cmd, args, final)
        return self.eval_call(dot, fn, cmd, node.name, args, final)

    def eval_and_or(self, dot: Any, name: str, cmd: Node, args: list[Node], final: Any) -> Any:
        """and/or evaluate their arguments one by one and return the deciding value."""
        self.check_arity(_as_func(BUILTINS[name]), name, args, final)
        value: Any = MISSING
        for arg in args[1:]:
            value = self.eval_arg(dot, Arg.VALUE, arg)
            if _truth(value)[0] == (name == "or"):
                return value
        if final is not _NO_FINAL:
            value = final
        return value

    def check_arity(self, fn: Func, name: str, args: list[Node], final: Any) -> int:
        count = len(args) - 1 + (0 if final is _NO_FINAL else 1)
        if fn.variadic is not None:
            if count < len(fn.params):
                self.errorf(
                    f"wrong number of args for {name}: want at least {len(fn.params)} got {len(args) - 1}"
                )
        elif count != len(fn.params):
            self.errorf(f"wrong number of args for {name}: want {len(fn.params)} got {count}")
        return count

    def eval_call(self, dot: Any, fn: Func, node: Node, name: str, args: list[Node], final: Any) -> Any:
        count = self.check_arity(fn, name, args, final)
        argv: list[Any] = []
        for i, arg in enumerate(args[1:]):
            argv.append(self.eval_arg(dot, self.param_kind(fn, i), arg))
        if final is not _NO_FINAL:
            argv.append(self.validate(final, self.param_kind(fn, count - 1)))
        try:
            return fn.fn(*argv)
        except (_ExecError, _Break, _Continue):
            raise
        except Exception as e:  # a function's failure stops the template, as in Go
            self.at(node)
            message = str(e) if isinstance(e, _FuncError) else str(e) or type(e).__name__
            self.errorf(f"error calling {name}: {message}")

    @staticmethod
    def param_kind(fn: Func, i: int) -> Arg:
        if i < len(fn.params):
            return fn.params[i]
        return fn.variadic if fn.variadic is not None else Arg.ANY

    def validate(self, value: Any, kind: Arg) -> Any:
        """Go's validateType: may this value be passed as a parameter of this kind?"""
        if kind is Arg.VALUE:
            return value
        if value is MISSING:
            if kind is Arg.ANY:
                return None
            if kind is Arg.STRINGS:
                return []
            self.errorf(f"invalid value; expected {kind.value}")
        if kind is Arg.ANY:
            return value
        ok = {
            Arg.STRING: isinstance(value, str),
            Arg.INT: isinstance(value, int) and not isinstance(value, bool),
            Arg.BOOL: isinstance(value, bool),
            Arg.STRINGS: isinstance(value, (list, tuple)) and all(isinstance(e, str) for e in value),
        }[kind]
        if not ok:
            got = "interface {}" if value is None else go_type_name(value)
            self.errorf(f"wrong type for value; expected {kind.value}; got {got}")
        return list(value) if kind is Arg.STRINGS else value

    def eval_arg(self, dot: Any, kind: Arg, node: Node) -> Any:
        self.at(node)
        if isinstance(node, DotNode):
            return self.validate(dot, kind)
        if isinstance(node, NilNode):
            if kind in (Arg.ANY, Arg.VALUE):
                return None if kind is Arg.ANY else MISSING
            if kind is Arg.STRINGS:
                return []
            self.errorf(f"cannot assign nil to {kind.value}")
        if isinstance(node, FieldNode):
            value = self.eval_field_chain(dot, dot, node, node.idents, [node], _NO_FINAL)
            return self.validate(value, kind)
        if isinstance(node, VariableNode):
            return self.validate(self.eval_variable(dot, node, [], _NO_FINAL), kind)
        if isinstance(node, PipeNode):
            return self.validate(self.eval_pipeline(dot, node), kind)
        if isinstance(node, IdentifierNode):
            return self.validate(self.eval_function(dot, node, node, [node], _NO_FINAL), kind)
        if isinstance(node, ChainNode):
            cmd = CommandNode(node.pos, [node])
            return self.validate(self.eval_command(dot, cmd, _NO_FINAL), kind)
        if kind in (Arg.ANY, Arg.VALUE):
            if isinstance(node, BoolNode):
                return node.value
            if isinstance(node, NumberNode):
                return self.ideal_constant(node)
            if isinstance(node, StringNode):
                return node.text
        if kind is Arg.BOOL and isinstance(node, BoolNode):
            return node.value
        if kind is Arg.STRING and isinstance(node, StringNode):
            return node.text
        if kind is Arg.INT and isinstance(node, NumberNode) and node.int_value is not None:
            return node.int_value
        expected = {Arg.BOOL: "bool", Arg.STRING: "string", Arg.INT: "integer"}.get(kind)
        if expected is None:
            self.errorf(f"can't handle {node} for arg of type {kind.value}")
        self.errorf(f"expected {expected}; found {node}")


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


class Template:
    """A parsed template; :meth:`execute` may be called any number of times.

    ``missing_key_error`` is Go's ``Option("missingkey=error")``: a key missing
    from a dict fails the template instead of printing ``<no value>``.
    ``docker inspect`` runs its raw-JSON fallback that way, so that
    ``-f '{{.NoSuchField}}'`` fails with ``map has no entry for key "NoSuchField"``.
    """

    def __init__(
        self,
        text: str,
        trees: dict[str, ListNode],
        funcs: Mapping[str, Func],
        *,
        missing_key_error: bool = False,
    ) -> None:
        self.text = text
        self.trees = trees
        self.funcs = funcs
        self.root = trees[""]
        self.missing_key_error = missing_key_error

    def execute(self, data: Any) -> str:
        """Run the template over ``data``; raises TemplateError (with ``partial``)."""
        state = _State(self)
        root = MISSING if data is None else data
        state.push("$", root)
        try:
            state.walk(root, self.root)
        except _ExecError as e:
            raise TemplateError(str(e), "".join(state.out)) from None
        except RecursionError:
            raise TemplateError("template: : exceeded maximum template depth", "".join(state.out)) from None
        return "".join(state.out)


def parse(text: str, *, funcs: Mapping[str, Any] | None = None, missing_key_error: bool = False) -> Template:
    """Parse ``text`` with Go's builtins, docker's functions and ``funcs`` (which win)."""
    all_funcs: dict[str, Func] = {**BUILTINS, **DOCKER_FUNCS}
    for name, fn in (funcs or {}).items():
        all_funcs[name] = _as_func(fn)
    trees = _Parser(text, all_funcs).parse()
    return Template(text, trees, all_funcs, missing_key_error=missing_key_error)


def render(
    template: str,
    data: Any,
    *,
    funcs: Mapping[str, Any] | None = None,
    missing_key_error: bool = False,
) -> str:
    """Parse and run a template once: ``render("{{.Config.Cmd}}", info) == "[sh -c]"``."""
    return parse(template, funcs=funcs, missing_key_error=missing_key_error).execute(data)
