"""The build executor: a parsed Dockerfile dispatched step by step into images, as Docker's classic builder.

Each stage starts from its base (an image, an earlier stage, or scratch) and
carries a state: the image so far, its container config, the ARGs in scope.
An instruction either changes the config only (a history entry with
``empty_layer``), or the files: RUN in a container (build.run), COPY/ADD and
WORKDIR in a mounted snapshot (build.layers, build.copy). Before any step
does work its cache key (parent image, the instruction as it runs, and the
files' hash for COPY/ADD) is looked up (build.cache); a hit costs no snapshot.

The output is the classic builder's (``Step N/M : ...``, `` ---> id``),
written through ``say``; the caller wraps it as Docker's JSON stream.

Reproducible: image and history timestamps are the build's epoch
(SOURCE_DATE_EPOCH, 0 by default) and every layer's mtimes are clamped to
it, so the same Dockerfile and context give the same image ID.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portside.build import dockerfile, history, shellwords
from portside.build.cache import BuildCache, step_key
from portside.build.cachefrom import CacheFrom
from portside.build.context import Source, SourceTree, drop_ignored_build_files
from portside.build.copy import CopyOptions, content_hash, copy_into, parse_chmod
from portside.build.layers import commit_config, fs_step
from portside.build.remote import Downloads, is_url
from portside.build.run import RunFailed, RunStep, run_step
from portside.containers.service import ContainerService
from portside.errors import InvalidArgument, NotFound, PortsideError
from portside.images.commit import Commit
from portside.images.load import host_architecture
from portside.images.service import Image, ImageService
from portside.oci.reference import Reference, parse_normalized
from portside.snapshots.mount import mount_all, unmount
from portside.timefmt import format_rfc3339

# Usable without an ARG, and left out of the history (moby's builtinAllowedBuildArgs).
PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})
DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_METADATA = {"CMD", "ENTRYPOINT", "ENV", "LABEL", "EXPOSE", "VOLUME", "USER", "STOPSIGNAL", "HEALTHCHECK",
             "SHELL", "ONBUILD", "MAINTAINER", "ARG"}


class BuildError(PortsideError):
    """A build that stopped: the message is what the stream's errorDetail says."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # a failed RUN's exit code


@dataclass(frozen=True)
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = ()
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    cache_from: tuple[str, ...] = ()   # images whose history may answer steps (build.cachefrom)
    remove: bool = True
    force_remove: bool = False
    platform: str = ""
    epoch: int = 0          # SOURCE_DATE_EPOCH: every timestamp the build writes
    pull: bool = False      # pull base images even when they are here (--pull)
    # RUN containers' HostConfig beyond the defaults: NetworkMode, ExtraHosts, ShmSize (--network, --add-host...)
    run_host_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class _State:
    image: Image | None
    config: dict[str, Any]
    args: dict[str, str | None] = field(default_factory=dict)   # ARGs declared in this stage
    cmd_set: bool = False                                          # a CMD in this stage (ENTRYPOINT keeps it)


class Builder:
    def __init__(self, containers: ContainerService, images: ImageService, cache: BuildCache, scratch: str,
                 pull: Callable[[str], Image] | None = None) -> None:
        self.containers = containers
        self.images = images
        self.cache = cache
        self.scratch = scratch
        self.pull = pull            # fetches a base image that is not here (build.basepull); None: no registry

    def build(self, context_dir: str, opts: BuildOptions, say: Callable[[str], None],
              aux: Callable[[dict[str, Any]], None] = lambda _: None) -> str:
        """Build; returns the image ID (tagged with ``opts.tags``). Raises BuildError or PortsideError.

        ``aux`` gets ``{"ID": image_id}`` just before "Successfully built", as dockerd sends it.
        """
        tags = check_tags(opts.tags)
        if opts.platform and opts.platform.split("/")[:2] != ["linux", host_architecture()]:
            raise InvalidArgument(f"platform {opts.platform} is not supported: this host builds "
                                  f"linux/{host_architecture()}")
        text = _read_dockerfile(context_dir, opts.dockerfile)
        drop_ignored_build_files(context_dir, opts.dockerfile or "Dockerfile")
        parsed = dockerfile.parse(text, opts.dockerfile)
        run = _Run(self, parsed, opts, SourceTree(context_dir), say)
        image_id = run.execute()
        unused = sorted(set(opts.build_args) - run.used_args - PROXY_ARGS)
        if unused:
            say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        aux({"ID": image_id})
        say(f"Successfully built {_short(image_id)}\n")
        for ref in tags:
            self.images.tag(image_id, ref)
            say(f"Successfully tagged {ref.familiar()}\n")
        return image_id


