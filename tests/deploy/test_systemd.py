"""systemd: the unit files and timers as written, `systemd-analyze verify` and `security`, a real boot of the
shipped units under a nested systemd (the hardening, the credentials, the exit codes, the timers), and the admin
helper.

The sandbox tests boot a real systemd as PID 1 of throw-away namespaces (root only)
and run the shipped unit, hardening included, with a stand-in for the app that
exercises the native code the app loads (cffi, curl_cffi, instagrapi, psycopg).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.common import APP, COMMANDS, DEPLOY, SECRET_FILES, SECRET_SETTINGS, missing, run, tool

SYSTEMD_DIR = DEPLOY / "systemd"

# Highest accepted `systemd-analyze security` exposure (0 = locked down, 10 = unsafe).
# The shipped units score 1.1 with systemd 252.
EXPOSURE_MAX = 1.5


# ---------------------------------------------------------------------------- systemd: the files


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as section -> [(key, value)], keeping repeated keys (configparser can't)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current, f"{path.name}: cannot parse {raw!r}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= set {len(found)} times: {found}"
    return found[0]


def seconds(span: str) -> float:
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "hour": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+)\s*([a-z]*)", span):
        total += int(number) * units[unit or "s"]
    return total


SERVICE = SYSTEMD_DIR / "story-liker@.service"
TIMERS = {command: SYSTEMD_DIR / f"story-liker-{command}.timer" for command in COMMANDS}


def test_systemd_service_runs_one_bounded_pass() -> None:
    unit = parse_unit(SERVICE)
    assert one(unit, "Service", "Type") == "oneshot"
    assert one(unit, "Service", "ExecStart") == f"{APP} %i"
    assert 0 < seconds(one(unit, "Service", "TimeoutStartSec")) <= 30 * 60
    assert one(unit, "Service", "SuccessExitStatus").split() == ["75"]
    assert one(unit, "Service", "Restart") == "on-failure"
    assert {"77", "78"} <= set(one(unit, "Service", "RestartPreventExitStatus").split())
    # Retries are bounded too.
    assert int(one(unit, "Unit", "StartLimitBurst")) <= 5
    assert seconds(one(unit, "Unit", "StartLimitIntervalSec")) >= 3600


def test_systemd_service_is_hardened() -> None:
    unit = parse_unit(SERVICE)
    expected = {
        "DynamicUser": "yes",
        "User": "story-liker",
        "StateDirectory": "%p",  # story-liker, or story-liker-ACCOUNT for a second account's copy
        "UMask": "0077",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "LockPersonality": "yes",
        "RestrictRealtime": "yes",
        "RestrictNamespaces": "yes",
        "RestrictSUIDSGID": "yes",
    }
    for key, value in expected.items():
        assert one(unit, "Service", key) == value, key
    assert set(one(unit, "Service", "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert values(unit, "Service", "SystemCallFilter") == ["@system-service", "~@privileged @resources"]
    # Left off on purpose (the sandbox test shows cffi callbacks need W+X memory).
    assert values(unit, "Service", "MemoryDenyWriteExecute") == []
    assert "MemoryDenyWriteExecute" in SERVICE.read_text()


def test_systemd_service_settings_and_no_required_secret() -> None:
    unit = parse_unit(SERVICE)
    env = dict(v.split("=", 1) for v in values(unit, "Service", "Environment"))
    # Every path is named after the prefix %p: story-liker@ -> /etc/story-liker, /var/lib/story-liker.
    assert env["DATABASE_URL"] == "sqlite:///%S/%p/stories.db"  # %S = /var/lib
    assert one(unit, "Service", "EnvironmentFile") == "/etc/%p/story-liker.env"
    assert one(unit, "Service", "WorkingDirectory") == "%S/%p"
    # No secret is required (a session from `login --sessionid-file` or `session import` needs none):
    # each comes with its optional drop-in.
    assert not (SECRET_SETTINGS | SECRET_FILES) & env.keys()
    assert not [k for k, _ in unit["Service"] if k.startswith(("LoadCredential", "SetCredential", "ImportCredential"))]


OPTIONAL = SYSTEMD_DIR / "optional"
# The secret file each optional drop-in passes, by credential name (as the admin helper does too).
CREDENTIALS = {
    "ig_password": "IG_PASSWORD_FILE",
    "ig_totp_seed": "IG_TOTP_SEED_FILE",
    "session_encryption_key": "SESSION_ENCRYPTION_KEY_FILE",
    "notify_urls": "NOTIFY_URLS_FILE",
    "pgpass": "PGPASSFILE",
}


def test_systemd_optional_drop_ins_pass_one_secret_each() -> None:
    assert set(CREDENTIALS.values()) == SECRET_FILES  # every secret the app reads from a file has its drop-in
    assert sorted(p.name for p in OPTIONAL.iterdir()) == sorted(f"{n.replace('_', '-')}.conf" for n in CREDENTIALS)
    for name, variable in CREDENTIALS.items():
        path = OPTIONAL / f"{name.replace('_', '-')}.conf"
        dropin = parse_unit(path)
        assert set(dropin) == {"Service"}, path.name
        assert one(dropin, "Service", "LoadCredential") == f"{name}:/etc/%p/credentials/{name}"
        assert one(dropin, "Service", "Environment") == f"{variable}=%d/{name}"
        assert f"deploy/systemd/optional/{path.name} /etc/systemd/system/story-liker@.service.d/" in path.read_text()
    text = (OPTIONAL / "ig-password.conf").read_text()
    assert re.search(r"^#LoadCredentialEncrypted=ig_password:/etc/%p/credentials/ig_password\.cred$", text, re.M)


@pytest.mark.parametrize("command", ["cleanup", "keepalive"])
def test_systemd_short_commands_get_a_shorter_limit(command: str) -> None:
    dropin = parse_unit(SYSTEMD_DIR / f"story-liker@{command}.service.d" / "timeout.conf")
    assert seconds(one(dropin, "Service", "TimeoutStartSec")) == 5 * 60


@pytest.mark.parametrize("command", COMMANDS)
def test_systemd_timer(command: str) -> None:
    timer = parse_unit(TIMERS[command])
    assert one(timer, "Timer", "Unit") == f"story-liker@{command}.service"
    assert seconds(one(timer, "Timer", "RandomizedDelaySec")) > 0
    assert one(timer, "Timer", "AccuracySec") == "1s"
    assert one(timer, "Timer", "Persistent") == "true"
    assert one(timer, "Install", "WantedBy") == "timers.target"
    calendar = one(timer, "Timer", "OnCalendar")
    analyze = tool("systemd-analyze", "apt-get install -y systemd")
    result = run([analyze, "calendar", "--iterations=2", calendar])
    assert result.returncode == 0, result.stderr
    assert "Next elapse:" in result.stdout


ACCOUNT_TIMERS = {command: SYSTEMD_DIR / f"story-liker-{command}@.timer" for command in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS)
def test_systemd_account_timer_is_the_plain_timer_for_another_account(command: str) -> None:
    """story-liker-COMMAND@ACCOUNT.timer starts story-liker-ACCOUNT@COMMAND.service on the same schedule."""
    plain, account = parse_unit(TIMERS[command]), parse_unit(ACCOUNT_TIMERS[command])
    assert one(account, "Timer", "Unit") == f"story-liker-%i@{command}.service"
    assert [kv for kv in account["Timer"] if kv[0] != "Unit"] == [kv for kv in plain["Timer"] if kv[0] != "Unit"]
    assert account["Install"] == plain["Install"]
    assert "%i" in one(account, "Unit", "Description")


def account_layout(units: Path, account: str, dropins: list[str]) -> None:
    """What "Two accounts on one host" (docs/how-to/run-several-accounts.md) installs: the template as
    story-liker-ACCOUNT@.service, the short limits of cleanup and keepalive, and the optional drop-ins this account
    needs."""
    shutil.copy(units / SERVICE.name, units / f"story-liker-{account}@.service")
    for command in ("cleanup", "keepalive"):
        shutil.copytree(
            units / f"story-liker@{command}.service.d", units / f"story-liker-{account}@{command}.service.d"
        )
    target = units / f"story-liker-{account}@.service.d"
    target.mkdir(exist_ok=True)
    for name in dropins:
        shutil.copy(OPTIONAL / name, target / name)


@pytest.fixture
def verify_dir(tmp_path: Path) -> Path:
    """The units, with the app's path swapped for a binary that exists here (verify checks it)."""
    tool("systemd-analyze", "apt-get install -y systemd")
    target = tmp_path / "units"
    shutil.copytree(SYSTEMD_DIR, target)
    service = target / SERVICE.name
    text = service.read_text()
    assert f"ExecStart={APP} %i\n" in text
    service.write_text(text.replace(f"ExecStart={APP} ", "ExecStart=/usr/bin/true "))
    return target


