"""Build ``binmon_<version>-<revision>_amd64.deb`` from the PyInstaller bundle (``make package``).

    python3 tools/make_deb.py --bundle dist/binmon --out dist [--compress xz|gzip|zstd] [--level N]

Standard library only (it runs under any Python 3.11+). It stages a tree under
``build/deb/`` and packs it with ``dpkg-deb --root-owner-group``:

- ``/opt/binmon/``: the onedir bundle (files 0644, executables and shared objects as found);
- ``/usr/bin/binmon``: a launcher script (``exec /opt/binmon/binmon "$@"``);
- ``/usr/share/applications/binmon.desktop`` and ``/usr/share/icons/hicolor/*/apps/binmon.*``;
- ``/usr/share/doc/binmon/copyright`` (machine-readable, from binmon.licenses) and
  ``changelog.Debian.gz``; ``/usr/share/man/man1/binmon.1.gz``;
- ``/usr/share/lintian/overrides/binmon``: the lintian tags that follow from shipping a
  PyInstaller bundle under /opt, each with its reason (see :data:`LINTIAN_OVERRIDES`);
- ``DEBIAN/control`` with ``Depends`` on the system libraries the bundle loads from the system
  (:data:`DEPENDS`) and ``Installed-Size``.

The Debian version is ``<pyproject version>-<revision>`` (a non-native package: its
changelog is ``changelog.Debian.gz``).
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import os
import shutil
import subprocess
import sys
import time
import tomllib
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from binmon.licenses import APP_COPYRIGHT, APP_LICENSE, COMPONENTS  # noqa: E402

PACKAGE = "binmon"
MAINTAINER = os.environ.get("DEB_MAINTAINER", "binmon developers <binmon@example.org>")
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)

#: Libraries the bundle takes from the system (PyInstaller never bundles libc, libGL/libEGL
#: and the X/Wayland/DRM client libraries the drivers must match), QtWebEngine's runtime set
#: from ../shared/platform-notes.md (some are also bundled; depending on them keeps the
#: package working if a bundled copy is ever dropped), and a font (a page with no font shows
#: no text).
DEPENDS = (
    "libc6 (>= 2.36)",
    "libgl1",
    "libegl1",
    "libgbm1",
    "libdrm2",
    "libxcb1",
    "libxcb-dri3-0",
    "libwayland-client0",
    "libwayland-cursor0",
    "libasound2",
    "libbrotli1",
    "libdbus-1-3",
    "libexpat1",
    "libfontconfig1",
    "libfreetype6",
    "libglib2.0-0",
    "libnspr4",
    "libnss3",
    "libx11-6",
    "libxcomposite1",
    "libxdamage1",
    "libxext6",
    "libxfixes3",
    "libxkbcommon0",
    "libxkbfile1",
    "libxrandr2",
    "libxtst6",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxkbcommon-x11-0",
    # The core libraries binmon.spec leaves out of the bundle in favour of the system's.
    "zlib1g",
    "libpng16-16",
    "libjpeg62-turbo",
    "libbz2-1.0",
    "libgmp10",
    "libidn2-0",
    "libtinfo6",
    "libmount1",
    "libblkid1",
    "fonts-dejavu-core | fonts-liberation2 | fonts-freefont-ttf",
)

#: The lintian errors that follow from what the package is (a bundle with its own Python and
#: Chromium under /opt), with their reasons; every other error is fixed (tools/tidy_bundle.py,
#: the DROP lists in binmon.spec). The last two only occur with a self-built Python (pyenv).
LINTIAN_OVERRIDES = (
    (
        "dir-or-file-in-opt",
        "A self-contained third-party application bundle installs to /opt/binmon by design; "
        "the package is not meant for the Debian archive.",
    ),
    (
        "embedded-library * [opt/binmon/_internal/PySide6/Qt/lib/libQt6WebEngineCore.so.6]",
        "Chromium (inside QtWebEngine) links its own copies of these; they cannot be unbundled "
        "without rebuilding Qt.",
    ),
    (
        "embedded-library expat [opt/binmon/_internal/libpython3*]",
        "The bundled Python interpreter as built (Debian's own libpython3.11 has expat inside too).",
    ),
    (
        "embedded-library expat [opt/binmon/_internal/python3*/lib-dynload/pyexpat*]",
        "pyexpat of a self-built Python (e.g. pyenv) links expat statically.",
    ),
    (
        "library-not-linked-against-libc [opt/binmon/_internal/python3*/lib-dynload/*]",
        "Tiny CPython stdlib modules of a self-built Python call no libc function.",
    ),
)

#: Files of the bundle (globs for the copyright file) that belong to each component.
COMPONENT_FILES = {
    "Python": "opt/binmon/_internal/libpython3* opt/binmon/_internal/base_library.zip "
    "opt/binmon/_internal/python3*/*",
    "Qt 6 and PySide6 / Shiboken6": "opt/binmon/_internal/PySide6/* opt/binmon/_internal/shiboken6/* "
    "opt/binmon/_internal/libQt6* opt/binmon/_internal/libpyside6* opt/binmon/_internal/libshiboken6*",
    "Qt WebEngine (Chromium)": "opt/binmon/_internal/PySide6/Qt/lib/libQt6WebEngine* "
    "opt/binmon/_internal/PySide6/Qt/libexec/* opt/binmon/_internal/PySide6/Qt/resources/* "
    "opt/binmon/_internal/PySide6/Qt/translations/*",
    "TradingView Lightweight Charts": "opt/binmon/_internal/resources/chart/node_modules/*",
    "TA-Lib (C library)": "opt/binmon/_internal/ta_lib.libs/*",
    "TA-Lib (Python wrapper)": "opt/binmon/_internal/talib/*",
    "pandas": "opt/binmon/_internal/pandas/*",
    "NumPy": "opt/binmon/_internal/numpy/* opt/binmon/_internal/numpy.libs/*",
    "certifi": "opt/binmon/_internal/certifi/*",
    "orjson": "opt/binmon/_internal/orjson/*",
    "websockets": "opt/binmon/_internal/websockets/*",
    "charset-normalizer": "opt/binmon/_internal/charset_normalizer/*",
    "PyInstaller bootloader": "opt/binmon/binmon",
}

#: Licences whose full text Debian ships in /usr/share/common-licenses.
COMMON = {
    "GPL-3.0-or-later": "GPL-3",
    "GPL-3.0-only": "GPL-3",
    "GPL-2.0-or-later": "GPL-2",
    "LGPL-3.0-only": "LGPL-3",
    "Apache-2.0": "Apache-2.0",
    "MPL-2.0": "MPL-2.0",
    "CC0-1.0": "CC0-1.0",
}


def _version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


def _dep5_text(text: str) -> str:
    """``text`` as a DEP-5 continuation block (one leading space, empty lines as ``.``)."""
    return "\n".join(" " + line if line.strip() else " ." for line in text.strip("\n").splitlines())


def _licence_ids(expr: str) -> list[str]:
    """The licence names of an SPDX expression, in order: ``"MIT AND (Apache-2.0 OR X)"``."""
    out: list[str] = []
    words = expr.replace("(", " ").replace(")", " ").split()
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("AND", "OR"):
            i += 1
            continue
        if i + 2 < len(words) and words[i + 1] == "WITH":
            w = f"{w} WITH {words[i + 2]}"
            i += 2
        if w not in out:
            out.append(w)
        i += 1
    return out


def _licence_paragraph(name: str, bundle: Path) -> str:
    base = name.split(" WITH ")[0]
    if base in COMMON:
        body = f"On Debian systems the full text is in /usr/share/common-licenses/{COMMON[base]}."
        if " WITH " in name:
            body += (
                "\n\nThe PyInstaller bootloader exception: the bootloader may be combined with "
                "and distributed with a program under any licence (see "
                "/opt/binmon/_internal/licenses/pyinstaller/COPYING.txt)."
            )
        return f"License: {name}\n{_dep5_text(body)}"
    texts = sorted(str(p.relative_to(bundle.parent)) for p in (bundle / "_internal" / "licenses").rglob("*"))
    body = (
        f"The components under {name} are listed above; each one's licence text, with its "
        f"copyright notice, is in /opt/binmon/_internal/licenses/<component>/ ({len(texts)} files)."
    )
    return f"License: {name}\n{_dep5_text(body)}"


def copyright_text(bundle: Path) -> str:
    """The machine-readable ``debian/copyright`` of the package."""
    paras = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        f"Upstream-Name: {PACKAGE}\n"
        "Comment: binmon is distributed as a whole under GPL-3.0-or-later (it includes backtrader,\n"
        " GPL-3.0-or-later). The bundled components keep their own licences, listed below; their\n"
        " licence texts are in /opt/binmon/_internal/licenses/.",
        f"Files: *\nCopyright: {APP_COPYRIGHT}\nLicense: {APP_LICENSE}",
    ]
    embedded = []
    for c in COMPONENTS:
        files = COMPONENT_FILES.get(c.name)
        if files is None:
            embedded.append(c)
            continue
        comment = f"\nComment: {c.url}" + (f"\n {c.note}" if c.note else "")
        paras.append(f"Files: {files}\nCopyright: {c.copyright}\nLicense: {c.license}{comment}")
    # Pure-Python components live inside the executable's archive, not as separate files.
    lines = "\n".join(f" {c.name}: {c.license}, (c) {c.copyright}, {c.url}" for c in embedded)
    paras[-1] += "\n Also inside this file's Python archive:\n" + lines
    names: list[str] = []
    for expr in [APP_LICENSE, *(c.license for c in COMPONENTS)]:
        names += [n for n in _licence_ids(expr) if n not in names]
    paras += [_licence_paragraph(n, bundle) for n in names]
    return "\n\n".join(paras) + "\n"


def _changelog(version: str, when: float) -> bytes:
    text = (
        f"{PACKAGE} ({version}) unstable; urgency=medium\n\n"
        f"  * Release {version.rsplit('-', 1)[0]}: the PyInstaller bundle in /opt/binmon.\n\n"
        f" -- {MAINTAINER}  {formatdate(when, usegmt=False)}\n"
    )
    return gzip.compress(text.encode(), compresslevel=9, mtime=int(when))


def _manpage(version: str) -> bytes:
    text = f""".TH BINMON 1 "" "binmon {version}" "User Commands"