class _Run:
    """One build: the stages to run, the step counter, what the stages produced."""

    def __init__(self, builder: Builder, parsed: "dockerfile.Dockerfile", opts: BuildOptions, context: SourceTree,
                 say: Callable[[str], None]) -> None:
        self.b, self.df, self.opts, self.context, self.say = builder, parsed, opts, context, say
        self.used_args: set[str] = set()
        self._cleanup: list[str] = []   # scratch directories (here-document bodies) removed at the end
        self.stage_images: dict[int, str] = {}
        self.created = format_rfc3339(opts.epoch * 1_000_000_000)
        self.meta: dict[str, str | None] = {}
        self.cache_from = CacheFrom(builder.images, opts.cache_from) if opts.cache_from else None
        for instr in parsed.meta_args:
            for name, value in self._arg_defs(instr, {}):
                self.meta[name] = self._arg_value(name, value)

    # -- planning ----------------------------------------------------------------------

    def _stages_needed(self) -> list[int]:
        stages = self.df.stages
        if not stages:
            raise BuildError("the Dockerfile has no FROM")
        last = len(stages) - 1
        if self.opts.target:
            found = [s.index for s in stages if (s.name or "").lower() == self.opts.target.lower()]
            if not found:
                raise BuildError(f"failed to reach build target {self.opts.target} in Dockerfile")
            last = found[0]
        needed = {last}
        queue = [last]
        while queue:
            stage = stages[queue.pop()]
            for dep in self._stage_deps(stage):
                if dep not in needed:
                    needed.add(dep)
                    queue.append(dep)
        return sorted(needed)

    def _stage_deps(self, stage: "dockerfile.Stage") -> list[int]:
        deps = []
        base = self._stage_index(shellwords.expand(stage.base, self._meta_env(), escape=self.df.escape))
        if base is not None and base < stage.index:
            deps.append(base)
        for instr in stage.instructions:
            source = dict(instr.flags).get("from")
            if instr.keyword.upper() in ("COPY", "ADD") and source:
                index = self._stage_index(source)
                if index is not None and index < stage.index:
                    deps.append(index)
        return deps

    def _stage_index(self, name: str) -> int | None:
        for s in self.df.stages:
            if s.name is not None and s.name.lower() == name.lower():
                return s.index
        if name.isdigit() and int(name) < len(self.df.stages):
            return int(name)
        return None

    def _meta_env(self) -> dict[str, str]:
        return {k: v for k, v in self.meta.items() if v is not None}

    # -- running -----------------------------------------------------------------------

    def execute(self) -> str:
        try:
            return self._execute()
        finally:
            for path in self._cleanup:
                shutil.rmtree(path, ignore_errors=True)

    def _execute(self) -> str:
        needed = self._stages_needed()
        # moby adds one LABEL step per --label, sorted, at the end of the target stage
        self.total = sum(1 + len(self.df.stages[i].instructions) for i in needed) + len(self.opts.labels) \
            + len(self.df.meta_args)
        self.step = 0
        for instr in self.df.meta_args:  # steps of their own in the classic builder's output (no image)
            self._announce(instr)
        image_id = ""
        for index in needed:
            image_id = self._stage(self.df.stages[index])
            self.stage_images[index] = image_id
        for key, value in sorted(self.opts.labels.items()):
            self.step += 1
            self.say(f"Step {self.step}/{self.total} : LABEL {key}={value}\n")
            image = self.b.images.load_image(image_id)
            config = dict(image.config.config)
            config["Labels"] = dict(sorted({**(config.get("Labels") or {}), key: value}.items()))
            image_id = self._metadata(_State(image, config), f"LABEL {key}={value}")
        return image_id

    def _announce(self, instr: "dockerfile.Instruction") -> None:
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {instr.original.strip()}\n")

    def _stage(self, stage: "dockerfile.Stage") -> str:
        self._announce(stage.from_)
        base = shellwords.expand(stage.base, self._meta_env(), escape=self.df.escape)
        index = self._stage_index(base)
        if index is not None and index < stage.index:
            image: Image | None = self.b.images.load_image(self.stage_images[index])
        elif base.lower() == "scratch":
            image = None
        else:
            image = self._image(base)
        state = _State(image, dict(image.config.config) if image is not None else {"Env": [DEFAULT_PATH]})
        if not any(e.partition("=")[0] == "PATH" for e in state.config.get("Env") or []):
            state.config["Env"] = [*(state.config.get("Env") or []), DEFAULT_PATH]  # moby's setDefaultPath
        if image is not None:
            self.say(f" ---> {_short(image.id)}\n")
        triggers = list(state.config.get("OnBuild") or [])
        if triggers:
            state.config["OnBuild"] = None
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for trigger in triggers:
                self._dispatch(state, dockerfile.parse_instruction(trigger, escape=self.df.escape), stage)
        for instr in stage.instructions:
            self._announce(instr)
            self._dispatch(state, instr, stage)
        if state.image is None:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        return state.image.id

    def _image(self, name: str) -> Image:
        """A base image (FROM, COPY --from): the local one, else pulled; with --pull, pulled first."""
        if self.b.pull is not None and self.opts.pull:
            return self.b.pull(name)
        try:
            return self.b.images.get(name)
        except NotFound:
            if self.b.pull is None:
                raise NotFound(f"pull access denied for {name}, repository does not exist or may require "
                               "'docker login'") from None
        return self.b.pull(name)

    # -- instructions ------------------------------------------------------------------

    def _env(self, state: _State) -> dict[str, str]:
        """What ${VAR} sees: the config's Env, then the ARGs in scope (Env wins, as in Docker)."""
        env = {k: v for k, v in state.args.items() if v is not None}
        for item in state.config.get("Env") or []:
            key, _, value = item.partition("=")
            env[key] = value
        return env

    def _expand(self, state: _State, word: str) -> str:
        return shellwords.expand(word, self._env(state), escape=self.df.escape)

    def _dispatch(self, state: _State, instr: "dockerfile.Instruction", stage: "dockerfile.Stage") -> None:
        keyword = instr.keyword.upper()
        if keyword == "RUN":
            self._run(state, instr)
        elif keyword in ("COPY", "ADD"):
            self._copy(state, instr, keyword)
        elif keyword == "WORKDIR":
            self._workdir(state, instr)
        elif keyword in _METADATA:
            self._config(state, instr, keyword)
        else:
            raise BuildError(f"dockerfile parse error line {instr.line}: unknown instruction: {instr.keyword}")

    def _arg_defs(self, instr: "dockerfile.Instruction", env: dict[str, str]) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for word in instr.args:
            name, eq, value = word.partition("=")
            out.append((name, shellwords.expand(value, env, escape=self.df.escape) if eq else None))
        return out

    def _arg_value(self, name: str, default: str | None) -> str | None:
        if name in self.opts.build_args:
            self.used_args.add(name)
            given = self.opts.build_args[name]
            return given if given is not None else os.environ.get(name, default)  # moby: nil means the env's
        return default

    def _build_arg_env(self, state: _State) -> list[str]:
        """The ARGs a RUN sees: declared ones with a value, and the proxy ones given (not in the history)."""
        out = [f"{k}={v}" for k, v in state.args.items() if v is not None]
        for name in sorted(PROXY_ARGS & set(self.opts.build_args)):
            value = self.opts.build_args[name]
            if value is not None and name not in state.args:
                out.append(f"{name}={value}")
        return out

    def _cached(self, key: str, state: _State, created_by: str) -> str | None:
        """The image of a cached step; ``state.config`` is already the config the step gives."""
        if self.opts.no_cache:
            return None
        found = self.b.cache.get(key)
        if self.cache_from is None:
            return found
        if found is not None and self.cache_from.covers(found):
            return found  # with cache-from images, the classic builder trusts only local hits inside them
        return self.cache_from.lookup(state.image, created_by, state.config)

    def _finish(self, state: _State, key: str, image_id: str, cached: bool) -> None:
        if cached:
            self.say(" ---> Using cache\n")
        else:
            self.b.cache.put(key, image_id)
        state.image = self.b.images.load_image(image_id)
        self.say(f" ---> {_short(image_id)}\n")

    def _commit(self, state: _State, created_by: str) -> Commit:
        return Commit(config=dict(state.config), created_by=created_by, created=self.created)

    def _metadata(self, state: _State, shown: str) -> str:
        created_by = history.metadata(self._shell(state), shown)
        key = step_key(state.image.id if state.image else "", created_by, json.dumps(state.config, sort_keys=True))
        cached = self._cached(key, state, created_by)
        image_id = cached or commit_config(self.b.images, state.image, self._commit(state, created_by))
        self._finish(state, key, image_id, bool(cached))
        return image_id

    def _config(self, state: _State, instr: "dockerfile.Instruction", keyword: str) -> None:
        c = state.config
        args = list(instr.args)
        if keyword == "ARG":
            defs = self._arg_defs(instr, self._env(state))
            for name, value in defs:
                if value is None and name in self.meta:
                    value = self.meta[name]
                state.args[name] = self._arg_value(name, value)
            if state.image is None:
                return  # an ARG before anything else in a scratch stage: nothing to commit yet
            # the history has each name and its default as the Dockerfile gives it, unquoted (moby's dispatchArg)
            self._metadata(state, "ARG " + " ".join(n if v is None else f"{n}={v}" for n, v in defs))
            return
        if keyword in ("CMD", "ENTRYPOINT"):
            command = args if instr.json_form else [*self._shell(state), " ".join(args)]
            c["Cmd" if keyword == "CMD" else "Entrypoint"] = command
            if keyword == "CMD":
                state.cmd_set = True
            elif not state.cmd_set:
                c["Cmd"] = None  # moby: an ENTRYPOINT drops the CMD the base image had
            shown = f"{keyword} {history.go_quote_list(command)}"
        elif keyword in ("ENV", "LABEL"):
            pairs = dockerfile.expanded_pairs(instr, self._env(state), escape=self.df.escape)
            for key, value in pairs:
                if keyword == "ENV":  # moby replaces a variable in place, else appends it
                    env = list(c.get("Env") or [])
                    at = [i for i, e in enumerate(env) if e.partition("=")[0] == key]
                    if at:
                        env[at[0]] = f"{key}={value}"
                    else:
                        env.append(f"{key}={value}")
                    c["Env"] = env
                else:
                    c["Labels"] = dict(sorted({**(c.get("Labels") or {}), key: value}.items()))  # Go: a map
            shown = f"{keyword} " + " ".join(f"{k}={v}" for k, v in pairs)
        elif keyword == "EXPOSE":
            # moby sorts the words as written, then expands each (EXPOSE $P with P="80 443" gives two)
            ports = [p for w in sorted(" ".join(args).split()) for p in self._expand(state, w).split()]
            exposed = dict(c.get("ExposedPorts") or {})
            for p in ports:
                exposed.update(dict.fromkeys(_port_specs(p), {}))
            c["ExposedPorts"] = exposed
            shown = "EXPOSE " + " ".join(ports)
        elif keyword == "VOLUME":
            paths = args if instr.json_form else " ".join(args).split()
            volumes = dict(c.get("Volumes") or {})
            for p in paths:
                volumes[self._expand(state, p)] = {}
            c["Volumes"] = volumes
            shown = f"VOLUME {history.go_list([self._expand(state, p) for p in paths])}"
        elif keyword == "USER":
            c["User"] = self._expand(state, " ".join(args).strip())
            shown = f"USER {c['User']}"
        elif keyword == "STOPSIGNAL":
            c["StopSignal"] = self._expand(state, " ".join(args).strip())
            shown = f"STOPSIGNAL {c['StopSignal']}"
        elif keyword == "SHELL":
            if not instr.json_form:
                raise BuildError(f"dockerfile parse error line {instr.line}: SHELL requires the arguments to be "
                                 "in JSON form")
            c["Shell"] = args
            shown = f"SHELL {history.go_list(args)}"
        elif keyword == "ONBUILD":
            inner = instr.onbuild.original.strip() if instr.onbuild is not None else " ".join(args)
            c["OnBuild"] = [*(c.get("OnBuild") or []), inner]
            shown = f"ONBUILD {inner}"
        elif keyword == "MAINTAINER":
            shown = f"MAINTAINER {' '.join(args)}"
        else:  # HEALTHCHECK
            c["Healthcheck"] = self._healthcheck(instr)
            shown = f"HEALTHCHECK {history.healthcheck(c['Healthcheck'])}"
        self._metadata(state, shown)

    def _healthcheck(self, instr: "dockerfile.Instruction") -> dict[str, Any]:
        args = list(instr.args)
        head = args[0].upper() if args else ""
        if head == "NONE":
            return {"Test": ["NONE"]}
        flags = dict(instr.flags)
        if instr.json_form:
            rest = args[1:] if head == "CMD" else args
            test = ["CMD", *rest]
        else:
            text = " ".join(args)
            text = text[3:].strip() if text[:3].upper() == "CMD" else text
            test = ["CMD-SHELL", text]
        out: dict[str, Any] = {"Test": test}
        for flag, name in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod")):
            if flags.get(flag):
                out[name] = _duration_ns(flags[flag])
        if flags.get("retries"):
            out["Retries"] = int(flags["retries"])
        return out

    def _shell(self, state: _State) -> list[str]:
        return list(state.config.get("Shell") or DEFAULT_SHELL)

    def _run(self, state: _State, instr: "dockerfile.Instruction") -> None:
        if state.image is None:
            raise BuildError("Please provide a source image with `from` prior to commit")
        if instr.json_form:
            argv = list(instr.args)
            shown_cmd = json.dumps(argv)
        else:
            argv = [*self._shell(state), instr.args[0] if instr.args else ""]
            shown_cmd = " ".join(argv)
        if instr.heredocs and not instr.json_form:
            argv = _heredoc_argv(self._shell(state), instr)
            shown_cmd = " ".join(argv)
        arg_env = self._build_arg_env(state)
        history_args = sorted(a for a in arg_env if a.partition("=")[0] not in PROXY_ARGS)  # moby sorts them
        created_by = f"|{len(history_args)} {' '.join(history_args)} {shown_cmd}" if history_args else shown_cmd
        key = step_key(state.image.id, created_by, json.dumps(state.config, sort_keys=True))
        cached = self._cached(key, state, created_by)
        if cached is None:
            env = list(state.config.get("Env") or [])
            names = {e.partition("=")[0] for e in env}
            env += [a for a in arg_env if a.partition("=")[0] not in names]
            step = RunStep(argv=argv, env=env, user=state.config.get("User") or "",
                           workdir=state.config.get("WorkingDir") or "", shown=shown_cmd)
            try:
                image_id = run_step(self.b.containers, state.image, step, self._commit(state, created_by),
                                    say=self.say, clamp_mtime=self.opts.epoch,
                                    remove=self.opts.remove, force_remove=self.opts.force_remove,
                                    host_config=self.opts.run_host_config)
            except RunFailed as e:
                raise BuildError(e.message, e.code) from None
        self._finish(state, key, cached or image_id, bool(cached))

    def _copy(self, state: _State, instr: "dockerfile.Instruction", keyword: str) -> None:
        instr = dockerfile.expand_instruction(instr, self._env(state), escape=self.df.escape)  # words and flags
        flags = dict(instr.flags)
        docs = list(instr.heredocs)
        inline: list[Source] = []
        if docs:  # COPY <<EOF /dest: each here-document is a file named as its word
            bodies = tempfile.mkdtemp(prefix="heredoc-", dir=self.b.scratch)
            self._cleanup.append(bodies)
            for doc in docs:
                path = os.path.join(bodies, doc.name)
                with open(path, "w") as f:
                    f.write(shellwords.expand_heredoc(doc.content, self._env(state)) if doc.expand else doc.content)
                os.chmod(path, 0o644)
                inline.append(Source(path, doc.name, False))
            instr = dataclasses.replace(instr, args=tuple(w for w in instr.args if not dockerfile.heredoc_word(w)))
        words = list(instr.args)
        if len(words) + len(inline) < 2:
            raise BuildError(f"{keyword} requires at least two arguments, but only one was provided. "
                             "Destination could not be determined.")
        *srcs, dest = words
        tree, mount = self.context, None
        source = flags.get("from")
        if source:
            if keyword == "ADD":
                raise BuildError("ADD does not support the --from flag")
            index = self._stage_index(source)
            if index is not None and index in self.stage_images:
                from_image = self.b.images.load_image(self.stage_images[index])
            else:
                try:
                    from_image = self._image(source)
                except NotFound as e:
                    raise BuildError(f"invalid from flag value {source}: {e.message}") from None
            mount = _ReadOnlyImage(self.b.images, from_image, self.b.scratch)
            tree = SourceTree(mount.open(), f"image {from_image.id}")
        downloads = Downloads(self.b.scratch, self.opts.epoch, keyword)  # URL sources, removed at the end
        try:
            checksum = downloads.checksum(srcs, self._expand(state, flags.get("checksum", "")))
            sources = inline + [found for s in srcs for found in
                                ([downloads.source(s, dest, checksum)] if is_url(s) else tree.sources(s, keyword))]
            opts = CopyOptions(keyword=keyword, owner=flags.get("chown", ""),
                               chmod=parse_chmod(flags.get("chmod", "")), extract_tars=keyword == "ADD",
                               mtime=self.opts.epoch)
            files = content_hash(sources)
            shown = f"{keyword} {'--from=' + source + ' ' if source else ''}" \
                    f"{'--chown=' + opts.owner + ' ' if opts.owner else ''}" \
                    f"{'--chmod=' + flags['chmod'] + ' ' if flags.get('chmod') else ''}" \
                    f"{files} in {dest}"
            created_by = history.file_step(self._shell(state), shown) + " "
            parent = state.image
            key = step_key(parent.id if parent else "", created_by, json.dumps(state.config, sort_keys=True))
            cached = self._cached(key, state, created_by)
            if cached is None:
                def change(root_fd: int) -> None:
                    try:
                        copy_into(root_fd, sources, dest, state.config.get("WorkingDir") or "/", opts)
                    except OSError as e:
                        raise BuildError(f"{keyword} failed: {e}") from None
                image_id = fs_step(self.b.images, parent, self.b.scratch, change, self._commit(state, created_by),
                                   clamp_mtime=self.opts.epoch)
            self._finish(state, key, cached or image_id, bool(cached))
        finally:
            downloads.close()
            if mount is not None:
                mount.close()

    def _workdir(self, state: _State, instr: "dockerfile.Instruction") -> None:
        path = self._expand(state, " ".join(instr.args).strip())
        if not path.startswith("/"):
            path = os.path.join(state.config.get("WorkingDir") or "/", path)
        path = os.path.normpath(path)
        state.config["WorkingDir"] = path
        created_by = history.file_step(self._shell(state), f"WORKDIR {path}")
        parent = state.image
        key = step_key(parent.id if parent else "", created_by, json.dumps(state.config, sort_keys=True))
        cached = self._cached(key, state, created_by)
        if cached is None:
            # moby makes the directory (owned by root) so that later steps and the result can use it
            def change(root_fd: int) -> None:
                copy_into(root_fd, [], path.rstrip("/") + "/", "/", CopyOptions("WORKDIR", mtime=self.opts.epoch))
            image_id = fs_step(self.b.images, parent, self.b.scratch, change, self._commit(state, created_by),
                               clamp_mtime=self.opts.epoch)
        self._finish(state, key, cached or image_id, bool(cached))


