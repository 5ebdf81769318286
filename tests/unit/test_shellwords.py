"""Variable substitution and word splitting as BuildKit's shell lexer (its envVarTest and wordsTest tables)."""

from __future__ import annotations

import random

import pytest

from portside.build.shellwords import expand, expand_heredoc, expand_words, parse_words
from portside.errors import InvalidArgument

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}

# (input, expected) with ENV; None: an error. From BuildKit's frontend/dockerfile/shell/envVarTest.
WORDS = [
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he'llo", None),
    ("he\\'llo", "he'llo"),
    ("he\\\\'llo", None),
    ("abc\\tdef", "abctdef"),
    ('"abc\\tdef"', "abc\\tdef"),
    ('"abc\\\\tdef"', "abc\\tdef"),
    ("'abc\\tdef'", "abc\\tdef"),
    ("hello\\", "hello"),
    ("hello\\\\", "hello\\"),
    ('"hello', None),
    ('"hello\\"', None),
    ('"hel\'lo"', "hel'lo"),
    ("'hello", None),
    ("'hello\\'", "hello\\"),
    ("'hello\\there'", "hello\\there"),
    ("'hello\\\\there'", "hello\\\\there"),
    ('"\'\'"', "''"),
    ("$.", "$."),
    ("he$1x", "hex"),
    ("he$.x", "he$.x"),
    ("he$pwd.", "he."),
    ("he$PWD", "he/home"),
    ("he\\$PWD", "he$PWD"),
    ("he\\\\$PWD", "he\\/home"),
    ('"he\\$PWD"', "he$PWD"),
    ('"he\\\\$PWD"', "he\\/home"),
    ("\\${}", "${}"),
    ("\\${}aaa", "${}aaa"),
    ("he\\${}", "he${}"),
    ("he\\${}xx", "he${}xx"),
    ("${}", None),
    ("${}aaa", None),
    ("he${}", None),
    ("he${}xx", None),
    ("he${hi}", "he"),
    ("he${hi}xx", "hexx"),
    ("he${PWD}", "he/home"),
    ("he${.}", None),
    ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"),
    ("he${XXX:-$PWD}xx", "he/homexx"),
    ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
    ("he${XXX:YYY}", None),
    ("he${XXX?}", None),
    ("he${XXX:?}", None),
    ("he${PWD?}", "he/home"),
    ("he${PWD:?}", "he/home"),
    ("he${NULL?}", "he"),
    ("he${NULL:?}", None),
    ("he${XXX:+${PWD}}xx", "hexx"),
    ("he${PWD:+${XXX}}xx", "hexx"),
    ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("he${XXX:+000}xx", "hexx"),
    ("he${PWD:+000}xx", "he000xx"),
    ("'he${XX}'", "he${XX}"),
    ('"he${PWD}"', "he/home"),
    ('"he\'$PWD\'"', "he'/home'"),
    ('"$PWD"', "/home"),
    ("'$PWD'", "$PWD"),
    ("'\\$PWD'", "\\$PWD"),
    ("'\"hello\"'", '"hello"'),
    ("'he\\$PWD'", "he\\$PWD"),
    ("he${PWD", None),
    ("he${PWD:=000}xx", None),
    ("he${PWD:+${PWD}:}xx", "he/home:xx"),
    ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
    ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
    ("안녕하세요", "안녕하세요"),
    ("안'녕'하세요", "안녕하세요"),
    ("안'녕하세요", None),
    ("안녕\\'하세요", "안녕'하세요"),
    ("안녕${XXX:-${YYY:-yyy}}xx", "안녕yyyxx"),
    ("$KOREAN", "한국어"),
    ("안녕$KOREAN", "안녕한국어"),
    ("${{aaa}", None),
    ("${aaa}}", "}"),
    ("${aaa", None),
    ("${{aaa", None),
    ("${aaa}{", "{"),
    ("${{aaa}}", None),
    # the unset/empty distinction of ${VAR-word} and ${VAR+word}
    ("${NULL-x}", ""),
    ("${NULL:-x}", "x"),
    ("${XXX-x}", "x"),
    ("${NULL+x}", "x"),
    ("${NULL:+x}", ""),
    ("${XXX+x}", ""),
    ("${XXX?must be set}", None),
    # prefix and suffix removal
    ("${PWD#/}", "home"),
    ("${PWD#*o}", "me"),
    ("${PWD%e}", "/hom"),
    ("${PWD%o*}", "/h"),
    ("${SHELL%%a*}", "b"),
    ("${SHELL%a*}", "b"),
    ("${SHELL#*s}", "h"),
    ("${PWD#\\/}", "home"),
    ("${PWD#\\x}", None),  # only * ? and \\ may be escaped in a pattern
    ("${XXX#*}", ""),
    # replacement
    ("${PWD/o/0}", "/h0me"),
    ("${SHELL/?/X}", "Xash"),
    ("${SHELL//[a]/X}", "bash"),  # no bracket expressions: [a] is literal
    ("${KOREAN//국/-}", "한-어"),
    ("${PWD//*/x}", "x"),
    ("${PWD/o", None),
    ("${SHELL##*a}", "sh"),
]


@pytest.mark.parametrize("word,want", WORDS, ids=[w for w, _ in WORDS])
def test_expand(word, want):
    if want is None:
        with pytest.raises(InvalidArgument):
            expand(word, ENV)
    else:
        assert expand(word, ENV) == want


