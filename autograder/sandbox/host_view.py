"""What the bubblewrap sandbox shows of the host: the student's world only, in every install layout.

Runs TRUSTED (in the grading parent); :mod:`autograder.sandbox.isolation`
turns the view into bwrap's mount options.

The sandbox's file system is an allow-list, never the host minus known
secrets. Shown, read-only and each at its own path:

* the operating system's library folders (``/usr/lib``, ``/lib64``, ...),
  its programs (``/usr/bin``) and the dynamic loader's configuration;
* the interpreter binary, its standard library and the folder of its shared
  library (``LIBDIR``), wherever the interpreter lives (``/usr``,
  ``/usr/local`` in a ``python:3.x`` image, pyenv, conda);
* numpy and its vendored libraries (so that ``$ORIGIN``-relative library
  paths keep working).

Inside those folders, every folder that Python installs packages into is
replaced by an empty one (holding only numpy's mount points when numpy lives
there): each ``site-packages`` and ``dist-packages`` folder, each entry of the
grader's ``sys.path``, and the grader's own package and the reference ``mlp``
wherever they are. So whether the grader is an editable checkout, a wheel in
a virtual environment or in the interpreter's own ``site-packages``, a Debian
``dist-packages`` install or Gradescope's ``/autograder/source``, student code
sees the standard library, numpy and (mounted by the caller) the student copy
of ``mlp``, and nothing that was installed. :func:`exposed_secrets` checks the
result against the course's secrets, so that a layout nobody foresaw fails
closed instead of leaking.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

#: Folders of the operating system's shared libraries (and locale data) and programs
#: (``sleep``, ``sh``: nothing a submission could not write itself in Python).
SYSTEM_DIRS = ("/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", "/usr/bin",
               "/lib", "/lib32", "/lib64", "/libx32")
#: Top-level links of a merged-/usr system (``/bin -> usr/bin``), recreated as links.
SYSTEM_LINKS = ("/bin", "/sbin")
#: What the dynamic loader reads (and Debian's BLAS and LAPACK alternatives, for its numpy).
LOADER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives")
#: Names of the folders Python installs packages into.
PACKAGE_DIR_NAMES = ("site-packages", "dist-packages")


@dataclass(frozen=True)
class HostView:
    """The parts of the host the bwrap sandbox shows, all read-only and at their own paths.

    Attributes:
        links: ``(path, target)`` symbolic links to recreate, e.g. ``("/lib", "usr/lib")``.
        trees: Folders shown whole (except for ``masks``), outermost first.
        files: Single files shown (the interpreter, helper programs, loader files).
        masks: ``(folder, mount_points)``: folders inside ``trees`` replaced by an
            empty folder that holds only the given relative paths (numpy's mount
            points), each created as an empty folder.
        numpy: ``(source, target)`` binds of numpy and its vendored libraries.
        numpy_home: The folder holding numpy as the child sees it (put on its path).
    """

    links: tuple[tuple[str, str], ...]
    trees: tuple[str, ...]
    files: tuple[str, ...]
    masks: tuple[tuple[str, tuple[str, ...]], ...]
    numpy: tuple[tuple[str, str], ...]
    numpy_home: str

    def shows(self, path: str) -> bool:
        """Whether the child can see the host path ``path`` (resolved)."""
        real = os.path.realpath(path)
        if any(within(real, target) for _, target in self.numpy):
            return True
        if any(within(real, folder) for folder, _ in self.masks):
            return False
        return real in self.files or any(within(real, tree) for tree in self.trees)


def within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _outermost(paths) -> list[str]:
    """The paths that lie inside no other path of the list, sorted."""
    kept: list[str] = []
    for path in sorted(set(paths), key=lambda p: (p.count(os.sep), p)):
        if not any(within(path, other) for other in kept):
            kept.append(path)
    return sorted(kept)


@functools.lru_cache(maxsize=None)
def host_view(interpreter: str, programs: tuple[str, ...] = ()) -> HostView:
    """The view for student code run by ``interpreter`` (a resolved path) and ``programs``.

    Computed once per process (the grader's install does not change while it runs).

    Args:
        interpreter: The real interpreter binary the child runs.
        programs: Further binaries run inside the sandbox (``setpriv``, ``prlimit``).
    """
    links, trees, files = [], [], [interpreter, *programs]
    for path in SYSTEM_DIRS + SYSTEM_LINKS:
        if os.path.islink(path):
            links.append((path, os.readlink(path)))
        elif os.path.isdir(path) and path not in SYSTEM_LINKS:
            trees.append(path)
    for path in LOADER_FILES:
        if os.path.isdir(path):
            trees.append(path)
        elif os.path.isfile(path):
            files.append(path)
    stdlib_dirs, library_dir = _interpreter_dirs()
    trees = _outermost([os.path.realpath(tree) for tree in trees] + stdlib_dirs + library_dir)
    stdlib_dirs = _stdlib_parts(stdlib_dirs)
    files = [path for path in dict.fromkeys(files) if not any(within(path, tree) for tree in trees)]

    numpy_binds, numpy_home = _numpy_binds()
    masks = _package_dirs(trees, stdlib_dirs, stdlib_dirs + library_dir)
    if any(within(numpy_home, tree) for tree in trees) and not any(within(numpy_home, m) for m in masks):
        masks = _outermost(masks + [numpy_home])  # numpy in a folder that is not a package folder
    mount_points = {mask: tuple(os.path.relpath(target, mask) for _, target in numpy_binds
                                if within(target, mask) and target != mask)
                    for mask in masks}
    return HostView(links=tuple(links), trees=tuple(trees), files=tuple(files),
                    masks=tuple((mask, mount_points[mask]) for mask in masks),
                    numpy=tuple(numpy_binds), numpy_home=numpy_home)


def _interpreter_dirs() -> tuple[list[str], list[str]]:
    """The standard library's folders (pure and platform parts) and libpython's folder, resolved."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix,  # never a virtual environment's
            "installed_base": sys.base_prefix, "installed_platbase": sys.base_exec_prefix}
    paths = sysconfig.get_paths(vars=base)

    def existing(*candidates):
        return sorted({os.path.realpath(c) for c in candidates if c and os.path.isdir(c)})

    return (existing(paths.get("stdlib"), paths.get("platstdlib"), os.path.dirname(os.__file__)),
            existing(sysconfig.get_config_var("LIBDIR")))