class _ReadOnlyImage:
    """An image's files mounted read-only, for ``COPY --from``."""

    def __init__(self, images: ImageService, image: Image, scratch: str) -> None:
        self.images, self.image, self.scratch = images, image, scratch
        self.target = ""

    def open(self) -> str:
        self.target = tempfile.mkdtemp(prefix="from-", dir=self.scratch)
        mount_all(self.images.snapshots.view([layer.chain_id for layer in self.image.row.layers]), self.target)
        return self.target

    def close(self) -> None:
        if self.target:
            unmount(self.target, detach=True)
            os.rmdir(self.target)


def _heredoc_argv(shell: list[str], instr: "dockerfile.Instruction") -> list[str]:
    """``RUN <<EOF``, as BuildKit runs it: a command that is only the here-document runs its body as the script;
    otherwise the shell gets the line and the bodies, and does the redirections (and the expansion) itself."""
    line = instr.args[0] if instr.args else ""
    if len(instr.heredocs) == 1 and re.fullmatch(r"\s*<<-?[\"']?\w+[\"']?\s*", line):
        return [*shell, instr.heredocs[0].content]
    script = line
    for doc in instr.heredocs:
        script += f"\n{doc.content}{doc.name}"
    return [*shell, script + "\n"]


def _read_dockerfile(context_dir: str, name: str) -> str:
    tree = SourceTree(context_dir)
    try:
        found = tree.sources(name or "Dockerfile", "Dockerfile")
    except NotFound:
        raise BuildError(f"Cannot locate specified Dockerfile: {name or 'Dockerfile'}") from None
    if found[0].is_dir:
        raise BuildError(f"Cannot locate specified Dockerfile: {name}")
    with open(found[0].path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def check_tags(tags: tuple[str, ...]) -> list[Reference]:
    """The ``-t`` values as references (``latest`` when untagged); checked before the build starts."""
    return [_reference(t) for t in tags]


def _reference(tag: str) -> Reference:
    try:
        ref = parse_normalized(tag)
    except InvalidArgument:
        raise InvalidArgument(f"invalid reference format: repository name must be lowercase" if tag.lower() != tag
                              else f"invalid tag {tag!r}: invalid reference format") from None
    if ref.digest is not None:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    return ref if ref.tag is not None else ref.with_tag("latest")


def _port_specs(spec: str) -> list[str]:
    """EXPOSE's word as nat.ParsePortSpecs reads it: ``[ip:[host]:]port[-end][/proto]``, a range giving each port."""
    port, _, proto = spec.rpartition(":")[2].partition("/")
    start, _, end = port.partition("-")
    if not start.isdigit() or (end and not end.isdigit()) or not 0 <= int(start) <= 65535 or \
            (end and not int(start) <= int(end) <= 65535):
        raise BuildError(f"Invalid containerPort: {spec}")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise BuildError(f"Invalid proto: {proto}")
    return [f"{n}/{proto}" for n in range(int(start), int(end or start) + 1)]


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _duration_ns(text: str) -> int:
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    total = 0
    for number, unit in re.findall(r"([0-9.]+)(ns|us|ms|s|m|h)", text):
        total += int(float(number) * units[unit])
    return total
