"""Sample flow documents: the bilingual main line the demo and the tests use."""

from __future__ import annotations

from typing import Any


def en_zh(text: str) -> dict[str, list[dict[str, str]]]:
    """A TTS prompt in both languages."""
    return {"en": [{"tts": text}], "zh": [{"tts": f"中文 {text}"}]}


def node(node_id: str, type_: str, **config: Any) -> dict[str, Any]:
    """One node of a flow document."""
    return {"id": node_id, "type": type_, "position": {"x": 1, "y": 2}, "config": config}


def main_flow() -> dict[str, Any]:
    """A bilingual line: language, hours, blacklist, menu, account look-up, queue, voicemail."""
    return {
        "name": "Main line",
        "languages": ["en", "zh"],
        "start": "blk",
        "variables": {"customer.tier": ""},
        "shortcuts": {"31": "account"},
        "nodes": [
            node("blk", "blacklist"),
            node("blocked", "hangup", cause="CALL_REJECTED", prompt=en_zh("Sorry")),
            node(
                "hours",
                "time",
                rules=[
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}
                ],
                holidays=["2026-12-25"],
                time_zone="Europe/Paris",
            ),
            node("vm", "voicemail", prompt=en_zh("We are closed"), mailbox="general"),
            node(
                "lang",
                "language",
                prompt=en_zh("For English press 1"),
                options={"1": "en", "2": "zh"},
            ),
            node(
                "menu",
                "menu",
                prompt=en_zh("Sales 1, support 2, account 3"),
                options={"1": "Sales", "2": "Support", "3": "Account"},
                invalid_prompt=en_zh("Not a choice"),
                max_retries=1,
            ),
            node(
                "sales",
                "queue",
                queue_id="sales",
                priority_expression="if(customer.tier == 'gold', 5, 0)",
            ),
            node("support", "queue", queue_id="support"),
            node(
                "account",
                "collect",
                prompt=en_zh("Your account number, then hash"),
                variable="account.number",
                min_digits=4,
                max_digits=8,
                pattern="[0-9]+",
            ),
            node(
                "lookup",
                "http",
                method="POST",
                url="http://crm.example/accounts/{account.number}?key=secret",
                headers={"X-Caller": "{call.caller}"},
                body={"account": "{account.number}", "tags": ["ivr"]},
                response={"customer.tier": "data.tier", "account.balance": "data.balance"},
            ),
            node(
                "vip",
                "condition",
                branches=[{"port": "gold", "expression": "customer.tier == 'gold'"}],
            ),
            node("say", "play", prompt=en_zh("Your balance is {account.balance}")),
            node("bye", "hangup", prompt=en_zh("Goodbye")),
            node("sorry", "hangup", cause="NORMAL_TEMPORARY_FAILURE", prompt=en_zh("Sorry")),
        ],
        "edges": [
            {"from": "blk", "port": "blocked", "to": "blocked"},
            {"from": "blk", "port": "clear", "to": "hours"},
            {"from": "hours", "port": "open", "to": "lang"},
            {"from": "hours", "port": "closed", "to": "vm"},
            {"from": "lang", "port": "next", "to": "menu"},
            {"from": "menu", "port": "1", "to": "sales"},
            {"from": "menu", "port": "2", "to": "support"},
            {"from": "menu", "port": "3", "to": "account"},
            {"from": "menu", "port": "failure", "to": "sorry"},
            {"from": "sales", "port": "failure", "to": "sorry"},
            {"from": "account", "port": "next", "to": "lookup"},
            {"from": "account", "port": "failure", "to": "sorry"},
            {"from": "lookup", "port": "next", "to": "vip"},
            {"from": "lookup", "port": "failure", "to": "sorry"},
            {"from": "vip", "port": "gold", "to": "sales"},
            {"from": "vip", "port": "else", "to": "say"},
            {"from": "say", "port": "next", "to": "bye"},
        ],
    }
