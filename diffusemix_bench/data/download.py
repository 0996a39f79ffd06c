"""Fetching a dataset's published files (``dataset.download=true``): each file checked against its
md5 (torchvision's ``download_url``), and archives extracted by this module rather than by
torchvision, whose extraction filters tar members only on some versions of itself and of Python:
here a member that would land outside the dataset's folder (``../``, an absolute path, a link
out of it) is refused on every version, or the extraction is, where Python lacks the filter.

An archive is extracted into a staging folder beside its final place and moved there whole, so an
interrupted extraction never leaves a folder that passes for the dataset; a folder already in the
way (an earlier, incomplete copy) is named, not merged into or deleted."""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlparse

from ..errors import ConfigError
from .base import DataFileError


def fetch_file(url: str, folder: Path, md5: str, filename: str | None = None) -> Path:
    """``url`` downloaded into ``folder`` unless a file with its md5 is there already (torchvision
    checks the md5 after the download and refuses a file that differs); returns its path."""
    from torchvision.datasets import utils as tv_utils

    folder.mkdir(parents=True, exist_ok=True)
    name = filename or Path(urlparse(url).path).name
    tv_utils.download_url(url, str(folder), name, md5)
    return folder / name


def fetch_archive(
    url: str, folder: Path, md5: str, filename: str | None = None, provides: tuple[str, ...] = ()
) -> None:
    """``fetch_file``, then the archive extracted into ``folder`` (extract_safely), unless the
    entries it ``provides`` (``jpg``) are all there already (an earlier attempt extracted it and
    stopped later). The archive is kept: a later attempt (after a folder in the way was removed)
    does not download it again."""
    if provides and all((folder / entry).exists() for entry in provides):
        return
    extract_safely(fetch_file(url, folder, md5, filename), folder)


def extract_safely(archive: Path, folder: Path) -> None:
    """Extract ``archive`` (tar, tar.gz, tgz or zip) into ``folder``: through a staging folder,
    with tar's ``data`` filter (no member outside the folder, no device files, no links out)."""
    staging = folder / f".extracting-{archive.name}"
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted earlier attempt
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    resolved = (staging / member).resolve()
                    if not resolved.is_relative_to(staging.resolve()):
                        raise DataFileError(
                            f"{archive}: member {member!r} would be written outside {folder}; the archive "
                            "is not the published one: delete it and download again"
                        )
                zf.extractall(staging)
        else:
            if not hasattr(tarfile, "data_filter"):
                raise ConfigError(
                    f"{archive}: extracting a tar archive safely needs Python's tarfile data filter "
                    "(Python 3.10.12, 3.11.4, 3.12 or later); this Python lacks it. Update Python, or extract "
                    f"the archive yourself into {folder} and run again without dataset.download"
                )
            try:
                with tarfile.open(archive) as tar:
                    tar.extractall(staging, filter="data")
            except tarfile.FilterError as exc:
                raise DataFileError(
                    f"{archive}: {exc}; the archive is not the published one: delete it and download again"
                ) from None
            except (
                tarfile.ReadError,
                tarfile.CompressionError,
                EOFError,
                gzip.BadGzipFile,
                zlib.error,
            ) as exc:
                raise DataFileError(
                    f"{archive} cannot be read as a tar archive ({exc}): delete it and download again"
                ) from None
            # (Other OSErrors, a full disk or a folder not writable, are the user's to read as they are.)
        entries = sorted(staging.iterdir())
        # A folder already there is named; a plain file beside the dataset's folder (CUB's
        # attributes.txt) is replaced by the archive's.
        in_the_way = [folder / e.name for e in entries if e.is_dir() and (folder / e.name).exists()]
        if in_the_way:
            raise DataFileError(
                f"{', '.join(str(p) for p in in_the_way)} already there, but the dataset's files are not all "
                f"in it (an earlier copy, cut short?): delete it (or move it away) and run again; {archive} is "
                "kept, so nothing is downloaded again"
            )
        for entry in entries:
            if entry.is_dir():
                entry.rename(folder / entry.name)
            else:
                os.replace(entry, folder / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
