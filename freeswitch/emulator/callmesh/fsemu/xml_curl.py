"""mod_xml_curl + mod_dialplan_xml: the dialplan of an inbound call fetched over HTTP.

For every routing of a channel FreeSWITCH (mod_dialplan_xml `dialplan_xml_locate`) builds a
REQUEST_PARAMS event with the channel's data and the `Hunt-*` caller profile, and mod_xml_curl
(`xml_url_fetch`) POSTs it form-encoded: `hostname=…&section=dialplan&tag_name=&key_name=&
key_value=&` followed by every header as `Name=urlenc(value)` (switch_event_build_param_string).
A 200 reply holding a `freeswitch/xml` document with a `dialplan` section is used; "not found",
an HTTP error, a transport error or bad XML fall back to the static configuration
(switch_xml_locate). In the document, the context named like the channel's (else `global`) is
hunted as `dialplan_hunt` / `parse_exten` do: extensions in order, conditions with regex on a
caller-profile field or an expanded `${var}`, actions or anti-actions, `$N` substitution,
`break`, `continue`, nested conditions, `regex="all|any|xor"`, `inline="true"`, `loop`.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import TYPE_CHECKING

import httpx

from callmesh.core.esl import url_encode

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel, Extension

log = logging.getLogger(__name__)

# Where FreeSWITCH (HEAD cc93a683) creates the look-up's REQUEST_PARAMS event.
CALLING = ("mod_dialplan_xml.c", "dialplan_xml_locate", "619")
USER_AGENT = "freeswitch-xml/1.0"
# mod_xml_curl sets no timeout of its own (the binding's `timeout` param); callmesh's production
# conf sets 3 s (freeswitch/conf/vars.xml callmesh_xml_curl_timeout).
DEFAULT_TIMEOUT_S = 3.0
# Applications with SAF_ROUTING_EXEC that the emulator has: the only ones `inline` may run.
INLINE_APPS = frozenset({"set", "export", "unset", "log"})
MAX_RECUR = 100

# switch_caller_get_field_by_name: condition fields read from the caller profile.
_PROFILE_FIELDS = {
    "dialplan": "dialplan",
    "username": "username",
    "caller_id_name": "caller_id_name",
    "caller_id_number": "caller_id_number",
    "callee_id_name": "callee_id_name",
    "callee_id_number": "callee_id_number",
    "ani": "ani",
    "aniii": "aniii",
    "network_addr": "network_addr",
    "rdnis": "rdnis",
    "destination_number": "destination_number",
    "source": "source",
    "context": "context",
    "chan_name": "chan_name",
    "uuid": "uuid",
    "profile_index": "profile_index",
    "transfer_source": "transfer_source",
    "orig_caller_id_name": "orig_caller_id_name",
    "orig_caller_id_number": "orig_caller_id_number",
}
_BREAKS = ("on-true", "on-false", "always", "never")
_TRUE = ("true", "yes", "on", "1", "enabled", "active", "allow")


class XmlCurlDialplan:
    """A mod_xml_curl dialplan binding to `<base_url>/fs/dialplan`, with its counters."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"xml_curl url: must start with http:// or https://, got {base_url!r}")
        if timeout <= 0:
            raise ValueError(f"xml_curl timeout: must be > 0 seconds, got {timeout}")
        self.url = base_url.rstrip("/") + "/fs/dialplan"
        self.timeout = timeout
        self._client = client
        self._own_client = client is None
        # lookups, found, not_found, errors, fallbacks (not_found + errors), no_route
        self.stats: Counter[str] = Counter()

    async def close(self) -> None:
        """Close the HTTP client (if this binding made it)."""
        if self._client is not None and self._own_client:
            await self._client.aclose()
        self._client = None

    def form(self, channel: Channel) -> str:
        """The POST body mod_xml_curl sends for this channel's dialplan look-up."""
        event = channel.make_event("REQUEST_PARAMS", calling=CALLING)
        headers = event.headers
        headers.extend(channel.profile.headers("Hunt"))
        basic = (
            f"hostname={channel.switch.hostname}&section=dialplan&tag_name=&key_name=&key_value="
        )
        # EF_UNIQ_HEADERS: a REQUEST_PARAMS event keeps one header per name (the last set).
        unique: dict[str, str] = {}
        for name, value in headers:
            unique.pop(name, None)
            unique[name] = value
        return basic + "".join(f"&{name}={url_encode(value)}" for name, value in unique.items())

    async def fetch(self, channel: Channel) -> ET.Element | None:
        """The `dialplan` section FreeSWITCH would use, or None to fall back to static XML."""
        self.stats["lookups"] += 1
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.post(
                self.url,
                content=self.form(channel).encode(),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": USER_AGENT,
                },
                timeout=self.timeout,
                follow_redirects=True,
            )
        except httpx.HTTPError as err:
            self._error(channel, f"{type(err).__name__}: {err}")
            return None
        if response.status_code != 200:
            self._error(channel, f"HTTP {response.status_code}")
            return None
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as err:
            self._error(channel, f"bad XML: {err}")
            return None
        for section in root.iter("section"):
            if section.get("name") == "result":
                result = section.find("result")
                if result is not None and (result.get("status") or "").lower() == "not found":
                    self.stats["not_found"] += 1
                    self.stats["fallbacks"] += 1
                    return None
        dialplan = _child(root, "section", "dialplan")
        if dialplan is None:
            self._error(channel, "no dialplan section in the document")
            return None
        self.stats["found"] += 1
        return dialplan

    def _error(self, channel: Channel, reason: str) -> None:
        self.stats["errors"] += 1
        self.stats["fallbacks"] += 1
        log.warning("xml_curl: dialplan look-up for %s failed (%s)", channel.name, reason)

    async def hunt(self, channel: Channel) -> tuple[bool, Extension | None]:
        """(True, extension or None for no route) from the fetched document, (False, None) to
        fall back to the static dialplan."""
        section = await self.fetch(channel)
        if section is None:
            return False, None
        extension = await hunt_section(channel, section)
        if extension is None:
            self.stats["no_route"] += 1
        return True, extension