.SH NAME
binmon \\- desktop Binance market monitor
.SH SYNOPSIS
.B binmon
[\\fIOPTIONS\\fR] [\\fICOMMAND\\fR ...]
.SH DESCRIPTION
Without a command, binmon opens its window: live candlestick charts, TA-Lib indicators,
alerts and backtests. \\fBbinmon \\-\\-demo\\fR uses the embedded market simulator (no network).
\\fBbinmon \\-\\-smoke\\-test\\fR checks the installation and exits 0 or 1.
Terminal commands (sim, stream, record, download, export, import, stored): \\fBbinmon \\-\\-help\\fR.
.SH FILES
.I /opt/binmon
the application bundle.
"""
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def _du_kib(root: Path) -> int:
    """Installed-Size as dpkg computes it: KiB per file (rounded up) plus one per directory."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        total += len(dirnames)
        for f in filenames:
            p = Path(dirpath, f)
            total += 1 if p.is_symlink() else (p.stat().st_size + 1023) // 1024
    return total


def _copy_bundle(src: Path, dst: Path) -> None:
    """Copy the bundle with Debian's modes: dirs 0755, ELF files and scripts 0755, others 0644."""
    shutil.copytree(src, dst, symlinks=True)
    for dirpath, _dirs, files in os.walk(dst):
        os.chmod(dirpath, 0o755)
        for f in files:
            p = Path(dirpath, f)
            if p.is_symlink():
                continue
            with p.open("rb") as fh:
                magic = fh.read(4)
            executable = (magic == b"\x7fELF" and ".so" not in p.name) or magic[:2] == b"#!"
            os.chmod(p, 0o755 if executable else 0o644)


