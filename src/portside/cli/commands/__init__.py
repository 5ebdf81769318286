"""The command table: which module implements each command, and its one-line summary.

Command modules are imported only when their command runs, so ``portside
images`` never pays for ``system`` or the daemon. The summaries live here so
``portside --help`` can list every command without importing any of them.

To add a command: write its :class:`~portside.cli.commands.base.Command` in a
module of this package and add a row to ``TOP`` and/or a group below.
"""

from __future__ import annotations


class Entry:
    __slots__ = ("module", "attr", "short")

    def __init__(self, module: str, attr: str, short: str) -> None:
        self.module = module  # portside.cli.commands.<module>
        self.attr = attr  # the Command object in that module
        self.short = short


TOP: dict[str, Entry] = {
    "ps": Entry("containers", "PS", "List containers"),
    "images": Entry("images", "IMAGES", "List images"),
    "version": Entry("system", "VERSION", "Show the portside version information"),
    "info": Entry("system", "INFO", "Display system-wide information"),
    "history": Entry("images", "HISTORY", "Show the history of an image"),
    "build": Entry("build", "BUILD", "Build an image from a Dockerfile"),
    "import": Entry("images", "IMPORT", "Import the contents from a tarball to create a filesystem image"),
    "inspect": Entry("system", "INSPECT", "Return low-level information on Docker objects"),
    "load": Entry("images", "LOAD", "Load an image from a tar archive or STDIN"),
    "login": Entry("distribution", "LOGIN", "Authenticate to a registry"),
    "logout": Entry("distribution", "LOGOUT", "Log out from a registry"),
    "pull": Entry("distribution", "PULL", "Download an image from a registry"),
    "push": Entry("distribution", "PUSH", "Upload an image to a registry"),
    "rmi": Entry("images", "RMI", "Remove one or more images"),
    "search": Entry("search", "SEARCH", "Search Docker Hub for images"),
    "save": Entry("images", "SAVE", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "tag": Entry("images", "TAG", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    # containers
    "run": Entry("run", "RUN", "Create and run a new container from an image"),
    "exec": Entry("run", "EXEC", "Execute a command in a running container"),
    "create": Entry("run", "CREATE", "Create a new container"),
    "start": Entry("run", "START", "Start one or more stopped containers"),
    "attach": Entry("run", "ATTACH", "Attach local standard input, output, and error streams to a running container"),
    "commit": Entry("commit", "COMMIT", "Create a new image from a container's changes"),
    "stop": Entry("containers", "STOP", "Stop one or more running containers"),
    "kill": Entry("containers", "KILL", "Kill one or more running containers"),
    "restart": Entry("containers", "RESTART", "Restart one or more containers"),
    "rm": Entry("containers", "RM", "Remove one or more containers"),
    "wait": Entry("containers", "WAIT", "Block until one or more containers stop, then print their exit codes"),
    "logs": Entry("containers", "LOGS", "Fetch the logs of a container"),
    "rename": Entry("containers", "RENAME", "Rename a container"),
    "pause": Entry("containers", "PAUSE", "Pause all processes within one or more containers"),
    "unpause": Entry("containers", "UNPAUSE", "Unpause all processes within one or more containers"),
    "top": Entry("containers", "TOP", "Display the running processes of a container"),
    "port": Entry("containers", "PORT", "List port mappings or a specific mapping for the container"),
    "diff": Entry("containers", "DIFF", "Inspect changes to files or directories on a container's filesystem"),
    "export": Entry("containers", "EXPORT", "Export a container's filesystem as a tar archive"),
    "stats": Entry("stats", "STATS", "Display a live stream of container(s) resource usage statistics"),
    "update": Entry("stats", "UPDATE", "Update configuration of one or more containers"),
    "cp": Entry("cp", "CP", "Copy files/folders between a container and the local filesystem"),
    "events": Entry("events", "EVENTS", "Get real time events from the server"),
}

_CONTAINER_COMMANDS = ("attach", "commit", "cp", "create", "diff", "exec", "export", "kill", "logs", "pause", "port",
                       "rename", "restart", "rm", "run", "start", "stats", "stop", "top", "unpause", "update", "wait")

# docker's "category-top" commands, in its order
COMMON = ("run", "exec", "ps", "images", "version", "info")


class GroupEntry:
    __slots__ = ("short", "subcommands", "listed")

    def __init__(self, short: str, subcommands: dict[str, Entry], listed: tuple[str, ...]) -> None:
        self.short = short
        self.subcommands = subcommands  # subcommand or alias -> Entry
        self.listed = listed  # the names shown in help


_IMAGE_LS = Entry("images", "IMAGE_LS", "List images")
_IMAGE_RM = Entry("images", "IMAGE_RM", "Remove one or more images")
_CONTAINER_LS = Entry("containers", "CONTAINER_LS", "List containers")
_VOLUME_LS = Entry("volumes", "VOLUME_LS", "List volumes")
_VOLUME_RM = Entry("volumes", "VOLUME_RM", "Remove one or more volumes")

_NETWORK_LS = Entry("networks", "NETWORK_LS", "List networks")
_NETWORK_RM = Entry("networks", "NETWORK_RM", "Remove one or more networks")

GROUPS: dict[str, GroupEntry] = {
    "container": GroupEntry(
        "Manage containers",
        {
            "ls": _CONTAINER_LS,
            "list": _CONTAINER_LS,
            "ps": _CONTAINER_LS,
            **{name: TOP[name] for name in _CONTAINER_COMMANDS},
            "remove": TOP["rm"],
            "inspect": Entry("containers", "CONTAINER_INSPECT", "Display detailed information on one or more containers"),
            "prune": Entry("containers", "CONTAINER_PRUNE", "Remove all stopped containers"),
        },
        tuple(sorted(("ls", "inspect", "prune", *_CONTAINER_COMMANDS))),
    ),
    "image": GroupEntry(
        "Manage images",
        {
            "build": Entry("build", "IMAGE_BUILD", TOP["build"].short),
            "history": Entry("images", "IMAGE_HISTORY", TOP["history"].short),
            "import": Entry("images", "IMAGE_IMPORT", TOP["import"].short),
            "inspect": Entry("images", "IMAGE_INSPECT", "Display detailed information on one or more images"),
            "load": Entry("images", "IMAGE_LOAD", TOP["load"].short),
            "ls": _IMAGE_LS,
            "list": _IMAGE_LS,
            "prune": Entry("images", "IMAGE_PRUNE", "Remove unused images"),
            "pull": Entry("distribution", "IMAGE_PULL", "Download an image from a registry"),
            "push": Entry("distribution", "IMAGE_PUSH", "Upload an image to a registry"),
            "rm": _IMAGE_RM,
            "rmi": _IMAGE_RM,
            "remove": _IMAGE_RM,
            "save": Entry("images", "IMAGE_SAVE", TOP["save"].short),
            "tag": Entry("images", "IMAGE_TAG", TOP["tag"].short),
        },
        ("build", "history", "import", "inspect", "load", "ls", "prune", "pull", "push", "rm", "save", "tag"),
    ),
    "volume": GroupEntry(
        "Manage volumes",
        {
            "create": Entry("volumes", "VOLUME_CREATE", "Create a volume"),
            "inspect": Entry("volumes", "VOLUME_INSPECT", "Display detailed information on one or more volumes"),
            "ls": _VOLUME_LS,
            "list": _VOLUME_LS,
            "prune": Entry("volumes", "VOLUME_PRUNE", "Remove unused local volumes"),
            "rm": _VOLUME_RM,
            "remove": _VOLUME_RM,
        },
        ("create", "inspect", "ls", "prune", "rm"),
    ),
    "network": GroupEntry(
        "Manage networks",
        {
            "connect": Entry("networks", "NETWORK_CONNECT", "Connect a container to a network"),
            "create": Entry("networks", "NETWORK_CREATE", "Create a network"),
            "disconnect": Entry("networks", "NETWORK_DISCONNECT", "Disconnect a container from a network"),
            "inspect": Entry("networks", "NETWORK_INSPECT",
                             "Display detailed information on one or more networks"),
            "ls": _NETWORK_LS,
            "list": _NETWORK_LS,
            "prune": Entry("networks", "NETWORK_PRUNE", "Remove all unused networks"),
            "rm": _NETWORK_RM,
            "remove": _NETWORK_RM,
        },
        ("connect", "create", "disconnect", "inspect", "ls", "prune", "rm"),
    ),
    "system": GroupEntry(
        "Manage portside",
        {
            "df": Entry("system", "SYSTEM_DF", "Show portside disk usage"),
            "events": TOP["events"],
            "info": Entry("system", "SYSTEM_INFO", TOP["info"].short),
        },
        ("df", "events", "info"),
    ),
}

# Commands that hand their whole argv to another part of portside.
EXTERNAL: dict[str, tuple[str, str]] = {
    "daemon": ("portside.daemon.main", "Run the portside daemon"),
    "registry": ("portside.registry.main", "Run an OCI distribution registry (registry serve ...)"),
}


def load(entry: Entry):  # type: ignore[no-untyped-def]
    """Import the module of ``entry`` and return its Command."""
    # __import__ rather than importlib.import_module: the importlib package
    # imports warnings, a cost every command would pay (docs/cli-startup.md).
    module = __import__(f"portside.cli.commands.{entry.module}", fromlist=[entry.attr])
    return getattr(module, entry.attr)
