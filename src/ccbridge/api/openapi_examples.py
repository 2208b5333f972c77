"""Examples for the OpenAPI document: one per schema, and per operation where no schema says it.

Kept beside each other so the API's vocabulary reads in one place (and no model file grows a
page of sample data); tests/unit/api/test_openapi_contract.py validates every example against
its schema, so an example cannot drift from the model it shows.
"""

from __future__ import annotations

from typing import Any

from ccbridge.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

AT = "2026-03-02T09:15:00+08:00"
LATER = "2026-03-02T09:21:40+08:00"
CALL_ID = "1764638100.42"
CALLER, CALLEE = "+8613800138000", "+862160001234"

_CONTACT = {"name": "王芳", "phone": "+862160001234", "email": "ops@acme.example.com"}
_TENANT_IN = {
    "name": "Acme 客服中心",
    "business_contact": _CONTACT,
    "technical_contact": {**_CONTACT, "name": "李雷", "email": "it@acme.example.com"},
    "timezone": "Asia/Shanghai",
}
_TENANT = {"id": "acme", **_TENANT_IN, "status": "active", "created_at": AT}
_KEY = {
    "key_id": "k7Gd2pQx",
    "tenant_id": "acme",
    "role": "crm",
    "scopes": ["calls:read", "events:read"],
    "name": "CRM integration",
    "created_at": AT,
    "created_by": "key:admin01",
    "revoked_at": None,
    "last_used_at": LATER,
}
_AGENT_IN = {
    "agent_no": "1001",
    "name": "张伟",
    "certified": True,
    "interface": "PJSIP/1001",
    "seat_kind": "inbound",
    "skills": [{"skill_group": "sales", "level": 8}, {"skill_group": "support", "level": 5}],
}
_GROUP_IN = {"name": "sales", "strategy": "rrmemory", "description": "销售热线"}
_SEAT = {
    "agent_no": "1001",
    "kind": "inbound",
    "interface": "PJSIP/1001",
    "state": "ready",
    "reason": "",
    "since": AT,
    "signed_in_at": AT,
    "signed_out_at": None,
    "deferred": None,
    "break_requested": False,
    "current_call": None,
    "queued": None,
    "pbx_synced": True,
}
_CALL = {
    "call_id": CALL_ID,
    "tenant": "acme",
    "state": "ended",
    "agent_no": "1001",
    "skill_group": "sales",
    "caller": CALLER,
    "callee": CALLEE,
    "caller_name": None,
    "started_at": AT,
    "queued_at": AT,
    "answered_at": "2026-03-02T09:15:12+08:00",
    "ended_at": LATER,
    "end_reason": "agent_hangup",
}
_PARAMS = {
    "agent_no": "1001",
    "skill_group": "sales",
    "caller": CALLER,
    "callee": CALLEE,
    "caller_original": "13800138000",
    "callee_original": "60001234",
}
_EVENT = {
    "id": "5f0c6c8e-3b1a-4f7e-9d2c-8a1b2c3d4e5f",
    "cursor": "1042",
    "type": "call.answered",
    "schema_version": 1,
    "tenant": "acme",
    "call_id": CALL_ID,
    "occurred_at": "2026-03-02T09:15:12+08:00",
    "recorded_at": "2026-03-02T09:15:12+08:00",
    "data": {"agent_no": "1001", "skill_group": "sales", "caller": CALLER, "callee": CALLEE},
}
_EXPORT = {
    "id": "exp_3f9a1c",
    "tenant": "acme",
    "kind": "on_demand",
    "status": "running",
    "range_from": "2026-03-01T00:00:00+08:00",
    "range_to": "2026-03-02T00:00:00+08:00",
    "total_files": 120,
    "sent_files": 45,
    "total_bytes": 96000000,
    "sent_bytes": 36000000,
    "progress": 0.375,
    "attempts": 1,
    "error": None,
    "report": None,
}
_RECORDING = {
    "id": "rec_8c41d2",
    "call_id": CALL_ID,
    "tenant": "acme",
    "status": "ok",
    "agent_no": "1001",
    "skill_group": "sales",
    "caller": CALLER,
    "callee": CALLEE,
    "started_at": "2026-03-02T09:15:12+08:00",
    "ended_at": LATER,
    "duration_ms": 388000,
    "size_bytes": 6208044,
    "sha256": "9f2c0d1e6b7a8c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d",
    "held": False,
    "muted": False,
    "path": "acme/2026/03/02/1764638100.42.wav",
}
_EXPORT_TARGET = {
    "host": "ftp.acme.example.com",
    "port": 21,
    "username": "ccbridge",
    "tls": True,
    "directory": "/recordings",
    "ca_pem": None,
    "schedule_time": "02:00",
}
_WEBHOOK = {
    "id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "tenant": "acme",
    "url": "https://crm.acme.example.com/hooks/ccbridge",
    "event_types": ["call.answered", "call.ended"],
    "enabled": True,
    "disabled_reason": None,
    "cursor": "1042",
    "attempts": 0,
    "next_attempt_at": None,
    "failing_since": None,
    "secrets_valid": 1,
}
_INCIDENT = {
    "id": "inc_01JA2X7Q",
    "started_at": "2026-11-12T02:10:00+08:00",
    "ended_at": "2026-11-12T02:52:00+08:00",
    "cause": "AMI down more than 30 s",
    "source": "automatic",
    "tenants": None,
    "excluded": False,
    "exclusion": None,
}
_FAULT = {
    "id": "flt_01JA2X9C",
    "tenant_id": "acme",
    "summary": "09:40 起来电无法进入队列",
    "noticed_at": "2026-11-12T09:40:00+08:00",
    "reported_at": "2026-11-12T09:46:00+08:00",
    "reported_by": "key:admin01",
    "status": "open",
    "incident_id": None,
    "decided_by": None,
    "note": "",
}
_REPORT_SETTINGS_IN = {
    "service_level_seconds": 30,
    "short_abandon_seconds": 5,
    "billable_seconds": 15,
    "outbound_daily_quota": 120,
    "required_headcount": 20,
    "targets": {"answer_rate": 0.95, "service_level": 0.8},
    "templates": {
        "service-level": {
            "columns": ["interval", "offered", "answered", "service_level"],
            "headings": {"offered": "来电量", "answered": "接通量"},
            "language": "zh",
        }
    },
}
_STATEMENT = {
    "tenant_id": "acme",
    "year": 2026,
    "month": 11,
    "model": "seats",
    "state": "issued",
    "lines": [{"item": "纯呼入坐席", "quantity": "8", "unit_price": "800.00", "amount": "6400.00"}],
    "subtotal": "6400.00",
    "stability_percent": "99.9028",
    "sla_tier": "met",
    "sla_deduction": "0.00",
    "net": "6400.00",
    "vat": "384.00",
    "total": "6784.00",
    "issue_by": "2026-12-05",
    "confirm_by": "2026-12-09",
    "payment_due": "2026-12-20",
    "deemed_confirmed": False,
    "days_overdue": 0,
    "late_fee": "0.00",
    "termination_right": False,
    "trail": [],
}
_FLOOR_ALERT = {
    "id": "5b0f3c1e9a7d4e2f8c6b1a0d9e8f7a6b",
    "rule": "not_ready_too_long",
    "severity": "warning",
    "agent_no": "1001",
    "skill_group": None,
    "value": 912,
    "threshold": 900,
    "started_at": AT,
    "message": "Agent 1001 not ready (示忙) for 15 min, over the 15 min limit.",
}
_STEP = {"node": "menu", "type": "menu", "input": "1", "next": "sales"}
_POLICY = {
    "split": [{"group": "sales", "weight": 70}, {"group": "sales_outsourced", "weight": 30}],
    "languages": {"en": "sales_en"},
    "vip": {"priority": 10, "callers": ["+8613800138000"], "crm": None},
    "sticky": {"ring_seconds": 15, "lookback_days": 30},
    "overflow": {"after_seconds": 120, "group": "support"},
    "max_wait": {"seconds": 600, "action": "callback", "mailbox": ""},
}
_FLOW: dict[str, Any] = {
    "format": "ccbridge-ivr/1",
    "name": "Main menu",
    "start": "menu",
    "language": "zh",
    "languages": ["zh"],
    "fallback": {"route": "hangup", "target": ""},
    "nodes": {
        "menu": {
            "type": "menu",
            "prompt": "welcome_zh",
            "options": {"1": {"next": "sales", "label": "销售"}},
            "on_fail": "sales",
        },
        "sales": {"type": "queue", "skill_group": "sales"},
    },
}

