"""The Dockerfile parser against Docker's documented examples and BuildKit's checks and messages."""

from __future__ import annotations

import random

import pytest

from portside.build.dockerfile import (Heredoc, expand_instruction, expanded_pairs, key_values, parse,
                                         parse_instruction)
from portside.build.shellwords import expand
from portside.errors import DockerfileError, InvalidArgument


def only(text: str):
    """The single instruction after a FROM line."""
    df = parse("FROM busybox\n" + text)
    (ins,) = df.stages[0].instructions
    return ins


# --- instructions: (text, keyword, args, json_form) -------------------------------------------

FORMS = [
    ('RUN ["echo", "hi"]', "RUN", ("echo", "hi"), True),
    ("RUN echo hi", "RUN", ("echo hi",), False),
    ("run   echo   hi  ", "RUN", ("echo   hi",), False),
    # not JSON (single quotes, a bad escape): shell form, as the docs warn
    ("CMD [ \"echo\" , 'hi' ]", "CMD", ("[ \"echo\" , 'hi' ]",), False),
    ('RUN ["c:\\windows\\system32\\tasklist.exe"]', "RUN", ('["c:\\windows\\system32\\tasklist.exe"]',), False),
    ('RUN ["a"] trailing', "RUN", ('["a"] trailing',), False),
    ('CMD ["a" , "b"]   ', "CMD", ("a", "b"), True),
    ("ENTRYPOINT []", "ENTRYPOINT", (), True),
    ('ENTRYPOINT ["top", "-b"]', "ENTRYPOINT", ("top", "-b"), True),
    ("CMD", "CMD", (), False),
    ('SHELL ["powershell", "-command"]', "SHELL", ("powershell", "-command"), True),
    ('VOLUME ["/data"]', "VOLUME", ("/data",), True),
    ("VOLUME /var/log /var/db", "VOLUME", ("/var/log", "/var/db"), False),
    ('COPY ["a b", "/dest/"]', "COPY", ("a b", "/dest/"), True),
    ("COPY hom* /mydir/", "COPY", ("hom*", "/mydir/"), False),
    ("ADD  a   b\tc ", "ADD", ("a", "b", "c"), False),
    ("EXPOSE 80/tcp 80/udp", "EXPOSE", ("80/tcp", "80/udp"), False),
    ("USER patrick", "USER", ("patrick",), False),
    ("USER 1000:1000", "USER", ("1000:1000",), False),
    ("WORKDIR /path to/dir", "WORKDIR", ("/path to/dir",), False),
    ("STOPSIGNAL SIGKILL", "STOPSIGNAL", ("SIGKILL",), False),
    ("MAINTAINER Jane Doe <jane@example.com>", "MAINTAINER", ("Jane Doe <jane@example.com>",), False),
    ("ARG user1", "ARG", ("user1",), False),
    ("ARG buildno=1 user=\"a b\"", "ARG", ("buildno=1", 'user="a b"'), False),
    # ENV and LABEL: key=value words as written; the legacy form becomes one pair
    ('ENV MY_NAME="John Doe"', "ENV", ('MY_NAME="John Doe"',), False),
    ("ENV MY_DOG=Rex\\ The\\ Dog", "ENV", ("MY_DOG=Rex\\ The\\ Dog",), False),
    ("ENV MY_VAR my-value", "ENV", ("MY_VAR=my-value",), False),
    ("ENV ONE TWO= THREE=world", "ENV", ("ONE=TWO= THREE=world",), False),
    ('LABEL "com.example.vendor"="ACME Incorporated"', "LABEL", ('"com.example.vendor"="ACME Incorporated"',), False),
    ('LABEL multi.label1="value1" multi.label2="value2" other="value3"', "LABEL",
     ('multi.label1="value1"', 'multi.label2="value2"', 'other="value3"'), False),
    ("HEALTHCHECK NONE", "HEALTHCHECK", ("NONE",), False),
    ("HEALTHCHECK CMD curl -f http://localhost/ || exit 1", "HEALTHCHECK",
     ("CMD", "curl -f http://localhost/ || exit 1"), False),
    ('HEALTHCHECK cmd ["curl", "-f", "x"]', "HEALTHCHECK", ("CMD", "curl", "-f", "x"), True),
    ("ONBUILD ADD . /app/src", "ONBUILD", ("ADD . /app/src",), False),
]


