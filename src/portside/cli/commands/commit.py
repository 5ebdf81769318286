"""``commit``: create a new image from a container's changes (docker/cli container/commit.go)."""

from __future__ import annotations

from portside.cli.commands import reference
from portside.cli.commands.base import BOOL, LIST, STRING, Args, CLIError, Command, Context, Flag, Options


def commit_query(container: str, target: str, opts: Options) -> list[tuple[str, str]]:
    """The query of POST /commit as the docker client builds it; a bad target fails here, before the request."""
    repo = tag = ""
    if target:
        try:
            repo, tag = reference.split_repo_tag(target)
        except reference.ReferenceError as e:
            raise CLIError(str(e)) from None
    query = [("container", container), ("repo", repo), ("tag", tag), ("comment", opts.message),
             ("author", opts.author)]
    query.extend(("changes", change) for change in opts.change)
    if not opts.pause:
        query.append(("pause", "0"))
    return query


def run_commit(ctx: Context, opts: Options, args: list[str]) -> int:
    query = commit_query(args[0], args[1] if len(args) > 1 else "", opts)
    reply = ctx.client.request("POST", "/commit", query).json()
    ctx.out(f"{reply['Id']}\n")
    return 0


COMMIT = Command(
    use="commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    short="Create a new image from a container's changes",
    run=run_commit,
    args=Args(1, 2),
    flags=(
        Flag("author", "a", STRING, 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
        Flag("change", "c", LIST, "Apply Dockerfile instruction to the created image"),
        Flag("message", "m", STRING, "Commit message"),
        Flag("pause", "p", BOOL, "Pause container during commit", default=True),
    ),
    aliases="portside container commit, portside commit",
)