def _overrides(root: Path) -> str:
    """The lintian overrides file: :data:`LINTIAN_OVERRIDES` plus one line per library that
    tools/tidy_bundle.py left unstripped on purpose (auditwheel-patched: strip breaks them)."""
    from tools.tidy_bundle import elf_sections, needs_strip

    staged = [p.relative_to(root).as_posix() for p in (root / "opt").rglob("*")]
    text = ""
    for tag, why in LINTIAN_OVERRIDES:
        # An override whose files are not in this build (e.g. a Debian Python has no pyexpat
        # module file) would be a "mismatched-override" warning: leave it out.
        context = tag.partition("[")[2].rstrip("]")
        if not context or any(fnmatch.fnmatchcase(path, context) for path in staged):
            text += f"# {why}\n{PACKAGE}: {tag}\n"
    kept = []
    for p in sorted((root / "opt").rglob("*")):
        sections = elf_sections(p) if p.is_file() and not p.is_symlink() else None
        if sections is not None and needs_strip(sections) and p.name != PACKAGE:
            kept.append(p.relative_to(root).as_posix())
    if kept:
        text += "# Patched by auditwheel (patchelf); strip corrupts them, so they ship as the wheels do.\n"
        text += "".join(f"{PACKAGE}: unstripped-binary-or-object [{k}]\n" for k in kept)
    return text