SCHEMA_EXAMPLES: dict[str, Any] = {
    "TenantCreate": {"id": "acme", **_TENANT_IN},
    "TenantPatch": {"name": "Acme 客服中心（华东）"},
    "TenantOut": _TENANT,
    "TenantPage": {"items": [_TENANT], "next_after": None},
    "ApiKeyCreate": {"name": "CRM integration", "role": "crm", "scopes": None},
    "ApiKeyOut": _KEY,
    "ApiKeyCreated": {**_KEY, "key": "ccb_k7Gd2pQx_9fJ3mW8sZr4tL6vY1bN0cHaQe5Rk"},
    "ApiKeyList": {"items": [_KEY]},
    "TokenRequest": {"subject": "zhangwei@acme.example.com", "role": "agent", "agent_no": "1001"},
    "TokenOut": {
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ6aGFuZ3dlaSJ9.c2ln",
        "token_type": "bearer",
        "expires_at": "2026-03-02T10:15:00+08:00",
        "expires_in": 3600,
    },
    "AuditPage": {
        "items": [
            {
                "id": 7731,
                "at": AT,
                "tenant_id": "acme",
                "actor": "key:k7Gd2pQx",
                "action": "agent.create",
                "object_type": "agent",
                "object_id": "1001",
                "detail": {"name": "张伟"},
            }
        ],
        "next_before_id": 7731,
    },
    "AgentIn": _AGENT_IN,
    "AgentOut": {**_AGENT_IN, "version": 1},
    "SkillGroupIn": _GROUP_IN,
    "SkillGroupOut": {**_GROUP_IN, "queue": "acme-sales"},
    "EndpointIn": {"technology": "PJSIP", "name": "1001", "description": "前台座机"},
    "EndpointOut": {
        "id": "ep_5d2a9c",
        "technology": "PJSIP",
        "name": "1001",
        "interface": "PJSIP/1001",
        "description": "前台座机",
        "created_at": AT,
        "created_by": "key:admin01",
    },
    "SignInIn": {"endpoint": "1001", "ready": True},
    "StateChangeIn": {"action": "not_ready", "reason": "小休"},
    "SeatOut": _SEAT,
    "SeatAlertOut": {
        "agent_no": "1001",
        "code": "NOT_READY_TOO_LONG",
        "message": _FLOOR_ALERT["message"],
        "at": AT,
        **{k: v for k, v in _FLOOR_ALERT.items() if k not in ("agent_no", "message")},
        "cleared_at": None,
    },
    "FloorRulesIn": {
        "rules": {"break_too_long": {"enabled": True, "threshold": 480, "severity": "warning"}},
        "amber_band_pct": 5,
    },
    "FloorRulesOut": {
        "tenant_id": "acme",
        "rules": {
            name: {"enabled": True, "threshold": threshold, "severity": severity, "unit": unit}
            for name, threshold, severity, unit in (
                ("not_ready_too_long", 900, "warning", "seconds"),
                ("break_too_long", 480, "warning", "seconds"),
                ("too_many_on_break", 3, "warning", "agents"),
                ("break_count_exceeded", 3, "warning", "breaks"),
                ("calls_waiting_over", 5, "critical", "calls"),
                ("service_level_under", 80, "critical", "percent"),
            )
        },
        "amber_band_pct": 5,
        "service_level_min_offered": 10,
        "customised": True,
        "updated_at": AT,
        "updated_by": "key:admin01",
    },
    "WallboardOut": {
        "tenant_id": "acme",
        "generated_at": AT,
        "skill_groups": [
            {
                "name": "sales",
                "calls_waiting": 2,
                "longest_wait_seconds": 41,
                "offered_today": 120,
                "answered_today": 110,
                "abandoned_today": 6,
                "agents": {"ready": 3, "not_ready": 1, "break": 1, "on_call": 4, "wrap_up": 0},
                "service_level": {
                    "value_pct": 86.4,
                    "target_pct": 80.0,
                    "threshold_seconds": 30,
                    "status": "green",
                },
            }
        ],
        "seats": [
            {
                "agent_no": "1001",
                "name": "张伟",
                "state": "on_call",
                "state_since": AT,
                "reason": "",
                "skill_groups": ["sales"],
                "call_id": "1764638100.42",
            }
        ],
        "alerts": [_FLOOR_ALERT],
    },
    "SpyIn": {"mode": "whisper", "supervisor_agent_no": "1000"},
    "SpyOut": {
        "tenant_id": "acme",
        "agent_no": "1001",
        "supervisor_agent_no": "1000",
        "mode": "whisper",
        "options": "qw",
        "call_id": "1764638100.42",
        "supervisor_interface": "PJSIP/1000",
    },
    "LeaseIn": {"seats": {"inbound": 20, "inbound_outbound": 5}, "valid_from": "2026-01-01"},
    "LeaseOut": {
        "id": "lease_01",
        "seats": {"inbound": 20, "inbound_outbound": 5},
        "valid_from": "2026-01-01",
        "valid_until": None,
        "monthly_price": {"inbound": "300.00", "inbound_outbound": "350.00"},
    },
    "LeaseChangeIn": {
        "kind": "seat_count",
        "effective_on": "2026-04-01",
        "seats": {"inbound": 25},
        "override_notice": False,
    },
    "LeaseChangeOut": {
        "id": "chg_7e1f",
        "kind": "seat_count",
        "effective_on": "2026-04-01",
        "seats": {"inbound": 25},
        "override_notice": False,
        "calendar_loaded": True,
    },
    "UtilisationOut": {
        "hours": [
            {"hour": "2026-03-02T09:00:00+08:00", "kind": "inbound", "peak": 18, "leased": 20}
        ],
        "month_seats_used": {"inbound": 19, "inbound_outbound": 4},
    },
    "CalendarIn": {
        "holidays": ["2026-10-01", "2026-10-02", "2026-10-05"],
        "makeup_workdays": ["2026-09-27", "2026-10-10"],
    },
    "CalendarOut": {
        "year": 2026,
        "holidays": ["2026-10-01", "2026-10-02", "2026-10-05"],
        "makeup_workdays": ["2026-09-27", "2026-10-10"],
        "calendar_loaded": True,
        "updated_at": AT,
        "updated_by": "key:platform",
    },
    "DialPolicyIn": {"allow": ["+86"], "deny": ["+86900"]},
    "DialPolicyOut": {
        "allow": ["+86"],
        "deny": ["+86900"],
        "updated_at": AT,
        "updated_by": "key:platform",
    },
    "CallOut": _CALL,
    "CallPage": {"items": [_CALL], "next_cursor": "eyJ0IjoiMjAyNi0wMy0wMlQwMToxNSJ9"},
    "CallParamsOut": {
        "call_id": CALL_ID,
        "tenant": "acme",
        "state": "ended",
        "params": _PARAMS,
        "first": _PARAMS,
        "legs": [
            {
                "leg": 1,
                "via": "queue",
                "params": _PARAMS,
                "started_at": "2026-03-02T09:15:12+08:00",
                "ended_at": LATER,
            }
        ],
        "transfers": [],
        "extras": {},
    },
    "WrapupIn": {
        "disposition": "resolved",
        "notes": "客户咨询账单，已解决",
        "fields": {"order_no": "A20260302-17"},
        "submission_id": "wrap-1764638100.42-1001",
    },
    "HoldIn": {"held": True, "reason": "客户投诉，保留证据"},
    "ControlIn": {"action": "pause"},
    "EventOut": _EVENT,
    "EventPage": {"items": [_EVENT], "next_after": "1042"},
    "SettingsIn": {"extras": ["ivr"], "sandbox": False, "allow_private": []},
    "SettingsOut": {"tenant": "acme", "extras": ["ivr"], "sandbox": False, "allow_private": []},
    "WebhookIn": {
        "url": "https://crm.acme.example.com/hooks/ccbridge",
        "event_types": ["call.answered", "call.ended"],
        "from_start": False,
    },
    "WebhookPatch": {"enabled": True},
    "WebhookOut": _WEBHOOK,
    "WebhookCreated": {**_WEBHOOK, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    "DeliveryOut": {
        "id": 88120,
        "event_cursor": "1042",
        "event_id": _EVENT["id"],
        "status": "delivered",
        "manual": False,
        "attempt": 1,
        "at": AT,
        "http_status": 204,
        "error": None,
        "duration_ms": 41,
    },
    "RedeliverIn": {"cursors": [1041, 1042]},
    "ReplayIn": {"call_id": CALL_ID},
    "Queued": {"queued": 2},
    "RecordingOut": _RECORDING,
    "RecordingPage": {"items": [_RECORDING], "next_cursor": None},
    "LinkOut": {
        "url": "/api/v1/recordings/rec_8c41d2/file?tenant=acme&expires=1764640000&sig=Zm9v",
        "expires_at": "2026-03-02T09:46:40+08:00",
    },
    "RecordingPolicyIn": {
        "retention_months": 6,
        "auto_record": True,
        "auto_record_groups": None,
        "export": {**_EXPORT_TARGET, "password": "s3cret-ftp-pass"},
    },
    "RecordingPolicyOut": {
        "tenant": "acme",
        "timezone": "Asia/Shanghai",
        "retention_months": 6,
        "auto_record": True,
        "auto_record_groups": None,
        "export": {**_EXPORT_TARGET, "password_set": True},
    },
    "ExportIn": {
        "range_from": "2026-03-01T00:00:00+08:00",
        "range_to": "2026-03-02T00:00:00+08:00",
    },
    "ExportOut": _EXPORT,
    "FtpAccountIn": {"username": "acme-qa", "tls_required": True},
    "FtpAccountOut": {
        "username": "acme-qa",
        "tenant": "acme",
        "tls_required": True,
        "created_at": AT,
        "disabled_at": None,
        "password": "Vx7q-2Lm9-Rk4t-8Pz1",
    },
    "RetentionStatusOut": {
        "running": False,
        "progress": {"done": 0, "total": 0},
        "last_deleted": 312,
        "last_eligible": {"acme": 312},
    },
    "OffboardingIn": {"skip_export": False},
    "OffboardingOut": {
        "tenant": "acme",
        "status": "exporting",
        "skip_export": False,
        "requested_by": "key:platform",
        "started_at": AT,
        "updated_at": LATER,
        "finished_at": None,
        "export": _EXPORT,
        "purge": {"done": 0, "total": 0},
        "report_id": None,
        "error": None,
    },
    "PurgeReportOut": {
        "manifest": {"tenant": "acme", "recordings": 1200, "events": 53110, "calls": 9870},
        "signature": "MEUCIQDf3l0n6yWbQ3p5x0Yd4m2T8k1vLr7s9Jc0Zq3hN5wGxA==",
    },
    "PublicKeyOut": {
        "algorithm": "Ed25519",
        "key_id": "purge-2026",
        "public_key_pem": (
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA...\n-----END PUBLIC KEY-----\n"
        ),
    },
    "IvrFlowDocument": _FLOW,
    "ValidationOut": {
        "valid": False,
        "node_count": 6,
        "errors": [
            {
                "path": "nodes.closed_menu.options.2.next",
                "code": "UNKNOWN_NODE",
                "message": "no node named callbak",
            }
        ],
    },
    "FlowOut": {
        "flow_id": "after_hours",
        "name": "Main menu",
        "draft_version": 3,
        "updated_at": AT,
        "updated_by": "key:admin01",
        "draft": _FLOW,
    },
    "PublishIn": {"message": "春节值班安排", "effective_at": "2026-02-14T18:00:00+08:00"},
    "RevisionOut": {
        "revision": 4,
        "author": "key:admin01",
        "message": "春节值班安排",
        "created_at": AT,
        "effective_at": "2026-02-14T18:00:00+08:00",
        "activated_at": None,
        "rollback_of": None,
        "document": _FLOW,
    },
    "DiffOut": {
        "nodes": [{"node": "hours", "change": "changed", "fields": ["hours"]}],
        "settings": [],
        "layout_changed": False,
    },
    "SimulateIn": {"digits": ["1"], "at": AT, "caller": CALLER, "did": "862160001234"},
    "SimulateOut": {
        "path": ["menu", "sales"],
        "actions": [{"action": "queue", "skill_group": "sales"}],
        "steps": [_STEP],
        "route": "queue",
        "target": "acme-sales",
        "reason": "",
        "variables": {"CCB_TENANT": "acme"},
    },
    "IvrCallOut": {
        "uniqueid": CALL_ID,
        "flow_id": "after_hours",
        "revision": 4,
        "caller": CALLER,
        "started_at": AT,
        "ended_at": "2026-03-02T09:15:31+08:00",
        "path": ["hours", "closed_menu", "leave_message"],
        "steps": [_STEP],
        "route": "voicemail",
        "target": "1000",
        "reason": "",
        "drop_off_node": None,
    },
    "CallControlOut": {"call_id": CALL_ID, "action": "hold", "held": True},
    "TransferIn": {"mode": "attended", "agent_no": "1002"},
    "ConferenceIn": {"number": "+8613900139000"},
    "ReturnToIvrIn": {"flow_node": "survey", "back_to_agent": False},
    "DialIn": {"number": "13900139000"},
    "IncidentIn": {
        "started_at": "2026-11-12T02:10:00+08:00",
        "ended_at": "2026-11-12T02:52:00+08:00",
        "cause": "中继割接",
        "tenants": ["acme"],
    },
    "IncidentPatch": {"ended_at": "2026-11-12T02:52:00+08:00"},
    "IncidentOut": _INCIDENT,
    "ExclusionIn": {"reason": "planned_maintenance", "note": "提前三天通知的割接"},
    "FaultReportIn": {
        "summary": "09:40 起来电无法进入队列",
        "noticed_at": "2026-11-12T09:40:00+08:00",
    },
    "FaultReportOut": _FAULT,
    "PromoteIn": {"cause": "FastAGI refused calls", "started_at": "2026-11-12T09:38:00+08:00"},
    "PromotedOut": {"report": {**_FAULT, "status": "promoted"}, "incident": _INCIDENT},
    "RejectIn": {"note": "客户侧话机故障"},
    "MonthlySlaOut": {
        "tenant_id": "acme",
        "year": 2026,
        "month": 11,
        "days": 30,
        "fault_minutes": 42.0,
        "stability_percent": "99.9028",
        "tier": "met",
        "pay_fraction": "1",
        "report_required": False,
        "bill": "6400.00",
        "payable": "6400.00",
        "deduction": "0.00",
        "incidents": [_INCIDENT],
    },
    "ReportSettingsIn": _REPORT_SETTINGS_IN,
    "ReportSettingsOut": {
        **_REPORT_SETTINGS_IN,
        "timezone": "Asia/Shanghai",
        "updated_at": AT,
        "updated_by": "key:admin01",
    },
    "ReportOut": {
        "report": "service-level",
        "title": "话务服务水平统计报表",
        "tenant_id": "acme",
        "from": "2026-11-01",
        "to": "2026-11-30",
        "interval": "day",
        "timezone": "Asia/Shanghai",
        "columns": [
            {"key": "interval", "heading": "时段"},
            {"key": "offered", "heading": "来电量"},
            {"key": "service_level", "heading": "30秒接通率"},
        ],
        "rows": [{"interval": "2026-11-02", "offered": 812, "service_level": 0.87}],
    },
    "ReportArchiveOut": {
        "id": "5b0f3c1e-8f0e-4a57-9d1e-2f6f3c9a7b21",
        "report": "service-level",
        "title": "话务服务水平统计报表",
        "period": "monthly",
        "first_day": "2026-11-01",
        "last_day": "2026-11-30",
        "format": "xlsx",
        "state": "done",
        "progress": 100,
        "rows": 120,
        "size": 18342,
        "sha256": "9f2c4e1b7a0d3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60",
        "error": None,
        "created_at": "2026-12-01T00:05:00+08:00",
        "updated_at": "2026-12-01T00:05:07+08:00",
    },
    "ExplanationOut": {
        "kpi": "service_level",
        "value": 0.5,
        "inputs": {"answered_within_t": 1, "offered": 2},
        "call_ids": {"answered_within_t": [CALL_ID], "offered": [CALL_ID, "1764638101.43"]},
        "intervals": [],
    },
    "IssueIn": {"year": 2026, "month": 11, "model": "seats", "seat_usage": "peak"},
    "StatementOut": _STATEMENT,
    "TransitionIn": {"to": "confirmed", "note": "客户已签字确认"},
    "NumberAssignIn": {"description": "400 热线（华东）"},
    "NumberMapIn": {"target": {"type": "flow", "id": "main_menu"}},
    "NumberOut": {
        "number": "4008001234",
        "kind": "400",
        "target": {"type": "flow", "id": "main_menu"},
        "description": "400 热线（华东）",
        "assigned_at": AT,
        "assigned_by": "key:platform01",
        "updated_at": LATER,
        "updated_by": "key:admin01",
    },
    "RoutingPolicyIn": _POLICY,
    "RoutingPolicyOut": {
        **_POLICY,
        "group": "sales",
        "version": 3,
        "updated_at": AT,
        "updated_by": "key:admin01",
    },
    "CallbackOut": {
        "id": "cb_01J9Z6W8Q4",
        "caller": CALLER,
        "did": "4008001234",
        "skill_group": "sales",
        "call_id": CALL_ID,
        "waited_seconds": 300,
        "requested_at": AT,
        "status": "dialing",
        "attempts": 1,
        "agent_no": "1101",
        "attempt_call_id": "ccb-3f2a9c41d0e84b7a95c1",
        "updated_at": AT,
        "reason": None,
    },
    "CallbackDialIn": {"agent_no": "1101"},
    "PromptOut": {
        "prompt_id": "closed_options",
        "bytes": 182044,
        "duration_ms": 11377,
        "created_at": AT,
        "created_by": "key:admin01",
    },
}
"""Schema name → one example instance (also lifted onto every body that uses the schema)."""

OPERATION_EXAMPLES: dict[str, dict[str, Any]] = {
    "healthz": {"200": {"status": "alive"}},
    "metrics": {
        METRICS_CONTENT_TYPE: "# TYPE ccbridge_ami_connected gauge\nccbridge_ami_connected 1.0\n"
    },
    "readyz": {
        "200": {
            "status": "ready",
            "checks": {
                "ami": {"ok": True, "logged_in": True, "synced": True},
                "database": {"ok": True},
                "fastagi": {"ok": True, "port": 4573, "active": 3},
            },
        }
    },
    "hold_recording": {"200": {"held": 1}},
    "hold_call": {"200": {"held": 1}},
    "legal_hold_call": {"200": {"held": 1}},
    "get_report": {
        "text/csv; charset=utf-8": "\ufeff时段,来电量,30秒接通率\r\n2026-11-02,812,0.87\r\n",
    },
    "validate_flow": {"application/yaml": "format: ccbridge-ivr/1\nname: Demo\n..."},
    "put_draft": {"application/yaml": "format: ccbridge-ivr/1\nname: Demo\n..."},
    "upload_prompt": {"request": {"prompt_id": "closed_options", "file": "(audio bytes)"}},
    "stream_wallboard": {
        "text/event-stream": 'event: wallboard\ndata: {"tenant_id":"acme","skill_groups":[…]}\n\n'
    },
    "stream_events": {
        "text/event-stream": 'id: 1042\nevent: call.answered\ndata: {"id":"5f0c6c8e-…"}\n\n'
    },
    "export_calls": {
        "text/csv": "call_id,agent_no,skill_group,caller,callee\r\n"
        "1764638100.42,1001,sales,+8613800138000,+862160001234\r\n",
        "application/x-ndjson": '{"call_id":"1764638100.42","agent_no":"1001"}\n',
    },
}
"""Operation id → examples by ``"request"``, status code (``"200"``) or media type."""