def test_error_messages_are_buildkits():
    cases = {
        "${}": "syntax error: bad substitution",
        "${PWD": "syntax error: missing '}'",
        "${XXX:?}": "XXX: is not allowed to be unset",
        "${NULL:?}": "NULL: is not allowed to be empty",
        "${XXX?where is it}": "XXX: where is it",
        "'abc": "unexpected end of statement while looking for matching single-quote",
        '"abc': "unexpected end of statement while looking for matching double-quote",
        "${PWD:=x}": "unsupported modifier (:=) in substitution",
        "${PWD=x}": "unsupported modifier (=) in substitution",
        "${PWD/x": "syntax error: missing '/' in ${}",
    }
    for word, message in cases.items():
        with pytest.raises(InvalidArgument) as exc:
            expand(word, ENV)
        assert exc.value.message == message


SPLIT_ENV = {"hi": "hi", "space": "abc  def", "leading": "  ab c", "trailing": "ab c   "}

# BuildKit's wordsTest: (input, words); None: an error
SPLITS = [
    ("hello", ["hello"]),
    ("hello${hi}bye", ["hellohibye"]),
    ("hello${space}bye", ["helloabc", "defbye"]),
    ('hello"${space}"bye', ["helloabc  defbye"]),
    ('hello "${space}"bye', ["hello", "abc  defbye"]),
    ("hello${leading}def", ["hello", "ab", "cdef"]),
    ('hello"${leading}" def', ["hello  ab c", "def"]),
    ('hello"${leading}"', ["hello  ab c"]),
    ("hello${leading}", ["hello", "ab", "c"]),
    ("hello${trailing}", ["helloab", "c"]),
    ("hello${trailing}d", ["helloab", "c", "d"]),
    ('hello"${trailing}"d', ["helloab c   d"]),
    ('hel"lo${trailing}"', ["helloab c   "]),
    ('hello" there  "', ["hello there  "]),
    ("hello there     ", ["hello", "there"]),
    ("hello\\ there", ["hello there"]),
    ('hello" there', None),
    ('hello\\" there', ['hello"', "there"]),
    ('hello"\\\\there"', ["hello\\there"]),
    ('hello"\\there"', ["hello\\there"]),
    ("hello'\\\\there'", ["hello\\\\there"]),
    ("hello'\\there'", ["hello\\there"]),
    ("hello'$there'", ["hello$there"]),
    ('a "" b', ["a", "b"]),  # an empty quoted word disappears, as in BuildKit
]


@pytest.mark.parametrize("text,want", SPLITS, ids=[t for t, _ in SPLITS])
def test_expand_words(text, want):
    if want is None:
        with pytest.raises(InvalidArgument):
            expand_words(text, SPLIT_ENV)
    else:
        assert expand_words(text, SPLIT_ENV) == want


@pytest.mark.parametrize("word,want", [
    ("`$PWD", "$PWD"),
    ("C:\\path\\$PWD", "C:\\path\\/home"),  # with ` as escape a backslash is an ordinary character
    ('"a`"b"', 'a"b'),
    ("a``b", "a`b"),
    ("hello`", "hello"),
])
def test_backtick_escape(word, want):
    assert expand(word, ENV, escape="`") == want


def test_docs_environment_replacement():
    # docs.docker.com "Environment replacement": ENV FOO=/bar; WORKDIR ${FOO}; ADD . $FOO; COPY \$FOO /quux
    env = {"FOO": "/bar"}
    assert expand("${FOO}", env) == "/bar"
    assert expand("$FOO", env) == "/bar"
    assert expand("\\$FOO", env) == "$FOO"
    assert expand("${variable:-word}", {}) == "word"
    assert expand("${variable:+word}", {"variable": "x"}) == "word"
    assert expand("${variable:+word}", {}) == ""


# The parser's split of ENV/LABEL/ARG: on unquoted blanks, quotes and escapes kept for later expansion
PARSER_WORDS = [
    ('A="a b" C=d', ['A="a b"', "C=d"]),
    ("a\\ b c", ["a\\ b", "c"]),
    ("  x   y  ", ["x", "y"]),
    ("k='single \\' quote", ["k='single \\'", "quote"]),
    ('k="escaped \\" quote"', ['k="escaped \\" quote"']),
    ('k=""', ['k=""']),
    ('""', ['""']),
    ("end\\", ["end"]),
    ('k="unterminated', ['k="unterminated']),
    ("", []),
]


@pytest.mark.parametrize("rest,want", PARSER_WORDS)
def test_parse_words(rest, want):
    assert parse_words(rest) == want


def test_parse_words_with_backtick_escape():
    assert parse_words("a` b c\\ d", "`") == ["a` b", "c\\", "d"]


_PIECES = ["$", "${", "}", ":", "-", "+", "?", "#", "%", "'", '"', "\\", "`", "a", "PWD", "NULL", " ", "\t", "{",
           "é", "\x00", "*", "[", "]", "1", "@"]


@pytest.mark.parametrize("seed", range(20))
def test_fuzz_only_invalid_argument(seed):
    rng = random.Random(seed)
    for _ in range(300):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 30)))
        escape = rng.choice(["\\", "`"])
        try:
            single = expand(text, ENV, escape=escape)
            words = expand_words(text, ENV, escape=escape)
            parse_words(text, escape)
        except InvalidArgument:
            continue
        assert all(words)  # never an empty word
        assert isinstance(single, str)


def test_heredoc_bodies_keep_quotes():
    env = {"FOO": "bar"}
    assert expand_heredoc('echo "hello ${FOO}" \'$FOO\'\n\\$FOO\n', env) == "echo \"hello bar\" 'bar'\n$FOO\n"
