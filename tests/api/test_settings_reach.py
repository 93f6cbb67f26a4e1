"""Every documented setting reaches the function it names (issue 10 §3).

Each setting is given a distinctive value in the app config (or a ``WANGGE_<NAME>``
environment variable for the stand-alone CLI); a spy on the engine function records the
value it was called with. A setting read from ``geo`` defaults instead of the config
fails here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskCliRunner
from pyproj import CRS

import geo.access
import geo.partition.pipeline as pipeline
import geo.partition.planner as planner
from api.cli import main
from api.cli.access import access_command
from api.cli.partition import partition_command
from geo.settings import SETTINGS
from tests.api.test_access_pages import seeded, viewer  # noqa: F401  (fixtures)
from tests.geo.test_partition import city

#: setting -> distinctive value, and where the spy finds it.
PARTITION_VALUES: dict[str, Any] = {
    "partition_cost_inside_block": 1.37, "partition_cost_inside_compound": 7.7,
    "partition_cost_street": 9.0, "partition_cost_major_road": 0.07,
    "partition_cost_compound_wall": 0.31, "partition_street_near_m": 4.2,
    "partition_whole_block_share": 0.45, "partition_balance_budget": 123, "street_snap_m": 0.6,
    "local_crs": "EPSG:32650", "grid_code_county": "320508", "grid_code_object_class": "123456",
    "grid_code_row_band_m": 77.0, "partition_footprint_overlap_share": 0.033,
    "partition_redraw_cost_street": 0.042, "partition_redraw_mesh_m": 7.5,
}


def _observed(calls: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What the engine received, by setting name."""
    cell_options = calls["tessellate"][0]["options"]
    bounds = calls["plan_community"][0]["bounds"]
    spec, inputs = calls["assemble"][0]["spec"], calls["assemble"][0]["inputs"]
    costs, code_options = cell_options.costs, spec.tunables.code_options
    return {
        "partition_cost_inside_block": costs.block, "partition_cost_inside_compound": costs.compound,
        "partition_cost_street": costs.street, "partition_cost_major_road": costs.major,
        "partition_cost_compound_wall": costs.wall, "partition_street_near_m": cell_options.near_m,
        "partition_whole_block_share": round(cell_options.whole_block / spec.bounds.target, 6),
        "partition_balance_budget": bounds.budget, "street_snap_m": cell_options.snap_m,
        "local_crs": CRS.from_user_input(inputs.layers.crs).to_string(),
        "grid_code_county": code_options["county"],
        "grid_code_object_class": code_options["object_class"],
        "grid_code_row_band_m": code_options["band_m"],
        "partition_footprint_overlap_share": cell_options.overlap_share,
        "partition_redraw_cost_street": calls["redraw_boundaries"][0]["street_cost"],
        # read by pipeline._on_mesh from the run's tunables (the mesh is drawn only where the
        # plan has grid boundaries off the streets)
        "partition_redraw_mesh_m": spec.tunables.redraw_mesh_m,
    }


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """Record the arguments (by name) of the pipeline's tessellate, plan_community, assemble and
    redraw_boundaries."""
    calls: dict[str, list[dict[str, Any]]] = {"tessellate": [], "plan_community": [], "assemble": [],
                                              "redraw_boundaries": []}

    def spy(module: Any, name: str) -> None:
        real = getattr(module, name)
        signature = inspect.signature(real)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name].append(signature.bind(*args, **kwargs).arguments)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    spy(pipeline, "tessellate")
    spy(planner, "plan_community")
    spy(pipeline, "assemble")
    spy(pipeline, "redraw_boundaries")
    return calls


def test_partition_settings_reach_the_engine_from_app_config(app: Flask, runner: FlaskCliRunner,
                                                             spies: dict) -> None:
    assert runner.invoke(main, ["demo", "--buildings", "400"]).exit_code == 0
    app.config["WANGGE"].update(PARTITION_VALUES)
    result = runner.invoke(main, ["plans", "partition"])
    assert result.exit_code == 0, result.output
    assert _observed(spies) == PARTITION_VALUES