@pytest.mark.parametrize("text,keyword,args,json_form", FORMS, ids=[f[0] for f in FORMS])
def test_forms(text, keyword, args, json_form):
    ins = only(text)
    assert (ins.keyword, ins.args, ins.json_form) == (keyword, args, json_form)
    assert ins.original == text


FLAGS = [
    ("COPY --from=build --chown=1:2 --chmod=755 --link a b", (("from", "build"), ("chown", "1:2"),
                                                              ("chmod", "755"), ("link", "true")), ("a", "b")),
    ("COPY --link=FALSE a b", (("link", "false"),), ("a", "b")),
    ('COPY --chown="bin user" a b', (("chown", "bin user"),), ("a", "b")),
    ("ADD --checksum=sha256:24454f8 --keep-git-dir https://x/y /z",
     (("checksum", "sha256:24454f8"), ("keep-git-dir", "true")), ("https://x/y", "/z")),
    ("RUN --mount=type=cache,target=/root/.cache --mount=type=bind,target=/x --network=none make",
     (("mount", "type=cache,target=/root/.cache"), ("mount", "type=bind,target=/x"), ("network", "none")),
     ("make",)),
    ("RUN -- --not-a-flag", (), ("--not-a-flag",)),
    ("HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD true",
     (("interval", "5m"), ("timeout", "3s"), ("retries", "3")), ("CMD", "true")),
    ("HEALTHCHECK --whatever NONE", (), ("NONE",)),  # Docker does not read NONE's flags
]


@pytest.mark.parametrize("text,flags,args", FLAGS, ids=[f[0] for f in FLAGS])
def test_flags(text, flags, args):
    ins = only(text)
    assert ins.flags == flags
    assert ins.args == args


def test_flag_lookup():
    ins = only("COPY --from=a --chmod=644 x y")
    assert ins.flag("from") == "a"
    assert ins.flag("chown") is None
    assert ins.flag("chown", "") == ""


def test_from_stages_and_platform():
    df = parse("ARG VERSION=latest\nARG BASE\n"
               "FROM --platform=$BUILDPLATFORM golang:1.21 As Build\nRUN make\n"
               "from busybox:$VERSION\nCOPY --from=build /out /bin/\n"
               "FROM build AS test\n")
    assert [a.args for a in df.meta_args] == [("VERSION=latest",), ("BASE",)]
    build, second, test = df.stages
    assert (build.index, build.name, build.base, build.platform) == (0, "build", "golang:1.21", "$BUILDPLATFORM")
    assert [i.keyword for i in build.instructions] == ["RUN"]
    assert (second.name, second.base, second.platform) == (None, "busybox:$VERSION", None)
    assert second.from_.line == 5
    assert test.base == "build"
    assert df.stage("BUILD") is build and df.stage("1") is second and df.stage("test") is test
    with pytest.raises(InvalidArgument):
        df.stage("nope")


def test_onbuild_trigger():
    ins = only("ONBUILD RUN /usr/local/bin/python-build --dir /app/src")
    assert ins.onbuild is not None
    assert (ins.onbuild.keyword, ins.onbuild.args) == ("RUN", ("/usr/local/bin/python-build --dir /app/src",))
    ins = only('onbuild copy --chown=1 ["a", "b"]')
    assert ins.onbuild.flags == (("chown", "1"),) and ins.onbuild.json_form


def test_onbuild_trigger_checked_only_when_it_fires():
    # dockerd 20.10 builds these; the child image's build refuses them
    assert only("ONBUILD RUNN x").onbuild is None
    assert only("ONBUILD COPY --bogus a b").onbuild is None
    with pytest.raises(DockerfileError, match="ENV must have two arguments"):
        parse("FROM a\nONBUILD ENV A\n")  # the line parser reads the trigger at once


