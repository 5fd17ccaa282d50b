"""What the runtime needs from the service's settings (``AcdSettings`` builds it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeOptions:
    """Tunables of the partitions (defaults are the service's)."""

    # The lease holder id of this replica (a subject token).
    replica_id: str
    # None: the platform's lease_ttl_s.
    lease_ttl_s: float | None = None
    # Snapshots after call events and timers are written at most this long after the change;
    # request replies and offers wait for theirs (write-ahead).
    snapshot_debounce_s: float = 0.2
    # Snapshots bigger than this are stored zlib-compressed.
    snapshot_compress_over: int = 16 * 1024
    # Reply timeout of switch commands other than originate.
    command_timeout_s: float = 5.0
    # An originate's reply comes when the agent answers: its timeout is the offer's plus this.
    originate_extra_timeout_s: float = 5.0
    calendar_timeout_s: float = 2.0
    # Prompt ids → files (see callmesh.acd.runtime.prompts).
    media_prefix: str = ""
    default_language: str = "en"
    say_macro: str = "callmesh_say"
    # Overflow to an IVR flow or voicemail: a transfer to <prefix><target> in this context.
    transfer_context: str = "default"
    ivr_extension_prefix: str = "ivr-"
    voicemail_extension_prefix: str = "vm-"
    # How often the gauges are refreshed from the engine's views.
    metrics_every_s: float = 1.0
    # Inputs the actor takes in one turn (one snapshot write covers them all).
    max_batch: int = 256
    # How long a clean stop waits for the actor and the event publisher to finish.
    stop_grace_s: float = 5.0
