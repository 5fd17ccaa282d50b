"""The production FreeSWITCH configuration: frslint, the preprocessor's result and the contracts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parent.parent
ROOT_FILE = CONF / "freeswitch.xml"

# Variables FreeSWITCH's core sets before it reads freeswitch.xml (switch_core.c).
BUILTINS = {
    "hostname": "fs-test",
    "local_ip_v4": "192.0.2.10",
    "local_ip_v6": "::1",
    "base_dir": "/usr",
    "recordings_dir": "/var/lib/freeswitch/recordings",
    "sounds_dir": "/usr/share/freeswitch/sounds",
    "log_dir": "/var/log/freeswitch",
    "cache_dir": "/var/cache/freeswitch",
    "certs_dir": "/etc/freeswitch/tls",
}

# One line of the preprocessor, as switch_xml.c's preprocess() finds it.
PREPROCESS = re.compile(r'<X-PRE-PROCESS\s+cmd="([^"]+)"\s+data="([^"]*)"\s*/>')
GLOBAL_VAR = re.compile(r"\$\$\{([^}]+)\}")


@dataclass
class Preprocessed:
    """The document FreeSWITCH would parse, the globals it set and the files it read."""

    text: str
    variables: dict[str, str]
    files: list[Path] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)

    def root(self) -> ET.Element:
        """The parsed document."""
        return ET.fromstring(self.text)


def _expand(line: str, variables: dict[str, str], unknown: set[str]) -> str:
    """``$${name}`` as expand_vars does it: an unknown name becomes empty (and is noted)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            unknown.add(name)
        return variables.get(name, "")

    return GLOBAL_VAR.sub(value, line)


def _exec_set(command: str, env: dict[str, str]) -> str | None:
    """exec-set: popen(command), trailing spaces and newlines cut; None when the output is empty."""
    done = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, env=env, check=False
    )
    out = done.stdout
    if not out:
        return None
    return out.rstrip(" \n")


def preprocess(env: dict[str, str] | None = None) -> Preprocessed:
    """Run freeswitch.xml through a model of FreeSWITCH's preprocessor (switch_xml.c)."""
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
    result = Preprocessed(text="", variables=dict(BUILTINS))
    out: list[str] = []

    def run(path: Path) -> None:
        result.files.append(path)
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = _expand(raw, result.variables, result.unknown)
            if "<include>" in line or "</include>" in line or "<?" in line:
                continue
            match = PREPROCESS.search(line)
            if match is None:
                out.append(line)
                continue
            cmd, data = match.groups()
            name, _, value = data.partition("=")
            if cmd == "set":
                result.variables[name.strip()] = value.strip()
            elif cmd == "env-set":
                if value.startswith("$") and value[1:] in environ:
                    result.variables[name] = environ[value[1:]]
            elif cmd == "exec-set":
                got = _exec_set(value, environ)
                if got is not None:
                    result.variables[name.strip()] = got
            elif cmd == "include":
                for child in sorted(path.parent.glob(data)):
                    run(child.resolve())
            else:
                raise AssertionError(f"{path}: unexpected preprocessor command {cmd!r}")

    run(ROOT_FILE)
    result.text = "\n".join(out)
    return result


@pytest.fixture(scope="module")
def doc() -> Preprocessed:
    """The configuration as a node started with the usual environment reads it."""
    return preprocess(
        {
            "CALLMESH_FS_NODE_ID": "fs-tpe-1",
            "CALLMESH_FS_SITE_ID": "taipei",
            "CALLMESH_FS_CTI_URL": "http://10.8.0.5:8104",
            "CALLMESH_FS_ESL_PASSWORD": "s3cret-from-the-environment",
        }
    )