VERIFY_UNITS = [f"story-liker@{c}.service" for c in COMMANDS] + [f"story-liker-{c}.timer" for c in COMMANDS]


@pytest.mark.parametrize("unit", VERIFY_UNITS)
def test_systemd_analyze_verify_prints_nothing(verify_dir: Path, unit: str) -> None:
    # verify exits 0 even on unknown keys: any output at all is a finding.
    result = run(["systemd-analyze", "verify", "--man=no", str(verify_dir / unit)])
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("dropin", sorted(p.name for p in OPTIONAL.glob("*.conf")))
def test_systemd_analyze_verify_accepts_each_optional_drop_in(verify_dir: Path, dropin: str) -> None:
    (verify_dir / "story-liker@.service.d").mkdir()
    shutil.copy(OPTIONAL / dropin, verify_dir / "story-liker@.service.d" / dropin)
    for command in COMMANDS:
        result = run(["systemd-analyze", "verify", "--man=no", str(verify_dir / f"story-liker@{command}.service")])
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), command


def test_systemd_analyze_verify_accepts_a_second_account(verify_dir: Path) -> None:
    account_layout(verify_dir, "second.account", sorted(p.name for p in OPTIONAL.glob("*.conf")))
    for command in COMMANDS:
        for unit in (f"story-liker-second.account@{command}.service", f"story-liker-{command}@second.account.timer"):
            result = run(["systemd-analyze", "verify", "--man=no", str(verify_dir / unit)])
            assert (result.returncode, result.stdout + result.stderr) == (0, ""), unit


