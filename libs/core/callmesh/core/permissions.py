"""Roles and permissions: the ``resource.action`` rights services check, and each role's grant.

A user holds several roles in its tenant; its permissions are the union of its roles' sets. Each
role has a default set (``DEFAULT_ROLE_PERMISSIONS``); a tenant may replace a role's set with its
own (admin stores these overrides and resolves them with ``resolve`` when it issues a token, whose
``perms`` claim then carries the result). Operators are not in the table: they hold every
permission, including ones added after their token was issued.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

from callmesh.core.errors import InvalidInput


class Role(StrEnum):
    """Role names carried in the ``roles`` claim."""

    OPERATOR = "operator"
    TENANT_ADMIN = "tenant_admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    QA = "qa"
    WFM_PLANNER = "wfm_planner"
    REPORT_VIEWER = "report_viewer"


class Permission(StrEnum):
    """One right a service checks, named ``resource.action``."""

    SETTINGS_READ = "settings.read"
    SETTINGS_WRITE = "settings.write"
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    GROUPS_READ = "groups.read"
    GROUPS_WRITE = "groups.write"
    ROLES_READ = "roles.read"
    ROLES_WRITE = "roles.write"
    DEVICES_READ = "devices.read"
    DEVICES_WRITE = "devices.write"
    API_KEYS_READ = "api_keys.read"
    API_KEYS_WRITE = "api_keys.write"
    CALENDARS_READ = "calendars.read"
    CALENDARS_WRITE = "calendars.write"
    NUMBERS_READ = "numbers.read"
    QUOTAS_READ = "quotas.read"
    AUDIT_READ = "audit.read"
    QUEUES_READ = "queues.read"
    QUEUES_WRITE = "queues.write"
    AGENTS_READ = "agents.read"
    AGENTS_SUPERVISE = "agents.supervise"
    IVR_READ = "ivr.read"
    IVR_WRITE = "ivr.write"
    IVR_PUBLISH = "ivr.publish"
    BLACKLIST_WRITE = "blacklist.write"
    ANNOUNCEMENTS_WRITE = "announcements.write"
    VOICEMAIL_READ = "voicemail.read"
    CAMPAIGNS_READ = "campaigns.read"
    CAMPAIGNS_WRITE = "campaigns.write"
    CALLS_READ = "calls.read"
    RECORDINGS_LISTEN = "recordings.listen"
    RECORDINGS_DOWNLOAD = "recordings.download"
    EVALUATIONS_READ = "evaluations.read"
    EVALUATIONS_WRITE = "evaluations.write"
    MONITORING_LISTEN = "monitoring.listen"
    MONITORING_WHISPER = "monitoring.whisper"
    MONITORING_BARGE = "monitoring.barge"
    SCHEDULES_READ = "schedules.read"
    SCHEDULES_WRITE = "schedules.write"
    REPORTS_READ = "reports.read"
    DESK_USE = "desk.use"

    @property
    def resource(self) -> str:
        """What the permission is about (``queues`` of ``queues.write``)."""
        return self.value.partition(".")[0]

    @property
    def description(self) -> str:
        """One line saying what the permission allows (for admin's listing)."""
        return DESCRIPTIONS[self]


_P = Permission

DESCRIPTIONS: Mapping[Permission, str] = MappingProxyType(
    {
        _P.SETTINGS_READ: "See the tenant's settings",
        _P.SETTINGS_WRITE: "Change the tenant's settings",
        _P.USERS_READ: "See users and their roles",
        _P.USERS_WRITE: "Create, change and remove users, and assign their roles",
        _P.GROUPS_READ: "See groups and their members",
        _P.GROUPS_WRITE: "Create, change and remove groups",
        _P.ROLES_READ: "See each role's permissions",
        _P.ROLES_WRITE: "Change which permissions each role grants",
        _P.DEVICES_READ: "See phones and softphone devices",
        _P.DEVICES_WRITE: "Create, change and remove devices",
        _P.API_KEYS_READ: "See API keys (never their secrets)",
        _P.API_KEYS_WRITE: "Create and revoke API keys",
        _P.CALENDARS_READ: "See business-hours and holiday calendars",
        _P.CALENDARS_WRITE: "Change business-hours and holiday calendars",
        _P.NUMBERS_READ: "See the tenant's phone numbers and where they lead",
        _P.QUOTAS_READ: "See the tenant's quotas and their use",
        _P.AUDIT_READ: "Read the tenant's audit log",
        _P.QUEUES_READ: "See queues, their settings and live state",
        _P.QUEUES_WRITE: "Create, change and remove queues and their skills",
        _P.AGENTS_READ: "See agents, their skills and live states",
        _P.AGENTS_SUPERVISE: "Change agents' states, skills and queue membership live",
        _P.IVR_READ: "See IVR flows and their versions",
        _P.IVR_WRITE: "Edit IVR flow drafts",
        _P.IVR_PUBLISH: "Publish an IVR flow version to live calls",
        _P.BLACKLIST_WRITE: "Change the list of blocked callers",
        _P.ANNOUNCEMENTS_WRITE: "Upload and change prompts and announcements",
        _P.VOICEMAIL_READ: "Listen to voicemail left for queues and agents",
        _P.CAMPAIGNS_READ: "See outbound campaigns and their progress",
        _P.CAMPAIGNS_WRITE: "Create, change, start and stop outbound campaigns",
        _P.CALLS_READ: "See call records and their IVR and queue trails",
        _P.RECORDINGS_LISTEN: "Play call recordings",
        _P.RECORDINGS_DOWNLOAD: "Download call recordings as files",
        _P.EVALUATIONS_READ: "See scorecards and evaluations",
        _P.EVALUATIONS_WRITE: "Create scorecards and evaluate calls",
        _P.MONITORING_LISTEN: "Listen to a live call silently",
        _P.MONITORING_WHISPER: "Speak to the agent on a live call, unheard by the caller",
        _P.MONITORING_BARGE: "Join a live call, heard by both sides",
        _P.SCHEDULES_READ: "See forecasts, staffing and agent schedules",
        _P.SCHEDULES_WRITE: "Plan forecasts, staffing and agent schedules",
        _P.REPORTS_READ: "Run reports and see real-time dashboards",
        _P.DESK_USE: "Log in to the agent desk and take calls",
    }
)

ALL_PERMISSIONS: frozenset[Permission] = frozenset(Permission)
PERMISSION_NAMES: frozenset[str] = frozenset(p.value for p in Permission)
ROLE_NAMES: frozenset[str] = frozenset(r.value for r in Role)
# The roles a tenant's user may hold; ``operator`` is only for operator tokens.
TENANT_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.OPERATOR)