def test_parse_instruction_alone():
    ins = parse_instruction("ENV A=1 B=2")
    assert ins.args == ("A=1", "B=2") and ins.line == 1


def test_env_label_arg_pairs_expand_later():
    assert key_values(only("ARG a=1 b")) == [("a", "1"), ("b", None)]
    env = {"abc": "hello"}
    # docs: ENV abc=bye def=$abc sets def to hello (the value before this instruction)
    assert expanded_pairs(only("ENV abc=bye def=$abc"), env) == [("abc", "bye"), ("def", "hello")]
    assert expanded_pairs(only("ENV MY_DOG=Rex\\ The\\ Dog"), {}) == [("MY_DOG", "Rex The Dog")]
    assert expanded_pairs(only('LABEL "com.example.vendor"="ACME Incorporated"'), {}) == [
        ("com.example.vendor", "ACME Incorporated")]
    assert expanded_pairs(only("ENV ONE TWO= THREE=world"), {}) == [("ONE", "TWO= THREE=world")]


# --- lines: continuations, comments, directives ---------------------------------------------

def test_continuations_and_comments():
    df = parse("# leading comment\n"
               "        # this is a comment-line\n"
               "    FROM busybox\n"
               "RUN echo hello \\\n"
               "# comment\n"
               "world\n"
               "\n"
               "RUN echo hello \\\n"
               "\n"
               "   \n"
               "world\n"
               'RUN echo "\\\n'
               '     hello\\\n'
               '     world"\n'
               "RUN a \\   \n  b\n")
    runs = df.stages[0].instructions
    assert [r.args[0] for r in runs] == ["echo hello world", "echo hello world", 'echo "     hello     world"', "a   b"]
    assert [(r.line, r.end_line) for r in runs] == [(4, 6), (8, 11), (12, 14), (15, 16)]
    assert runs[0].original == "RUN echo hello world"


def test_continuation_at_end_of_file():
    df = parse("FROM busybox\nRUN echo \\")
    assert df.stages[0].instructions[0].args == ("echo",)  # the rest of the line is trimmed


def test_crlf_and_bom():
    df = parse("\ufeffFROM busybox\r\nRUN echo a \\\r\n  b\r\n")
    assert df.stages[0].instructions[0].args == ("echo a   b",)


DIRECTIVES = [
    ("# escape=`\nFROM x\n", {"escape": "`"}, "`"),
    ("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\n", {"syntax": "docker/dockerfile:1", "escape": "`"}, "`"),
    ("#  ESCAPE = `  \nFROM x\n", {"escape": "`"}, "`"),
    ("# escape=`\n\nFROM x\n", {"escape": "`"}, "`"),
    # a comment, a blank line, an unknown directive or an instruction ends the directives
    ("# About my dockerfile\n# escape=`\nFROM x\n", {}, "\\"),
    ("\n# escape=`\nFROM x\n", {}, "\\"),
    ("# unknowndirective=value\n# escape=`\nFROM x\n", {}, "\\"),
    ("FROM x\n# escape=`\n", {}, "\\"),
    ("# directive=value1\n# directive=value2\nFROM x\n", {}, "\\"),
]


@pytest.mark.parametrize("text,directives,escape", DIRECTIVES)
def test_directives(text, directives, escape):
    df = parse(text)
    assert (df.directives, df.escape) == (directives, escape)


def test_escape_directive_windows_example():
    # the docs' example: with ` as escape, a trailing backslash is just a character
    df = parse("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n")
    copy, run = df.stages[0].instructions
    assert copy.args == ("testfile.txt", "c:\\") and run.args == ("dir c:\\",)
    df = parse("# escape=`\nFROM x\nRUN Get-Item `\n  x\n")
    assert df.stages[0].instructions[0].args == ("Get-Item   x",)
    # without the directive, the backslashes continue the lines
    df = parse("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n")
    assert df.stages[0].instructions[0].args == ("testfile.txt", "c:RUN", "dir", "c:")


# --- heredocs --------------------------------------------------------------------------------

