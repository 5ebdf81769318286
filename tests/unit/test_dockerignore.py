""".dockerignore rules as Docker applies them (moby/patternmatcher's table, the docs' examples)."""

from __future__ import annotations

import os
import pathlib
import random

import pytest

from portside.build import dockerignore
from portside.build.dockerignore import clean, compile_pattern, excluded, read, walk
from portside.errors import InvalidArgument

# (pattern, path, matched): one pattern against one path, parents included
MATCHES = [
    ("**", "file", True),
    ("**", "file/", True),
    ("**/", "file", True),
    ("**", "dir/file", True),
    ("**/", "dir/file/", True),
    ("**/**", "dir/file", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True),
    ("**foo", "xfoo", True),  # the suffix fast path, as Docker
    ("b\\[1\\]", "b[1]", True),  # escaped: checked against the docker CLI
    ("b\\[1\\]", "b1", False),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    # a pattern names a directory: everything below it goes with it
    ("vendor", "vendor/a/b.go", True),
    ("vendor", "vendorx", False),
    ("*/temp*", "somedir/temporary.txt", True),
    ("*/temp*", "somedir/temp", True),
    ("*/temp*", "temp", False),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True),
    ("temp?", "tempa", True),
    ("temp?", "temp", False),
    ("*.md", "README.md", True),
    ("*.md", "docs/README.md", False),
    ("**/*.md", "docs/README.md", True),
    # cleaning: leading /, ./, trailing /, doubled slashes, ..
    ("/secret", "secret", True),
    ("./secret", "secret", True),
    ("secret/", "secret/key", True),
    ("a//b", "a/b", True),
    ("a/../b", "b", True),
    ("  spaced  ", "spaced", True),
]


@pytest.mark.parametrize("pattern,path,matched", MATCHES, ids=[f"{p}~{f}" for p, f, _ in MATCHES])
def test_one_pattern(pattern, path, matched):
    assert excluded(read(pattern), path) is matched


# Docker's documentation example and its exceptions: (file, excluded)
DOCS_FILE = """\
# comment
*/temp*
*/*/temp*
temp?
*.md
!README.md
"""


@pytest.mark.parametrize("path,want", [
    ("somedir/temporary.txt", True), ("somedir/temp", True), ("somedir/subdir/temporary.txt", True),
    ("tempa", True), ("tempb", True), ("CHANGES.md", True), ("README.md", False), ("notes.txt", False),
    ("# comment", False),
])
def test_docs_example(path, want):
    assert excluded(read(DOCS_FILE), path) is want