def _frslint(*args: str) -> dict[str, object]:
    """Run frslint (the dev dependency) on freeswitch.xml with JSON output."""
    done = subprocess.run(
        [sys.executable, "-m", "frslint", *args, "--format", "json", str(ROOT_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report: dict[str, object] = json.loads(done.stdout)
    except json.JSONDecodeError as err:  # frslint prints "[ERROR] Failed to parse XML" instead
        raise AssertionError(
            f"frslint {args[0]} gave no report:\n{done.stdout}{done.stderr}"
        ) from err
    assert done.returncode == 0, json.dumps(report, indent=2)
    return report


def _xml_files() -> set[Path]:
    """Every XML file of the configuration."""
    return {p.resolve() for p in CONF.rglob("*.xml") if "tests" not in p.relative_to(CONF).parts}


def _settings(element: ET.Element) -> dict[str, str]:
    """A settings block's params as a dict."""
    return {p.get("name", ""): p.get("value", "") for p in element.iter("param")}


def _profile_settings(profile: ET.Element) -> dict[str, str]:
    """A SIP profile's <settings>."""
    settings = profile.find("settings")
    assert settings is not None, profile.get("name")
    return _settings(settings)


def _configuration(root: ET.Element, name: str) -> ET.Element:
    """One <configuration name=...> of the configuration section."""
    found = root.find(f"./section[@name='configuration']/configuration[@name='{name}']")
    assert found is not None, name
    return found


def _context(root: ET.Element, name: str) -> ET.Element:
    """One dialplan context."""
    found = root.find(f"./section[@name='dialplan']/context[@name='{name}']")
    assert found is not None, name
    return found


def _actions(condition: ET.Element) -> list[tuple[str, str]]:
    """A condition's actions as (application, data)."""
    return [(a.get("application", ""), a.get("data", "")) for a in condition.findall("action")]


def test_frslint_lint_reports_no_violation_in_any_included_file() -> None:
    report = _frslint("lint")
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["total"] == 0
    # frslint lints what it reaches through the includes: all of it, or an include is broken.
    assert summary["files_checked"] == len(_xml_files())


def test_frslint_analyze_reports_no_error_and_no_warning() -> None:
    report = _frslint("analyze")
    assert report["issues"] == []


def test_every_file_is_reached_by_the_includes_and_the_document_parses(doc: Preprocessed) -> None:
    assert set(doc.files) == _xml_files()
    root = doc.root()
    assert root.tag == "document"
    assert [s.get("name") for s in root.findall("section")] == [
        "configuration",
        "dialplan",
        "directory",
        "languages",
    ]


def test_every_global_variable_used_is_defined(doc: Preprocessed) -> None:
    assert doc.unknown == set()
    assert "$${" not in doc.text


def test_no_preprocessor_line_hides_in_a_comment() -> None:
    # FreeSWITCH runs an X-PRE-PROCESS line even inside <!-- -->; one there is a trap.
    for path in _xml_files():
        text = path.read_text(encoding="utf-8")
        for comment in re.findall(r"<!--.*?-->", text, flags=re.DOTALL):
            assert "X-PRE-PROCESS" not in comment.upper(), path
            assert "$${" not in comment, f"{path}: the preprocessor expands $${{}} in comments too"


def test_environment_overrides_the_defaults(doc: Preprocessed) -> None:
    assert doc.variables["callmesh_node"] == "fs-tpe-1"
    assert doc.variables["callmesh_site"] == "taipei"
    assert doc.variables["callmesh_cti_url"] == "http://10.8.0.5:8104"
    defaults = preprocess({}).variables
    assert defaults["callmesh_node"] == BUILTINS["hostname"]
    assert defaults["callmesh_cti_url"] == "http://127.0.0.1:8104"
    assert defaults["callmesh_ivr_socket"] == "127.0.0.1:8084"
    assert defaults["callmesh_esl_listen_ip"] == "127.0.0.1"


def test_node_id_is_the_switchname_of_every_event(doc: Preprocessed) -> None:
    switch = _settings(_configuration(doc.root(), "switch.conf"))
    assert switch["switchname"] == "fs-tpe-1"
    assert switch["rtp-start-port"] == "16384"
    assert switch["rtp-end-port"] == "32768"


def test_xml_curl_binds_directory_and_dialplan_to_the_cti_link(doc: Preprocessed) -> None:
    bindings = _configuration(doc.root(), "xml_curl.conf").findall("./bindings/binding")
    urls = {}
    for binding in bindings:
        params = binding.findall("param")
        url = next(p for p in params if p.get("name") == "gateway-url")
        urls[url.get("bindings")] = url.get("value")
        settings = _settings(binding)
        assert int(settings["timeout"]) > 0
        assert settings["disable-100-continue"] == "true"
        assert "method" not in settings  # POST, form-encoded, as the cti link expects
    assert urls == {
        "directory": "http://10.8.0.5:8104/fs/directory",
        "dialplan": "http://10.8.0.5:8104/fs/dialplan",
    }


def test_event_socket_listens_on_loopback_behind_an_acl(doc: Preprocessed) -> None:
    root = doc.root()
    settings = _settings(_configuration(root, "event_socket.conf"))
    assert settings["listen-ip"] == "127.0.0.1"
    assert settings["listen-port"] == "8021"
    acl = root.find(
        "./section[@name='configuration']/configuration[@name='acl.conf']"
        f"/network-lists/list[@name='{settings['apply-inbound-acl']}']"
    )
    assert acl is not None
    assert acl.get("default") == "deny"


def test_event_socket_password_comes_only_from_the_environment(doc: Preprocessed) -> None:
    event_socket = (CONF / "autoload_configs" / "event_socket.conf.xml").read_text(encoding="utf-8")
    assert 'name="password" value="$${callmesh_esl_password}"' in event_socket
    for path in _xml_files():
        text = path.read_text(encoding="utf-8")
        assert "cluecon" not in text.lower(), path
        assert not re.search(r'cmd="set" data="callmesh_esl_password=', text), path
    password = _settings(_configuration(doc.root(), "event_socket.conf"))["password"]
    assert password == "s3cret-from-the-environment"


@pytest.mark.parametrize("env", [{}, {"CALLMESH_FS_ESL_PASSWORD": ""}], ids=["unset", "empty"])
def test_missing_event_socket_password_becomes_a_random_one(env: dict[str, str]) -> None:
    # mod_event_socket would fall back to its well-known default on an empty password.
    first = _settings(_configuration(preprocess(env).root(), "event_socket.conf"))["password"]
    second = _settings(_configuration(preprocess(env).root(), "event_socket.conf"))["password"]
    assert re.fullmatch(r"[0-9a-f-]{36}", first)
    assert first != second


def test_public_dialplan_hands_numbers_to_ivr_with_a_fallback(doc: Preprocessed) -> None:
    extension = _context(doc.root(), "public").find("./extension[@name='callmesh_ivr']")
    assert extension is not None
    condition = extension.find("condition")
    assert condition is not None
    assert condition.get("field") == "destination_number"
    assert re.fullmatch(condition.get("expression", ""), "+886212345678")
    actions = _actions(condition)
    socket = actions.index(("socket", "127.0.0.1:8084 async full"))
    before = actions[:socket]
    assert ("set", "callmesh_call_id=${uuid}") in before
    assert ("set", "continue_on_fail=true") in before
    assert actions[-1] == ("transfer", "callmesh_fallback XML callmesh-fallback")
    assert socket < len(actions) - 1


def test_ivr_socket_may_list_several_servers() -> None:
    many = preprocess({"CALLMESH_FS_IVR_SOCKET": "10.0.0.5:8084|10.0.0.6:8084"})
    condition = _context(many.root(), "public").find("./extension[@name='callmesh_ivr']/condition")
    assert condition is not None
    assert ("socket", "10.0.0.5:8084|10.0.0.6:8084 async full") in _actions(condition)


def test_fallback_context_answers_apologises_and_rings_the_configured_target(
    doc: Preprocessed,
) -> None:
    context = _context(doc.root(), "callmesh-fallback")
    extension = context.find("./extension[@name='callmesh_fallback']")
    assert extension is not None
    conditions = extension.findall("condition")
    assert conditions[0].get("field") == "destination_number"
    assert re.fullmatch(conditions[0].get("expression", ""), "callmesh_fallback")
    assert ("answer", "") in _actions(conditions[0])
    anti = [(a.get("application"), a.get("data")) for a in conditions[1].findall("anti-action")]
    assert ("playback", "${callmesh_fallback_prompt}") in anti
    route = _actions(conditions[2])
    assert ("bridge", "${callmesh_fallback_dialstring}") in route
    assert route[-1][0] == "hangup"
    # The per-call variable falls back to the node's global default, set in vars.xml.
    assert "callmesh_fallback_dialstring" in doc.variables


def test_fallback_target_comes_from_the_environment() -> None:
    target = "sofia/internal/1001%acme.sip.callmesh.local"
    assert (
        preprocess({"CALLMESH_FS_FALLBACK_DIALSTRING": target}).variables[
            "callmesh_fallback_dialstring"
        ]
        == target
    )


def test_every_transfer_and_profile_context_exists(doc: Preprocessed) -> None:
    root = doc.root()
    contexts = {c.get("name") for c in root.iter("context")}
    for action in root.iter("action"):
        if action.get("application") == "transfer":
            _, dialplan, context = action.get("data", "").split()
            assert dialplan == "XML"
            assert context in contexts
    profiles = _configuration(root, "sofia.conf").findall("./profiles/profile")
    for profile in profiles:
        assert _profile_settings(profile)["context"] in contexts


def test_sip_profiles_ports_and_admission(doc: Preprocessed) -> None:
    root = doc.root()
    profiles = {
        p.get("name"): _profile_settings(p)
        for p in _configuration(root, "sofia.conf").findall("./profiles/profile")
    }
    assert set(profiles) == {"internal", "external", "trunk"}
    assert profiles["internal"]["sip-port"] == "5060"
    assert profiles["external"]["sip-port"] == "5080"
    assert profiles["trunk"]["sip-port"] == "5090"
    # Phones authenticate against the directory, in any tenant's domain.
    assert profiles["internal"]["auth-calls"] == "true"
    assert profiles["internal"]["challenge-realm"] == "auto_from"
    assert not any(name.startswith("force-") for name in profiles["internal"])
    # Carriers and other nodes are admitted by address: a deny-by-default list, 403 for others.
    lists = {
        node.get("name"): node
        for node in _configuration(root, "acl.conf").findall("./network-lists/list")
    }
    for name in ("external", "trunk"):
        assert profiles[name]["auth-calls"] == "false"
        acl = lists[profiles[name]["apply-inbound-acl"]]
        assert acl.get("default") == "deny"
    assert profiles["trunk"]["context"] == "callmesh-trunk"


def test_modules_are_exactly_those_the_configuration_uses(doc: Preprocessed) -> None:
    modules = [m.get("module") for m in _configuration(doc.root(), "modules.conf").iter("load")]
    assert len(modules) == len(set(modules))
    assert set(modules) == {
        "mod_console",
        "mod_logfile",
        "mod_xml_curl",
        "mod_event_socket",
        "mod_sofia",
        "mod_loopback",
        "mod_commands",
        "mod_dptools",
        "mod_conference",
        "mod_http_cache",
        "mod_dialplan_xml",
        "mod_opus",
        "mod_sndfile",
        "mod_native_file",
        "mod_local_stream",
        "mod_tone_stream",
        "mod_say_en",
        "mod_say_zh",
    }
    # The cti link's bindings must exist before sofia and the dialplan look anything up.
    assert modules.index("mod_xml_curl") < modules.index("mod_sofia")
    configured = {c.get("name") for c in doc.root().findall("./section/configuration")}
    owners = {
        "sofia.conf": "mod_sofia",
        "conference.conf": "mod_conference",
        "local_stream.conf": "mod_local_stream",
        "http_cache.conf": "mod_http_cache",
        "opus.conf": "mod_opus",
        "xml_curl.conf": "mod_xml_curl",
        "event_socket.conf": "mod_event_socket",
    }
    for conf, module in owners.items():
        assert conf in configured
        assert module in modules


def test_languages_have_the_say_modules_loaded(doc: Preprocessed) -> None:
    root = doc.root()
    modules = {m.get("module") for m in _configuration(root, "modules.conf").iter("load")}
    for language in root.findall("./section[@name='languages']/language"):
        assert f"mod_say_{language.get('say-module')}" in modules
        # switch_xml_locate_language needs <phrases><macros>.
        assert language.find("./phrases/macros") is not None


def test_recordings_and_music_paths_follow_the_environment() -> None:
    env = {"CALLMESH_FS_RECORDINGS_DIR": "/data/recordings", "CALLMESH_FS_MOH_DIR": "/data/moh"}
    root = preprocess(env).root()
    for profile in _configuration(root, "sofia.conf").findall("./profiles/profile"):
        assert _profile_settings(profile)["record-path"] == "/data/recordings"
    streams = _configuration(root, "local_stream.conf").findall("directory")
    assert {s.get("name") for s in streams} >= {"default", "moh/8000", "moh/16000", "moh/48000"}
    assert all(s.get("path", "").startswith("/data/moh/") for s in streams)


def test_every_language_has_the_say_macro_acd_prompts_use() -> None:
    """acd plays ``phrase:callmesh_say:<value>`` after a prompt (positions, seconds, agent ids)."""
    languages = sorted((CONF / "lang").glob("*/*.xml"))
    assert languages
    for path in languages:
        root = ET.parse(path).getroot()
        macros = {m.get("name"): m for m in root.iter("macro")}
        assert "callmesh_say" in macros, path
        patterns = [re.compile(i.get("pattern", "")) for i in macros["callmesh_say"].iter("input")]
        for value, expected in (("12", 0), ("ann7", 1)):
            matched = [n for n, p in enumerate(patterns) if p.match(value)]
            assert matched == [expected], (path, value)