def test_heredoc_run():
    ins = only("RUN <<EOT bash\n  set -ex\n  apt-get update\nEOT\n")
    assert ins.args == ("<<EOT bash",)
    assert ins.heredocs == (Heredoc("EOT", "  set -ex\n  apt-get update\n", True, False),)
    assert (ins.line, ins.end_line) == (2, 5)


def test_heredoc_body_is_not_parsed():
    df = parse('FROM python:3.6\nRUN <<EOT\n#!/usr/bin/env python\nprint("hello world")\n\nEOT\nCMD x\n')
    run, cmd = df.stages[0].instructions
    assert run.heredocs[0].content == '#!/usr/bin/env python\nprint("hello world")\n\n'
    assert (cmd.keyword, cmd.line) == ("CMD", 7)


def test_several_heredocs():
    ins = only("RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n")
    assert [(h.name, h.content) for h in ins.heredocs] == [("FILE1", "I am\nfirst\n"), ("FILE2", "I am\nsecond\n")]


def test_heredoc_copy_quoted_and_chomped():
    ins = only('COPY <<-"EOT" <<EOF2 /dest/\n\techo "hello ${FOO}"\n\t\tEOT\nplain\nEOF2\n')
    assert ins.args == ('<<-"EOT"', "<<EOF2", "/dest/")
    assert ins.heredocs == (Heredoc("EOT", 'echo "hello ${FOO}"\n', False, True),
                            Heredoc("EOF2", "plain\n", True, False))
    assert only("COPY <<'E' /x\nE\n").heredocs == (Heredoc("E", "", False, False),)
    assert only("COPY <<E\"O\"F /x\nEOF\n").heredocs[0].expand is False


def test_heredoc_not_for_other_instructions():
    with pytest.raises(DockerfileError) as exc:
        parse("FROM x\nCMD <<EOF\nhello\nEOF\n")
    assert exc.value.line == 3 and "unknown instruction: HELLO" in exc.value.message
    assert only("RUN echo '<<EOF'").heredocs == ()
    assert only("RUN cat <<< word").heredocs == ()


def test_heredoc_in_onbuild():
    ins = only("ONBUILD RUN <<EOF\necho hi\nEOF\n")
    assert ins.heredocs == ins.onbuild.heredocs == (Heredoc("EOF", "echo hi\n", True, False),)


# --- errors: BuildKit's messages, with the line ------------------------------------------------