def test_systemd_analyze_verify_catches_a_typo(verify_dir: Path) -> None:
    dropin = verify_dir / "story-liker@cleanup.service.d" / "timeout.conf"
    dropin.write_text(dropin.read_text() + "TimeoutStartSecs=1min\n")
    result = run(["systemd-analyze", "verify", "--man=no", str(verify_dir / "story-liker@cleanup.service")])
    assert "Unknown key 'TimeoutStartSecs'" in result.stdout + result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_systemd_analyze_security_exposure(verify_dir: Path, command: str) -> None:
    unit = verify_dir / f"story-liker@{command}.service"
    result = run(["systemd-analyze", "security", "--offline=yes", f"--threshold={int(EXPOSURE_MAX * 10)}", str(unit)])
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    assert exposure <= EXPOSURE_MAX, result.stdout
    assert result.returncode == 0, result.stdout


# ---------------------------------------------------------------------------- systemd: a real boot

BOOT_SCRIPT = r"""#!/bin/sh
# PID 1 of fresh pid/mount/cgroup/net/uts/ipc namespaces; $1: the payload dir.
# Builds a throw-away root (an overlay of / whose upper layer is a tmpfs), with its
# own /dev, /run and cgroup2 and a read-only /sys and /proc/sys, so nothing the nested
# systemd writes reaches the host; then execs systemd in it.
set -eu
P=$1
mount --make-rprivate /
T=$P/ovl
mkdir -p "$T"
mount -t tmpfs -o mode=0700 tmpfs "$T"
mkdir "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$T/root"
R=$T/root
mount -t proc proc "$R/proc"
mount -o bind,ro /proc/sys "$R/proc/sys"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
mknod -m 0666 "$R/dev/null" c 1 3
mknod -m 0666 "$R/dev/zero" c 1 5
mknod -m 0666 "$R/dev/full" c 1 7
mknod -m 0666 "$R/dev/random" c 1 8
mknod -m 0666 "$R/dev/urandom" c 1 9
mknod -m 0666 "$R/dev/tty" c 5 0
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mkdir -p "$R/run/lock"
rm -rf "$R/etc/systemd/system"
cp -a "$P/etc/." "$R/etc/"
mkdir -p "$R/opt/story-liker/bin"
cp "$P/story-liker" "$R/opt/story-liker/bin/story-liker"
chmod 0755 "$R/opt/story-liker" "$R/opt/story-liker/bin" "$R/opt/story-liker/bin/story-liker"
mkdir -p "$R/usr/local/sbin"
cp "$P/story-liker-admin" "$R/usr/local/sbin/story-liker-admin"
chmod 0755 "$R/usr/local/sbin/story-liker-admin"
cd "$R"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
# Credentials are set up in a child mount namespace and must propagate back.
mount --make-rshared /
cd /
export container=story-liker-test
exec /lib/systemd/systemd --system --unit=story-liker-test.target
"""