@pytest.mark.parametrize("text,path,want", [
    # the last matching line wins
    ("*.md\n!README*.md\nREADME-secret.md\n", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md\n", "README-public.md", False),
    ("*.md\nREADME-secret.md\n!README*.md\n", "README-secret.md", False),
    # an exception inside an excluded directory
    ("vendor\n!vendor/keep.go\n", "vendor/keep.go", False),
    ("vendor\n!vendor/keep.go\n", "vendor/other.go", True),
    ("vendor\n!vendor/keep.go\n", "vendor", True),
    # an exception for a parent puts its children back
    ("**\n!src\n", "src/a/b.py", False),
    ("**\n!src\n", "docs/x", True),
    # only a "#" in the first column starts a comment
    (" #notacomment\n", "#notacomment", True),
    ("#comment\n", "#comment", False),
    # blank and whitespace-only lines, CRLF, a byte-order mark
    ("\n   \n\r\nfoo\r\n", "foo", True),
    ("\ufefffoo\n", "foo", True),
    ("! foo\n", "foo", False),
])
def test_files(text, path, want):
    assert excluded(read(text), path) is want


def test_read_cleans_as_docker():
    assert [str(p) for p in read("/a/\n!./b//c/\n# x\n\n  d/..  \n/\n")] == ["a", "!b/c", ".", "/"]


@pytest.mark.parametrize("path,want", [
    ("", "."), (".", "."), ("a/b/", "a/b"), ("a//b", "a/b"), ("./a", "a"), ("a/./b", "a/b"), ("a/../b", "b"),
    ("../a", "../a"), ("/../a", "/a"), ("a/b/../../..", ".."), ("//a", "/a"), ("/", "/"),
])
def test_clean_is_go_path_clean(path, want):
    assert clean(path) == want


@pytest.mark.parametrize("pattern", ["[", "a[", "a[]", "abc\\", "!"])
def test_bad_patterns(pattern):
    with pytest.raises(InvalidArgument):
        read(pattern)


def test_match_kinds_are_docker_fast_paths():
    assert compile_pattern("a/b").kind == "exact"
    assert compile_pattern("a/**").kind == "prefix"
    assert compile_pattern("**/a").kind == "suffix"
    assert compile_pattern("a/*.go").kind == "regexp"


def _tree(root: pathlib.Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_walk_filters_and_skips_excluded_directories(tmp_path, monkeypatch):
    _tree(tmp_path, ["Dockerfile", "a.md", "README.md", "src/x.py", "src/y.pyc", "node_modules/m/index.js",
                     "vendor/keep.go", "vendor/drop.go", "vendor/sub/z.go"])
    os.symlink("src", tmp_path / "link")
    patterns = read("*.md\n!README.md\nnode_modules\n**/*.pyc\nvendor\n!vendor/keep.go\n")
    scanned: list[str] = []
    real_scandir = os.scandir

    def scandir(path):  # record which directories the walk reads
        scanned.append(os.path.relpath(path, tmp_path))
        return real_scandir(path)

    monkeypatch.setattr(dockerignore.os, "scandir", scandir)
    got = [rel for rel, _ in walk(str(tmp_path), patterns)]
    assert got == ["Dockerfile", "README.md", "link", "src", "src/x.py", "vendor/keep.go"]
    assert "node_modules" not in scanned and "node_modules/m" not in scanned
    assert "vendor/sub" not in scanned  # no "!" pattern can reach inside it
    assert got == [rel for rel in got if not excluded(patterns, rel)]


def test_walk_agrees_with_excluded_for_double_star_exceptions(tmp_path):
    _tree(tmp_path, ["a/b/c.go", "a/b/c.txt", "d.go", "e/f/g/h.go"])
    patterns = read("a\ne\n!**/*.go\n")
    got = [rel for rel, _ in walk(str(tmp_path), patterns)]
    assert got == ["a/b/c.go", "d.go", "e/f/g/h.go"]


_PIECES = ["*", "**", "?", "[", "]", "^", "!", "/", "\\", ".", "..", "a", "b", "#", " ", "\n", "-", "(", "$", "é"]


@pytest.mark.parametrize("seed", range(20))
def test_fuzz_only_invalid_argument(seed):
    rng = random.Random(seed)
    paths = ["a", "a/b", "b/a/b", ".a", "a.b/c", "é/x"]
    for _ in range(300):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 20)))
        try:
            patterns = read(text)
        except InvalidArgument:
            continue
        for path in paths:
            assert excluded(patterns, path) in (True, False)


@pytest.mark.parametrize("seed", range(8))
def test_walk_prunes_only_what_excluded_drops(tmp_path, seed):
    # random trees and pattern lists: the pruning walk must list exactly the paths excluded() keeps
    rng = random.Random(seed)
    names = ["a", "b", "c.go", "d.md", ".x"]
    files = sorted({"/".join(rng.choice(names) for _ in range(rng.randint(1, 4))) for _ in range(30)})
    for name in files:
        path = tmp_path / name
        if any(p.is_file() for p in [path, *path.parents]):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text("x")
    all_paths = []
    for root, dirs, found in os.walk(tmp_path):
        rel = os.path.relpath(root, tmp_path)
        all_paths += [os.path.normpath(os.path.join(rel, n)) for n in dirs + found]
    atoms = ["a", "b", "*.go", "**/*.md", "a/b", "**/c.go", "b/**", ".x", "*/a", "a*", "?"]
    for _ in range(25):
        text = "\n".join(("!" if rng.random() < 0.4 else "") + rng.choice(atoms) for _ in range(rng.randint(1, 5)))
        patterns = read(text)
        want = sorted(p for p in all_paths if not excluded(patterns, p))
        got = sorted(rel for rel, _ in walk(str(tmp_path), patterns))
        assert got == want, text
