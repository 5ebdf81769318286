"""Registry commands: pull, push, login, logout.

``pull`` posts ``/images/create?fromImage=&tag=`` with ``X-Registry-Auth``
from config.json and renders the JSON progress stream: bars redrawn in place
on a terminal (jsonmessage's terminal mode), status lines otherwise.
``login`` asks the daemon (``POST /auth``) to check the credentials with the
registry, then files them in config.json as the docker CLI does.
"""

from __future__ import annotations

import sys

from portside.cli.commands.base import BOOL, STRING, Args, CLIError, Command, Context, Flag, Options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable


def domain_of(image: str) -> tuple[str, str, str]:
    """(domain, repository as fromImage, tag or digest) of an image name, docker's way."""
    from portside.cli.commands import reference

    try:
        ref = reference.parse_normalized_named(image)
    except reference.ReferenceError as e:
        raise CLIError(str(e)) from None
    return ref.domain, ref.name, ref.digest or ref.tag or ""


def pull(ctx: Context, image: str, *, platform: str = "", quiet: bool = False,
         write: Callable[[str], None] | None = None) -> None:
    """Pull ``image`` through the daemon; progress to ``write`` (a text sink) unless quiet."""
    from portside.cli import dockerconfig
    from portside.cli.commands.formatting import StreamError, display_json_messages

    domain, name, tag = domain_of(image)
    query = [("fromImage", name), ("tag", tag or "latest")]
    if platform:
        query.append(("platform", platform))
    try:
        auth = dockerconfig.registry_auth_header(domain)
    except dockerconfig.ConfigError as e:
        raise CLIError(str(e)) from None
    resp = ctx.client.request("POST", "/images/create", sorted(query), headers={"X-Registry-Auth": auth})
    sink = write or ctx.out
    try:
        if quiet:
            display_json_messages(resp.iter_json(), lambda text: None)
        elif _is_tty(sink, ctx):
            display_terminal(resp.iter_json(), sink)
        else:
            display_json_messages(resp.iter_json(), sink)
    except StreamError as e:
        raise CLIError(str(e)) from None