ERRORS = [
    ("FROM busybox\nRUN true\nRUNN x\n", 3, "unknown instruction: RUNN"),
    ("FROM busybox\nrunn x\n", 2, "unknown instruction: RUNN"),
    ("", 0, "file with no instructions"),
    ("# just a comment\n\n", 0, "file with no instructions"),
    ("ARG x\n", 0, "dockerfile contains no stages to build"),
    ("RUN x\nFROM y\n", 1, "no build stage in current context"),
    ("FROM a b\n", 1, "FROM requires either one or three arguments"),
    ("FROM\n", 1, "FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", 1, 'invalid name for build stage: "1x", name can\'t start with a number or contain symbols'),
    ("FROM a AS b\nFROM c AS B\n", 2, "b stage name already used"),
    ("FROM a\nENV A\n", 2, "ENV must have two arguments"),
    ("FROM a\nENV\n", 2, "ENV requires at least one argument"),
    ("FROM a\nENV A=1 B\n", 2, 'Syntax error - can\'t find = in "B". Must be of the form: name=value'),
    ("FROM a\nENV =x\n", 2, "ENV names can not be blank"),
    ("FROM a\nLABEL\n", 2, "LABEL requires at least one argument"),
    ("FROM a\nARG\n", 2, "ARG requires at least one argument"),
    ("FROM a\nARG =1\n", 2, "ARG names can not be blank"),
    ("FROM a\nCOPY x\n", 2, "COPY requires at least two arguments, but only one was provided. "
                            "Destination could not be determined"),
    ("FROM a\nADD\n", 2, "ADD requires at least two arguments, but only one was provided. "
                         "Destination could not be determined"),
    ("FROM a\nCOPY x <<EOF\nEOF\n", 2, "COPY cannot accept a heredoc as a destination"),
    ("FROM a\nRUN <<EOF\nno end\n", 2, "unterminated heredoc"),
    ("FROM a\nCOPY --bogus a b\n", 2, "unknown flag: bogus"),
    ("FROM a\nCOPY --chown a b\n", 2, "missing a value on flag: chown"),
    ("FROM a\nCOPY --link= a b\n", 2, "missing a value on flag: link"),
    ("FROM a\nCOPY --link=maybe a b\n", 2, "expecting boolean value for flag link, not: maybe"),
    ("FROM a\nCOPY --from=a --from=b x y\n", 2, "duplicate flag specified: from"),
    ("FROM a\nCMD --help\n", 2, "unknown flag: help"),
    ("FROM a\nRUN [\"echo\", 1]\n", 2, "when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM a\nSHELL /bin/sh -c\n", 2, "SHELL requires the arguments to be in JSON form"),
    ("FROM a\nSHELL []\n", 2, "SHELL requires at least one argument"),
    ("FROM a\nWORKDIR\n", 2, "WORKDIR requires exactly one argument"),
    ("FROM a\nUSER\n", 2, "USER requires exactly one argument"),
    ("FROM a\nSTOPSIGNAL\n", 2, "STOPSIGNAL requires exactly one argument"),
    ("FROM a\nMAINTAINER\n", 2, "MAINTAINER requires exactly one argument"),
    ("FROM a\nEXPOSE\n", 2, "EXPOSE requires at least one argument"),
    ("FROM a\nVOLUME\n", 2, "VOLUME requires at least one argument"),
    ('FROM a\nVOLUME ["/a", " "]\n', 2, "VOLUME specified can not be an empty string"),
    ("FROM a\nONBUILD\n", 2, "ONBUILD requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM x\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nonbuild maintainer x\n", 2, "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nHEALTHCHECK\n", 2, "HEALTHCHECK requires at least one argument"),
    ("FROM a\nHEALTHCHECK NONE x\n", 2, "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK FOO x\n", 2, 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("FROM a\nHEALTHCHECK CMD\n", 2, "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK CMD []\n", 2, "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK --interval=1us CMD x\n", 2, 'Interval "interval" cannot be less than 1ms'),
    ("FROM a\nHEALTHCHECK --timeout=soon CMD x\n", 2, 'time: invalid duration "soon"'),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", 2, "--retries cannot be negative (-1)"),
    ("# escape=x\nFROM a\n", 1, "invalid escape token 'x' does not match ` or \\"),
    ("# escape=\\\n# escape=`\nFROM a\n", 2, "only one escape parser directive can be used"),
]


@pytest.mark.parametrize("text,line,reason", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors(text, line, reason):
    with pytest.raises(DockerfileError) as exc:
        parse(text, "sub/Dockerfile.dev")
    err = exc.value
    assert (err.line, err.reason, err.path) == (line, reason, "sub/Dockerfile.dev")
    if line:
        assert err.message == f"dockerfile parse error on line {line}: {reason}"
        assert err.located == f"sub/Dockerfile.dev:{line}: {reason}"
    assert isinstance(err, InvalidArgument)  # the daemon answers 400


def test_error_names_the_instruction():
    with pytest.raises(DockerfileError) as exc:
        parse("FROM a\n\ncopy --chown a b\n")
    assert (exc.value.instruction, exc.value.line, exc.value.end_line) == ("COPY", 3, 3)


# --- fuzz: random text raises the parse error or nothing ---------------------------------------

_PIECES = ["FROM ", "RUN ", "run ", "COPY ", "ADD ", "ENV ", "LABEL ", "ARG ", "ONBUILD ", "HEALTHCHECK ",
           "SHELL ", "CMD ", "EXPOSE ", "USER ", "VOLUME ", "WORKDIR ", "MAINTAINER ", "STOPSIGNAL ", "AS ", "NONE ",
           "busybox", "x", "=", "\"", "'", "\\", "`", "$", "${", "}", ":-", ":+", "[", "]", ",", "\"a\"", "1", " ",
           "\t", "\n", "\r\n", "#", "# escape=`\n", "# syntax=x\n", "<<", "<<-", "EOF", "\nEOF\n", "--from=",
           "--link", "--", "--chmod=7", "--platform=p", "{", "é", "\x00", "\ufeff", "\\\n"]


@pytest.mark.parametrize("seed", range(40))
def test_fuzz_never_raises_anything_else(seed):
    rng = random.Random(seed)
    for _ in range(100):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 40)))
        if rng.random() < 0.5:
            text = "FROM busybox\n" + text
        try:
            df = parse(text)
        except DockerfileError:
            continue
        assert df.stages
        for stage in df.stages:
            for ins in stage.instructions:
                assert 1 <= ins.line <= ins.end_line