def test_partition_settings_reach_the_engine_from_the_cli(tmp_path: Path, spies: dict,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    b, c, s = city(nx=2, ny=1)
    b.to_crs(4326).to_file(tmp_path / "b.gpkg")
    s.to_crs(4326).to_file(tmp_path / "s.gpkg")
    for name, value in PARTITION_VALUES.items():
        monkeypatch.setenv(f"WANGGE_{name.upper()}", str(value))
    res = CliRunner().invoke(partition_command, ["--buildings", str(tmp_path / "b.gpkg"),
                                                 "--streets", str(tmp_path / "s.gpkg"),
                                                 "-o", str(tmp_path / "o.gpkg")])
    assert res.exit_code == 0, res.output
    assert _observed(spies) == PARTITION_VALUES


def test_walk_settings_reach_the_access_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.api.test_cli_access import _write_inputs

    paths, _ = _write_inputs(tmp_path, raw=True)
    seen: list[dict[str, Any]] = []
    real = geo.access.walk_graph_from_streets
    monkeypatch.setattr(geo.access, "walk_graph_from_streets",
                        lambda *a, **k: seen.append(k) or real(*a, **k))
    monkeypatch.setenv("WANGGE_WALK_EXCLUDED_ROAD_CLASSES", '"rail","water","lane"')
    monkeypatch.setenv("WANGGE_WALK_SNAP_TOLERANCE_M", "0.37")
    res = CliRunner().invoke(access_command, ["--buildings", str(paths["b"]), "--streets", str(paths["s"]),
                                              "--services", str(paths["p"]), "-o", str(tmp_path / "o.gpkg")])
    assert res.exit_code == 0, res.output
    assert seen[0]["excluded_classes"] == ("rail", "water", "lane")
    assert seen[0]["snap_tolerance_m"] == 0.37


def test_walk_speed_and_excluded_classes_reach_the_access_page(app: Flask, viewer, monkeypatch) -> None:  # noqa: F811
    seen: list[dict[str, Any]] = []
    real = geo.access.walk_graph_from_streets
    monkeypatch.setattr(geo.access, "walk_graph_from_streets",
                        lambda *a, **k: seen.append(k) or real(*a, **k))
    app.config["WANGGE"].update(walk_speed_mps=0.5, walk_excluded_road_classes=("rail", "water", "path"))
    r = viewer.get("/api/access/isochrones.geojson?category=convenience_store&level=500")
    assert r.status_code == 200
    minutes = {f["properties"]["minutes"] for f in r.get_json()["features"]}
    assert minutes == {500 / 0.5 / 60}
    assert seen and seen[0]["excluded_classes"] == ("rail", "water", "path")


#: Spied on by the walk tests above.
WALK_SETTINGS = {"walk_speed_mps", "walk_excluded_road_classes", "walk_snap_tolerance_m"}
#: Reach geo through other routes, each covered by its own tests: grid bounds, seed, workers,
#: exclusive uses and code scheme (jobs.partition_params, api.cli.partition.partition_settings),
#: household estimation and import limits (geo.prepare settings=), map and login settings
#: (their pages). A new setting must be put in one of these sets, deliberately.
TESTED_ELSEWHERE = {
    "grid_min_households", "grid_max_households", "grid_target_households", "micro_grid_min_households",
    "micro_grid_max_households", "micro_grid_target_households", "partition_seed", "partition_workers",
    "partition_shard_buildings", "exclusive_uses", "grid_code_scheme", "floor_height_m", "dwelling_area_m2",
    "default_floors", "household_min_footprint_m2", "residential_max_height_m", "max_upload_mb",
    "repair_invalid_geometry", "max_building_floors", "max_building_height_m", "building_outside_tolerance_m",
    "community_overlap_tolerance_m2", "walk_levels_m", "walk_max_snap_m", "isochrone_width_m", "basemap",
    "tianditu_tk", "osm_tile_url", "map_simplify_m", "map_household_breaks", "planner_labels_min_zoom",
    "planner_buildings_min_zoom", "planner_streets_min_zoom", "login_max_failures", "login_lockout_minutes",
    # database pool and writer queue (tests/api/test_db.py, test_concurrency.py)
    "db_pool_size", "db_max_overflow", "db_pool_timeout_s", "db_busy_timeout_s",
    # background WAL checkpoints (tests/api/test_db.py)
    "db_checkpoint_interval_s", "db_wal_restart_s",
    # suggested new sites (tests/api/test_access_pages.py, test_cli_access.py)
    "maxcover_candidates", "maxcover_time_limit_s", "maxcover_max_sites",
    # sessions, throttling and request limits (tests/api/test_security.py, test_auth.py,
    # tests/geo/test_value_limits.py)
    "session_cookie_secure", "session_idle_minutes", "session_max_hours", "login_delay_s",
    "login_delay_max_s", "login_rate_limit", "public_rate_limit", "ratelimit_storage_uri",
    "trusted_proxy_hops", "max_request_kb", "max_json_depth", "max_households_per_building",
    "max_id_length",
    # active grids and the register (tests/geo/test_activegrids.py, tests/api/test_register_*.py)
    "grid_point_tolerance_m", "grid_nearest_max_m", "register_key_file", "register_max_grids_per_person",
    "register_match_tolerance_m",
    # notice boards and party cells (tests/api/test_boards.py, test_party.py, tests/geo/test_party_linking.py)
    "board_public_base_url", "board_supervision_hotline", "board_convenience_hotlines", "board_header_text",
    "board_logo_file", "board_require_photo", "board_map_dpi", "board_png_dpi", "party_link_min",
    "party_link_max", "party_link_max_walk_m", "board_photo_dir",
    "board_workers", "board_batch_chunk", "partition_register_households",
    # patrol (tests/geo/test_patrol_*.py, tests/api/test_patrol_*.py)
    "patrol_visit_m", "patrol_accuracy_max_m", "patrol_max_speed_kmh", "patrol_outlier_max_fixes",
    "patrol_session_gap_s", "patrol_dwell_radius_m", "patrol_dwell_min_s", "patrol_shift_start",
    "patrol_shift_end", "patrol_timezone", "patrol_earliest_time", "patrol_future_tolerance_s",
    "patrol_visit_due_soon_days", "patrol_visit_history_limit", "patrol_visit_repeat_s", "patrol_alert_outside_min", "patrol_alert_stationary_min",
    "patrol_alert_silent_min", "patrol_retention_days", "patrol_street_match_m", "patrol_coverage_threads",
    # incidents and Open311 (tests/geo/test_incidents_pure.py, tests/api/test_incidents_*.py)
    "incident_timezone", "incident_due_soon_hours", "incident_max_extension_workdays", "incident_max_extensions",
    "incident_escalate_yellow_hours", "incident_escalate_red_hours", "incident_duplicate_radius_m",
    "incident_max_photos", "incident_photo_max_mb", "incident_thumbnail_px", "incident_page_size",
    "open311_page_size", "open311_max_page_size", "open311_default_days", "open311_contact",
    # notifications and the residents' page (tests/api/test_incidents_notify.py, test_incidents_public.py)
    "notify_channels", "notify_external_kinds", "notify_sender", "notify_sms_signature", "notify_max_attempts",
    "notify_retry_s", "notify_batch_size", "public_code_length", "public_report_max_per_day",
    # list pages (tests/api/test_boards.py, tests/api/test_audit_page.py)
    "list_page_size",
    # times shown in the local zone (tests/api/test_localtime.py)
    "display_timezone",
    # the whole-plan page of a city-size plan opens on its communities (tests/api/test_plan_overview.py)
    "planner_overview_min_grids",
}
#: Background jobs (api.jobs): tests/api/test_jobs.py runs apps and a `wangge worker` with them.
JOB_SETTINGS = {"job_workers", "jobs_url", "jobs_in_process", "job_poll_s", "job_progress_every_s",
                "access_wait_s"}  # access_wait_s: tests/api/test_access_jobs.py (0 s: the 202 progress answer)
#: Production server, HTTPS and proxies: tests/api/test_serve_prod.py (gunicorn options, a real
#: `wangge serve --prod`), test_proxy.py (TLS files, HSTS, forwarded headers, url_prefix),
#: test_plan_snapshot.py (stored plan state), test_plans_split_move.py (plan_state_freeze_cells),
#: test_plan_scope.py (plan_state_scopes_cached).
SERVER_SETTINGS = {"server_workers", "server_threads", "server_timeout_s", "server_graceful_timeout_s", "server_keepalive_s",
                   "job_processes", "job_shutdown_timeout_s", "log_format", "tls_cert_file", "tls_key_file",
                   "hsts_max_age_s", "url_prefix", "plan_snapshot_delay_s", "plan_state_freeze_cells",
                   "plan_state_scopes_cached"}
#: Settings of code no page or command reaches yet (none today: patrol_dwell_min_s is read by
#: the worker's patrol map, which proposes visits from dwells).
NOT_YET_REACHABLE: set[str] = set()


def test_every_setting_is_read_from_the_config_by_name() -> None:
    """A setting nothing reads by name from the app's settings is dead: delete it or pass it."""
    root = Path(__file__).resolve().parents[2]
    readers = [*root.joinpath("api").rglob("*.py"), *root.joinpath("webmap").rglob("*.py"),
               root / "geo/prepare.py", root / "geo/partition/options.py"]
    text = "\n".join(p.read_text(encoding="utf-8") for p in readers)
    names = set(re.findall(r"""["']([a-z0-9_]+)["']""", text))
    names |= {f"{pre}_{k}_households" for pre in ("grid", "micro_grid") for k in ("min", "max", "target")}
    unread = sorted(s.name for s in SETTINGS if s.name not in names and s.name not in NOT_YET_REACHABLE)
    assert unread == []
    assert {s.name for s in SETTINGS} == set(PARTITION_VALUES) | WALK_SETTINGS | TESTED_ELSEWHERE | JOB_SETTINGS | SERVER_SETTINGS | NOT_YET_REACHABLE