def _is_tty(sink: Callable[[str], None], ctx: Context) -> bool:
    if sink == ctx.out:
        return ctx.stdout_is_tty()
    try:
        return bool(ctx.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def display_terminal(messages: Iterable[Any], write: Callable[[str], None]) -> None:
    """jsonmessage.DisplayJSONMessagesStream on a terminal: one line per id, redrawn in place."""
    from portside.cli.commands.formatting import StreamError

    lines: dict[str, int] = {}
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("aux") is not None:
            continue
        if msg.get("errorDetail") or msg.get("error"):
            detail = msg.get("errorDetail") or {}
            raise StreamError(detail.get("message") or msg.get("error") or "")
        ident = msg.get("id") or ""
        text = f"{ident}: " if ident else ""
        text += msg.get("status", "")
        if msg.get("progress"):
            text += " " + msg["progress"]
        if not ident or msg.get("status", "").startswith(("Pulling from", "Digest:", "Status:")):
            lines.clear()
            write(text + "\n")
            continue
        if ident not in lines:
            lines[ident] = len(lines)
            write("\n")
        up = len(lines) - lines[ident]
        write(f"\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")


def run_pull(ctx: Context, opts: Options, args: list[str]) -> int:
    image = args[0]
    if opts.all_tags:
        raise CLIError("portside pull --all-tags is not supported")
    domain, name, tag = domain_of(image)
    if not tag and not opts.quiet:
        ctx.out("Using default tag: latest\n")
    pull(ctx, image, platform=opts.platform or "", quiet=bool(opts.quiet))
    # docker prints the fully qualified reference last, quiet or not
    suffix = (f"@{tag}" if tag.startswith("sha256:") else f":{tag}") if tag else ":latest"
    ctx.out(name + suffix + "\n")
    return 0


PULL = Command(
    use="pull [OPTIONS] NAME[:TAG|@DIGEST]",
    short="Download an image from a registry",
    run=run_pull,
    args=Args(1, 1),
    flags=(
        Flag("all-tags", "a", BOOL, "Download all tagged images in the repository"),
        Flag("disable-content-trust", None, BOOL, "Skip image verification", default=True),
        Flag("platform", None, STRING, "Set platform if server is multi-platform capable"),
        Flag("quiet", "q", BOOL, "Suppress verbose output"),
    ),
    aliases="portside image pull, portside pull",
)
IMAGE_PULL = PULL


def run_push(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli import dockerconfig
    from portside.cli.commands.formatting import StreamError, display_json_messages

    domain, name, tag = domain_of(args[0])
    if tag.startswith("sha256:"):
        raise CLIError("cannot push a digest reference")
    if opts.all_tags and tag:
        raise CLIError("tag can't be used with --all-tags/-a")
    if not tag and not opts.all_tags:
        tag = "latest"
        if not opts.quiet:
            ctx.out("Using default tag: latest\n")
    try:
        auth = dockerconfig.registry_auth_header(domain)
    except dockerconfig.ConfigError as e:
        raise CLIError(str(e)) from None
    resp = ctx.client.request("POST", f"/images/{name}/push", [("tag", tag)], headers={"X-Registry-Auth": auth})
    try:
        if opts.quiet:
            display_json_messages(resp.iter_json(), lambda text: None)
        elif ctx.stdout_is_tty():
            display_terminal(resp.iter_json(), ctx.out)
        else:
            display_json_messages(resp.iter_json(), ctx.out)
    except StreamError as e:
        raise CLIError(str(e)) from None
    if opts.quiet:
        ctx.out(f"{name}:{tag}\n" if tag else f"{name}\n")
    return 0


PUSH = Command(
    use="push [OPTIONS] NAME[:TAG]",
    short="Upload an image to a registry",
    run=run_push,
    args=Args(1, 1),
    flags=(
        Flag("all-tags", "a", BOOL, "Push all tags of an image to the repository"),
        Flag("disable-content-trust", None, BOOL, "Skip image signing", default=True),
        Flag("quiet", "q", BOOL, "Suppress verbose output"),
    ),
    aliases="portside image push, portside push",
)
IMAGE_PUSH = PUSH


def _server_key(server: str) -> str:
    from portside.cli import dockerconfig

    if not server:
        return dockerconfig.DOCKER_HUB_KEY
    host = server.split("://", 1)[-1].split("/", 1)[0]
    return dockerconfig.server_key(host)


def run_login(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli import dockerconfig

    key = _server_key(args[0] if args else "")
    username, password = opts.username or "", opts.password or ""
    if opts.password_stdin:
        if password:
            raise CLIError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise CLIError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        ctx.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if not username or not password:
        if not ctx.stdin_is_tty():
            raise CLIError("Error: Cannot perform an interactive login from a non TTY device")
        import getpass

        if not username:
            ctx.out("Username: ")
            ctx.stdout.flush()
            username = sys.stdin.readline().strip()
        if not password:
            password = getpass.getpass("Password: ")
    if not username:
        raise CLIError("Error: Non-null Username Required")
    if not password:
        raise CLIError("Error: Password Required")
    answer = ctx.client.post_json("/auth", None, {"username": username, "password": password, "serveraddress": key})
    try:
        dockerconfig.store_credentials(key, username, password)
    except (dockerconfig.ConfigError, OSError) as e:
        raise CLIError(f"Error saving credentials: {e}") from None
    if not dockerconfig._helper(dockerconfig.load(), key):
        ctx.err(f"WARNING! Your credentials are stored unencrypted in '{dockerconfig.config_path()}'.\n"
                "Configure a credential helper to remove this warning. See\n"
                "https://docs.docker.com/go/credential-store/\n\n")
    ctx.out(str(answer.get("Status") or "Login Succeeded") + "\n")
    return 0


LOGIN = Command(
    use="login [OPTIONS] [SERVER]",
    short="Authenticate to a registry",
    run=run_login,
    args=Args(0, 1),
    flags=(
        Flag("password", "p", STRING, "Password or Personal Access Token (PAT)"),
        Flag("password-stdin", None, BOOL, "Take the Password or Personal Access Token (PAT) from stdin"),
        Flag("username", "u", STRING, "Username"),
    ),
)


def run_logout(ctx: Context, opts: Options, args: list[str]) -> int:
    from portside.cli import dockerconfig

    key = _server_key(args[0] if args else "")
    try:
        removed = dockerconfig.remove_credentials(key)
    except (dockerconfig.ConfigError, OSError) as e:
        raise CLIError(f"Error: {e}") from None
    if not removed:
        ctx.out(f"Not logged in to {key}\n")
        return 0
    ctx.out(f"Removing login credentials for {key}\n")
    return 0


LOGOUT = Command(
    use="logout [SERVER]",
    short="Log out from a registry",
    run=run_logout,
    args=Args(0, 1),
)
