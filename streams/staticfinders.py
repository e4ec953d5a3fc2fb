"""Serve front-end libraries that the set-up installs as packages, never committed here.

``lightweight-charts`` (TradingView Lightweight Charts, from PyPI, installed with
``--no-deps`` by the Makefile from requirements-assets.txt) ships its standalone build in
``lightweight_charts/js/``. We locate the folder without importing the package (its
``__init__`` imports pandas) and expose it as ``vendor/lightweight-charts/``, so
whitenoise in development and ``collectstatic`` in production both find it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Warning as CheckWarning
from django.core.files.storage import FileSystemStorage

__all__ = ["PackagedAssetsFinder", "package_dir"]

# URL prefix under STATIC_URL -> (package, subfolder, the files we serve from it)
PACKAGED_ASSETS = {"vendor/lightweight-charts": ("lightweight_charts", "js", ("lightweight-charts.js",))}


def package_dir(package: str, subfolder: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / subfolder
    return folder if folder.is_dir() else None


class PackagedAssetsFinder(BaseFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storages: dict[str, FileSystemStorage] = {}
        self.files: dict[str, tuple[str, ...]] = {}
        for prefix, (package, subfolder, files) in PACKAGED_ASSETS.items():
            self.files[prefix] = files
            folder = package_dir(package, subfolder)
            if folder is not None:
                storage = FileSystemStorage(location=str(folder))
                storage.prefix = prefix  # type: ignore[attr-defined]
                self.storages[prefix] = storage

    def check(self, **kwargs: Any) -> list[Any]:
        missing = [p for p in PACKAGED_ASSETS if p not in self.storages]
        return [
            CheckWarning(
                f"front-end package for {prefix} is not installed "
                "(pip install --no-deps -r requirements-assets.txt)",
                id="streams.W001",
            )
            for prefix in missing
        ]

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        matches = []
        for prefix, storage in self.storages.items():
            if path.startswith(prefix + "/"):
                name = path[len(prefix) + 1 :]
                if name in self.files[prefix] and storage.exists(name):
                    match = storage.path(name)
                    if not find_all:
                        return match
                    matches.append(match)
        return matches

    def list(self, ignore_patterns: Any) -> Any:
        for prefix, storage in self.storages.items():
            for name in self.files[prefix]:
                if storage.exists(name):
                    yield name, storage
