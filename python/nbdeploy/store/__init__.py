"""The store: content-addressed blobs (fsspec) plus the SQL catalog of versions and aliases.

``app.store.put("model", "churn", b"...")`` writes the blob, then inserts the version row — no process has
to be running. ``app.store`` is the store of an :class:`~nbdeploy.app.Nbdeploy` (``nbd.store.put`` etc. use the
default app's); build a :class:`Store` yourself for another one.
"""

from __future__ import annotations

import builtins
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from ..app import delegate
from ..exceptions import InvalidInputError, NotFoundError
from ..names import validate_kind, validate_name
from ..schema import Record
from .artifacts import ArtifactStore, BlobInfo, Data, modified_time

if TYPE_CHECKING:  # the catalog (SQLAlchemy) is imported when a Store is built, not with this package
    from .catalog import Catalog
    from .tables import ArtifactVersionRow

__all__ = [
    "TEMPORARY_MIN_AGE",
    "ArtifactStore",
    "BlobInfo",
    "Catalog",
    "GcReport",
    "Store",
    "Version",
    "VersionCache",
]

RESERVED_ALIASES = ("latest",)


@dataclass(frozen=True)
class Version(Record):
    """One immutable stored version of a named artifact: its number, content hash, size and metadata."""

    kind: str
    name: str
    version: int
    sha256: str
    size: int
    created_at: datetime
    owner: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name@version``, the reference that always means exactly this version."""
        return f"{self.name}@{self.version}"


#: a temporary file untouched for this long (seconds) belongs to no write in progress: gc removes it
TEMPORARY_MIN_AGE = 3600.0


@dataclass(frozen=True)
class GcReport:
    """What :meth:`Store.gc` removed: blob digests (then dataset folders and ``tmp/…`` temporaries), bytes freed,
    how many blobs were kept, and how many of the removed were temporary files a crashed write left."""

    removed: tuple[str, ...]
    bytes_freed: int
    kept: int
    temporaries: int = 0


def _owner() -> str | None:
    for var in ("JUPYTERHUB_USER", "USER", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    return None


def parse_ref(ref: str) -> tuple[str, int | str | None]:
    """Split ``name``, ``name@3`` or ``name@alias`` into ``(name, version-or-alias-or-None)``."""
    if not isinstance(ref, str):
        raise InvalidInputError(f"{ref!r} is not a reference: use 'name', 'name@3' or 'name@alias'", "ref")
    name, sep, rest = ref.partition("@")
    if not sep:
        return name, None
    return name, int(rest) if rest.isdigit() else rest


class Store:
    """Artifacts (blobs in ``store_url``) and their catalog (``catalog_url``)."""

    #: how many resolved versions :meth:`get` keeps (valid while the catalog reports no commit since)
    CACHE_ENTRIES = 4096

    def __init__(self, store_url: str, catalog_url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.artifacts = ArtifactStore(store_url, storage_options)
        from .catalog import Catalog

        self.catalog: Catalog = Catalog(catalog_url)
        self._resolved: dict[tuple[str, str, int | str | None, bool], tuple[int, Version]] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> Store:
        """Build the store a :class:`~nbdeploy.config.Settings` names."""
        return cls(settings.store_url, settings.catalog_url)

    @classmethod
    def from_app(cls, app: Any) -> Store:
        """``app.store``: the store of an :class:`~nbdeploy.app.Nbdeploy`'s settings."""
        return cls.from_settings(app.settings)

    def close(self) -> None:
        """Close the catalog's pooled connections."""
        self.catalog.dispose()

    @property
    def url(self) -> str:
        return self.artifacts.url

    # --- conversions ------------------------------------------------------------------------------
    def _version(self, row: ArtifactVersionRow, aliases: dict[str, int] | None = None) -> Version:
        if aliases is None:
            aliases = self.catalog.aliases(row.kind, row.name)
        return Version(
            kind=row.kind,
            name=row.name,
            version=row.version,
            sha256=row.sha256,
            size=row.size,
            created_at=row.created_at,
            owner=row.owner,
            metadata=dict(row.meta or {}),
            aliases=tuple(sorted(a for a, v in aliases.items() if v == row.version)),
        )

    # --- writing ----------------------------------------------------------------------------------
    def put(
        self,
        kind: str,
        name: str,
        data: Data,
        metadata: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> Version:
        """Store ``data`` as the next version of ``kind/name`` and return it.

        The blob is written whole first, the version row after, so ``latest`` only ever moves to a complete
        version. Raises :class:`InvalidNameError` for a bad kind or name.
        """
        validate_kind(kind)
        validate_name(name)
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidInputError("metadata must be a dict of JSON values", "metadata")
        blob = self.artifacts.put_blob(data)
        row = self.catalog.add_version(kind, name, blob.sha256, blob.size, owner or _owner(), dict(metadata or {}))
        return self._version(row, {})

    def set_alias(self, kind: str, name: str, alias: str, version: int) -> Version:
        """Point ``alias`` at ``version`` of ``kind/name`` and return that version."""
        validate_name(alias, "alias")
        if alias in RESERVED_ALIASES:
            raise InvalidInputError(f"'{alias}' always means the newest version and cannot be set", "alias")
        target = self.get(kind, name, int(version))
        self.catalog.set_alias(kind, name, alias, target.version)
        return self.get(kind, name, target.version)

    def delete_alias(self, kind: str, name: str, alias: str) -> None:
        """Remove an alias; raise :class:`NotFoundError` if it does not exist."""
        if not self.catalog.delete_alias(validate_kind(kind), validate_name(name), alias):
            raise NotFoundError(f"{kind} {name!r} has no alias {alias!r}")

    def delete_version(self, kind: str, name: str, version: int) -> None:
        """Delete one version (its number is never reused; aliases on it are removed; gc frees the blob)."""
        self.get(kind, name, version)
        self.catalog.mark_deleted(kind, name, int(version))

    def delete(self, kind: str, name: str) -> int:
        """Delete every version of ``kind/name``; return how many were deleted."""
        validate_kind(kind)
        validate_name(name)
        count = self.catalog.mark_deleted(kind, name)
        if not count:
            raise NotFoundError(f"no {kind} named {name!r}")
        return count

    # --- reading ----------------------------------------------------------------------------------
    def get(self, kind: str, name: str, version: int | str | None = None, *, with_aliases: bool = True) -> Version:
        """Return a version: the newest when ``version`` is ``None`` or ``"latest"``, else by number or alias.

        ``name`` may also carry the reference (``"churn@production"``). Raises :class:`NotFoundError`.
        ``with_aliases=False`` skips looking up the version's aliases (one query less).
        """
        validate_kind(kind)
        if version is None and isinstance(name, str) and "@" in name:
            name, version = parse_ref(name)
        validate_name(name)
        # A catalog round trip costs far more than reading a small blob: an answer is reused while the catalog
        # reports no commit since it was looked up (SQLite's data_version; PostgreSQL always queries).
        token = self.catalog.change_token()
        key = (kind, name, version, with_aliases)
        if token is not None:
            hit = self._resolved.get(key)
            if hit is not None and hit[0] == token:
                return hit[1]
        found = self._lookup(kind, name, version, with_aliases)
        if token is not None:
            if len(self._resolved) >= self.CACHE_ENTRIES:
                self._resolved.clear()
            self._resolved[key] = (token, found)
        return found

    def _lookup(self, kind: str, name: str, version: int | str | None, with_aliases: bool) -> Version:
        aliases: dict[str, int] | None = None if with_aliases else {}
        if version is None or version == "latest":
            row = self.catalog.latest_version(kind, name)
            if row is None:
                raise NotFoundError(f"no {kind} named {name!r}: `nbdeploy store ls {kind}` lists them")
            return self._version(row, aliases)
        if isinstance(version, str) and not version.isdigit():
            number = self.catalog.get_alias(kind, name, validate_name(version, "alias"))
            if number is None:
                raise NotFoundError(f"{kind} {name!r} has no alias {version!r}")
        else:
            try:
                number = int(version)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"version must be a number or an alias, got {version!r}", "version") from exc
        row = self.catalog.get_version(kind, name, number)
        if row is None:
            raise NotFoundError(f"{kind} {name!r} has no version {number}")
        return self._version(row, aliases)

    def resolve(self, kind: str, ref: str) -> Version:
        """Resolve ``name``, ``name@3``, ``name@latest`` or ``name@alias`` to a version."""
        name, version = parse_ref(ref)
        return self.get(kind, name, version)

    def latest(self, kind: str, name: str) -> Version:
        """Return the newest version of ``kind/name``."""
        return self.get(kind, name)

    def versions(self, kind: str, name: str) -> builtins.list[Version]:
        """Return every live version of ``kind/name``, oldest first (empty if there are none)."""
        validate_kind(kind)
        validate_name(name)
        aliases = self.catalog.aliases(kind, name)
        return [self._version(r, aliases) for r in self.catalog.list_versions(kind, name)]

    def list(self, kind: str | None = None) -> builtins.list[Version]:
        """Return the newest version of every name (of ``kind``, or of every kind)."""
        if kind is not None:
            validate_kind(kind)
        return [self._version(r) for r in self.catalog.list_latest(kind)]

    def read(self, kind: str, name: str, version: int | str | None = None) -> bytes:
        """Return the bytes of a version (see :meth:`get` for ``version``)."""
        return self.artifacts.read_blob(self.get(kind, name, version).sha256)

    def open(self, kind: str, name: str, version: int | str | None = None) -> IO[bytes]:
        """Open a version's bytes for streaming reads."""
        return self.artifacts.open_blob(self.get(kind, name, version).sha256)

    # --- maintenance ------------------------------------------------------------------------------
    def gc(self, grace_seconds: float = 600.0) -> GcReport:
        """Remove blobs that no live version references and that are older than ``grace_seconds``, dataset
        folders no version names, and the named temporary files under ``tmp/`` a write killed midway left
        (untouched for ``grace_seconds`` and at least :data:`TEMPORARY_MIN_AGE`).

        The grace period protects a blob whose version row a concurrent ``put`` has not inserted yet.
        """
        live = self.catalog.live_hashes()
        fs = self.artifacts.fs
        removed: builtins.list[str] = []
        freed = kept = 0
        now = time.time()
        for sha in self.artifacts.iter_blobs():
            if sha in live:
                kept += 1
                continue
            path = self.artifacts.blob_path(sha)
            try:
                info = fs.info(path)
                age = now - modified_time(fs, path, info)
            except FileNotFoundError:
                continue
            if age < grace_seconds:
                kept += 1
                continue
            self.artifacts.delete_blob(sha)
            removed.append(sha)
            freed += int(info.get("size") or 0)
        folders = self._gc_dataset_folders(grace_seconds, now)
        temporaries = self.artifacts.remove_stale_temporaries(max(grace_seconds, TEMPORARY_MIN_AGE), now)
        return GcReport(
            tuple(removed) + tuple(f for f, _ in folders) + tuple(t for t, _ in temporaries),
            freed + sum(n for _, n in folders) + sum(n for _, n in temporaries),
            kept,
            len(temporaries),
        )

    def _gc_dataset_folders(self, grace_seconds: float, now: float) -> builtins.list[tuple[str, int]]:
        """Remove dataset version folders (``datasets/<name>/<token>``) that no live version names and whose
        newest file is older than ``grace_seconds`` (a put whose row is not inserted yet keeps its folder)."""
        fs, root = self.artifacts.fs, self.artifacts.root
        base = f"{root}/datasets"
        try:
            names = fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        live = {(v.meta or {}).get("prefix") for v in self.catalog.list_versions_of_kind("dataset")}
        out = []
        for name_dir in names:
            for folder in fs.ls(name_dir, detail=False):
                prefix = folder[len(root) + 1 :] if folder.startswith(root + "/") else folder
                if prefix in live:
                    continue
                files = fs.find(folder, detail=True)
                newest = max((modified_time(fs, path, info) for path, info in files.items()), default=0.0)
                if files and now - newest < grace_seconds:
                    continue
                size = sum(int(info.get("size") or 0) for info in files.values())
                fs.rm(folder, recursive=True)
                out.append((prefix, size))
            try:
                if not fs.ls(name_dir, detail=False):
                    fs.rmdir(name_dir)
            except (FileNotFoundError, OSError):
                pass
        return out