# Stands in for /opt/story-liker/bin/story-liker: `exit-N` exits N; any other command
# checks what the app needs from the sandbox and writes a report to the state directory.
PROBE = r"""
import json
import os
import socket
import sys

cmd = sys.argv[1] if len(sys.argv) > 1 else ""
state = os.environ.get("STATE_DIRECTORY", "/nonexistent")
if cmd.startswith("exit-"):
    with open(os.path.join(state, f"starts-{cmd}"), "a") as f:
        f.write("start\n")
    sys.exit(int(cmd[5:]))

report = {"errors": {}}


def check(name, fn):
    try:
        report[name] = fn()
    except BaseException as exc:
        report["errors"][name] = f"{type(exc).__name__}: {exc}"


def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("CapBnd", "CapEff", "CapAmb", "NoNewPrivs", "Seccomp"):
                out[key] = value.strip()
    return out


def database():
    import sqlite3
    import stat
    path = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    con.execute("create table if not exists t (x)")
    con.execute("insert into t values (1)")
    con.commit()
    con.close()
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def cffi_callback():
    # An ABI-mode callback: a libffi closure, called from C (qsort).
    import cffi
    ffi = cffi.FFI()
    ffi.cdef("void qsort(void *, size_t, size_t, int(*)(const void *, const void *));")
    libc = ffi.dlopen(None)

    @ffi.callback("int(const void *, const void *)")
    def compare(a, b):
        x, y = ffi.cast("int *", a)[0], ffi.cast("int *", b)[0]
        return (x > y) - (x < y)

    numbers = ffi.new("int[]", [5, 3, 9, 1])
    libc.qsort(numbers, 4, ffi.sizeof("int"), compare)
    return list(numbers)


def curl_cffi_get():
    import http.server
    import threading

    from curl_cffi import requests

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello from the sandbox"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        response = requests.get(url, impersonate="chrome", timeout=10)
        return [response.status_code, response.text]
    finally:
        server.shutdown()


def instagrapi_client():
    import instagrapi
    return type(instagrapi.Client()).__name__


def psycopg_libpq():
    import psycopg
    return psycopg.pq.version()


def errno_of(fn):
    try:
        fn()
    except OSError as exc:
        return exc.errno
    return 0


check("uid", os.getuid)
check("status", status)
check("env", lambda: {k: os.environ.get(k) for k in (
    "DATABASE_URL", "IG_USERNAME", "TARGET_ACCOUNTS", "IG_PASSWORD", "IG_PASSWORD_FILE", "LOG_FORMAT")})
check("password", lambda: open(os.environ["IG_PASSWORD_FILE"]).read() if "IG_PASSWORD_FILE" in os.environ else None)
check("secrets", lambda: {v: open(os.environ[v]).read() for v in (
    "IG_PASSWORD_FILE", "IG_TOTP_SEED_FILE", "SESSION_ENCRYPTION_KEY_FILE", "NOTIFY_URLS_FILE", "PGPASSFILE")
    if v in os.environ})
check("argv", lambda: sys.argv[1:])
check("imported", lambda: open(sys.argv[3]).read() if sys.argv[1:3] == ["session", "import"] else None)
check("stdin_tty", lambda: os.isatty(0))
check("state_directory", lambda: state)
check("password_in_environ", lambda: any("s3cret" in v for v in os.environ.values()))
check("database_mode", database)
check("cffi_callback", cffi_callback)
check("curl_cffi", curl_cffi_get)
check("instagrapi", instagrapi_client)
check("psycopg", psycopg_libpq)
check("netlink_errno", lambda: errno_of(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)))
check("etc_write_errno", lambda: errno_of(lambda: open("/etc/story-liker-probe", "w")))
check("setpriority_errno", lambda: errno_of(lambda: os.setpriority(os.PRIO_PROCESS, 0, 5)))
check("tmp_write", lambda: open("/tmp/probe", "w").write("x"))
with open(os.path.join(state, f"probe-{cmd}.json"), "w") as f:
    json.dump(report, f)
print(json.dumps(report))  # one line; the admin helper passes it on
sys.exit(1 if report["errors"] else 0)
"""

# Units a container's systemd must not start: they would touch the kernel (modules,
# sysctl, binfmt, udev) or are useless here.
MASKED = (
    "systemd-modules-load.service",
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-hwdb-update.service",
    "systemd-timesyncd.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-remount-fs.service",
    "systemd-pstore.service",
    # would empty /tmp in the nested root, where the test's files (or a CI venv) may live
    "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-clean.timer",
)
PASSWORD = "pw-s3cret-probe"


class NestedSystemd:
    def __init__(self, pid: int) -> None:
        self.pid = pid

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run(["nsenter", "-t", str(self.pid), "-a", *args], timeout=timeout)

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.systemctl("show", "-p", ",".join(props), unit).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def read(self, path: str) -> str | None:
        result = self.run("cat", path)
        return result.stdout if result.returncode == 0 else None


def cgroup2_dir() -> Path | None:
    mount = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] == "cgroup2":
            mount = left.split()[4]
            break
    own = next((ln[3:] for ln in Path("/proc/self/cgroup").read_text().splitlines() if ln.startswith("0::")), None)
    if mount is None or own is None:
        return None
    return Path(mount + own.rstrip("/"))


