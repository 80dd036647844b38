"""The container files refer to things that exist (no Docker engine runs in CI)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_builds_from_files_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    named_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        if "build" in service:
            context = ROOT / (service["build"] if isinstance(service["build"], str)
                              else service["build"].get("context", "."))
            assert (context / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named_volumes:
                continue
            assert (ROOT / source).exists(), f"{name}: mounts missing {source}"


def test_dockerfile_copies_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.M))
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    packages = re.search(r"packages = \[(.*?)\]", pyproject, re.S).group(1)
    for package in re.findall(r'"(\w+)"', packages):
        assert package in copied, f"Dockerfile does not copy package {package}"