def _stdlib_parts(stdlib_dirs: list[str]) -> list[str]:
    """The standard library's folders and every folder of the import path inside them, resolved.

    ``lib-dynload`` (the extension modules) can be a link to another folder,
    as can each entry of a standard library assembled from links.
    """
    parts = set(stdlib_dirs)
    for entry in sys.path:
        if entry and any(within(os.path.abspath(entry), folder) for folder in stdlib_dirs):
            parts.add(os.path.realpath(entry))
    return sorted(parts)


def _numpy_binds() -> tuple[list[tuple[str, str]], str]:
    """``[(source, target)]`` for numpy and numpy.libs, and the folder that holds them."""
    spec = importlib.util.find_spec("numpy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("numpy is not importable in the grading process")
    found = list(spec.submodule_search_locations)[0]
    package = os.path.realpath(found)
    home = os.path.dirname(package)
    binds = [(package, package)]
    for vendored in (os.path.join(os.path.dirname(found), "numpy.libs"), os.path.join(home, "numpy.libs")):
        if os.path.isdir(vendored):
            binds.append((os.path.realpath(vendored), os.path.join(home, "numpy.libs")))
            break
    return binds, home


def _package_dirs(trees: list[str], stdlib_dirs: list[str], needed: list[str]) -> list[str]:
    """Folders inside ``trees`` that hold installed packages or the course's secrets.

    Those are every ``site-packages`` or ``dist-packages`` folder up to three
    levels down, and every folder on the grader's import path or in the
    interpreter's install scheme, except the standard library's own parts
    (``lib-dynload``) and folders that hold ``needed`` ones.
    """
    found = set()
    for tree in trees:
        for depth in ("", "*", os.path.join("*", "*")):
            for name in PACKAGE_DIR_NAMES:
                found.update(glob.glob(os.path.join(glob.escape(tree), depth, name)))
    secrets = course_secrets()
    for candidate in list(sys.path) + _site_dirs() + secrets:
        if candidate and os.path.isdir(candidate):
            found.add(candidate)
    masks = []
    for path in {os.path.realpath(path) for path in found}:
        if not any(within(path, tree) and path != tree for tree in trees):
            continue  # not shown anyway
        if any(within(folder, path) for folder in needed):
            continue  # it holds the standard library or libpython
        named = os.path.basename(path) in PACKAGE_DIR_NAMES or path in secrets
        if not named and any(within(path, folder) for folder in stdlib_dirs):
            continue  # a part of the standard library, e.g. lib-dynload
        if os.path.isdir(path):
            masks.append(path)
    return _outermost(masks)


def _site_dirs() -> list[str]:
    """Where this interpreter (and its base installation) install packages."""
    dirs = []
    try:
        dirs += site.getsitepackages()
    except AttributeError:  # an old virtualenv's site module
        pass
    user = getattr(site, "getusersitepackages", None)
    if user is not None:
        dirs.append(user())
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        for key in ("purelib", "platlib"):
            dirs.append(sysconfig.get_path(key, vars={"base": prefix, "platbase": prefix}))
    return [path for path in dirs if path]


def course_secrets() -> list[str]:
    """Host paths student code must never see: the grader's package, its specs, the reference mlp."""
    package = Path(__file__).resolve().parents[1]
    secrets = [package, package / "course" / "specs"]
    if (package.parent / "pyproject.toml").is_file():  # a checkout: the whole repository
        secrets.append(package.parent)
    try:
        reference = importlib.util.find_spec("mlp")
    except (ImportError, ValueError):
        reference = None
    if reference is not None:
        secrets += [Path(location) for location in reference.submodule_search_locations or ()]
    return [os.path.realpath(secret) for secret in secrets]


def exposed_secrets(view: HostView) -> list[str]:
    """The course's secrets that ``view`` would show to student code (should be none)."""
    return [secret for secret in course_secrets() if view.shows(secret)]
