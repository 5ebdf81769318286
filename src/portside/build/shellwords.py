"""Dockerfile words: variable substitution and word splitting as BuildKit's shell lexer does them.

This is not a shell. It is the small lexer Docker applies to the arguments of
ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ARG
(RUN/CMD/ENTRYPOINT are left to the shell in the container):

- ``$VAR`` and ``${VAR}``; an unset variable is the empty string;
- ``${VAR:-word}`` / ``${VAR-word}``: ``word`` if VAR is empty-or-unset / unset;
- ``${VAR:+word}`` / ``${VAR+word}``: ``word`` if VAR is non-empty / set, else empty;
- ``${VAR:?msg}`` / ``${VAR?msg}``: an error if VAR is empty-or-unset / unset;
- ``${VAR#pat}``, ``${VAR##pat}``, ``${VAR%pat}``, ``${VAR%%pat}``: prefix/suffix removal,
  ``${VAR/pat/repl}``, ``${VAR//pat/repl}``: replacement (``*`` and ``?`` wildcards);
- single quotes keep everything literally (no escapes, no ``$``);
- double quotes keep everything but ``$`` substitution, and the escape character
  escapes only ``"``, ``$`` and itself there (any other escape stays as written);
- outside quotes the escape character (a backslash, or a backtick after the
  ``escape`` directive) takes the next character literally.

``expand`` gives the single word (ENV values, WORKDIR, COPY sources): quotes are
removed, whitespace kept. ``expand_words`` also splits on whitespace that is not
quoted or escaped, the way EXPOSE and the heredoc detector see a line; text
that came from a variable outside quotes is split too, quoted text never is,
and an empty quoted word ``""`` disappears (BuildKit's behaviour).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from portside.errors import InvalidArgument

__all__ = ["expand", "expand_words", "expand_heredoc", "parse_words", "ShellLexer"]

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


@dataclass
class _Words:
    """The word splitter beside the lexer: characters that came from the text or from a variable."""

    words: list[str] = field(default_factory=list)
    word: str = ""
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class ShellLexer:
    """One pass over ``text``; the options are BuildKit's ``Lex`` switches.

    ``raw_quotes`` and ``raw_escapes`` keep quote and escape characters in the
    result (the heredoc detector needs to see them); ``skip_unset`` leaves
    ``$NAME`` as written when NAME is not in ``env``; ``skip_quotes`` makes
    quotes ordinary characters (here-document bodies).
    """

    def __init__(self, text: str, env: Mapping[str, str], *, escape: str = "\\", raw_quotes: bool = False,
                 raw_escapes: bool = False, skip_unset: bool = False, skip_quotes: bool = False) -> None:
        if escape not in ("\\", "`"):
            raise InvalidArgument(f"invalid escape token '{escape}' does not match ` or \\")
        self._text = text
        self._pos = 0
        self._env = env
        self._escape = escape
        self._raw_quotes = raw_quotes
        self._raw_escapes = raw_escapes
        self._skip_unset = skip_unset
        self._skip_quotes = skip_quotes

    # -- scanner ---------------------------------------------------------------

    def _peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else ""

    def _next(self) -> str:
        ch = self._peek()
        if ch:
            self._pos += 1
        return ch

    # -- the grammar -------------------------------------------------------------

    def process(self) -> tuple[str, list[str]]:
        """The whole text: (the single word, the split words)."""
        return self._process_until("")

    def _process_until(self, stop: str, raw_escapes: bool = False) -> tuple[str, list[str]]:
        raw_escapes = raw_escapes or self._raw_escapes
        result: list[str] = []
        words = _Words()
        while (ch := self._peek()) != "":
            if stop and ch == stop:
                self._next()
                return "".join(result), words.result()
            if ch in "'\"" and self._skip_quotes:
                piece = self._next()
                words.add_char(piece)
            elif ch == "'":
                piece = self._single_quoted()
                words.add_raw(piece)
            elif ch == '"':
                piece = self._double_quoted()
                words.add_raw(piece)
            elif ch == "$":
                piece = self._dollar()
                words.add_string(piece)
            else:
                ch = self._next()
                if ch == self._escape:
                    if raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self._next()
                    if ch == "":
                        break  # an escape at the very end is dropped
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                piece = ch
            result.append(piece)
        if stop:
            raise InvalidArgument(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def _single_quoted(self) -> str:
        # sh: single quotes preserve every character; a single quote cannot be escaped inside them
        quote = self._next()
        out = [quote] if self._raw_quotes else []
        while True:
            ch = self._next()
            if ch == "":
                raise InvalidArgument("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self._raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def _double_quoted(self) -> str:
        quote = self._next()
        out = [quote] if self._raw_quotes else []
        while True:
            ch = self._peek()
            if ch == "":
                raise InvalidArgument("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self._next()
                if self._raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            ch = self._next()
            if ch == self._escape:
                if self._raw_escapes:
                    out.append(ch)
                following = self._peek()
                if following == "":
                    continue  # an escape at the end of the word is dropped
                if following in ('"', "$", self._escape):
                    ch = self._next()
                # any other escaped character: the escape character stays, as written
            out.append(ch)

    def _name(self) -> str:
        """A variable name: letters, digits and _; a run of digits or one special parameter alone."""
        start = self._pos
        first = self._peek()
        if first.isdigit():
            while self._peek().isdigit():
                self._next()
            return self._text[start:self._pos]
        if first in _SPECIAL_PARAMS and first:
            return self._next()
        while (ch := self._peek()) and (ch.isalnum() or ch == "_"):
            self._next()
        return self._text[start:self._pos]

    def _lookup(self, name: str) -> tuple[str, bool]:
        if name in self._env:
            return self._env[name], True
        return "", False

    def _dollar(self) -> str:
        self._next()  # the $
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value, found = self._lookup(name)
            if not found and self._skip_unset:
                return "$" + name
            return value
        self._next()  # the {
        if self._peek() == "":
            raise InvalidArgument("syntax error: missing '}'")
        if self._peek() in "{}:":
            raise InvalidArgument("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch == "}":
            value, found = self._lookup(name)
            if not found and self._skip_unset:
                return "${" + name + "}"
            return value
        if ch == "":
            raise InvalidArgument("syntax error: missing '}'")
        modifier, null_is_unset = ch, False
        if ch == ":":  # the same operators, an empty value counting as unset
            modifier, null_is_unset = self._next(), True
        if modifier and modifier in "+-?#%":
            word = self._word_until_brace("}", raw_escapes=modifier in "#%")
            value, found = self._lookup(name)
            unset = not found or (null_is_unset and not value)
            if modifier == "-":
                return word if unset else value
            if modifier == "+":
                return "" if unset else word
            if modifier == "?":
                if not found:
                    raise InvalidArgument(f"{name}: {word or 'is not allowed to be unset'}")
                if unset:
                    raise InvalidArgument(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            longest = word.startswith(modifier)  # ## and %% remove the longest match
            return _remove_affix(value, word[1:] if longest else word, prefix=modifier == "#", longest=longest)
        if ch == "/":
            replace_all = self._peek() == "/"
            if replace_all:
                self._next()
            pattern = self._word_until_brace("/", raw_escapes=True, missing="syntax error: missing '/' in ${}")
            replacement = self._word_until_brace("}", raw_escapes=True)
            value, _ = self._lookup(name)
            return _replace(_pattern_regex(pattern), value, replacement, replace_all=replace_all)
        raise InvalidArgument(f"unsupported modifier ({ch}{modifier if null_is_unset else ''}) in substitution")

    def _word_until_brace(self, stop: str, *, raw_escapes: bool = False,
                          missing: str = "syntax error: missing '}'") -> str:
        try:
            word, _ = self._process_until(stop, raw_escapes)
        except InvalidArgument:
            if self._peek() == "":
                raise InvalidArgument(missing) from None
            raise
        return word


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A ${VAR#pattern} pattern as a regular expression: ``*`` and ``?`` only, ``\\`` escapes them and itself."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            following = pattern[i:i + 1]
            if following in ("}", "/"):
                continue  # escaped only to get past the ${} parser
            if following not in ("*", "?", "\\"):
                raise InvalidArgument(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'")
            out.append(re.escape(following))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _replace(regex: re.Pattern[str], value: str, replacement: str, *, replace_all: bool) -> str:
    """Go's ReplaceAllString (or the first match only): an empty match right after a match is skipped."""
    out: list[str] = []
    pos = 0
    last_end = -1
    for match in regex.finditer(value):
        if match.start() == match.end() == last_end:
            continue
        out.append(value[pos:match.start()] + replacement)
        pos = last_end = match.end()
        if not replace_all:
            break
    return "".join(out) + value[pos:]