# Supervisors read everything that runs the floor, but not the tenant's credentials (API keys)
# nor its audit log: those belong to the tenant admin (and to a role given them by override).
_SUPERVISOR_READS = frozenset(p for p in Permission if p.value.endswith(".read")) - {
    _P.API_KEYS_READ,
    _P.AUDIT_READ,
}

DEFAULT_ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.TENANT_ADMIN: ALL_PERMISSIONS,
        Role.SUPERVISOR: _SUPERVISOR_READS
        | {
            _P.AGENTS_SUPERVISE,
            _P.MONITORING_LISTEN,
            _P.MONITORING_WHISPER,
            _P.MONITORING_BARGE,
            _P.RECORDINGS_LISTEN,
            _P.CALLS_READ,
            _P.REPORTS_READ,
            _P.DESK_USE,
            _P.VOICEMAIL_READ,
        },
        Role.AGENT: frozenset({_P.DESK_USE, _P.QUEUES_READ, _P.CALENDARS_READ, _P.VOICEMAIL_READ}),
        Role.QA: frozenset(
            {
                _P.RECORDINGS_LISTEN,
                _P.RECORDINGS_DOWNLOAD,
                _P.EVALUATIONS_READ,
                _P.EVALUATIONS_WRITE,
                _P.CALLS_READ,
                _P.REPORTS_READ,
                _P.USERS_READ,
                _P.GROUPS_READ,
                _P.AGENTS_READ,
            }
        ),
        Role.WFM_PLANNER: frozenset(
            {
                _P.SCHEDULES_READ,
                _P.SCHEDULES_WRITE,
                _P.CALENDARS_READ,
                _P.CALENDARS_WRITE,
                _P.REPORTS_READ,
                _P.QUEUES_READ,
                _P.AGENTS_READ,
                _P.USERS_READ,
                _P.GROUPS_READ,
            }
        ),
        Role.REPORT_VIEWER: frozenset({_P.REPORTS_READ, _P.CALLS_READ}),
    }
)


