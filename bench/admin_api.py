"""Admin API latency under load: token verification plus a tenant read, measured with wrk.

Run: .tools/uv/bin/uv run --frozen python bench/admin_api.py [--seconds 10] [--connections 16]
     [--json bench/results/admin_api.json]

Starts its own nats-server and FerretDB, the admin service as a real process (its per-tenant
rate limit lifted, so the load measures the work, not the refusals), bootstraps an operator with
`callmesh admin create-operator`, creates a tenant and a user through the API, then drives
loopback load with wrk (Debian package `wrk`) at:

- ``/healthz``                        no auth: the HTTP stack alone
- ``/v1/auth/me``                     token verification (in-process keys) and the account read
- ``/v1/t/acme/settings``             verification, rate limit, permission, tenant gate, tenant read
- ``/v1/t/acme/users/{id}``           the same with a read through the tenant's walled store

and also times token verification alone in-process (no HTTP). Prints a table; writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from callmesh.core.auth import StaticKeys, TokenIssuer, TokenVerifier, generate_signing_key
from callmesh.core.servers import start_ferretdb, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.core.testing import settings_env, start_service, wait_ready

DEFAULT_JSON = Path(__file__).parent / "results" / "admin_api.json"
PASSWORD = "Bench-Operator-Pass-1"
USER_PASSWORD = "Bench-User-Password-2"


@dataclass(frozen=True)
class Row:
    """One wrk run."""

    name: str
    path: str
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        raise ValueError(f"cannot read wrk latency {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(name: str, url: str, token: str | None, seconds: int, connections: int) -> Row:
    """One wrk run with latency percentiles."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.MULTILINE))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Row(
        name=name,
        path=url.split("127.0.0.1", 1)[1].split("/", 1)[1],
        requests_per_s=rps,
        p50_ms=_ms(percentiles["50"]),
        p90_ms=_ms(percentiles["90"]),
        p99_ms=_ms(percentiles["99"]),
        non_2xx=int(bad.group(1)) if bad else 0,
    )


async def verify_alone(n: int) -> dict[str, float]:
    """Token verification in-process: µs per verify (Ed25519 signature and claim checks)."""
    key = generate_signing_key()
    issuer = TokenIssuer(key, "k1", "callmesh", "callmesh")
    verifier = TokenVerifier(
        StaticKeys({"k1": key.public_key()}), issuer="callmesh", audience="callmesh"
    )
    token = issuer.issue("usr_1", tenant_id="acme", roles=["tenant_admin"])
    for _ in range(200):
        await verifier.verify(token)
    started = time.perf_counter()
    for _ in range(n):
        await verifier.verify(token)
    per = (time.perf_counter() - started) / n
    return {"verifications": n, "us_per_verify": per * 1e6, "per_second": 1 / per}


async def prepare(base: str) -> tuple[str, str, str]:
    """An operator's token, a tenant admin's token and a user id of tenant acme."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        login = await http.post("/v1/auth/login", json={"username": "root", "password": PASSWORD})
        login.raise_for_status()
        operator = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = await http.post(
            "/v1/operator/tenants",
            json={"slug": "acme", "name": "Acme", "language": "en", "time_zone": "UTC"},
            headers=operator,
        )
        created.raise_for_status()
        user = await http.post(
            "/v1/t/acme/users",
            json={"username": "ann", "roles": ["tenant_admin"], "password": USER_PASSWORD},
            headers=operator,
        )
        user.raise_for_status()
        tenant_login = await http.post(
            "/v1/auth/login",
            json={"tenant": "acme", "username": "ann", "password": USER_PASSWORD},
        )
        tenant_login.raise_for_status()
        return login.json()["access_token"], tenant_login.json()["access_token"], user.json()["id"]


def main() -> None:
    """Start the platform pieces, load the admin API, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian package)")

    verification = asyncio.run(verify_alone(5000))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="admin-bench-") as tmp:
        data = Path(tmp)
        nats = start_nats(data / "nats")
        ferret = start_ferretdb(data / "ferretdb")
        settings = PlatformSettings(
            nats_url=nats.url,
            mongodb_uri=ferret.url,
            mongodb_database="bench",
            log_level="WARNING",
            media_dir=data / "media",
            api_rate_per_s=1e9,
            api_burst=1_000_000_000,
        )
        admin = start_service("admin", settings, data)
        try:
            asyncio.run(wait_ready(admin, timeout=60))
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "callmesh"),
                    "admin",
                    "create-operator",
                    "--username",
                    "root",
                    "--password-stdin",
                ],
                input=PASSWORD + "\n",
                text=True,
                check=True,
                capture_output=True,
                env={**os.environ, **settings_env(settings)},
            )
            operator_token, tenant_token, user_id = asyncio.run(prepare(admin.base_url))
            for name, path, token in (
                ("health (no auth)", "/healthz", None),
                ("me: verify + account", "/v1/auth/me", tenant_token),
                ("tenant settings read", "/v1/t/acme/settings", tenant_token),
                ("tenant user read", f"/v1/t/acme/users/{user_id}", tenant_token),
            ):
                row = run_wrk(name, admin.base_url + path, token, args.seconds, args.connections)
                rows.append(row)
                print(
                    f"  {row.name:<24} {row.requests_per_s:8.0f} req/s  p50 {row.p50_ms:7.2f} ms"
                    f"  p99 {row.p99_ms:7.2f} ms",
                    flush=True,
                )
            del operator_token
        finally:
            admin.terminate()
            ferret.stop()
            nats.stop()

    print()
    print(f"{'endpoint':<24} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    print("-" * 70)
    for row in rows:
        print(
            f"{row.name:<24} {row.requests_per_s:8.0f} {row.p50_ms:8.2f} {row.p90_ms:8.2f}"
            f" {row.p99_ms:8.2f} {row.non_2xx:8d}"
        )
    print(
        f"\ntoken verification alone (in-process): {verification['us_per_verify']:.0f} µs"
        f" ({verification['per_second']:.0f}/s)"
    )
    print(f"wrk: 2 threads, {args.connections} connections, {args.seconds} s each, loopback")
    report = {
        "benchmark": "admin_api",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
        "connections": args.connections,
        "rows": [asdict(r) for r in rows],
        "verification": verification,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