def _child(parent: ET.Element, tag: str, name: str) -> ET.Element | None:
    for element in parent.iter(tag):
        if element.get("name") == name:
            return element
    return None


async def hunt_section(channel: Channel, section: ET.Element) -> Extension | None:
    """dialplan_hunt on a `dialplan` section: the applications to run (None: no route)."""
    context_name = channel.profile.context or "default"
    context = _direct_child(section, "context", context_name)
    if context is None:
        context = _direct_child(section, "context", "global")
    if context is None:
        log.warning("xml_curl: context %s not found", context_name)
        return None
    hunter = _Hunter(channel)
    for exten in context.findall("extension"):
        proceed = await hunter.parse_exten(exten, exten.get("name") or "UNKNOWN", 0)
        if proceed and (exten.get("continue") or "").lower() not in _TRUE:
            break
    return hunter.extension


def _direct_child(parent: ET.Element, tag: str, name: str) -> ET.Element | None:
    for element in parent.findall(tag):
        if element.get("name") == name:
            return element
    return None


def substitute(template: str, match: re.Match[str] | None) -> str:
    """switch_perform_substitution: `$N` becomes group N of the match (empty when absent)."""
    if match is None or "$" not in template:
        return template
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        char = template[i]
        if char == "\\" and i + 1 < n and template[i + 1] == "$":
            out.append("$")
            i += 2
        elif char == "$" and i + 1 < n and template[i + 1].isdigit():
            j = i + 1
            while j < n and template[j].isdigit():
                j += 1
            group = int(template[i + 1 : j])
            if group <= (match.re.groups or 0):
                out.append(match.group(group) or "")
            i = j
        else:
            out.append(char)
            i += 1
    return "".join(out)