def sandbox_payload(root: Path) -> Path:
    payload = root / "payload"
    units = payload / "etc" / "systemd" / "system"
    shutil.copytree(SYSTEMD_DIR, units, ignore=shutil.ignore_patterns("optional", "story-liker-admin"))
    (units / "story-liker-test.target").write_text(
        "[Unit]\nDescription=story-liker test boot target\nDefaultDependencies=no\n"
    )
    for name in MASKED:
        (units / name).symlink_to("/dev/null")
    # Only for the test: restart after 1 s instead of 5 min, and make this Python
    # (maybe under /root or /tmp, which the unit hides) visible to the service.
    python_dirs = sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)})
    dropin = ["[Service]", "RestartSec=1s", "BindReadOnlyPaths=" + " ".join(python_dirs)]
    if any(d.startswith(("/root", "/home", "/run/user")) for d in python_dirs):
        dropin.append("ProtectHome=tmpfs")
    # The default account logs in by password: its drop-in, as the README installs it.
    (units / "story-liker@.service.d").mkdir(exist_ok=True)
    shutil.copy(OPTIONAL / "ig-password.conf", units / "story-liker@.service.d" / "ig-password.conf")
    # Two more accounts: alice with no secret at all (a sessionid login or an imported session), bob with all.
    account_layout(units, "alice", [])
    account_layout(units, "bob", sorted(p.name for p in OPTIONAL.glob("*.conf")))
    for prefix in ("story-liker", "story-liker-alice", "story-liker-bob"):
        (units / f"{prefix}@.service.d" / "zz-test.conf").write_text("\n".join(dropin) + "\n")
        # the admin helper's transient unit reads drop-ins too: the same view of this Python
        (units / f"{prefix}-admin.service.d").mkdir()
        (units / f"{prefix}-admin.service.d" / "zz-test.conf").write_text("\n".join(dropin) + "\n")
    for prefix, username, secrets in (
        ("story-liker", "probe_user", {"ig_password": PASSWORD}),
        ("story-liker-alice", "alice", {}),
        ("story-liker-bob", "bob", {name: f"{name} of bob" for name in CREDENTIALS}),
    ):
        config = payload / "etc" / prefix
        (config / "credentials").mkdir(parents=True)
        (config / "story-liker.env").write_text(f"IG_USERNAME={username}\nTARGET_ACCOUNTS=a,b\n")
        for name, secret in secrets.items():
            (config / "credentials" / name).write_text(secret)
            (config / "credentials" / name).chmod(0o600)
    shutil.copy(SYSTEMD_DIR / "story-liker-admin", payload / "story-liker-admin")
    app = payload / "story-liker"
    app.write_text(f"#!{sys.executable}\n{PROBE}")
    app.chmod(0o755)
    return payload


