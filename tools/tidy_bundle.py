"""Tidy the PyInstaller bundle in place (``make package`` runs it after PyInstaller):

    python3 tools/tidy_bundle.py dist/binmon

- shared objects that still carry a symbol table or debug sections are stripped
  (``strip --strip-unneeded``): wheels and self-built Pythons ship some unstripped; except
  the libraries auditwheel patched (:func:`wheel_repaired`), which strip would break;
- RPATH / RUNPATH entries that point outside the bundle (e.g. the build machine's
  ``/root/.pyenv/.../lib``) are removed with ``patchelf``; ``$ORIGIN``-relative ones stay.

The bundle's own executable (``binmon``) is left alone: PyInstaller appends its archive to it,
which ``strip`` would cut off. Standard library only; needs binutils' ``strip`` and ``patchelf``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path


def elf_sections(path: Path) -> set[str] | None:
    """Section names of a 64-bit little-endian ELF file; None if it is not one."""
    with path.open("rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return None
        shoff = struct.unpack_from("<Q", head, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
        if not shoff or not shnum or shstrndx >= shnum:
            return set()
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        if len(table) < shentsize * shnum:
            return set()
        str_off, str_size = struct.unpack_from("<QQ", table, shstrndx * shentsize + 0x18)
        f.seek(str_off)
        strtab = f.read(str_size)
    names = set()
    for i in range(shnum):
        name_off = struct.unpack_from("<I", table, i * shentsize)[0]
        names.add(strtab[name_off : strtab.find(b"\0", name_off)].decode("ascii", "replace"))
    return names


def needs_strip(sections: set[str]) -> bool:
    """True if an ELF file with these sections still has its symbol table or debug info."""
    return ".symtab" in sections or any(s.startswith(".debug") for s in sections)


def wheel_repaired(path: Path, rpath: str) -> bool:
    """True for libraries auditwheel already rewrote with patchelf (in a ``<pkg>.libs`` folder, or
    linked to one): ``strip`` corrupts those ("ELF load command address/offset not
    page-aligned" when loaded), so they stay as the wheel shipped them."""
    return any(part.endswith(".libs") for part in path.parts) or ".libs" in rpath


def tidy(bundle: Path) -> tuple[int, int]:
    """Strip and fix RPATHs under ``bundle``; return (files stripped, RPATHs changed)."""
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        raise SystemExit("tidy_bundle: patchelf is missing (apt-get install patchelf)")
    main_exe = bundle / bundle.name
    stripped = fixed = 0
    for path in sorted(p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()):
        if path == main_exe:
            continue
        sections = elf_sections(path)
        if sections is None:
            continue
        rpath = subprocess.run(
            [patchelf, "--print-rpath", str(path)], capture_output=True, text=True, check=False
        ).stdout.strip()
        if needs_strip(sections) and not wheel_repaired(path, rpath):
            subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
            stripped += 1
        if rpath:
            keep = [p for p in rpath.split(":") if p.startswith("$ORIGIN")]
            if keep != rpath.split(":"):
                if keep:
                    subprocess.run([patchelf, "--set-rpath", ":".join(keep), str(path)], check=True)
                else:
                    subprocess.run([patchelf, "--remove-rpath", str(path)], check=True)
                fixed += 1
    return stripped, fixed


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/binmon")
    if not (target / target.name).is_file():
        raise SystemExit(f"tidy_bundle: no PyInstaller bundle at {target}")
    n_strip, n_rpath = tidy(target)
    print(f"tidy_bundle: stripped {n_strip} files, removed outside RPATHs from {n_rpath}")