def _remove_affix(value: str, pattern: str, *, prefix: bool, longest: bool) -> str:
    compiled = _pattern_regex(pattern)
    cuts = range(len(value), -1, -1) if longest else range(len(value) + 1)
    for cut in cuts:
        if prefix and compiled.fullmatch(value[:cut]):
            return value[cut:]
        if not prefix and compiled.fullmatch(value[len(value) - cut:]):
            return value[:len(value) - cut]
    return value


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """``word`` with variables substituted, quotes and escapes removed, not split (BuildKit's ProcessWord)."""
    return ShellLexer(word, env, escape=escape).process()[0]


def expand_words(text: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """``text`` expanded and split on whitespace that is neither quoted nor escaped (BuildKit's ProcessWords)."""
    return ShellLexer(text, env, escape=escape).process()[1]


def expand_heredoc(content: str, env: Mapping[str, str]) -> str:
    """A COPY/ADD here-document body with variables substituted: quotes are ordinary characters there.

    BuildKit expands such bodies (when the ``<<EOF`` word was not quoted) with
    the backslash as escape whatever the ``escape`` directive says.
    """
    return ShellLexer(content, env, skip_quotes=True).process()[0]


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """The Dockerfile parser's split of ENV/LABEL/ARG arguments: on unquoted blanks, quotes and escapes kept.

    Nothing is substituted here; each word is expanded later, once its
    instruction runs, with the variables in scope then.
    """
    words: list[str] = []
    word: list[str] = []
    blank_ok = False  # a quoted empty string is still a word
    quote = ""
    in_word = False
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    break  # an escape at the end is dropped
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok, in_word = [], False, False
            i += 1
            continue
        if ch in "'\"":
            quote = ch
            blank_ok = True
        if ch == escape:
            if i + 1 == n:
                i += 1
                continue  # an escape at the end of the line is dropped
            # outside quotes the escape and the character it escapes both stay, even a quote
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if in_word or quote:
        if blank_ok or word:
            words.append("".join(word))
    return words