def test_heredoc_keeps_line_endings():
    df = parse("FROM a\r\nCOPY <<EOF /x\r\nwin\r\nunix\nEOF\r\nRUN true\r\n")
    copy, run = df.stages[0].instructions
    assert copy.heredocs[0].content == "win\r\nunix\n"
    assert (run.args, run.line) == (("true",), 6)


@pytest.mark.parametrize("text,line", [
    # the line parser's errors (ENV's form, JSON of non-strings, here-documents) come before any check
    ("FROM a\nCOPY x\nENV A\n", 3),
    ("FROM a\nRUNN x\nCMD [1]\n", 3),
    ("RUN x\nFROM a\nRUN <<EOF\n", 3),
    # then the instructions, in order: the first refused one
    ("FROM a\nCOPY x\nRUNN y\n", 2),
    ("RUN x\nFROM a\nCOPY y\n", 1),
    ("FROM a\nRUNN x\nFROM b AS 1\n", 2),
])
def test_which_error_first(text, line):
    with pytest.raises(DockerfileError) as exc:
        parse(text)
    assert exc.value.line == line


# What dockerd 20.10's classic builder made of this Dockerfile (FROM scratch, `docker image inspect`),
# recomputed from the parse with the expansion the executor applies.
DOCKERD_CASE = """\
FROM scratch
ARG A=arg\\ val
ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog \\
    MY_CAT=fluffy
ENV ONE TWO= THREE=world
ENV abc=hello
ENV abc=bye def=$abc
ENV Q='single $abc' R="dq $abc \\$abc \\x" S=${nope:-dflt}${abc:+alt} T=$A
LABEL "com.example.vendor"="ACME Incorporated" multi.label1="value1" other=value\\ 3
CMD [ "echo" , 'hi' ]
EXPOSE 80/tcp ${abc:+81}
VOLUME /var/log $abc
USER ${abc}:grp
WORKDIR /a b/$abc
"""


def test_words_expand_as_dockerd_did():
    (stage,) = parse(DOCKERD_CASE).stages
    env: dict[str, str] = {}
    envs, labels, config = [], {}, {}
    for ins in stage.instructions:
        if ins.keyword == "ARG":
            for key, value in key_values(ins):
                env[key] = expand(value or "", env)
        elif ins.keyword == "ENV":
            pairs = expanded_pairs(ins, env)
            env.update(pairs)
            envs += [f"{k}={v}" for k, v in pairs]
        elif ins.keyword == "LABEL":
            labels.update(expanded_pairs(ins, env))
        elif ins.keyword in ("EXPOSE", "VOLUME"):
            config[ins.keyword] = [expand(word, env) for word in ins.args]
        elif ins.keyword in ("USER", "WORKDIR"):
            config[ins.keyword] = expand(ins.args[0], env)
        else:
            config[ins.keyword] = (ins.args, ins.json_form)
    assert envs == ["MY_NAME=John Doe", "MY_DOG=Rex The Dog", "MY_CAT=fluffy", "ONE=TWO= THREE=world", "abc=hello",
                    "abc=bye", "def=hello", "Q=single $abc", "R=dq bye $abc \\x", "S=dfltalt", "T=arg val"]
    assert labels == {"com.example.vendor": "ACME Incorporated", "multi.label1": "value1", "other": "value 3"}
    assert config == {"CMD": (("[ \"echo\" , 'hi' ]",), False), "EXPOSE": ["80/tcp", "81"],
                      "VOLUME": ["/var/log", "bye"], "USER": "bye:grp", "WORKDIR": "/a b/bye"}


