"""The demo's fleet scene: a bus validator and two metro gates as processes of their own, live.

The demo's day runs on a simulated clock, but a validator lives on the wall clock (the backend
refuses taps stamped more than 30 s off its own), so this scene serves a second backend of its
own: `bootstrap` on a data directory beside the day's, the real clock, the embedded default,
served by uvicorn in a thread (`tapledger.local_server`). Staff register the three devices and
make enrolment codes; each device enrols with `tapledger validator enrol` and runs as
`tapledger validator run --json` (`tapledger.device_processes`). Riders' phones show codes on
their stdin, and a smart card, emulated, is presented to the bus's reader; the entry gate reaches
the backend through a relay (`tapledger.link_relay`) that the scene cuts for a while, so the
gate decides offline and uploads once the link is back. The scene ends with the fleet's health
table from `GET /v1/validators` and checks that every decided tap is in the backend exactly once.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from rich.console import Console

from tapledger.bootstrap import bootstrap
from tapledger.demo_fleet_scene import FleetScene
from tapledger.device_processes import DeviceFailed, DeviceFleet, unwinding_on_sigterm
from tapledger.http.app import create_app
from tapledger.link_relay import LinkRelay
from tapledger.local_server import ServerDidNotStart, ServerDidNotStop, served_in_thread
from tapledger.settings import Settings


def fleet_scene(console: Console, data_dir: Path) -> bool:
    """Runs the live fleet under `data_dir` (emptied first); returns whether its checks held."""
    console.print(
        "\n[bold]live[/bold] the validator fleet: [bold]this part runs on the real clock[/bold],"
        " against a second backend served on 127.0.0.1, with each device a process of its own"
    )
    started_s = time.monotonic()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    scene = FleetScene.prepare(console, data_dir)
    container = bootstrap(_live_settings(data_dir, scene.key_file))
    try:
        app = create_app(container, own_container=False)
        with (
            unwinding_on_sigterm(),
            served_in_thread(app, name="demo-fleet-backend") as url,
            LinkRelay(_port(url)) as relay,
            DeviceFleet() as fleet,
        ):
            console.print(f"  backend at {url}; store under {data_dir}")
            ok = scene.run(container, url, relay, fleet)
        ok &= scene.stopped_cleanly(fleet.exit_codes)
    except (DeviceFailed, ServerDidNotStart, ServerDidNotStop, httpx.HTTPError) as error:
        console.print(f"  [red]the fleet scene failed[/red]: {error}", soft_wrap=True)
        ok = False
    finally:
        container.close()
    console.print(f"  the live scene took {time.monotonic() - started_s:.1f} s")
    return ok


def _live_settings(data_dir: Path, sam_key_file: Path) -> Settings:
    return Settings(
        environment="local",
        data_dir=data_dir,
        database_url=None,
        redis_url=None,
        admin_token=None,
        follow_in_process=True,
        # The backend checks the card's session proofs with the same keys as the bus's SAM.
        sam_key_file=sam_key_file,
        sam_key_file_sealed=False,
    )


def _port(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise ServerDidNotStart(f"{url} names no port")
    return port
