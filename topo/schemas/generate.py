"""The generator of the topology file format's JSON Schema (2020-12), built from the argument table.

Its output is the one source of truth: ``python -m topo.schemas.generate`` prints it, and ``make schema``
writes it to ``topo/schemas/topology.schema.json`` (the copy shipped in the wheel, read by
:func:`topo.schemas.load_schema`; ``schemas/topology.schema.json`` at the top of the repository, for
editors, is a link to it). tests/test_schema.py fails when a copy differs from this output byte for byte,
so the schema and :mod:`topo.arguments` never disagree.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from topo.arguments import (
    EXCHANGE_TYPES,
    PLUGIN_EXCHANGE_TYPE,
    POLICY_APPLY_TO,
    POLICY_KEYS,
    QUEUE_ARGUMENTS,
    QUEUE_TYPES,
    ArgSpec,
)
from topo.monitor.spec import monitor_schema
from topo.passwords import ALGORITHMS
from topo.schemas import SCHEMA_ID
from topo.units import DURATION_PATTERN, MAX_AGE_FORM, MAX_AGE_PATTERN, SIZE_PATTERN

__all__ = ["build_schema", "main", "schema_text"]


def _value_schema(spec: ArgSpec) -> dict[str, Any]:
    doc = {"description": spec.doc} if spec.doc else {}
    if spec.kind == "duration":
        return {"$ref": "#/$defs/duration", **doc}
    if spec.kind == "size":
        return {"$ref": "#/$defs/size", **doc}
    if spec.kind == "bool":
        return {"type": "boolean", **doc}
    if spec.kind == "enum":
        return {"enum": list(spec.choices), **doc}
    if spec.kind == "int":
        schema: dict[str, Any] = {"type": "integer", **doc}
        if spec.key == "ha-params":
            return {"type": ["integer", "array"], **doc}
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
        return schema
    if spec.key == "max-age":
        return {"type": "string", "pattern": MAX_AGE_PATTERN, "description": f"stream retention in {MAX_AGE_FORM}"}
    return {"type": "string", **doc}


def _lint() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Lint rules switched off here: {disable: [CODE, ...]}",
        "properties": {"disable": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
        "additionalProperties": False,
    }


_PROTECT = {
    "type": "boolean",
    "description": "protect: no plan may delete or replace it (a prune, topo destroy, a replacement), whatever "
    "the flags; remove it first, in a change of its own",
}


def build_schema() -> dict[str, Any]:
    """The schema as a dict."""
    binding = {
        "type": "object",
        "description": "Receive from an exchange. Headers exchanges: match + headers.",
        "required": ["exchange"],
        "properties": {
            "exchange": {"$ref": "#/$defs/name", "description": "the source exchange"},
            "routing-key": {"type": "string", "default": ""},
            "arguments": {"type": "object"},
            "match": {"enum": ["all", "any", "all-with-x", "any-with-x"]},
            "headers": {"type": "object"},
            "protect": _PROTECT,
        },
        "additionalProperties": False,
    }
    queue_props: dict[str, Any] = {
        "type": {"enum": list(QUEUE_TYPES), "default": "classic"},
        "durable": {"type": "boolean", "default": True},
        "auto-delete": {"type": "boolean", "default": False},
        "arguments": {"type": "object", "description": "other x-arguments, verbatim"},
        "bindings": {"type": "array", "items": {"$ref": "#/$defs/binding"}},
        "prefetch": {"type": "integer", "minimum": 0, "maximum": 65535, "description": "runtime QoS"},
        "retry": {
            "type": "object",
            "description": "runtime retries: delay queues <queue>.retry.N are declared for you",
            "required": ["delays"],
            "properties": {"delays": {"type": "array", "items": {"$ref": "#/$defs/duration"}, "minItems": 1}},
            "additionalProperties": False,
        },
        "circuit-breaker": {
            "type": "object",
            "description": "runtime: after `failures` consecutive failures of a subscription's handler, stop "
            "consuming for `open-for`, then try one message (half-open)",
            "required": ["failures", "open-for"],
            "properties": {
                "failures": {"type": "integer", "minimum": 1, "description": "consecutive failures that open it"},
                "open-for": {"$ref": "#/$defs/duration", "description": "how long it stays open (more than 0)"},
            },
            "additionalProperties": False,
        },
        "lint": _lint(),
        "keep-bindings": {"$ref": "#/$defs/keep-bindings"},
        "monitor": {"$ref": "#/$defs/monitor"},
        "protect": _PROTECT,
    }
    for key, spec in QUEUE_ARGUMENTS.items():
        queue_props[key] = _value_schema(spec)
    exchange_props: dict[str, Any] = {
        "type": {
            "anyOf": [{"enum": list(EXCHANGE_TYPES)}, {"type": "string", "pattern": PLUGIN_EXCHANGE_TYPE}],
            "description": "one of " + ", ".join(map(repr, EXCHANGE_TYPES)) + ", or a plugin's type (x-...)",
        },
        "durable": {"type": "boolean", "default": True},
        "auto-delete": {"type": "boolean", "default": False},
        "internal": {"type": "boolean", "default": False},
        "alternate-exchange": {"$ref": "#/$defs/name"},
        "arguments": {"type": "object"},
        "bindings": {"type": "array", "items": {"$ref": "#/$defs/binding"}},
        "lint": _lint(),
        "keep-bindings": {"$ref": "#/$defs/keep-bindings"},
        "protect": _PROTECT,
    }

    def policy(keys: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["pattern", "definition"],
            "properties": {
                "pattern": {"type": "string", "description": "regular expression over names"},
                "apply-to": {"enum": list(POLICY_APPLY_TO), "default": "all"},
                "priority": {"type": "integer", "default": 0},
                "protect": _PROTECT,
                "definition": {
                    "type": "object",
                    "properties": keys,
                    "additionalProperties": False,
                    "minProperties": 1,
                },
            },
            "additionalProperties": False,
        }

    policy_keys = {key: _value_schema(spec) for key, spec in POLICY_KEYS.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "topo topology",
        "description": "RabbitMQ topology as code: vhosts, exchanges, queues, bindings, policies, users and "
        "permissions.",
        "type": "object",
        "required": ["version"],
        "properties": {
            "version": {"const": 1},
            "name": {"type": "string", "description": "the stack these files make"},
            "lint": _lint(),
            "monitor": {"$ref": "#/$defs/monitor"},
            "vhosts": {"type": "object", "additionalProperties": {"$ref": "#/$defs/vhost"}},
            **_access_properties(),
        },
        "additionalProperties": False,
        "$defs": {
            "name": {"type": "string", "maxLength": 255},
            "duration": {
                "description": "a duration: milliseconds, or a string such as 500ms, 30s, 5m, 24h, 7d",
                "anyOf": [
                    {"type": "integer", "minimum": 0},
                    {"type": "string", "pattern": DURATION_PATTERN},
                ],
            },
            "size": {
                "description": "a size: bytes, or a string such as 512B, 10KB, 10MB, 1GB, 10KiB, 10MiB, 1GiB",
                "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": SIZE_PATTERN}],
            },
            "binding": binding,
            "keep-bindings": {
                "description": "`all`, or a list of {exchange: NAME, routing-key: GLOB}: the bindings no file "
                "declares that apply leaves alone (an application adds them at run time)",
                "type": ["string", "array"],
                "pattern": "^all$",
                "items": {"$ref": "#/$defs/binding-pattern"},
            },
            "binding-pattern": {
                "type": "object",
                "description": "bindings from this exchange (exactly) whose routing key matches the glob",
                "properties": {
                    "exchange": {"$ref": "#/$defs/name", "description": "the source exchange"},
                    "routing-key": {"type": "string", "description": "a glob: * stands for any run of characters"},
                },
                "additionalProperties": False,
                "minProperties": 1,
            },
            "monitor": monitor_schema(),
            **_access_defs(),
            **_links_defs(),
            "queue": {"type": "object", "properties": queue_props, "additionalProperties": False},
            "exchange": {
                "type": "object",
                "required": ["type"],
                "properties": exchange_props,
                "additionalProperties": False,
            },
            "policy": policy(policy_keys),
            "operator-policy": policy({k: v for k, v in policy_keys.items() if k in _operator_keys()}),
            "vhost": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "limits": {
                        "type": "object",
                        "properties": {
                            "max-connections": {"type": "integer", "minimum": -1},
                            "max-queues": {"type": "integer", "minimum": -1},
                        },
                        "additionalProperties": False,
                    },
                    "exchanges": {"type": "object", "additionalProperties": {"$ref": "#/$defs/exchange"}},
                    "queues": {"type": "object", "additionalProperties": {"$ref": "#/$defs/queue"}},
                    "policies": {"type": "object", "additionalProperties": {"$ref": "#/$defs/policy"}},
                    "operator-policies": {
                        "type": "object",
                        "additionalProperties": {"$ref": "#/$defs/operator-policy"},
                    },
                    "keep-bindings": {"$ref": "#/$defs/keep-bindings"},
                    "monitor": {"$ref": "#/$defs/monitor"},
                    "protect": _PROTECT,
                    **_vhost_settings(),
                    **_links_properties(),
                },
                "additionalProperties": False,
            },
        },
    }


# -- users, permissions, global parameters, vhost settings (issue 11) ------------------------------------


def _access_properties() -> dict[str, Any]:
    """The top-level keys of the broker-wide kinds."""
    return {
        "users": {
            "type": "object",
            "description": "users by name: password source, tags, limits, permissions per vhost",
            "additionalProperties": {"$ref": "#/$defs/user"},
        },
        "global-parameters": {
            "type": "object",
            "description": "broker-wide parameters by name (cluster_name, ...); names starting with topo. are reserved",
            "properties": {"cluster_name": {"type": "string", "description": "the cluster's name"}},
            "additionalProperties": {"description": "any JSON value"},
        },
    }


def _access_defs() -> dict[str, Any]:
    pattern = {"type": "string", "description": 'a regular expression (PCRE) searched in names; "" matches none'}
    algorithms = [*ALGORITHMS, *(name.rsplit("_", 1)[-1] for name in ALGORITHMS)]
    limit = {"type": "integer", "minimum": -1}
    return {
        "user": {
            "type": "object",
            "properties": {
                "password": {
                    "type": "string",
                    "description": "${env:NAME} or ${var:NAME} (never a password in clear)",
                },
                "password-file": {
                    "type": "string",
                    "description": "a file holding the password (relative: to this file)",
                },
                "password-hash": {"type": "string", "description": "the broker's form: base64 of salt and digest"},
                "hashing-algorithm": {"enum": algorithms},
                "tags": {
                    "type": "array",
                    "description": "administrator, monitoring, management, policymaker, impersonator, or your own",
                    "items": {"type": "string", "pattern": "^[^,\\s]+$"},
                    "uniqueItems": True,
                },
                "limits": {
                    "type": "object",
                    "properties": {"max-connections": limit, "max-channels": limit},
                    "additionalProperties": False,
                },
                "permissions": {
                    "type": "object",
                    "description": "by vhost",
                    "additionalProperties": {"$ref": "#/$defs/permission"},
                },
                "topic-permissions": {
                    "type": "object",
                    "description": "by vhost, then by topic exchange",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": {"$ref": "#/$defs/topic-permission"},
                    },
                },
            },
            "additionalProperties": False,
        },
        "permission": {
            "type": "object",
            "required": ["configure", "write", "read"],
            "properties": {
                "configure": pattern,
                "write": pattern,
                "read": pattern,
                "protect": {
                    **_PROTECT,
                    "description": "protect: no plan may revoke it (its user's files no longer giving it, a delete "
                    "of its vhost), whatever the flags; remove it first, in a change of its own",
                },
            },
            "additionalProperties": False,
        },
        "topic-permission": {
            "type": "object",
            "required": ["write", "read"],
            "properties": {
                "write": pattern,
                "read": pattern,
                "protect": {
                    **_PROTECT,
                    "description": "protect: no plan may delete the user's topic permissions on this vhost "
                    "(RabbitMQ deletes them all at once), whatever the flags; remove it first, in a change of its own",
                },
            },
            "additionalProperties": False,
        },
    }


# -- shovels and federation (issue 11.3) ------------------------------------------------------------------


def _links_properties() -> dict[str, Any]:
    """The keys of a vhost that hold its links."""
    return {
        "shovels": {
            "type": "object",
            "description": "dynamic shovels by name (the rabbitmq_shovel plugin)",
            "additionalProperties": {"$ref": "#/$defs/shovel"},
        },
        "federation-upstreams": {
            "type": "object",
            "description": "federation upstreams by name (the rabbitmq_federation plugin)",
            "additionalProperties": {"$ref": "#/$defs/federation-upstream"},
        },
        "federation-upstream-sets": {
            "type": "object",
            "description": "named lists of upstreams, for a policy's federation-upstream-set",
            "additionalProperties": {"$ref": "#/$defs/federation-upstream-set"},
        },
    }


def _links_defs() -> dict[str, Any]:
    uri = {
        "type": ["string", "array"],
        "items": {"type": "string"},
        "minItems": 1,
        "description": "amqp:// or amqps:// URI(s); one with a password: ${env:NAME} (whole, or the password "
        "part), never in clear",
    }
    uri_file = {"type": "string", "description": "a file holding the URI (one a line; relative: to this file)"}
    name = {"$ref": "#/$defs/name"}
    delay = {"type": "string", "pattern": DURATION_PATTERN, "description": "a duration: 1s, 500ms, 1m"}
    count = {"type": "integer", "minimum": 0}
    ack_mode = {"enum": ["on-confirm", "on-publish", "no-ack"]}
    upstream_keys: dict[str, Any] = {
        "exchange": {**name, "description": "the upstream exchange (default: the federated one's name)"},
        "queue": {**name, "description": "the upstream queue (default: the federated one's name)"},
        "consumer-tag": {"type": "string"},
        "prefetch-count": count,
        "reconnect-delay": delay,
        "max-hops": {"type": "integer", "minimum": 1},
        "expires": {"$ref": "#/$defs/duration", "description": "of the upstream's queue, when unused"},
        "message-ttl": {"$ref": "#/$defs/duration", "description": "of messages in the upstream's queue"},
        "trust-user-id": {"type": "boolean"},
        "ack-mode": ack_mode,
        "ha-policy": {"type": "string"},
        "bind-nowait": {"type": "boolean"},
        "resource-cleanup-mode": {"enum": ["default", "never"]},
        "channel-use-mode": {"enum": ["multiple", "single"]},
    }
    members = {
        "type": "array",
        "items": {
            "anyOf": [
                name,
                {
                    "type": "object",
                    "required": ["upstream"],
                    "properties": {"upstream": name, **upstream_keys},
                    "additionalProperties": False,
                },
            ]
        },
    }
    return {
        "shovel": {
            "type": "object",
            "required": ["source", "destination"],
            "properties": {
                "source": {
                    "type": "object",
                    "properties": {
                        "uri": uri,
                        "uri-file": uri_file,
                        "queue": name,
                        "exchange": name,
                        "routing-key": {"type": "string", "description": "with exchange: the shovel's binding key"},
                        "prefetch-count": count,
                        "delete-after": {
                            "anyOf": [{"enum": ["never", "queue-length"]}, {"type": "integer", "minimum": 1}],
                            "description": "never, queue-length (the messages there at start), or a count",
                        },
                    },
                    "additionalProperties": False,
                },
                "destination": {
                    "type": "object",
                    "properties": {
                        "uri": uri,
                        "uri-file": uri_file,
                        "queue": name,
                        "exchange": name,
                        "routing-key": {"type": "string"},
                        "add-forward-headers": {"type": "boolean"},
                        "add-timestamp-header": {"type": "boolean"},
                        "publish-properties": {"type": "object", "description": "AMQP properties set on each message"},
                    },
                    "additionalProperties": False,
                },
                "ack-mode": ack_mode,
                "reconnect-delay": delay,
                "lint": _lint(),
                "protect": _PROTECT,
            },
            "additionalProperties": False,
        },
        "federation-upstream": {
            "type": "object",
            "properties": {"uri": uri, "uri-file": uri_file, **upstream_keys, "protect": _PROTECT},
            "additionalProperties": False,
        },
        "federation-upstream-set": {
            "description": "a list of upstreams (names, or {upstream: NAME, ...} with overrides); or "
            "{upstreams: [...], protect: true}",
            "anyOf": [
                members,
                {
                    "type": "object",
                    "required": ["upstreams"],
                    "properties": {"upstreams": members, "protect": _PROTECT},
                    "additionalProperties": False,
                },
            ],
        },
    }


def _vhost_settings() -> dict[str, Any]:
    return {
        "default-queue-type": {
            "enum": list(QUEUE_TYPES),
            "description": "the type of queues declared without one (RabbitMQ 3.10 sets it only at creation)",
        },
        "tracing": {"type": "boolean", "description": "the vhost's firehose tracer"},
    }


def _operator_keys() -> frozenset[str]:
    from topo.arguments import OPERATOR_POLICY_KEYS

    return OPERATOR_POLICY_KEYS


def schema_text() -> str:
    """The schema as the committed file holds it (2-space JSON and a final newline)."""
    return json.dumps(build_schema(), indent=2) + "\n"


def main() -> None:
    sys.stdout.write(schema_text())


if __name__ == "__main__":
    main()