def test_escaped_escape_does_not_continue():
    df = parse("FROM a\nRUN echo C:\\\\\nRUN echo b\n")
    assert df.stages[0].instructions[0].args == ("echo C:\\\\",)
    # nor does one after an escaped one: BuildKit's regular expression cannot tell, and says no
    with pytest.raises(DockerfileError, match="line 3: unknown instruction: C"):
        parse("FROM a\nRUN echo b \\\\\\\n  c\n")


def test_exec_form_takes_no_heredoc():
    df = parse('FROM a\nRUN ["cat", "<<EOF"]\nCMD x\n')
    run, cmd = df.stages[0].instructions
    assert run.heredocs == () and run.json_form and cmd.keyword == "CMD"


@pytest.mark.parametrize("text,args,flags", [
    ("ENV A=$X B=${Y:-y} $X=k", ("A=1", "B=y", "1=k"), ()),
    ('LABEL "$X"="a $X"', ("1=a 1",), ()),
    ("ARG N=${X}0 M", ("N=10", "M"), ()),
    ("COPY --chown=$X:$X --from=st$X --link $X* /dst/$X/", ("1*", "/dst/1/"), (("chown", "1:1"), ("from", "st1"),
                                                                            ("link", "true"))),
    ('COPY ["$X a", "/d"]', ("1 a", "/d"), ()),
    ("COPY <<EOF$X /d$X\nbody $X\nEOF$X\n", ("<<EOF$X", "/d1"), ()),  # the here-document word stays
    ("EXPOSE $X/tcp ${P:-80}", ("1/tcp", "80"), ()),
    ("VOLUME /v$X '/q'$X", ("/v1", "/q1"), ()),
    ("USER ${X}:grp", ("1:grp",), ()),
    ("WORKDIR /a b/$X", ("/a b/1",), ()),
    ("STOPSIGNAL SIG$X", ("SIG1",), ()),
    ("RUN echo $X", ("echo $X",), ()),  # left to the shell
    ("CMD [\"$X\"]", ("$X",), ()),
    ("ONBUILD RUN $X", ("RUN $X",), ()),
])
def test_expand_instruction(text, args, flags):
    ins = expand_instruction(only(text), {"X": "1"})
    assert (ins.args, ins.flags) == (args, flags)


def test_expand_instruction_from_with_meta_args():
    df = parse("ARG TAG=1.36\nFROM --platform=$P busybox:$TAG AS b\n")
    ins = expand_instruction(df.stages[0].from_, {"TAG": "1.36", "P": "linux/amd64"})
    assert ins.args == ("busybox:1.36", "AS", "b") and ins.flags == (("platform", "linux/amd64"),)


BACKTICK_CASE = """\
# escape=`

FROM scratch
ENV P=C:\\path\\x Q="a`"b" R=a`
b
ENV A=1 `
# inside
  B=2 `

  C=3
ENV U="\\u0041 $P" V=${NOPE:-d`}ef}
CMD ["\\u0041", "b" ]\x20\x20\x20
WORKDIR /w/$P
USER `$P
LABEL "k`"q"=v
"""


def test_backtick_escape_as_dockerd_did():
    # dockerd 20.10 built this (FROM scratch) into the config asserted here
    df = parse(BACKTICK_CASE)
    env: dict[str, str] = {}
    envs, other = [], {}
    for ins in df.stages[0].instructions:
        done = expand_instruction(ins, env, escape=df.escape)
        if ins.keyword == "ENV":
            pairs = key_values(done)
            env.update(pairs)
            envs += [f"{k}={v}" for k, v in pairs]
        else:
            other[ins.keyword] = done.args
    assert envs == ["P=C:\\path\\x", 'Q=a"b', "R=ab", "A=1", "B=2", "C=3", "U=\\u0041 C:\\path\\x", "V=d}ef"]
    assert other == {"CMD": ("A", "b"), "WORKDIR": ("/w/C:\\path\\x",), "USER": ("$P",), "LABEL": ('k"q=v',)}