class _Hunter:
    """parse_exten for one channel: collects the extension, runs `inline` actions at once."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.extension: list[tuple[str, str]] | None = None

    def _field(self, field: str) -> str:
        if "$" in field:
            return self.channel.expand(field)
        attr = _PROFILE_FIELDS.get(field)
        if attr is None:
            return ""
        return str(getattr(self.channel.profile, attr, "") or "")

    def _match(self, field: str, expression: str) -> re.Match[str] | None:
        try:
            return re.search(self.channel.expand(expression), self._field(field))
        except re.error as err:
            log.warning("xml_curl: bad expression %r: %s", expression, err)
            return None

    async def _add(self, action: ET.Element, data: str) -> None:
        application = action.get("application") or ""
        loops = action.get("loop")
        count = int(loops) if loops and loops.strip().lstrip("-").isdigit() else 1
        inline = (action.get("inline") or "").lower() in _TRUE
        if self.extension is None:
            self.extension = []
        for _ in range(count):
            if inline:
                if application in INLINE_APPS:
                    await self.channel.execute(application, data)
                else:
                    log.warning("xml_curl: %s cannot be executed inline", application)
            else:
                self.extension.append((application, data))

    async def parse_exten(self, xexten: ET.Element, name: str, recur: int) -> bool:
        if recur > MAX_RECUR:
            return False
        req_nest = True
        if recur and xexten.get("require-nested") is not None:
            req_nest = (xexten.get("require-nested") or "").lower() in _TRUE
        proceed = False
        for xcond in xexten.findall("condition"):
            field = xcond.get("field")
            do_break = (xcond.get("break") or "on-false").lower()
            if do_break not in _BREAKS:
                do_break = "on-false"
            anti_action = True
            match: re.Match[str] | None = None
            regex_rule = xcond.get("regex")
            if regex_rule is not None:
                rule = regex_rule.lower()
                passed = failed = 0
                for xregex in xcond.findall("regex"):
                    rfield = xregex.get("field")
                    expression = _expression(xregex)
                    if rfield is None:
                        passed += 1
                        proceed = True
                        if rule not in ("all", "xor"):
                            break
                        continue
                    found = self._match(rfield, expression)
                    proceed = found is not None
                    if "(" in expression:
                        match = found
                    if proceed:
                        passed += 1
                        if rule not in ("all", "xor"):
                            break
                    else:
                        failed += 1
                        if rule == "all":
                            break
                if rule == "xor":
                    anti_action = passed != 1
                elif (rule == "all" and not failed) or (rule != "all" and passed):
                    anti_action = False
            elif field is not None:
                expression = _expression(xcond)
                found = self._match(field, expression)
                proceed = found is not None
                if proceed:
                    anti_action = False
                    if "(" in expression:
                        match = found
            else:
                # No field: true (time-of-day attributes are not evaluated by the emulator).
                anti_action = False
                proceed = True
            if anti_action:
                for xaction in xcond.findall("anti-action"):
                    await self._add(xaction, _data(xaction))
                    proceed = True
            else:
                for xaction in xcond.findall("action"):
                    await self._add(xaction, substitute(_data(xaction), match))
            if (
                (not anti_action and do_break == "on-true")
                or (anti_action and do_break == "on-false")
                or do_break == "always"
            ):
                break
            if proceed and xcond.find("condition") is not None:
                proceed = await self.parse_exten(xcond, name, recur + 1)
                if not proceed:
                    if do_break == "never":
                        continue
                    break
        if not req_nest:
            proceed = True
        return proceed


def _expression(element: ET.Element) -> str:
    child = element.find("expression")
    if child is not None:
        return child.text or ""
    return element.get("expression") or ""


def _data(action: ET.Element) -> str:
    text = (action.text or "").strip()
    return text or action.get("data") or ""