class VersionCache:
    """What serving resolves on every request: ``(kind, name, ref)`` → :class:`Version`.

    An answer is reused only while the catalog reports no change since it was looked up (SQLite's
    ``PRAGMA data_version``; on PostgreSQL the count of ``NOTIFY`` its triggers sent, see :mod:`.notify`), so a
    new version, an alias move or a delete is seen by the next request of this process, and by other servers as
    soon as the notification reaches them; while no such token is available every call queries. The versions
    it returns carry no aliases.
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str, int | str | None], tuple[int, Version]] = {}

    def get(self, store: Store, kind: str, name: str, ref: int | str | None = None) -> Version:
        """``store.get(kind, name, ref)``, from the cache when the catalog has not changed since."""
        catalog = store.catalog
        token = catalog.change_token()
        key = (catalog.url, kind, name, ref)
        hit = self._entries.get(key)
        if hit is not None and token is not None and hit[0] == token:
            return hit[1]
        found = store.get(kind, name, ref, with_aliases=False)
        if token is not None:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (token, found)
        return found


_delegated, __dir__ = delegate(__name__, "store")


def __getattr__(name: str) -> Any:
    if name == "Catalog":  # imported on first use: it brings SQLAlchemy
        from .catalog import Catalog

        return Catalog
    return _delegated(name)