def stage(bundle: Path, work: Path, version: str, when: float) -> Path:
    """Build the package tree under ``work``; return it."""
    root = work / f"{PACKAGE}_{version}_amd64"
    if root.exists():
        shutil.rmtree(root)
    _copy_bundle(bundle, root / "opt" / PACKAGE)
    usr = root / "usr"
    (usr / "bin").mkdir(parents=True)
    launcher = usr / "bin" / PACKAGE
    launcher.write_text(f'#!/bin/sh\nexec /opt/{PACKAGE}/{PACKAGE} "$@"\n')
    launcher.chmod(0o755)
    res = ROOT / "resources"
    apps = usr / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copyfile(res / "binmon.desktop", apps / "binmon.desktop")
    for n in ICON_SIZES:
        d = usr / "share" / "icons" / "hicolor" / f"{n}x{n}" / "apps"
        d.mkdir(parents=True)
        shutil.copyfile(res / "icons" / f"binmon-{n}.png", d / "binmon.png")
    scalable = usr / "share" / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True)
    shutil.copyfile(res / "icons" / "binmon.svg", scalable / "binmon.svg")
    doc = usr / "share" / "doc" / PACKAGE
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(copyright_text(bundle))
    (doc / "changelog.Debian.gz").write_bytes(_changelog(version, when))
    man = usr / "share" / "man" / "man1"
    man.mkdir(parents=True)
    (man / "binmon.1.gz").write_bytes(_manpage(version))
    overrides = usr / "share" / "lintian" / "overrides"
    overrides.mkdir(parents=True)
    (overrides / PACKAGE).write_text(_overrides(root))
    for dirpath, _dirs, files in os.walk(usr):
        os.chmod(dirpath, 0o755)
        for f in files:
            p = Path(dirpath, f)
            if p != launcher:
                p.chmod(0o644)
    size = _du_kib(root)
    debian = root / "DEBIAN"
    debian.mkdir()
    (debian / "control").write_text(
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        "Architecture: amd64\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {size}\n"
        f"Depends: {', '.join(DEPENDS)}\n"
        "Section: misc\n"
        "Priority: optional\n"
        "Description: desktop Binance market monitor\n"
        " Live TradingView-style candlestick charts of Binance spot markets, the whole\n"
        " TA-Lib indicator catalogue, price and indicator alerts with desktop\n"
        " notifications, and backtests of strategies on downloaded history.\n"
        " .\n"
        " A self-contained bundle (Python, Qt and QtWebEngine included) in /opt/binmon;\n"
        " it includes an embedded market simulator for use without network access.\n"
    )
    debian.chmod(0o755)
    (debian / "control").chmod(0o644)
    return root


def main(argv: list[str] | None = None) -> int:
    """Stage and build the .deb; print its path. Exit 1 with a one-line reason on failure."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=ROOT / "dist" / PACKAGE)
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "deb")
    ap.add_argument("--revision", default=os.environ.get("DEB_REVISION", "1"))
    # xz -0: small and quick (~20 s on 2 cores); zstd is faster still but lintian 2.116 rejects it.
    ap.add_argument("--compress", default="xz", choices=["xz", "gzip", "zstd", "none"])
    ap.add_argument("--level", type=int, default=0, help="compression level (dpkg-deb -z)")
    args = ap.parse_args(argv)
    if not (args.bundle / PACKAGE).is_file():
        print(f"make_deb: no bundle at {args.bundle} (run pyinstaller binmon.spec first)", file=sys.stderr)
        return 1
    version = f"{_version()}-{args.revision}"
    # Reproducible dates: the last commit's time when there is one, else now.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        git = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=False
        )
        epoch = git.stdout.strip() or str(int(time.time()))
    root = stage(args.bundle, args.work, version, float(epoch))
    args.out.mkdir(parents=True, exist_ok=True)
    deb = args.out / f"{PACKAGE}_{version}_amd64.deb"
    cmd = ["dpkg-deb", "--root-owner-group", f"-Z{args.compress}", f"-z{args.level}"]
    cmd += ["--build", str(root), str(deb)]
    t = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"make_deb: dpkg-deb failed: {done.stderr.strip()}", file=sys.stderr)
        return 1
    print(
        f"{deb} ({deb.stat().st_size / 1e6:.1f} MB, {args.compress}, "
        f"Installed-Size {_du_kib(root) // 1024} MiB, dpkg-deb {time.monotonic() - t:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
