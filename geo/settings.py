"""The one table of tunables: every local-practice number is a setting with a default.

``api`` loads these into Flask config (``WANGGE_<NAME>`` environment variables or the
instance config override them); ``geo`` functions take the same names as keyword
arguments whose defaults come from :data:`DEFAULTS`. The README lists them all (a test
checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Setting", "SETTINGS", "DEFAULTS", "setting"]


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    # Grid size (DOMAIN.md §2; practice, e.g. Zhoushan 2023)
    Setting("grid_min_households", 300, "Fewest households in a comprehensive grid."),
    Setting("grid_max_households", 500, "Most households in a comprehensive grid."),
    Setting("grid_target_households", 400, "Households the partition aims for per grid."),
    Setting("micro_grid_min_households", 50, "Fewest households in a micro-grid."),
    Setting("micro_grid_max_households", 80, "Most households in a micro-grid."),
    Setting("micro_grid_target_households", 65, "Households the partition aims for per micro-grid."),
    Setting("partition_seed", 42, "Random seed of the grid partition (same seed, same plan)."),
    Setting("partition_cost_inside_block", 1.0, "Cut cost per metre of a grid boundary inside a street block."),
    Setting("partition_cost_inside_compound", 8.0, "Cut cost per metre of a grid boundary inside a residential compound."),
    Setting("partition_cost_street", 0.25, "Cut cost per metre of a grid boundary along a street."),
    Setting("partition_cost_major_road", 0.1, "Cut cost per metre of a grid boundary along a major road."),
    Setting("partition_cost_compound_wall", 0.3, "Cut cost per metre of a grid boundary along a compound wall."),
    Setting("partition_street_near_m", 5.0, "Grid boundary within this distance of a street line counts as on the street (m)."),
    Setting("partition_whole_block_share", 0.5, "Street blocks with at most this share of the target households stay whole cells."),
    Setting("partition_footprint_overlap_share", 0.01, "Building footprints overlapping by more than this share of the smaller one's area are kept in one grid as one unit; a smaller overlap goes to the larger building."),
    Setting("partition_balance_budget", 200, "Unit moves the bounds repair may try per grid of a piece of a community (ejection-chain search; at least 8 grids' worth)."),
    Setting("partition_redraw_cost_street", 0.1, "Cut cost per metre of a redrawn grid boundary along a street, against 1 across a block: where grid boundaries through open land are redrawn after planning (lower follows the streets more)."),
    Setting("partition_redraw_mesh_m", 10.0, "Width of the hexagons the land between buildings is cut into where grid boundaries are redrawn after planning, so a boundary can cross open land on a near-straight line (smaller follows the streets more and costs more CPU; 0 = no mesh: boundaries follow the buildings' Voronoi ridges)."),
    Setting("partition_workers", 0, "Worker processes for partitioning large districts (0 = every core); the plan does not depend on it."),
    Setting("partition_shard_buildings", 25000, "Districts with more buildings are partitioned in shards of whole communities of about this many buildings (0 = never)."),
    Setting("exclusive_uses", ("school", "hospital", "industrial", "office", "market"), "Building uses that become exclusive grids (专属网格)."),
    Setting("street_snap_m", 0.5, "Dangling street ends within this distance of another street are joined (tile-clipped data, m)."),
    Setting("grid_code_county", "000000", "County code (GB/T 2260) for grid codes when communities carry no admin_code."),
    Setting("grid_code_object_class", "000000", "6-digit object-class prefix of CJ/T 349 grid codes."),
    Setting("grid_code_row_band_m", 0.0, "Row height for west→east, north→south grid numbering (m); 0 = √(median grid area)."),
    Setting("grid_code_scheme", "db11", "Grid code scheme: 'db11' (15 digits) or 'cjt349' (20 digits)."),
    # Household estimation (DOMAIN.md §2, datasets README)
    Setting("floor_height_m", 3.0, "Storey height used to derive floors from building height (m)."),
    Setting("dwelling_area_m2", 90.0, "Average gross floor area per dwelling when estimating households (m²)."),
    Setting("default_floors", 1, "Floors assumed for a residential building with neither floors nor height."),
    Setting("household_min_footprint_m2", 30.0, "A residential footprint larger than this gets at least one estimated household (m²)."),
    Setting("residential_max_height_m", 100.0, "Buildings of unknown use taller than this count as non-residential when estimating households (m; 0 = off)."),
    # Import limits
    Setting("max_upload_mb", 512, "Largest file accepted by import (MB)."),
    Setting("repair_invalid_geometry", True, "Repair invalid polygons with make_valid and report; False rejects them."),
    Setting("max_building_floors", 200, "Floors above this are rejected as absurd on import."),
    Setting("max_building_height_m", 1000.0, "Building heights above this are rejected as absurd on import (m)."),
    Setting("building_outside_tolerance_m", 1.0, "A building counts as inside a community if it is within this distance (m)."),
    Setting("community_overlap_tolerance_m2", 1.0, "Overlap area between communities above which import fails (m²)."),
    Setting("local_crs", "", "Metric CRS for computation (e.g. 'EPSG:32651'); empty picks the UTM zone of the data."),
    # 15-minute service circle (DOMAIN.md §5, GB 50180-2018)
    Setting("walk_levels_m", (300, 500, 1000), "Walking distances of the 5/10/15-minute circles (m)."),
    Setting("walk_speed_mps", 1.0, "Walking speed used to express distances as minutes (m/s)."),
    Setting("walk_snap_tolerance_m", 0.5, "Street vertices closer than this are joined, and a dead end this close to another street is connected to it (tile-clipped data has cm gaps) (m)."),
    Setting("walk_max_snap_m", 200.0, "A building or service point farther than this from every walkable street is unreachable (m)."),
    Setting("walk_excluded_road_classes", ("rail", "water"), "Street road_class values nobody walks on (left out of the walk network)."),
    Setting("isochrone_width_m", 35.0, "Half-width of the band drawn around reached streets in a service-circle polygon (m)."),
    Setting("maxcover_candidates", 2000, "Most network nodes sampled as candidate sites for new service points."),
    Setting("maxcover_time_limit_s", 30.0, "Time limit of the exact (MIP) new-site solver before the greedy result is used (s)."),
    Setting("maxcover_max_sites", 20, "Most new sites one suggestion may ask for (the /access page and `wangge access --suggest`)."),
    # Base maps (DOMAIN.md §8)
    Setting("basemap", "none", "Default base map: 'none' (offline), 'osm', 'tianditu' or 'gaode'."),
    Setting("tianditu_tk", "", "Tianditu API key (tk); the Tianditu base map needs it."),
    Setting("osm_tile_url", "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "Tile URL template of the OSM base map (may point to a local tile server)."),
    # Web map display
    Setting("map_simplify_m", 0.5, "Tolerance used to simplify geometry for display on the web map (m)."),
    Setting("map_household_breaks", (20, 50, 100, 200), "Class breaks of the building colour scale by households on the map."),
    Setting("planner_labels_min_zoom", 15, "Zoom from which the planner map labels grids with code and households."),
    Setting("planner_buildings_min_zoom", 16, "Zoom from which the planner map loads buildings of the view (per bounding box)."),
    Setting("planner_streets_min_zoom", 15, "Zoom from which the planner map loads all streets and compounds of the view (major roads always)."),
    Setting("planner_overview_min_grids", 5000, "Plans of more grids open without a community chosen on an overview of their communities (grids, households, broken rules; click one to open it) instead of loading every grid of the city (0 = always the whole plan)."),
    # Database connections and transactions (issue 16 §1)
    Setting("db_pool_size", 10, "Database connections kept open per process (one per request being served)."),
    Setting("db_max_overflow", 20, "Extra database connections opened under load beyond db_pool_size."),
    Setting("db_pool_timeout_s", 60.0, "Seconds a request waits for a free database connection before failing with 503 (s)."),
    Setting("db_busy_timeout_s", 30.0, "Seconds a SQLite write waits for another writer's lock before failing with 503 (s)."),
    Setting("db_checkpoint_interval_s", 1.0, "Seconds between a SQLite database's WAL checkpoints by a background thread, which pays their fsync instead of the request that commits; 0: SQLite's own automatic checkpoints (s)."),
    Setting("db_wal_restart_s", 10.0, "Seconds between the background checkpoints that also restart the SQLite WAL file (they block writers for a moment; bounds the WAL's size) (s)."),
    # Login security (等保: password lock-out)
    Setting("login_max_failures", 5, "Failed logins in a row of one account from one client after which that client is locked out of the account."),
    Setting("login_lockout_minutes", 15, "Minutes a client stays locked out of an account (`wangge users unlock` lifts it)."),
    # Web security (issue 16: sessions, throttling, request limits)
    Setting("session_cookie_secure", False, "Mark the session cookie Secure on every response (it is always Secure on requests that arrive over HTTPS)."),
    Setting("session_idle_minutes", 30, "Minutes without a request after which a session ends."),
    Setting("session_max_hours", 12, "Hours after login after which a session ends, however active."),
    Setting("login_delay_s", 1.0, "Wait before another login attempt after a failed one, doubled per further failure of the same account from the same client (s)."),
    Setting("login_delay_max_s", 60.0, "Longest wait between login attempts of one account from one client (s)."),
    Setting("login_rate_limit", "20 per minute;200 per hour", "Login attempts allowed per client address (Flask-Limiter syntax)."),
    Setting("public_rate_limit", "120 per minute", "Requests allowed per client address on pages that need no login (Flask-Limiter syntax)."),
    Setting("ratelimit_storage_uri", "memory://", "Where rate-limit counters live: 'memory://' (one process) or e.g. 'redis://host:6379' (shared)."),
    Setting("trusted_proxy_hops", 0, "Reverse proxies in front of the app whose X-Forwarded-For/-Proto headers are trusted (0 = none; 1 behind one nginx)."),
    Setting("max_request_kb", 1024, "Largest request body accepted outside upload routes (KB)."),
    Setting("max_json_depth", 32, "Deepest nesting of arrays/objects accepted in a JSON request body."),
    Setting("max_households_per_building", 5000, "Households above this in one building are rejected as absurd on import."),
    Setting("max_id_length", 200, "Longest feature id accepted on import (characters)."),
    # Background jobs (api.jobs, issue 11)
    Setting("job_workers", 2, "Background jobs (partitions, later batches) that run at once."),
    Setting("jobs_url", "", "Job queue: empty = SQLite file instance/jobs-queue.sqlite3; redis://host:6379/0 for a Redis queue shared by several machines."),
    Setting("jobs_in_process", True, "Run jobs in threads of the web/CLI process; false when `wangge worker` runs them in a separate process."),
    Setting("job_poll_s", 1.0, "Longest time an idle job worker waits before it looks at the queue again (s)."),
    Setting("job_progress_every_s", 0.5, "A running job writes its progress (and sees a cancel) at most this often (s)."),
    Setting("access_wait_s", 15.0, "How long a service-circle page waits for its analysis job before it shows the job's progress instead (s)."),
    # Active grids and the grid register (issues 11, 12)
    Setting("grid_point_tolerance_m", 5.0, "A point this close to a grid (but outside every grid) belongs to it (m)."),
    Setting("grid_nearest_max_m", 500.0, "Farthest a point may lie from every grid and still get the nearest grid as fallback (m; 0 = no limit)."),
    Setting("register_key_file", "", "File holding the register's encryption key (base64, 32 bytes); empty = instance/register.key, generated on first use."),
    Setting("register_max_grids_per_person", 3, "Grids one staff member may serve before the register check reports it."),
    Setting("register_match_tolerance_m", 30.0, "An imported row with lon/lat matches the nearest building within this distance (m)."),
    Setting("partition_register_households", False, "Partition with the register's household count per building wherever the register has households there (flagged households_register); the request option register_households overrides it."),
    # Grid notice boards and party cells (issue 15)
    Setting("board_public_base_url", "http://127.0.0.1:5000", "Base URL of the public grid pages the board QR codes point to (…/g/<grid code>)."),
    Setting("board_supervision_hotline", "12345", "Supervision hotline (监督电话) printed on every grid notice board."),
    Setting("board_convenience_hotlines", "110 报警, 119 火警, 120 急救, 12345 政务服务便民热线", "Convenience hotlines on notice boards: 'number label' items, comma-separated."),
    Setting("board_header_text", "网格化服务管理公示牌", "Header line printed at the top of every grid notice board."),
    Setting("board_logo_file", "", "PNG or JPEG logo printed in the header of notice boards (empty: none)."),
    Setting("board_require_photo", False, "A staff member without a photo makes a board incomplete (False: a silhouette is printed)."),
    Setting("board_map_dpi", 200, "Resolution of the boundary map image on notice boards (dots per inch)."),
    Setting("board_png_dpi", 100, "Resolution of notice board PNG files (dots per inch)."),
    Setting("party_link_min", 5, "Fewest households a party-member centre household (党员中心户) looks after."),
    Setting("party_link_max", 15, "Most households a party-member centre household looks after."),
    Setting("party_link_max_walk_m", 1500.0, "Longest walk from a centre household to a household it looks after (m)."),
    Setting("board_photo_dir", "", "Folder of staff photos named in the register's 照片 column; empty = instance/photos."),
    Setting("board_workers", 0, "Worker processes printing a batch of notice boards (0 = every core; 1 = in the calling process)."),
    Setting("board_batch_chunk", 10, "Boards one worker process prints per task of a batch (a batch in worker processes reports progress after each task)."),
    # Patrol (issue 14; DOMAIN.md §3, practice)
    Setting("patrol_visit_m", 20.0, "A building counts as visited when a cleaned patrol track passes within this distance of its footprint (m)."),
    Setting("patrol_accuracy_max_m", 50.0, "GPS fixes reporting a worse accuracy (larger radius) than this are dropped (m)."),
    Setting("patrol_max_speed_kmh", 60.0, "Implied speeds above this between fixes are jumps; short runs of fixes between jumps are dropped as outliers (km/h)."),
    Setting("patrol_outlier_max_fixes", 3, "Most consecutive fixes between two jumps that are dropped as one outlier run; longer runs are kept (a real relocation)."),
    Setting("patrol_session_gap_s", 300, "A gap longer than this between fixes, or a jump, starts a new patrol session (s)."),
    Setting("patrol_dwell_radius_m", 30.0, "A stop (dwell) keeps every fix of a window within a box of this diagonal (m)."),
    Setting("patrol_dwell_min_s", 300, "Shortest stay that counts as a stop (dwell) (s)."),
    Setting("patrol_street_match_m", 10.0, "A stretch of street counts as walked when it lies within this distance of a cleaned patrol track (m); keep it below the gap between parallel streets."),
    Setting("patrol_shift_start", "07:00", "Start of the patrol shift, local time (HH:MM); fixes outside the shift are dropped."),
    Setting("patrol_shift_end", "21:00", "End of the patrol shift, local time (HH:MM)."),
    Setting("patrol_timezone", "Asia/Shanghai", "Time zone of shift hours and of patrol days, weeks and months."),
    Setting("patrol_earliest_time", "2000-01-01", "Fixes stamped before this date are dropped (unset clocks report 1970, GPS week roll-overs 1999)."),
    Setting("patrol_visit_due_soon_days", 3, "A key person whose next visit falls within this many days is listed as due (days)."),
    Setting("patrol_visit_history_limit", 200, "Most visits shown in a grid's visit history (走访记录), newest first."),
    Setting("patrol_visit_repeat_s", 120, "A second record of a visit by the same worker to the same key person with the same note, check-in point and photo within this time is the same visit (a double tap, a phone resending): the first is answered, nothing added (s; 0 = every record is a new visit)."),
    Setting("patrol_alert_outside_min", 15, "Geofence: a worker on shift outside all their grids longer than this raises an alert (min)."),
    Setting("patrol_alert_stationary_min", 30, "Geofence: a worker on shift staying put (within patrol_dwell_radius_m) longer than this raises an alert (min)."),
    Setting("patrol_alert_silent_min", 20, "Geofence: a worker on shift sending no fix for longer than this raises an alert (min)."),
    Setting("patrol_retention_days", 365, "Raw patrol fixes older than this are deleted by `wangge patrol purge` (days; 0 = keep forever)."),
    Setting("patrol_future_tolerance_s", 300, "Fixes stamped more than this after the time of intake are dropped (s)."),
    Setting("patrol_coverage_threads", 0, "Threads computing patrol coverage (the compiled pass over track segments; 0 = every core, 1 = the calling thread); the visits do not depend on it."),
    # Incidents (issue 13, DOMAIN.md §6)
    Setting("incident_timezone", "Asia/Shanghai", "Time zone in which working days and incident dates are judged."),
    Setting("incident_due_soon_hours", 24.0, "An open case due within this many hours is flagged as due soon (h)."),
    Setting("incident_max_extension_workdays", 15, "Most working days one approved extension (延期) may add."),
    Setting("incident_max_extensions", 2, "Most approved extensions per case."),
    Setting("incident_escalate_yellow_hours", 24.0, "Overdue by this long, the escalation job raises a yellow card (黄牌督办) (h)."),
    Setting("incident_escalate_red_hours", 72.0, "Overdue by this long, the escalation job raises a red card (红牌督办) (h)."),
    Setting("incident_duplicate_radius_m", 50.0, "Open cases of the same category within this distance are suggested as duplicates at intake (m)."),
    Setting("incident_max_photos", 6, "Most photos one report or one workflow step may carry."),
    Setting("incident_photo_max_mb", 10.0, "Largest photo accepted (MB)."),
    Setting("incident_thumbnail_px", 320, "Longest side of photo thumbnails (px)."),
    Setting("incident_page_size", 50, "Cases per page of the case list."),
    Setting("open311_page_size", 50, "Service requests per page of Open311 GET requests when page_size is not given."),
    Setting("open311_max_page_size", 500, "Largest page_size an Open311 client may ask for."),
    Setting("open311_default_days", 90, "Open311 GET requests without start_date/end_date return this many most recent days."),
    Setting("open311_contact", "", "Contact line of the Open311 discovery document (e.g. the command centre's hotline)."),
    # Production server, HTTPS and proxies (issue 17 §2-§4; docs/DEPLOY.md)
    Setting("server_workers", 2, "Web worker processes of `wangge serve --prod` (gunicorn)."),
    Setting("server_threads", 4, "Threads per web worker process of `wangge serve --prod` (requests served at once per process)."),
    Setting("server_timeout_s", 120.0, "A web worker silent for longer than this is restarted by `wangge serve --prod` (s)."),
    Setting("server_keepalive_s", 75.0, "Seconds `wangge serve --prod` keeps an idle client connection open for its next request (shorter than a phone's pause between requests resets connections)."),
    Setting("server_graceful_timeout_s", 30.0, "On stop or restart, web workers finish the requests they serve within this time (s)."),
    Setting("job_processes", 1, "Background job processes `wangge serve --prod` runs beside the web workers (each runs job_workers jobs at once)."),
    Setting("job_shutdown_timeout_s", 300.0, "On stop or restart a job process lets running jobs finish this long before it interrupts them (they are marked failed) (s)."),
    Setting("log_format", "text", "Log lines: 'text', or 'json' (one JSON object per line with the request id; `wangge serve --prod` uses json)."),
    Setting("tls_cert_file", "", "TLS certificate (PEM) the built-in server uses for HTTPS when `--cert` is not given; empty = plain HTTP."),
    Setting("tls_key_file", "", "Private key (PEM) of tls_cert_file."),
    Setting("hsts_max_age_s", 31536000, "Strict-Transport-Security max-age sent on HTTPS responses (s; 0 = no HSTS header)."),
    Setting("plan_snapshot_delay_s", 5.0, "After edits, a plan's computed state is stored for other processes (and restarts) once the plan has had no edit for this long (s)."),
    Setting("plan_state_freeze_cells", 5000, "Plans of at least this many cells are kept out of the garbage collector's full collections once loaded: one full collection when the plan is loaded instead of pauses of 0.3-1 s during its edits (0 = never)."),
    Setting("plan_state_scopes_cached", 64, "Community plan states (a planner's community, loaded on demand instead of the whole plan) each process keeps; the least recently used beyond this are dropped and rebuilt from the plan tables when asked again."),
    Setting("url_prefix", "", "Path the app is served under behind a reverse proxy, e.g. '/wangge' (empty = the site root; a trusted proxy may send X-Forwarded-Prefix instead)."),
    # Incident notifications and the public report page (issue 13)
    Setting("notify_channels", "sms", "External channels each notification of notify_external_kinds also goes to, comma-separated (sms, wechat; empty = in-app inbox only)."),
    Setting("notify_external_kinds", "dispatch,rework,supervise,overdue", "Notification kinds also sent to the external channels (dispatch, rework, send_back, supervise, due_soon, overdue, extension_request, extension_decided, feedback)."),
    Setting("notify_sender", "log", "Outbox sender: `log` (writes each message to the log) or `package.module:Class` of a gateway sender (SMS / WeChat) built with the settings."),
    Setting("notify_sms_signature", "网格通", "Signature (签名) at the head of SMS texts, as registered with the SMS gateway."),
    Setting("notify_max_attempts", 5, "Sending attempts per outbox message before it is marked failed (kept and listed, never dropped)."),
    Setting("notify_retry_s", 60.0, "Wait before the first retry of a failed outbox message; doubles after each failure (s)."),
    Setting("notify_batch_size", 200, "Outbox messages one sender round takes (the sender loops until none is due)."),
    Setting("public_code_length", 10, "Length of the tracking code a resident gets for a report from the public page (characters)."),
    Setting("public_report_max_per_day", 20, "Reports one client address may send from the public page per day (besides public_rate_limit)."),
    # List pages (notice boards, audit log)
    Setting("list_page_size", 50, "Rows per page of the notice-board list and the audit log."),
    # Times shown to users (stored in UTC)
    Setting("display_timezone", "Asia/Shanghai", "Time zone of the times and days shown to users (pages, messages, the audit log's date filters, staff validity); times are stored in UTC. Incident and patrol dates and exports follow incident_timezone / patrol_timezone."),
)

DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


def setting(name: str) -> Any:
    """Default value of setting *name*; raises ``KeyError`` naming the known settings."""
    try:
        return DEFAULTS[name]
    except KeyError:
        raise KeyError(f"unknown setting {name!r}; known: {', '.join(sorted(DEFAULTS))}") from None