@pytest.fixture(scope="module")
def nested_systemd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NestedSystemd]:
    if os.geteuid() != 0:
        pytest.skip("booting a nested systemd needs root")
    for name in ("unshare", "nsenter", "pivot_root", "mknod"):
        tool(name, "apt-get install -y util-linux coreutils")
    if not Path("/lib/systemd/systemd").exists():
        missing("/lib/systemd/systemd is missing (apt-get install -y systemd)")
    if importlib.util.find_spec("curl_cffi") is None:
        missing("the app's dependencies are not installed (pip install -e .)")
    probe = run(["unshare", "--pid", "--mount", "--cgroup", "--net", "--fork", "true"])
    if probe.returncode != 0:
        pytest.skip(f"cannot create namespaces here: {probe.stderr.strip()}")
    parent = cgroup2_dir()
    if parent is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    cgroup = parent / f"story-liker-test-{uuid.uuid4().hex[:8]}"
    try:
        cgroup.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup under {parent}: {exc}")

    root = tmp_path_factory.mktemp("nested-systemd")
    payload = sandbox_payload(root)
    boot = root / "boot.sh"
    boot.write_text(BOOT_SCRIPT)
    log = (root / "boot.log").open("w")
    process = subprocess.Popen(
        [
            "sh",
            "-c",
            'echo $$ > "$1/cgroup.procs" && exec unshare --pid --mount --cgroup --net --uts --ipc --fork sh "$2" "$3"',
            "sh",
            str(cgroup),
            str(boot),
            str(payload),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    pid = None
    try:
        deadline = time.monotonic() + 30
        init_procs = cgroup / "init.scope" / "cgroup.procs"
        while pid is None and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if init_procs.exists() and init_procs.read_text().strip():
                pid = int(init_procs.read_text().split()[0])
            else:
                time.sleep(0.1)
        if pid is None:
            pytest.fail(f"the nested systemd did not start:\n{(root / 'boot.log').read_text()}")
        nested = NestedSystemd(pid)
        while True:  # until the manager answers on its private socket
            answer = nested.systemctl("is-system-running", "--wait")
            state = answer.stdout.strip()
            if state or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert state in ("running", "degraded"), answer.stderr + nested.systemctl("--failed").stdout
        yield nested
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)  # PID 1 of the namespace: the kernel ends all the rest
        else:
            process.kill()
        process.wait(timeout=30)
        log.close()
        for _ in range(50):
            for directory in sorted(cgroup.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if directory.is_dir():
                    with contextlib.suppress(OSError):
                        directory.rmdir()
            try:
                cgroup.rmdir()
                break
            except OSError:
                time.sleep(0.1)


STATE = "/var/lib/private/story-liker"


def test_sandboxed_run_under_real_systemd(nested_systemd: NestedSystemd) -> None:
    """The shipped unit and hardening, run by systemd, with the native code the app loads."""
    started = nested_systemd.systemctl("start", "story-liker@run-stories.service")
    text = nested_systemd.read(f"{STATE}/probe-run-stories.json")
    assert text is not None, started.stderr + nested_systemd.run("journalctl", "--no-pager", "-n", "30").stdout
    report = json.loads(text)
    assert report["errors"] == {}
    assert started.returncode == 0, started.stderr
    assert report["uid"] != 0
    assert report["status"] == {
        "CapEff": "0" * 16,
        "CapBnd": "0" * 16,
        "CapAmb": "0" * 16,
        "NoNewPrivs": "1",
        "Seccomp": "2",
    }
    assert report["env"] == {
        "DATABASE_URL": "sqlite:////var/lib/story-liker/stories.db",
        "IG_USERNAME": "probe_user",  # from the EnvironmentFile
        "TARGET_ACCOUNTS": "a,b",
        "IG_PASSWORD": None,
        "IG_PASSWORD_FILE": "/run/credentials/story-liker@run-stories.service/ig_password",
        "LOG_FORMAT": "json",
    }
    assert report["password"] == PASSWORD  # the credential arrived, readable by the dynamic user
    assert report["secrets"] == {"IG_PASSWORD_FILE": PASSWORD}  # from optional/ig-password.conf, nothing else
    assert report["password_in_environ"] is False
    assert report["database_mode"] == "0o600"  # UMask=0077 in the state directory
    assert report["cffi_callback"] == [1, 3, 5, 9]
    assert report["curl_cffi"] == [200, "hello from the sandbox"]
    assert report["instagrapi"] == "Client"
    assert report["psycopg"] > 0
    assert report["netlink_errno"] == 97  # EAFNOSUPPORT: RestrictAddressFamilies
    assert report["etc_write_errno"] == 30  # EROFS: ProtectSystem=strict
    assert report["setpriority_errno"] == 1  # EPERM: SystemCallFilter=~@resources
    assert report["tmp_write"] == 1


def test_encrypted_credential_variant_under_real_systemd(nested_systemd: NestedSystemd) -> None:
    """The commented LoadCredentialEncrypted= line of the password drop-in, with a host-key credential."""
    line = re.search(
        r"^#(LoadCredentialEncrypted=ig_password:(\S+))$", (OPTIONAL / "ig-password.conf").read_text(), re.M
    )
    assert line
    encrypted = "pw-s3cret-encrypted"
    made = nested_systemd.run(
        "sh",
        "-c",
        f"systemd-creds setup && printf %s {encrypted} "
        f"| systemd-creds encrypt --with-key=host --name=ig_password - {line.group(2).replace('%p', 'story-liker')}",
    )
    assert made.returncode == 0, made.stderr
    dropin = "/run/systemd/system/story-liker@encrypted.service.d"
    setup = nested_systemd.run(
        "sh",
        "-c",
        f"mkdir -p {dropin} && printf '%s\\n' '[Service]' LoadCredential= '{line.group(1)}' > {dropin}/x.conf",
    )
    assert setup.returncode == 0, setup.stderr
    assert nested_systemd.systemctl("daemon-reload").returncode == 0
    started = nested_systemd.systemctl("start", "story-liker@encrypted.service")
    report = json.loads(nested_systemd.read(f"{STATE}/probe-encrypted.json") or "{}")
    assert started.returncode == 0, (started.stderr, report)
    assert report["password"] == encrypted


def probe_report(nested: NestedSystemd, prefix: str, command: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(nested.read(f"/var/lib/private/{prefix}/probe-{command}.json") or "{}")
    return report


def test_second_account_without_any_secret_under_real_systemd(nested_systemd: NestedSystemd) -> None:
    """A copy of the template as story-liker-alice@.service, with no drop-in: it starts without a password
    (a session from `login --sessionid-file` or `session import`), with its own settings and database."""
    started = nested_systemd.systemctl("start", "story-liker-alice@run-stories.service")
    report = probe_report(nested_systemd, "story-liker-alice", "run-stories")
    assert started.returncode == 0, (started.stderr, report)
    assert report["errors"] == {}
    assert report["env"] == {
        "DATABASE_URL": "sqlite:////var/lib/story-liker-alice/stories.db",
        "IG_USERNAME": "alice",  # from /etc/story-liker-alice/story-liker.env
        "TARGET_ACCOUNTS": "a,b",
        "IG_PASSWORD": None,
        "IG_PASSWORD_FILE": None,
        "LOG_FORMAT": "json",
    }
    assert report["secrets"] == {}
    assert report["state_directory"] == "/var/lib/story-liker-alice"
    assert report["database_mode"] == "0o600"
    assert report["uid"] != 0


def test_second_account_with_every_optional_secret_under_real_systemd(nested_systemd: NestedSystemd) -> None:
    """story-liker-bob@.service with every drop-in of optional/: each secret of /etc/story-liker-bob/credentials/
    arrives as a credential, named by its *_FILE variable; the copied short limit of keepalive holds too."""
    unit = "story-liker-bob@keepalive.service"
    started = nested_systemd.systemctl("start", unit)
    report = probe_report(nested_systemd, "story-liker-bob", "keepalive")
    assert started.returncode == 0, (started.stderr, report)
    assert report["errors"] == {}
    assert report["secrets"] == {variable: f"{name} of bob" for name, variable in CREDENTIALS.items()}
    assert report["env"]["IG_PASSWORD_FILE"] == f"/run/credentials/{unit}/ig_password"
    assert report["password_in_environ"] is False
    assert nested_systemd.show(unit, "TimeoutStartUSec")["TimeoutStartUSec"] == "5min"


def test_account_timers_under_real_systemd(nested_systemd: NestedSystemd) -> None:
    timers = [f"story-liker-{c}@alice.timer" for c in COMMANDS]
    started = nested_systemd.systemctl("start", *timers)
    assert started.returncode == 0, started.stderr
    for command, timer in zip(COMMANDS, timers, strict=True):
        props = nested_systemd.show(timer, "ActiveState", "Unit", "NextElapseUSecRealtime")
        assert props["ActiveState"] == "active"
        assert props["Unit"] == f"story-liker-alice@{command}.service"
        assert props["NextElapseUSecRealtime"] not in ("", "n/a")
        assert nested_systemd.show(props["Unit"], "LoadState")["LoadState"] == "loaded"


# ---------------------------------------------------------------------------- systemd: the admin helper


@pytest.fixture
def system_bus(nested_systemd: NestedSystemd) -> NestedSystemd:
    """`systemd-run --wait` (the helper) talks to the manager over D-Bus: start the nested system's bus."""
    if shutil.which("dbus-daemon") is None:
        missing("dbus-daemon is not installed (apt-get install -y dbus): systemd-run --wait needs the system bus")
    started = nested_systemd.systemctl("start", "dbus.socket")
    assert started.returncode == 0, started.stderr
    return nested_systemd


def admin(nested: NestedSystemd, *args: str, tty: bool = False) -> subprocess.CompletedProcess[str]:
    """The installed /usr/local/sbin/story-liker-admin, with no terminal (pipe mode) or under `script` (a pty)."""
    command = ["story-liker-admin", *args]
    if tty:
        command = ["script", "-qec", " ".join(command), "/dev/null"]
    return run(["nsenter", "-t", str(nested.pid), "-a", *command], stdin=subprocess.DEVNULL, timeout=60)


def reported(stdout: str) -> dict[str, Any]:
    """The probe's report, the one JSON line it prints (through a pty: CRLF, and an echoed NUL, "^@", first)."""
    lines = [line[line.index('{"errors"') :].strip() for line in stdout.splitlines() if '{"errors"' in line]
    assert len(lines) == 1, stdout
    report: dict[str, Any] = json.loads(lines[0])
    return report


def test_admin_helper_runs_a_command_as_the_timer_runs_do(system_bus: NestedSystemd) -> None:
    result = admin(system_bus, "status")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # the timer runs get the password too (its drop-in): no warning
    report = reported(result.stdout)  # --pipe: the command's output comes back
    assert report["errors"] == {}
    assert report["uid"] != 0
    assert report["state_directory"] == "/var/lib/story-liker"  # the timer runs' database
    assert report["env"]["DATABASE_URL"] == "sqlite:////var/lib/story-liker/stories.db"
    assert report["env"]["IG_USERNAME"] == "probe_user"
    assert report["env"]["IG_PASSWORD_FILE"] == "/run/credentials/story-liker-admin.service/ig_password"
    assert report["secrets"] == {"IG_PASSWORD_FILE": PASSWORD}  # what exists in /etc/story-liker/credentials
    assert report["stdin_tty"] is False
    assert admin(system_bus, "exit-13").returncode == 13  # the command's exit code is the helper's
    bad = admin(system_bus, "--account", "No-Such", "status")
    assert bad.returncode == 2 and "not an Instagram username" in bad.stderr


def test_admin_helper_passes_every_secret_and_a_root_only_session_file(system_bus: NestedSystemd) -> None:
    session = '{"uuids": {}, "cookies": {}}'
    made = system_bus.run("sh", "-c", f"umask 077 && printf %s '{session}' > /root/session.json")
    assert made.returncode == 0, made.stderr
    result = admin(system_bus, "--account", "bob", "session", "import", "/root/session.json")
    assert result.returncode == 0, result.stderr
    report = reported(result.stdout)
    assert report["errors"] == {}
    credentials = "/run/credentials/story-liker-bob-admin.service"
    assert report["argv"] == ["session", "import", f"{credentials}/input_1"]
    assert report["imported"] == session  # read by the dynamic user, though the file is root's, 0600
    assert report["secrets"] == {variable: f"{name} of bob" for name, variable in CREDENTIALS.items()}
    assert report["env"]["IG_USERNAME"] == "bob"
    assert report["state_directory"] == "/var/lib/story-liker-bob"
    result = admin(system_bus, "--account", "bob", "login", "--sessionid-file", "/root/session.json")
    assert reported(result.stdout)["argv"] == ["login", "--sessionid-file", f"{credentials}/input_1"]
    missing_file = admin(system_bus, "--account", "bob", "session", "import", "/root/nothing.json")
    assert missing_file.returncode == 2 and "cannot read /root/nothing.json" in missing_file.stderr


def test_admin_helper_gives_a_terminal_to_a_terminal(system_bus: NestedSystemd) -> None:
    tool("script", "apt-get install -y bsdutils")
    result = admin(system_bus, "login", tty=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = reported(result.stdout)
    assert report["stdin_tty"] is True  # --pty: the 2FA prompt reaches the person
    assert report["secrets"] == {"IG_PASSWORD_FILE": PASSWORD}


def test_admin_helper_warns_about_a_secret_the_timer_runs_lack(system_bus: NestedSystemd) -> None:
    key = "/etc/story-liker-alice/credentials/session_encryption_key"
    assert system_bus.run("sh", "-c", f"umask 077 && echo key-of-alice > {key}").returncode == 0
    try:
        result = admin(system_bus, "--account", "alice", "status")
    finally:
        system_bus.run("rm", "-f", key)
    assert result.returncode == 0, result.stderr
    assert reported(result.stdout)["secrets"] == {"SESSION_ENCRYPTION_KEY_FILE": "key-of-alice\n"}
    assert "install deploy/systemd/optional/session-encryption-key.conf" in result.stderr
    assert "/etc/systemd/system/story-liker-alice@.service.d/" in result.stderr


def test_admin_helper_and_the_drop_ins_pass_the_same_secrets() -> None:
    text = (SYSTEMD_DIR / "story-liker-admin").read_text()
    pairs = re.search(r"^for pair in (.+?); do$", text, re.M | re.S)
    assert pairs
    assert dict(p.split(":") for p in pairs.group(1).replace("\\\n", " ").split()) == CREDENTIALS
    assert run(["bash", "-n", str(SYSTEMD_DIR / "story-liker-admin")]).returncode == 0
    assert os.access(SYSTEMD_DIR / "story-liker-admin", os.X_OK)


@pytest.mark.parametrize(
    ("code", "start_ok", "result", "starts"),
    [
        (75, True, "success", 1),  # try later: a success, the next timer run tries again
        (77, False, "exit-code", 1),  # needs a human: never retried
        (78, False, "exit-code", 1),  # configuration error: never retried
        (2, False, "exit-code", 1),  # usage error: never retried
        (1, False, "exit-code", 3),  # a crash: retried, at most StartLimitBurst=3 starts
    ],
)
def test_exit_codes_under_real_systemd(
    nested_systemd: NestedSystemd, code: int, start_ok: bool, result: str, starts: int
) -> None:
    unit = f"story-liker@exit-{code}.service"
    started = nested_systemd.systemctl("start", unit)
    assert (started.returncode == 0) is start_ok, started.stderr
    deadline = time.monotonic() + 20
    while True:
        props = nested_systemd.show(unit, "ActiveState", "Result", "NRestarts")
        count = (nested_systemd.read(f"{STATE}/starts-exit-{code}") or "").count("start")
        if props["ActiveState"] in ("inactive", "failed") and count >= starts:
            break
        assert time.monotonic() < deadline, (props, count)
        time.sleep(0.2)
    # inactive/failed with no job queued is final: a restart waiting out RestartSec= would show as
    # activating/auto-restart, so no further start can come (no need to sleep past RestartSec= to see)
    final = nested_systemd.show(unit, "ActiveState", "SubState", "Job", "Result")
    assert final["ActiveState"] in ("inactive", "failed") and final["SubState"] in ("dead", "failed"), final
    assert final.get("Job", "") in ("", "0"), final
    assert (nested_systemd.read(f"{STATE}/starts-exit-{code}") or "").count("start") == starts
    assert final["Result"] == result


def test_timers_are_scheduled_under_real_systemd(nested_systemd: NestedSystemd) -> None:
    timers = [f"story-liker-{c}.timer" for c in COMMANDS]
    started = nested_systemd.systemctl("start", *timers)
    assert started.returncode == 0, started.stderr
    for command, timer in zip(COMMANDS, timers, strict=True):
        props = nested_systemd.show(timer, "ActiveState", "Unit", "NextElapseUSecRealtime", "AccuracyUSec")
        assert props["ActiveState"] == "active"
        assert props["Unit"] == f"story-liker@{command}.service"
        assert props["NextElapseUSecRealtime"] not in ("", "n/a")
        assert props["AccuracyUSec"] == "1s"
    limits = {
        c: nested_systemd.show(f"story-liker@{c}.service", "TimeoutStartUSec")["TimeoutStartUSec"] for c in COMMANDS
    }
    assert limits == {"run-stories": "15min", "run-posts": "15min", "cleanup": "5min", "keepalive": "5min"}


def test_the_cleanup_schedules_say_what_cleanup_deletes() -> None:
    """cleanup forgets story records past STORY_RETENTION_HOURS; post records are kept (a post stays likeable for
    days and its record is what stops a second like): no schedule may say it forgets posts."""
    files = [
        DEPLOY / "systemd" / "story-liker-cleanup.timer",
        DEPLOY / "systemd" / "story-liker-cleanup@.timer",
        DEPLOY / "kubernetes" / "sqlite" / "40-cronjobs.yaml",
        DEPLOY / "kubernetes" / "postgres" / "40-cronjobs.yaml",
    ]
    for path in files:
        said = [line for line in path.read_text().splitlines() if "forget" in line]
        assert said, path
        for line in said:
            assert "STORY_RETENTION_HOURS" in line and "post" not in line, (path, line)