def _names(names: Iterable[str], field: str, what: str) -> list[str]:
    """The names of a list field; a lone string is refused (it would iterate as characters)."""
    if isinstance(names, str | bytes):
        raise InvalidInput(field, f"must be a list of {what} names, not a single string")
    listed = list(names)
    for index, name in enumerate(listed):
        if not isinstance(name, str):
            raise InvalidInput(f"{field}[{index}]", f"must be a {what} name (a string)")
    return listed


def _shown(name: str) -> str:
    # Echoed back in the error, so kept short whatever the caller sent.
    return repr(name if len(name) <= 64 else name[:64] + "…")


def parse_roles(names: Iterable[str], field: str = "roles") -> tuple[Role, ...]:
    """Role names as ``Role``s, in order; an unknown one raises InvalidInput naming ``field[i]``."""
    roles: list[Role] = []
    for index, name in enumerate(_names(names, field, "role")):
        if name not in ROLE_NAMES:
            rule = f"must be one of: {', '.join(r.value for r in Role)}"
            raise InvalidInput(
                f"{field}[{index}]", rule, f"{field}[{index}]: unknown role {_shown(name)}; {rule}"
            )
        roles.append(Role(name))
    return tuple(roles)


def parse_permissions(names: Iterable[str], field: str = "permissions") -> frozenset[Permission]:
    """Permission names as a set; an unknown name raises InvalidInput naming ``field[i]``."""
    permissions: set[Permission] = set()
    for index, name in enumerate(_names(names, field, "permission")):
        if name not in PERMISSION_NAMES:
            rule = "must be a known permission (resource.action, see Permission)"
            raise InvalidInput(
                f"{field}[{index}]",
                rule,
                f"{field}[{index}]: unknown permission {_shown(name)}; {rule}",
            )
        permissions.add(Permission(name))
    return frozenset(permissions)


def parse_overrides(
    overrides: Mapping[str, Iterable[str]], field: str = "overrides"
) -> dict[Role, frozenset[Permission]]:
    """A tenant's per-role permission sets, checked; errors name ``overrides.<role>[i]``."""
    checked: dict[Role, frozenset[Permission]] = {}
    for name, permissions in overrides.items():
        if name == Role.OPERATOR:
            raise InvalidInput(
                f"{field}.{name}", "operators hold every permission; their set cannot be changed"
            )
        if name not in ROLE_NAMES:
            rule = f"must be one of: {', '.join(r.value for r in TENANT_ROLES)}"
            raise InvalidInput(
                f"{field}.{name}", rule, f"{field}: unknown role {_shown(str(name))}; {rule}"
            )
        checked[Role(name)] = parse_permissions(permissions, f"{field}.{name}")
    return checked


def resolve(
    roles: Iterable[str], overrides: Mapping[str, Iterable[str]] | None = None
) -> frozenset[Permission]:
    """The permissions of someone holding ``roles``, with a tenant's ``overrides`` of role sets.

    An override replaces the role's default set (it may grant more or less than the default);
    overrides of roles not held are ignored. ``operator`` grants every permission. Unknown role
    or permission names raise InvalidInput naming the field (``roles[2]``, ``overrides.qa[0]``).
    """
    held = parse_roles(roles)
    table = parse_overrides(overrides) if overrides else {}
    if Role.OPERATOR in held:
        return ALL_PERMISSIONS
    granted: set[Permission] = set()
    for role in held:
        granted |= table.get(role, DEFAULT_ROLE_PERMISSIONS[role])
    return frozenset(granted)


@functools.lru_cache(maxsize=256)
def _defaults_of(roles: frozenset[str]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for name in roles:
        if name == Role.OPERATOR:
            return ALL_PERMISSIONS
        if name in ROLE_NAMES:
            granted |= DEFAULT_ROLE_PERMISSIONS[Role(name)]
    return frozenset(granted)


def default_permissions(roles: Iterable[str]) -> frozenset[Permission]:
    """The default permissions of ``roles``, tolerating names this code does not know.

    For tokens without a ``perms`` claim (issued before it existed): a role added by a newer
    admin grants nothing here rather than failing the request. Cached: few role sets exist.
    """
    return _defaults_of(frozenset(roles))
